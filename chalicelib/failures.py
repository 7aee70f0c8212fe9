"""The failure-queue consumer: makes requests that Lambda gave up on visible and retryable.

When a batch exhausts its retries or record age, Lambda writes the failure record and the batch's
own records to the on-failure bucket (docs: ESM-7, ESM-8), and S3 announces the object on the
failure queue (docs: ESM-16). This reads the object and marks each request in it that is still
PENDING as FAILED with an error saying so. Nothing is read back from the stream, whose records
expire after 24 h (docs: DDB-4): the records travel with the failure.

A message it cannot resolve (S3's test event, an object that is gone, a record without records)
is logged in full and left to the reconciler; trouble that may pass (throttling, S3 or DynamoDB
unavailable) asks SQS for the message again.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint

from chalicelib import config, runtime
from chalicelib.errors import ConditionFailed, StoreUnavailable
from chalicelib.logs import logger
from chalicelib.outcomes import error_of
from chalicelib.ownership import public_id
from chalicelib.records import new_request
from chalicelib.store import RequestStore, map_error

# S3 answers for an object that will never be readable again: retrying the message would not help.
# A missing key reads as NoSuchKey only because the role may list the bucket (docs: IAM-5).
_GONE = frozenset({"NoSuchKey", "NoSuchBucket"})


class Unresolvable(Exception):
    """A message that names no failure this consumer can resolve."""


class FailureConsumer:
    def __init__(self, store: RequestStore, s3: Any, *, now: Callable[[], float] = time.time) -> None:
        self._store = store
        self._s3 = s3
        self._now = now

    def handle(self, messages: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, str]]]:
        """SQS partial batch response: the message ids to receive again (transient trouble only)."""
        retry: List[str] = []
        for message in messages:
            try:
                for failure, records in self._failures(json.loads(message["body"])):
                    self.fail_requests(failure, records)
            except StoreUnavailable as exc:
                logger.warning("failure record not handled yet; will be retried",
                               extra={"message_id": message["messageId"], "error": str(exc)})
                retry.append(message["messageId"])
            except (Unresolvable, ValueError, KeyError, TypeError) as exc:
                logger.error("failure record cannot be resolved; left for the reconciler",
                             extra={"message_id": message["messageId"], "error": str(exc), "body": message["body"]})
        return {"batchItemFailures": [{"itemIdentifier": m} for m in retry]}

    def _failures(self, notification: Mapping[str, Any]) -> Iterator[Tuple[Mapping[str, Any], List[Any]]]:
        """(failure record, the batch's records) for each object an S3 notification announces."""
        if notification.get("Event") == "s3:TestEvent":  # sent once when the notification is set up
            logger.info("S3 test event ignored", extra={"bucket": notification.get("Bucket")})
            return
        entries = notification.get("Records")
        if not isinstance(entries, list) or not entries:
            raise Unresolvable("not an S3 event notification (a metadata-only failure record has no records)")
        for entry in entries:
            bucket, key = entry["s3"]["bucket"]["name"], unquote_plus(entry["s3"]["object"]["key"])
            failure = self._object(bucket, key)
            records = (failure.get("payload") or {}).get("Records")
            if not isinstance(records, list):
                raise Unresolvable(f"s3://{bucket}/{key} holds no payload.Records")
            yield failure, records

    def _object(self, bucket: str, key: str) -> Mapping[str, Any]:
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE:
                raise Unresolvable(f"s3://{bucket}/{key}: {exc}") from exc
            raise map_error(exc) from exc
        except BotoCoreError as exc:
            raise map_error(exc) from exc
        loaded: Mapping[str, Any] = json.loads(body)
        return loaded

    def fail_requests(self, failure: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> None:
        """FAILED, with the failure record's reason, for each request the records bring into PENDING
        that is still PENDING (25 per call); raises StoreUnavailable when DynamoDB is."""
        context = failure.get("requestContext", {})
        reason = (f"Lambda gave up after {context.get('approximateInvokeCount', '?')} invocations "
                  f"({context.get('condition', 'unknown condition')}); retry with POST /requests/{{id}}/retry")
        now_ms = int(self._now() * 1000)
        requests = [r for r in map(new_request, records) if r is not None]
        writebacks = [self._store.failed(r.request_id, self._exhausted(reason, r.request_id), now_ms=now_ms,
                                         attempt=False) for r in requests]
        unavailable: Optional[StoreUnavailable] = None
        for request, error in zip(requests, self._store.write(writebacks), strict=True):
            log = {"request_id": request.request_id, "sequence_number": request.sequence_number}
            if error is None:
                logger.info("request failed: retries exhausted", extra=log)
            elif isinstance(error, ConditionFailed):
                logger.info("already finished; left as it is", extra=log)
            elif isinstance(error, StoreUnavailable):
                unavailable = unavailable or error  # the message comes back; what was written stays
            else:
                raise error
        if unavailable is not None:
            raise unavailable

    @staticmethod
    def _exhausted(reason: str, request_id: str) -> Dict[str, str]:
        return error_of("RetriesExhausted", reason.replace("{id}", public_id(request_id)))


bp = Blueprint(__name__)


@bp.on_sqs_message(queue_arn=config.failure_queue_arn(), batch_size=10)
def handle_failures(event: Any) -> Dict[str, List[Dict[str, str]]]:
    return FailureConsumer(runtime.store(), runtime.s3()).handle(event.to_dict()["Records"])
