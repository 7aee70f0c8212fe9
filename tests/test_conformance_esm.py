"""Conformance: the local event source mapping against behaviour recorded on real AWS.

Every expected value below was recorded against AWS by LocalStack's snapshot test of DynamoDB
stream mappings at commit 8b9a79f (SNAPSHOT; its .py holds the inputs, its .validation.json the
dates), and is stated in our words in docs/lambda-esm.md. The local pieces run as the local stack
runs them: devserver.stream's runner over moto's in-process stream (filters, record shapes) or
over FakeStreams (retry counts), its destinations and its filters. No processes.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List

import boto3
import pytest
import yaml
from botocore.config import Config
from moto import mock_aws

from devserver.db_schema import create_table_request
from devserver.stream import (
    EsmSettings,
    FilterPattern,
    MemoryCheckpointStore,
    MemoryDestination,
    RunnerConfig,
    StreamRunner,
)
from devserver.stream.destinations import S3FailureDestination
from devserver.stream.settings import SettingsError, parse_filter_criteria
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, run_until_idle
from tests.conftest import TEMPLATE

pytestmark = pytest.mark.conformance

SNAPSHOT = ("https://github.com/localstack/localstack/blob/8b9a79f05846835cf4dff63ab7eefdde9df83783/tests/aws/"
            "services/lambda_/event_source_mapping/test_lambda_integration_dynamodbstreams.snapshot.json")
REGION = "eu-central-1"
# The recorded tests' mapping: BatchSize 1, TRIM_HORIZON, MaximumRetryAttempts 1.
RECORDED_MAPPING = EsmSettings(batch_size=1, starting_position="TRIM_HORIZON", max_retry_attempts=1)


@pytest.fixture
def stream_table() -> Iterator[Dict[str, Any]]:
    """A table keyed by `id`, streaming NEW_AND_OLD_IMAGES, in moto (as the recorded filter tests)."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST",
                              StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        streams = boto3.client("dynamodbstreams", region_name=REGION,
                               config=Config(account_id_endpoint_mode="disabled"))
        yield {"dynamodb": dynamodb, "streams": streams,
               "arn": dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]}


def deliver(table: Dict[str, Any], settings: EsmSettings, *items: Dict[str, Any],
            respond: Callable[[List[Dict[str, Any]]], Any] = lambda records: None) -> RecordingHandler:
    """Put the items in order, then run the local mapping until it is idle."""
    for item in items:
        table["dynamodb"].put_item(TableName="t", Item=item)
    clock = FakeClock(time.time())  # moto stamps records with the real time
    handler = RecordingHandler(respond)
    runner = StreamRunner(RunnerConfig(settings=settings, streams=table["streams"], handler=handler,
                                       stream_arn=table["arn"], region=REGION, checkpoints=MemoryCheckpointStore(),
                                       destination=MemoryDestination(), clock=clock, sleep=clock.sleep))
    run_until_idle(runner, clock)
    return handler


# --- record shapes (docs: ESM-1, ESM-2) ------------------------------------------------------------

def test_the_record_lambda_delivers(stream_table):
    """SNAPSHOT, test_dynamodb_report_batch_item_success_scenarios / _failure_scenarios: the keys of
    a record and of its `dynamodb`, eventVersion 1.1, a binary value in base64, a float timestamp."""
    handler = deliver(stream_table, RECORDED_MAPPING,
                      {"id": {"S": "hello world"}, "binary_key": {"B": b"foobar"}})

    [[record]] = [event["Records"] for event in handler.events]
    assert list(record) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                            "eventSourceARN"]
    assert (record["eventName"], record["eventVersion"], record["eventSource"]) == ("INSERT", "1.1", "aws:dynamodb")
    assert (record["awsRegion"], record["eventSourceARN"]) == (REGION, stream_table["arn"])
    assert set(record["dynamodb"]) == {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber",
                                       "SizeBytes", "StreamViewType"}  # an INSERT has no OldImage
    assert record["dynamodb"]["NewImage"]["binary_key"] == {"B": "Zm9vYmFy"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)


# --- filters (docs: ESM-12, ESM-13, ESM-14) -----------------------------------------------------------

