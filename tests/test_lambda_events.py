"""The local SQS event source and schedule: Lambda's partial batch rules and event shapes."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import boto3
import pytest
from chalice import Rate
from moto import mock_aws

from devserver.lambda_events import Schedule, SqsEventSource, failed_message_ids, rate_seconds


@pytest.mark.parametrize("response, expected", [
    (None, []), ({}, []), ([], []), ({"batchItemFailures": []}, []), ({"batchItemFailures": None}, []),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["b"]),
    ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
    ({"batchItemFailures": [{}]}, None),
    ({"batchItemFailures": "b"}, None),
    ("failed", None),
])
def test_partial_batch_responses_follow_lambdas_rules(response, expected):
    assert failed_message_ids(response, ["a", "b"]) == expected


@pytest.mark.parametrize("expression, seconds", [(Rate(5, unit=Rate.MINUTES), 300), ("rate(1 hour)", 3600),
                                                 ("rate(2 days)", 172800)])
def test_rates_become_intervals(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_cron_is_refused_locally():
    with pytest.raises(ValueError, match="only rate"):
        rate_seconds("cron(0 12 * * ? *)")


@pytest.fixture
def queue() -> Any:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="failures")["QueueUrl"]
        yield sqs, url


def consumer(sqs: Any, url: str, handler: Any) -> SqsEventSource:
    return SqsEventSource(sqs, url, "arn:aws:sqs:eu-central-1:123456789012:failures", handler,
                          region="eu-central-1", function_name="handle_failures")


def remaining(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                         "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def test_delivered_messages_are_aws_shaped_and_deleted_unless_reported(queue):
    sqs, url = queue
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    events: List[Dict[str, Any]] = []

    def handler(event: Dict[str, Any], context: Any) -> Any:
        events.append(event)
        keep = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["n"] == 1]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in keep]}

    assert consumer(sqs, url, handler).poll_once() == 3

    [record, *_] = events[0]["Records"]
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "eu-central-1"
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "eventSourceARN"}
    assert remaining(sqs, url) == 1


def test_a_function_error_leaves_the_whole_batch_on_the_queue(queue):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="{}")

    def handler(event: Dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    source = consumer(sqs, url, handler)
    assert source.poll_once() == 1
    assert remaining(sqs, url) == 1 and source.counters["deleted"] == 0


def test_a_schedule_fires_an_eventbridge_shaped_event():
    seen: List[Dict[str, Any]] = []

    def handler(event: Dict[str, Any], context: Any) -> Dict[str, int]:
        seen.append(event)
        return {"ok": 1}

    schedule = Schedule(handler,
                        rule_arn="arn:aws:events:eu-central-1:123456789012:rule/reconcile",
                        region="eu-central-1", function_name="reconcile", clock=lambda: 0.0)

    assert schedule.fire() == {"ok": 1}
    assert seen[0]["detail-type"] == "Scheduled Event" and seen[0]["source"] == "aws.events"
    assert seen[0]["time"] == "1970-01-01T00:00:00Z" and schedule.fired == 1
