"""The failure-queue consumer against moto: the batch Lambda gave up on, read from the S3 object
its on-failure destination wrote (docs: ESM-7), becomes FAILED.

GIVEN requests in the stream and the object the local ESM's S3 destination writes for them, WHEN
S3's notification reaches the consumer, THEN every request of the batch still PENDING is FAILED;
what cannot be resolved is logged in full and left to the reconciler, and what may pass is
received again.
"""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterator, List, Optional

import boto3
import pytest
import yaml
from botocore.config import Config
from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.failures import FailureConsumer
from chalicelib.store import RequestStore
from devserver.db_destinations import FailureNames, ensure_failure_destination
from devserver.stream.destinations import S3FailureDestination, failure_record
from devserver.stream.records import to_lambda_record
from devserver.testing.events import pending_item
from devserver.testing.fakes import FailingClient, client_error
from tests.conftest import TABLE, TEMPLATE

REGION = "eu-central-1"
NAMES = FailureNames(queue="failures-queue", bucket="failures-bucket")


@pytest.fixture
def aws(dynamodb: Any) -> Iterator[Dict[str, Any]]:
    """moto's table (from the dynamodb fixture), plus the failure bucket and queue as `python -m
    devserver db` creates them from infra/template.yaml: the bucket notifies the queue."""
    clients = {"dynamodb": dynamodb,
               "streams": boto3.client("dynamodbstreams", region_name=REGION,
                                       config=Config(account_id_endpoint_mode="disabled")),
               **{name: boto3.client(name, region_name=REGION) for name in ("s3", "sqs", "sns")}}
    ensure_failure_destination(yaml.safe_load(TEMPLATE.read_text()), NAMES, sqs=clients["sqs"], sns=clients["sns"],
                               s3=clients["s3"], region=REGION)
    clients["queue_url"] = clients["sqs"].get_queue_url(QueueName=NAMES.queue)["QueueUrl"]
    drain(clients)  # S3's test event
    yield clients