@pytest.mark.parametrize("item1, item2, pattern, recorded_calls", [
    pytest.param({"id": {"S": "id_value"}, "id2": {"S": "id2_value"}},
                 {"id": {"S": "id_value"}, "id2": {"S": "id2_value"}},  # unchanged: no record at all (DDB-6)
                 {"eventName": ["INSERT"]}, 1, id="insert_same_entry_twice"),
    pytest.param({"id": {"S": "id_value"}}, {"id": {"S": "id_value"}, "id2": {"S": "id2_new_value"}},
                 {"eventName": ["INSERT", "MODIFY"]}, 2, id="content_or_filter"),
    pytest.param({"id": {"S": "id_value_1"}, "presentKey": {"S": "presentValue"}}, {"id": {"S": "id_value_2"}},
                 {"dynamodb": {"NewImage": {"presentKey": {"S": ["presentValue"]}}}}, 1, id="content_filter_type"),
    pytest.param({"id": {"S": "id_value_1"}, "presentKey": {"S": "presentValue"}}, {"id": {"S": "id_value_2"}},
                 {"dynamodb": {"NewImage": {"presentKey": {"S": [{"exists": True}]}}}}, 1, id="exists_filter_type"),
    pytest.param({"id": {"S": "id_value_1"}}, {"id": {"S": "id_value_2"}, "presentKey": {"S": "presentValue"}},
                 {"dynamodb": {"NewImage": {"presentKey": [{"exists": False}]}}}, 2, id="exists_false_filter"),
    pytest.param({"id": {"S": "id_value_1"}, "numericFilter": {"N": "42"}},
                 {"id": {"S": "id_value_2"}, "numericFilter": {"N": "101"}},
                 {"dynamodb": {"NewImage": {"numericFilter": {
                     "N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}}}},
                 1, id="numeric_filter"),
    pytest.param({"id": {"S": "id_value_1"}, "prefix": {"S": "us-1-other-suffix"}},
                 {"id": {"S": "id_value_1"}, "prefix": {"S": "other-suffix"}},
                 {"dynamodb": {"NewImage": {"prefix": {"S": [{"prefix": "us-1"}]}}}}, 1, id="prefix_filter"),
    pytest.param({"id": {"S": "id_value_1"}}, {"id": {"S": "id_value_2"}},
                 {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 0]}]}}, 2, id="date_time_conversion"),
])
def test_dynamodb_event_filter(stream_table, item1, item2, pattern, recorded_calls):
    """SNAPSHOT, test_dynamodb_event_filter[*] (recorded 2025-11-25): how many times the function
    ran for two puts; the first put always matches (`lambda-log-events` holds it)."""
    settings = replace(RECORDED_MAPPING, filters=(FilterPattern.parse(json.dumps(pattern)),))

    handler = deliver(stream_table, settings, item1, item2)

    assert len(handler.events) == recorded_calls
    assert handler.events[0]["Records"][0]["dynamodb"]["Keys"]["id"] == item1["id"]


@pytest.mark.parametrize("pattern", [
    # The comments of the recorded test: without the type wrapper these do not match.
    {"dynamodb": {"NewImage": {"presentKey": ["presentValue"]}}},
    {"dynamodb": {"NewImage": {"presentKey": [{"exists": True}]}}},
])
def test_a_value_without_its_type_wrapper_does_not_match(stream_table, pattern):
    """SNAPSHOT's .py, test_dynamodb_event_filter: "Omitting the "S" does NOT match"."""
    settings = replace(RECORDED_MAPPING, filters=(FilterPattern.parse(json.dumps(pattern)),))

    assert deliver(stream_table, settings, {"id": {"S": "i"}, "presentKey": {"S": "presentValue"}}).events == []


@pytest.mark.parametrize("text", ["single-string", '[{"eventName": ["INSERT"=123}]'])
def test_dynamodb_invalid_event_filter(text):
    """SNAPSHOT, test_dynamodb_invalid_event_filter[*]: InvalidParameterValueException at create."""
    with pytest.raises(SettingsError, match="invalid"):
        parse_filter_criteria({"Filters": [{"Pattern": text}]})


# --- batch responses and failure records (docs: ESM-6, ESM-8) ----------------------------------------

