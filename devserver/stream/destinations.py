"""The on-failure destination and the record Lambda sends to it when it gives up on a batch (esm §2)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any, Dict, List, Optional, Protocol, Sequence

log = logging.getLogger(__name__)

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"  # AWS-observed
# No AWS recording of the age condition exists; LocalStack uses this string (esm §2, unverified).
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


class FailureDestination(Protocol):
    def send(self, message: Dict[str, Any]) -> None: ...


class SqsFailureDestination:
    """SQS gets the metadata-only record (esm §2). The queue URL is looked up on first use, so the
    runner can be built before the local stack has created the queue."""

    def __init__(self, sqs: Any, *, queue_url: Optional[str] = None, queue_name: Optional[str] = None) -> None:
        if not (queue_url or queue_name):
            raise ValueError("SqsFailureDestination needs queue_url or queue_name")
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_name = queue_name

    @property
    def queue_url(self) -> str:
        if self._queue_url is None:
            self._queue_url = self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._queue_url

    def send(self, message: Dict[str, Any]) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))


class MemoryDestination:
    """Keeps the messages; for tests and for running without a queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: List[Dict[str, Any]] = []

    def send(self, message: Dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(json.loads(json.dumps(message)))


def iso_millis(epoch: float) -> str:
    """`2025-06-05T18:22:26.479Z`: the record's own timestamp has milliseconds (esm §2)."""
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000)


def iso_seconds(epoch: Optional[float]) -> Optional[str]:
    """`2025-06-05T18:21:49Z`: arrival times are second precision (esm §2)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    *, records: Sequence[Dict[str, Any]], shard_id: str, stream_arn: str, function_arn: str,
    condition: str, invoke_count: int, function_error: Optional[str], now: float,
) -> Dict[str, Any]:
    """The AWS-observed on-failure body (esm §2, LSSNAP), for the given slice of a batch."""
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error,
        },
        "version": "1.0",
        "timestamp": iso_millis(now),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso_seconds(first.get("ApproximateCreationDateTime")),
            "approximateArrivalOfLastRecord": iso_seconds(last.get("ApproximateCreationDateTime")),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def function_arn(stream_arn: str, function_name: str) -> str:
    """`arn:aws:lambda:<region>:<account>:function:<name>`, region and account taken from the stream."""
    parts = stream_arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 4 else ("us-east-1", "000000000000")
    return "arn:aws:lambda:%s:%s:function:%s" % (region, account, function_name)