def drain(aws: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The queue's messages as Lambda's SQS event source hands them to the function."""
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        aws["sqs"].delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=m["ReceiptHandle"])
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "eventSource": "aws:sqs"} for m in messages]


def give_up_on(aws: Dict[str, Any], request_ids: List[str], suffix: str = "a b",
               owner: Optional[str] = None) -> List[Dict[str, Any]]:
    """Put the requests (`owner`'s, else keyed by id alone), then write their batch as the local
    ESM's S3 destination does; return the notification messages S3 sends the queue. The key's
    suffix has a space: S3 URL-encodes keys."""
    for request_id in request_ids:
        aws["dynamodb"].put_item(TableName=TABLE, Item=pending_item(request_id, {}, owner=owner))
    arn = aws["dynamodb"].describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = aws["streams"].describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = aws["streams"].get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    raw = aws["streams"].get_records(ShardIterator=iterator["ShardIterator"])["Records"][-len(request_ids):]
    records = [to_lambda_record(r, stream_arn=arn, region=REGION) for r in raw]
    message = failure_record(records=records, shard_id=shard, stream_arn=arn, function_arn="arn:aws:lambda:f",
                             condition="RetryAttemptsExhausted", invoke_count=11, function_error="Unhandled",
                             now=time.time())
    S3FailureDestination(aws["s3"], bucket=NAMES.bucket, mapping_uuid="u",
                         object_suffix=lambda: suffix).send(message, records)
    return drain(aws)


def status(dynamodb: Any, request_id: str) -> Dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}})["Item"]


def consumer(aws: Dict[str, Any], dynamodb: Any = None, s3: Any = None) -> FailureConsumer:
    return FailureConsumer(RequestStore(dynamodb or aws["dynamodb"], TABLE), s3 or aws["s3"],
                           now=lambda: 1767225600.0)


def test_requests_in_the_failure_object_become_failed_and_retryable(aws):
    messages = give_up_on(aws, ["a", "b", "c"])
    RequestStore(aws["dynamodb"], TABLE).finish_succeeded("b", {}, now_ms=1, expires_at=2)  # finished meanwhile
    aws["dynamodb"].put_item(TableName=TABLE, Item=pending_item("after", {}))

    response = consumer(aws).handle(messages)

    assert response == {"batchItemFailures": []}
    for request_id in ("a", "c"):
        item = status(aws["dynamodb"], request_id)
        assert item["status"] == {"S": "FAILED"} and item["listStatus"] == {"S": "FAILED"}
        assert item["error"]["M"]["type"] == {"S": "RetriesExhausted"}
        assert "11 invocations (RetryAttemptsExhausted)" in item["error"]["M"]["message"]["S"]
        assert item["attempts"] == {"N": "0"}  # the business logic never finished it
    assert status(aws["dynamodb"], "b")["status"] == {"S": "SUCCEEDED"}
    assert status(aws["dynamodb"], "after")["status"] == {"S": "PENDING"}  # not in the batch


def test_an_owners_request_is_failed_under_its_own_key_and_named_by_its_own_id(aws):
    aws["dynamodb"].put_item(TableName=TABLE, Item=pending_item("same", {}, owner="iam-BOB"))
    messages = give_up_on(aws, ["same"], owner="iam-ALICE")

    assert consumer(aws).handle(messages) == {"batchItemFailures": []}

    alices = status(aws["dynamodb"], "iam-ALICE/same")
    assert alices["status"] == {"S": "FAILED"}
    assert "iam-ALICE" not in alices["error"]["M"]["message"]["S"]  # the owner knows it as "same"
    assert status(aws["dynamodb"], "iam-BOB/same")["status"] == {"S": "PENDING"}  # another owner's, same id


def test_the_stream_is_not_read(aws):
    # the records travel with the failure: a consumer with no stream access resolves it all
    messages = give_up_on(aws, ["a"])

    assert consumer(aws).handle(messages) == {"batchItemFailures": []}
    assert status(aws["dynamodb"], "a")["status"] == {"S": "FAILED"}


def test_s3s_test_event_is_ignored(aws, json_logs):
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00Z",
                  "Bucket": NAMES.bucket}

    response = consumer(aws).handle([{"messageId": "t-1", "body": json.dumps(test_event)}])

    assert response == {"batchItemFailures": []}
    assert [line["message"] for line in json_logs.lines] == ["S3 test event ignored"]


@pytest.mark.parametrize("body, why", [
    ("{not json", "Expecting property name"),
    (json.dumps({"requestContext": {}, "DDBStreamBatchInfo": {"shardId": "s"}}), "not an S3 event notification"),
    (json.dumps({"Records": [{"s3": {"bucket": {"name": NAMES.bucket}, "object": {"key": "aws/lambda/gone"}}}]}),
     "NoSuchKey"),
    (json.dumps({"Records": [{"s3": {"bucket": {"name": "no-such-bucket"}, "object": {"key": "k"}}}]}),
     "NoSuchBucket"),
    (json.dumps({"Records": [{"eventSource": "aws:s3"}]}), "'s3'"),
])
def test_what_cannot_be_resolved_is_logged_in_full_and_not_retried(aws, json_logs, body, why):
    # a metadata-only record (an SQS destination's, in flight when the destination changed) included
    response = consumer(aws).handle([{"messageId": "m-9", "receiptHandle": "rh", "body": body}])

    assert response == {"batchItemFailures": []}
    [line] = [line for line in json_logs.lines if "left for the reconciler" in line["message"]]
    assert line["message_id"] == "m-9" and line["body"] == body and why in line["error"]


def test_an_object_without_records_is_left_to_the_reconciler(aws, json_logs):
    aws["s3"].put_object(Bucket=NAMES.bucket, Key="aws/lambda/u/s/2026/01/01/x", Body=b'{"version": "1.0"}')
    [message] = drain(aws)

    assert consumer(aws).handle([message]) == {"batchItemFailures": []}
    assert any("holds no payload.Records" in line.get("error", "") for line in json_logs.lines)


def test_throttled_storage_asks_sqs_for_that_message_again(aws):
    [first] = give_up_on(aws, ["a"], suffix="1")
    [second] = give_up_on(aws, ["b"], suffix="2")
    def first_is_a(kwargs: Dict[str, Any]) -> bool:
        return bool(kwargs["Statements"][0]["Parameters"][-2]["S"] == "a")
    throttled = FailingClient(aws["dynamodb"], "batch_execute_statement", when=first_is_a)

    response = consumer(aws, dynamodb=throttled).handle([first, second])

    assert response == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}
    assert status(aws["dynamodb"], "b")["status"] == {"S": "FAILED"}


def test_s3_slowing_down_asks_sqs_for_the_message_again(aws):
    [message] = give_up_on(aws, ["a"])
    class SlowS3:
        def get_object(self, **kwargs: Any) -> Any:
            raise client_error("SlowDown", "GetObject", message="reduce your request rate", status=503)

    response = consumer(aws, s3=SlowS3()).handle([message])

    assert response == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert status(aws["dynamodb"], "a")["status"] == {"S": "PENDING"}


def test_the_sqs_handler_is_wired_through_chalice(aws):
    event = {"Records": give_up_on(aws, ["a"])}
    runtime.reset()
    runtime.use("s3", aws["s3"])
    with Client(app_module.app, stage_name="dev") as client:
        response = client.lambda_.invoke("handle_failures", event).payload
    runtime.reset()

    assert response == {"batchItemFailures": []}
    assert status(aws["dynamodb"], "a")["status"] == {"S": "FAILED"}
