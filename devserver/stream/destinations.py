"""The on-failure destinations and the record Lambda sends them when it gives up on a batch.

A DynamoDB stream mapping sends to an SQS queue, an SNS topic or an S3 bucket (docs: ESM-7):
    SQS   the failure record as the message body (metadata only: shard and sequence range)
    SNS   the failure record as the notification's Message (metadata only)
    S3    the failure record plus the batch's event under `payload`, one object per batch, at
          aws/lambda/<mapping UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>
The record's shape is AWS's recording (docs: ESM-8). A destination's send raises when the record
was not delivered: the runner then keeps the batch and sends again later.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

log = logging.getLogger(__name__)

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"  # AWS-observed
# No AWS recording of the age condition exists; LocalStack uses this string (unverified, docs: ESM-8).
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


class FailureDestination(Protocol):
    def send(self, message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> None:
        """Deliver the failure record `message` for the given-up `records` (the batch's event)."""


class SqsFailureDestination:
    """SQS gets the metadata-only record (docs: ESM-7). The queue URL is looked up on first use, so
    the runner can be built before the local stack has created the queue."""

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

    def send(self, message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))


class SnsFailureDestination:
    """SNS gets the metadata-only record as the Message (docs: ESM-7). The topic is found by name
    on first use; a topic that does not exist fails the send (it is never created here)."""

    def __init__(self, sns: Any, *, topic_name: str) -> None:
        self._sns = sns
        self._topic_name = topic_name
        self._topic_arn: Optional[str] = None

    @property
    def topic_arn(self) -> str:
        if self._topic_arn is None:
            for page in self._sns.get_paginator("list_topics").paginate():
                for topic in page.get("Topics", []):
                    if topic["TopicArn"].rsplit(":", 1)[-1] == self._topic_name:
                        self._topic_arn = topic["TopicArn"]
                        return topic["TopicArn"]
            raise LookupError("SNS topic %s does not exist" % self._topic_name)
        return self._topic_arn

    def send(self, message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> None:
        self._sns.publish(TopicArn=self.topic_arn, Message=json.dumps(message))


class S3FailureDestination:
    """S3 gets the failure record with the batch itself under `payload.Records` (docs: ESM-7), so
    whoever reads it needs nothing from the stream, whose records expire after 24 h (docs: DDB-4)."""

    def __init__(self, s3: Any, *, bucket: str, mapping_uuid: str,
                 object_suffix: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._mapping_uuid = mapping_uuid
        self._suffix = object_suffix

    def key(self, message: Dict[str, Any]) -> str:
        """`aws/lambda/<mapping UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>`, the time
        being the failure record's timestamp."""
        stamp = dt.datetime.strptime(message["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        return "aws/lambda/%s/%s/%s/%s-%s" % (
            self._mapping_uuid, message["DDBStreamBatchInfo"]["shardId"], stamp.strftime("%Y/%m/%d"),
            stamp.strftime("%Y-%m-%dT%H.%M.%S"), self._suffix())

    def send(self, message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> None:
        body = json.dumps(s3_failure_object(message, records)).encode("utf-8")
        self._s3.put_object(Bucket=self._bucket, Key=self.key(message), Body=body, ContentType="application/json")


class MemoryDestination:
    """Keeps what it is sent; for tests and for running without a destination."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: List[Dict[str, Any]] = []  # the failure records
        self.batches: List[List[Dict[str, Any]]] = []  # the given-up records, one list per message

    def send(self, message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> None:
        with self._lock:
            self.messages.append(json.loads(json.dumps(message)))
            self.batches.append(json.loads(json.dumps(list(records))))


def s3_failure_object(message: Dict[str, Any], records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """What an S3 destination stores: the failure record plus the invocation's event (docs: ESM-7)."""
    return {**message, "payload": {"Records": list(records)}}


def mapping_uuid(function_name: str, table_name: str) -> str:
    """A stable stand-in for the event source mapping's UUID (it names the S3 objects' folder)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "storefirst-local-esm:%s:%s" % (function_name, table_name)))


def iso_millis(epoch: float) -> str:
    """`2025-06-05T18:22:26.479Z`: the record's own timestamp has milliseconds (docs: ESM-8)."""
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000)


def iso_seconds(epoch: Optional[float]) -> Optional[str]:
    """`2025-06-05T18:21:49Z`: arrival times are second precision (docs: ESM-8)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    *, records: Sequence[Dict[str, Any]], shard_id: str, stream_arn: str, function_arn: str,
    condition: str, invoke_count: int, function_error: Optional[str], now: float,
) -> Dict[str, Any]:
    """The failure record AWS sends (recorded on AWS, docs: ESM-8), for the given slice of a batch."""
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
