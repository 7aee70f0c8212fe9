"""The failure-queue consumer: makes requests that Lambda gave up on visible and retryable.

When a batch exhausts its retries or record age, Lambda sends the on-failure queue metadata
only: the shard and the sequence range, no records (esm §2). This reads that range back from
the stream (it is kept 24 h) and marks each request in it that is still PENDING as FAILED with
an error saying so. A range it cannot read (trimmed, stream gone) is logged in full and left to
the reconciler.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint

from chalicelib import config, runtime
from chalicelib.errors import ConditionFailed, StoreUnavailable
from chalicelib.logs import logger
from chalicelib.outcomes import error_of
from chalicelib.records import new_request
from chalicelib.store import RequestStore, map_error

# Errors that mean the range can never be read again: retrying the message would not help.
_UNREADABLE = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException", "ValidationException",
                         "ExpiredIteratorException"})
_MAX_READS = 50


class UnreadableRange(Exception):
    pass


class FailureConsumer:
    def __init__(self, store: RequestStore, streams: Any, *, now: Callable[[], float] = time.time) -> None:
        self._store = store
        self._streams = streams
        self._now = now

    def handle(self, messages: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, str]]]:
        """SQS partial batch response: the message ids to receive again (transient trouble only)."""
        retry: List[str] = []
        for message in messages:
            try:
                self._handle_one(json.loads(message["body"]))
            except StoreUnavailable as exc:
                logger.warning("failure record not handled yet; will be retried",
                               extra={"message_id": message["messageId"], "error": str(exc)})
                retry.append(message["messageId"])
            except (UnreadableRange, ValueError, KeyError) as exc:
                logger.error("failure record cannot be resolved; left for the reconciler",
                             extra={"message_id": message["messageId"], "error": str(exc), "body": message["body"]})
        return {"batchItemFailures": [{"itemIdentifier": m} for m in retry]}

    def _handle_one(self, failure: Mapping[str, Any]) -> None:
        info = failure["DDBStreamBatchInfo"]
        context = failure.get("requestContext", {})
        reason = (f"Lambda gave up after {context.get('approximateInvokeCount', '?')} invocations "
                  f"({context.get('condition', 'unknown condition')}); retry with POST /requests/{{id}}/retry")
        now_ms = int(self._now() * 1000)
        requests = [r for r in map(new_request, self._records(info)) if r is not None]
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
                unavailable = unavailable or error  # the message comes back; the written ones are kept
            else:
                raise error
        if unavailable is not None:
            raise unavailable

    @staticmethod
    def _exhausted(reason: str, request_id: str) -> Dict[str, str]:
        return error_of("RetriesExhausted", reason.replace("{id}", request_id))

    def _records(self, info: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """The stream records from startSequenceNumber to endSequenceNumber of one shard."""
        end = int(info["endSequenceNumber"])
        iterator = self._stream_call("get_shard_iterator", StreamArn=info["streamArn"], ShardId=info["shardId"],
                                     ShardIteratorType="AT_SEQUENCE_NUMBER",
                                     SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
        for _ in range(_MAX_READS):
            if not iterator:
                return
            page = self._stream_call("get_records", ShardIterator=iterator, Limit=1000)
            for record in page.get("Records", []):
                number = int(record["dynamodb"]["SequenceNumber"])
                if number > end:
                    return
                yield record
                if number == end:
                    return
            iterator = page.get("NextShardIterator")
        raise UnreadableRange(f"range not finished after {_MAX_READS} reads")

    def _stream_call(self, operation: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            page: Dict[str, Any] = getattr(self._streams, operation)(**kwargs)
            return page
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _UNREADABLE:
                raise UnreadableRange(str(exc)) from exc
            raise map_error(exc) from exc
        except BotoCoreError as exc:
            raise map_error(exc) from exc


bp = Blueprint(__name__)


@bp.on_sqs_message(queue_arn=config.failure_queue_arn(), batch_size=10)
def handle_failures(event: Any) -> Dict[str, List[Dict[str, str]]]:
    return FailureConsumer(runtime.store(), runtime.streams()).handle(event.to_dict()["Records"])