def one_record_on(respond: Callable[[List[Dict[str, Any]]], Any], retries: int) -> Dict[str, Any]:
    """The recorded scenario: BatchSize 3, ReportBatchItemFailures, one record in the stream."""
    clock = FakeClock()
    streams = FakeStreams(clock, view_type="NEW_IMAGE")
    streams.add_shard()
    streams.put({"my_partition_key": {"S": "hello world"}},
                new={"my_partition_key": {"S": "hello world"}, "binary_key": {"B": b"foobar"}})
    handler, destination = RecordingHandler(respond), MemoryDestination()
    settings = EsmSettings(batch_size=3, starting_position="TRIM_HORIZON", max_retry_attempts=retries,
                           report_batch_item_failures=True)
    runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, destination=destination, clock=clock,
                                       sleep=clock.sleep))
    run_until_idle(runner, clock)
    return {"invocations": len(handler.events), "messages": destination.messages}


def unhandled(records: List[Dict[str, Any]]) -> None:
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("response", [
    pytest.param([], id="empty_list_success"),
    pytest.param(None, id="null_success"),
    pytest.param({}, id="empty_dict_success"),
    pytest.param({"batchItemFailures": []}, id="empty_batch_item_failure_success"),
    pytest.param({"batchItemFailures": None}, id="null_batch_item_failure_success"),
])
def test_report_batch_item_success_scenarios(response):
    """SNAPSHOT, test_dynamodb_report_batch_item_success_scenarios[*]: one invocation, nothing sent."""
    assert one_record_on(lambda records: response, retries=2) == {"invocations": 1, "messages": []}


@pytest.mark.parametrize("respond, recorded_function_error", [
    pytest.param(lambda r: {"batchItemFailures": [{"itemIdentifier": 123}]}, None,
                 id="item_identifier_not_present_failure"),
    pytest.param(lambda r: {"batchItemFailures": [{"itemIdentifier": ""}]}, None,
                 id="empty_string_item_identifier_failure"),
    pytest.param(lambda r: {"batchItemFailures": [{"itemIdentifier": None}]}, None,
                 id="null_item_identifier_failure"),
    pytest.param(lambda r: {"batchItemFailures": [{"foo": 123}]}, None, id="invalid_key_foo_failure"),
    pytest.param(lambda r: {"batchItemFailures": [{"foo": None}]}, None, id="invalid_key_foo_null_value_failure"),
    pytest.param(unhandled, "Unhandled", id="unhandled_exception_in_function"),
])
def test_report_batch_item_failure_scenarios(respond, recorded_function_error):
    """SNAPSHOT, test_dynamodb_report_batch_item_failure_scenarios[*] (MaximumRetryAttempts 3): four
    invocations, then one failure record: RetryAttemptsExhausted, approximateInvokeCount 4,
    batchSize 1, functionError as recorded."""
    outcome = one_record_on(respond, retries=3)

    [message] = outcome["messages"]
    assert outcome["invocations"] == 4
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 4
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                          "functionError": recorded_function_error}
    assert message["version"] == "1.0" and message["DDBStreamBatchInfo"]["batchSize"] == 1


def test_report_batch_item_failures_sends_only_the_failing_record():
    """SNAPSHOT, test_dynamodb_report_batch_item_failures: BatchSize 3, MaximumRetryAttempts 3, six
    items, the one with should_fail always reported: the others are delivered, and the failure
    record carries that record alone (batchSize 1, approximateInvokeCount 4, functionError null)."""
    clock = FakeClock()
    streams = FakeStreams(clock, view_type="NEW_IMAGE")
    streams.add_shard()
    for i in range(6):
        streams.put({"my_partition_key": {"S": f"testId{i}"}},
                    new={"my_partition_key": {"S": f"testId{i}"}, "should_fail": {"BOOL": i == 5}})

    def report_should_fail(records: List[Dict[str, Any]]) -> Dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records
                                      if r["dynamodb"]["NewImage"]["should_fail"]["BOOL"]]}

    handler, destination = RecordingHandler(report_should_fail), MemoryDestination()
    settings = EsmSettings(batch_size=3, starting_position="TRIM_HORIZON", max_retry_attempts=3,
                           report_batch_item_failures=True)
    runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, destination=destination, clock=clock,
                                       sleep=clock.sleep))
    run_until_idle(runner, clock)

    delivered = {r["dynamodb"]["Keys"]["my_partition_key"]["S"] for e in handler.events for r in e["Records"]}
    [message] = destination.messages
    assert delivered == {f"testId{i}" for i in range(6)}
    assert (message["requestContext"]["approximateInvokeCount"], message["responseContext"]["functionError"],
            message["DDBStreamBatchInfo"]["batchSize"]) == (4, None, 1)
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == streams.sequence_numbers()[5]


