"""The failure-queue consumer against moto's stream: the range Lambda gave up on becomes FAILED."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import boto3
import pytest
from botocore.config import Config
from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.failures import FailureConsumer
from chalicelib.store import RequestStore
from devserver.testing.events import pending_item
from devserver.testing.fakes import FailingClient
from tests.conftest import TABLE


@pytest.fixture
def streams(dynamodb: Any) -> Any:
    return boto3.client("dynamodbstreams", region_name="eu-central-1",
                        config=Config(account_id_endpoint_mode="disabled"))


def stream_records(dynamodb: Any, streams: Any) -> List[Dict[str, Any]]:
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [dict(r, shard=shard, arn=arn) for r in records]


def failure_message(records: List[Dict[str, Any]], message_id: str = "m-1") -> Dict[str, Any]:
    """An SQS record carrying the on-failure record AWS sends for a batch (esm §2)."""
    body = {
        "requestContext": {"requestId": "c0ffee", "functionArn": "arn:aws:lambda:eu-central-1:123456789012:function:p",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-01-01T00:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": records[0]["shard"], "streamArn": records[0]["arn"], "batchSize": len(records),
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
            "approximateArrivalOfLastRecord": "2026-01-01T00:00:00Z",
        },
    }
    return {"messageId": message_id, "receiptHandle": "rh", "body": json.dumps(body), "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:storefirst-processor-failures"}


def status(dynamodb: Any, request_id: str) -> Dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}})["Item"]


def test_requests_in_the_given_up_range_become_failed_and_retryable(dynamodb, streams):
    for request_id in ("a", "b", "c", "after"):
        dynamodb.put_item(TableName=TABLE, Item=pending_item(request_id, {}))
    records = stream_records(dynamodb, streams)
    RequestStore(dynamodb, TABLE).finish_succeeded("b", {}, now_ms=1, expires_at=2)  # finished meanwhile

    response = FailureConsumer(RequestStore(dynamodb, TABLE), streams, now=lambda: 1767225600.0).handle(
        [failure_message(records[:3])])

    assert response == {"batchItemFailures": []}
    for request_id in ("a", "c"):
        item = status(dynamodb, request_id)
        assert item["status"] == {"S": "FAILED"} and item["listStatus"] == {"S": "FAILED"}
        assert item["error"]["M"]["type"] == {"S": "RetriesExhausted"}
        assert "11 invocations (RetryAttemptsExhausted)" in item["error"]["M"]["message"]["S"]
        assert item["attempts"] == {"N": "0"}  # the business logic never finished it
    assert status(dynamodb, "b")["status"] == {"S": "SUCCEEDED"}
    assert status(dynamodb, "after")["status"] == {"S": "PENDING"}  # outside the range


@pytest.mark.parametrize("code", ["TrimmedDataAccessException", "ResourceNotFoundException"])
def test_an_unreadable_range_is_logged_in_full_and_not_retried(dynamodb, streams, json_logs, code):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("a", {}))
    message = failure_message(stream_records(dynamodb, streams))
    gone = FailingClient(streams, "get_shard_iterator", code=code, message="beyond the trim horizon")

    response = FailureConsumer(RequestStore(dynamodb, TABLE), gone).handle([message])

    assert response == {"batchItemFailures": []}
    assert status(dynamodb, "a")["status"] == {"S": "PENDING"}  # the reconciler's job now
    [line] = [line for line in json_logs.lines if "left for the reconciler" in line["message"]]
    assert line["message_id"] == "m-1" and json.loads(line["body"]) == json.loads(message["body"])


def test_a_malformed_message_is_logged_and_not_retried(dynamodb, streams, json_logs):
    response = FailureConsumer(RequestStore(dynamodb, TABLE), streams).handle(
        [{"messageId": "m-9", "receiptHandle": "rh", "body": "{not json"}])

    assert response == {"batchItemFailures": []}
    assert [line["message_id"] for line in json_logs.lines] == ["m-9"]


def test_throttled_storage_asks_sqs_for_that_message_again(dynamodb, streams):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("a", {}))
    dynamodb.put_item(TableName=TABLE, Item=pending_item("b", {}))
    records = stream_records(dynamodb, streams)
    def first_is_a(kwargs: Dict[str, Any]) -> bool:
        return bool(kwargs["Statements"][0]["Parameters"][-2]["S"] == "a")
    store = RequestStore(FailingClient(dynamodb, "batch_execute_statement", when=first_is_a), TABLE)

    response = FailureConsumer(store, streams).handle([failure_message(records[:1], "m-a"),
                                                       failure_message(records[1:], "m-b")])

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-a"}]}
    assert status(dynamodb, "b")["status"] == {"S": "FAILED"}


def test_the_sqs_handler_is_wired_through_chalice(dynamodb, streams):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("a", {}))
    event = {"Records": [failure_message(stream_records(dynamodb, streams))]}
    runtime.reset()
    runtime.use("streams", streams)
    with Client(app_module.app, stage_name="dev") as client:
        response = client.lambda_.invoke("handle_failures", event).payload
    runtime.reset()

    assert response == {"batchItemFailures": []}
    assert status(dynamodb, "a")["status"] == {"S": "FAILED"}
