"""The runner against moto in-process: real boto3 clients, the project's template and Chalice app.

moto's stream records have eventVersion 1.0, region us-east-1, sub-second timestamps and no-op
MODIFY records (docs: LOCAL-1); the events the handler sees must not. A batch given up on lands
in the failure bucket infra/ names, records included (docs: ESM-7).
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import boto3
import yaml

from devserver.db_destinations import FailureNames, ensure_failure_destination
from devserver.stream import FileCheckpointStore, build_runner
from devserver.testing.streams import FakeClock, RecordingHandler, run_until_idle
from tests.conftest import TABLE, TEMPLATE

QUEUE = "storefirst-processor-failures"


def pending(key: str, **extra: Any) -> Dict[str, Any]:
    return {"id": {"S": key}, "status": {"S": "PENDING"}, "attempts": {"N": "0"}, **extra}


def raise_on_poison(records: List[Dict[str, Any]]) -> None:
    if any(r["dynamodb"]["Keys"]["id"]["S"] == "poison" for r in records):
        raise RuntimeError("cannot process poison")


def make(tmp_path: Path, handler: RecordingHandler, clock: FakeClock) -> Any:
    import app

    return build_runner(
        template_path=TEMPLATE, app=app.app, table_name=TABLE, region="eu-central-1", dynamodb_endpoint=None,
        sqs_endpoint=None, queue_name=QUEUE, checkpoint_path=tmp_path / "checkpoints.json", handler=handler,
        clock=clock, sleep=clock.sleep)


def test_events_and_failure_records_through_moto(dynamodb: Any, tmp_path: Path) -> None:
    sqs, s3 = boto3.client("sqs", region_name="eu-central-1"), boto3.client("s3", region_name="eu-central-1")
    ensure_failure_destination(yaml.safe_load(TEMPLATE.read_text()), FailureNames(queue=QUEUE), sqs=sqs,
                               sns=boto3.client("sns", region_name="eu-central-1"), s3=s3, region="eu-central-1")
    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]

    dynamodb.put_item(TableName=TABLE, Item=pending("a"))
    dynamodb.put_item(TableName=TABLE, Item={**pending("b"), "status": {"S": "DONE"}})  # filtered out
    dynamodb.put_item(TableName=TABLE, Item=pending("a"))  # unchanged: moto still emits a MODIFY
    dynamodb.put_item(TableName=TABLE, Item=pending("poison"))
    dynamodb.put_item(TableName=TABLE, Item=pending("c", payload={"B": b"foobar"}))

    clock = FakeClock(time.time())  # moto stamps records with the real time; retries run on fake time
    handler = RecordingHandler(raise_on_poison)
    runner = make(tmp_path, handler, clock)
    run_until_idle(runner, clock)

    records = [r for e in handler.events for r in e["Records"]]
    assert {r["dynamodb"]["Keys"]["id"]["S"] for r in records} == {"a", "poison", "c"}
    for record in records:
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "eu-central-1"  # moto says us-east-1
        assert record["eventSourceARN"] == stream_arn
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, float) and created == int(created) and len(str(int(created))) == 10
        assert record["eventName"] == "INSERT" and record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    c = [r for r in records if r["dynamodb"]["Keys"]["id"]["S"] == "c"][-1]  # first delivered with the poison
    assert base64.b64decode(c["dynamodb"]["NewImage"]["payload"]["B"]) == b"foobar"

    [stored] = s3.list_objects_v2(Bucket=FailureNames().bucket)["Contents"]
    body = json.loads(s3.get_object(Bucket=FailureNames().bucket, Key=stored["Key"])["Body"].read())
    assert stored["Key"].startswith("aws/lambda/")
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in body.pop("payload")["Records"]] == ["poison"]
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["functionArn"] == (
        "arn:aws:lambda:eu-central-1:123456789012:function:storefirst-dev-process")
    assert body["requestContext"]["approximateInvokeCount"] >= 11  # MaximumRetryAttempts 10 in the template
    assert body["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    info = body["DDBStreamBatchInfo"]
    [poison] = {r["dynamodb"]["SequenceNumber"] for r in records if r["dynamodb"]["Keys"]["id"]["S"] == "poison"}
    assert (info["batchSize"], info["startSequenceNumber"], info["streamArn"]) == (1, poison, stream_arn)
    assert info["approximateArrivalOfFirstRecord"].endswith("Z") and len(info["approximateArrivalOfFirstRecord"]) == 20

    counters = runner.status()["counters"]
    assert counters["records_read"] == 5
    assert counters["records_filtered_out"] == 1 and counters["records_skipped_noop"] == 1
    assert counters["bisects"] >= 1
    last = FileCheckpointStore(tmp_path / "checkpoints.json").shards(stream_arn)
    assert list(last.values()) == [c["dynamodb"]["SequenceNumber"]]

    # A restart on the same checkpoint file delivers only what is new.
    dynamodb.put_item(TableName=TABLE, Item=pending("d"))
    again = RecordingHandler()
    run_until_idle(make(tmp_path, again, clock), clock)
    assert [r["dynamodb"]["Keys"]["id"]["S"] for e in again.events for r in e["Records"]] == ["d"]