# --- destinations (docs: ESM-7, ESM-8) -------------------------------------------------------------

RECORDED_RECORD_KEYS = {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
RECORDED_BATCH_INFO_KEYS = {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                            "approximateArrivalOfLastRecord", "batchSize", "streamArn"}


def test_the_failure_record_has_the_recorded_keys_and_formats():
    """SNAPSHOT, ..._with_on_failure_destination_config (SQS body) and ..._with_sns_... (Message)."""
    [message] = one_record_on(unhandled, retries=1)["messages"]

    assert set(message) == RECORDED_RECORD_KEYS
    assert set(message["requestContext"]) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert set(message["DDBStreamBatchInfo"]) == RECORDED_BATCH_INFO_KEYS
    assert message["requestContext"]["approximateInvokeCount"] == 2  # recorded with MaximumRetryAttempts 1
    assert len(message["timestamp"]) == len("2022-07-13T13:48:01.000Z")
    assert len(message["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"]) == len("2022-07-13T13:48:01Z")


def test_s3_on_failure_destination_object_and_key():
    """SNAPSHOT, test_dynamodb_event_source_mapping_with_s3_on_failure_destination (recorded
    2025-11-25): the record plus `payload.Records`; the key starts with
    aws/lambda/<UUID>/<shardId>/<YYYY/MM/DD>/<YYYY-MM-DDTHH.MM.SS> of the record's timestamp."""
    with mock_aws():
        s3: Any = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="failed-batches", CreateBucketConfiguration={"LocationConstraint": REGION})
        clock = FakeClock()
        streams = FakeStreams(clock, view_type="NEW_IMAGE")
        streams.add_shard()
        key = {"my_partition_key": {"S": "hello world"}}
        sequence_number = streams.put(key, new=key)
        destination = S3FailureDestination(s3, bucket="failed-batches", mapping_uuid="uuid-2")
        runner = StreamRunner(RunnerConfig(settings=replace(RECORDED_MAPPING, max_retry_attempts=1), streams=streams,
                                           handler=RecordingHandler(unhandled), stream_arn=streams.stream_arn,
                                           destination=destination, clock=clock, sleep=clock.sleep))
        run_until_idle(runner, clock)
        [listed] = s3.list_objects_v2(Bucket="failed-batches")["Contents"]
        body = json.loads(s3.get_object(Bucket="failed-batches", Key=listed["Key"])["Body"].read())

    stamp = body["timestamp"]  # e.g. 2026-01-01T00:00:00.250Z
    assert set(body) == RECORDED_RECORD_KEYS | {"payload"}
    day, clock_time = stamp[:10], stamp[11:19].replace(":", ".")
    assert listed["Key"].startswith(f"aws/lambda/uuid-2/{body['DDBStreamBatchInfo']['shardId']}/"
                                    f"{day.replace('-', '/')}/{day}T{clock_time}")
    [record] = body["payload"]["Records"]
    assert (record["eventName"], record["eventVersion"], record["dynamodb"]["StreamViewType"]) == (
        "INSERT", "1.1", "NEW_IMAGE")
    # The batch's own record, as the function was given it.
    assert set(body["payload"]) == {"Records"}
    assert (record["dynamodb"]["Keys"], record["dynamodb"]["NewImage"], record["dynamodb"]["SequenceNumber"]) == (
        key, key, sequence_number)


def test_the_projects_template_names_a_destination_a_stream_mapping_takes():
    """ESM-7: SQS, SNS or S3 for a DynamoDB source; SAM's Type agrees (docs: CHALICE-7)."""
    from devserver.db_destinations import stream_on_failure

    template = yaml.safe_load(TEMPLATE.read_text())
    on_failure = stream_on_failure(template)
    assert on_failure is not None and on_failure.kind in ("SQS", "SNS", "S3")
    assert create_table_request(template, "t")["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
