"""The local ESM's on-failure destinations (docs: ESM-7, ESM-8): SQS, SNS and S3, against moto.

GIVEN a runner that gives up on a batch, WHEN it sends the failure record, THEN each destination
receives what AWS sends it: the record alone (SQS body, SNS Message) or the record with the batch
under `payload` at AWS's key layout (S3); and `python -m devserver db`'s helper creates the
destination the template names.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any, Dict, Iterator, List
from urllib.parse import unquote_plus

import boto3
import pytest
import yaml
from moto import mock_aws

from devserver.db_destinations import FailureNames, ensure_failure_destination, stream_on_failure
from devserver.stream import (
    EsmSettings,
    MemoryCheckpointStore,
    OnFailure,
    RunnerConfig,
    S3FailureDestination,
    SnsFailureDestination,
    SqsFailureDestination,
    StreamRunner,
)
from devserver.stream.build import failure_destination
from devserver.stream.destinations import mapping_uuid, s3_failure_object
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, item, run_until_idle
from tests.conftest import TEMPLATE

REGION = "eu-central-1"
UUID = "9f2b6c1e-0000-4000-8000-000000000001"
SETTINGS = EsmSettings(batch_size=10, starting_position="TRIM_HORIZON", max_retry_attempts=1)


@pytest.fixture
def aws() -> Iterator[Dict[str, Any]]:
    with mock_aws():
        yield {name: boto3.client(name, region_name=REGION) for name in ("sqs", "sns", "s3")}


def give_up_on_two_records(destination: Any) -> FakeStreams:
    """A runner whose handler always raises, with MaximumRetryAttempts 1: one failure record."""
    clock = FakeClock()
    streams = FakeStreams(clock)
    streams.add_shard()
    for key in ("a", "b"):
        streams.put({"id": {"S": key}}, new=item(key))
    runner = StreamRunner(RunnerConfig(settings=SETTINGS, streams=streams,
                                       handler=RecordingHandler(lambda records: 1 / 0), stream_arn=streams.stream_arn,
                                       checkpoints=MemoryCheckpointStore(), destination=destination,
                                       function_name="storefirst-dev-process", clock=clock, sleep=clock.sleep))
    run_until_idle(runner, clock)
    return streams


def test_sqs_receives_the_failure_record_alone(aws):
    url = aws["sqs"].create_queue(QueueName="failures")["QueueUrl"]

    streams = give_up_on_two_records(SqsFailureDestination(aws["sqs"], queue_name="failures"))

    [message] = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert set(body) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert body["DDBStreamBatchInfo"]["batchSize"] == 2
    assert body["DDBStreamBatchInfo"]["startSequenceNumber"] == streams.sequence_numbers()[0]
    assert (body["requestContext"]["condition"], body["responseContext"]["functionError"]) == (
        "RetryAttemptsExhausted", "Unhandled")


def test_sns_publishes_the_failure_record_as_the_message(aws):
    # recorded on AWS through an SQS subscription: an SNS Notification whose Message is the record
    topic = aws["sns"].create_topic(Name="failures")["TopicArn"]
    url = aws["sqs"].create_queue(QueueName="subscriber")["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    give_up_on_two_records(SnsFailureDestination(aws["sns"], topic_name="failures"))

    [message] = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert (envelope["Type"], envelope["TopicArn"]) == ("Notification", topic)
    assert "Subject" not in envelope or envelope["Subject"] in (None, "")
    record = json.loads(envelope["Message"])
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2 and "payload" not in record


def test_s3_keeps_the_batch_with_the_record_under_awss_key_layout(aws):
    aws["s3"].create_bucket(Bucket="failed-batches", CreateBucketConfiguration={"LocationConstraint": REGION})
    destination = S3FailureDestination(aws["s3"], bucket="failed-batches", mapping_uuid=UUID,
                                       object_suffix=lambda: "11111111-2222-4333-8444-555555555555")

    streams = give_up_on_two_records(destination)

    [listed] = aws["s3"].list_objects_v2(Bucket="failed-batches")["Contents"]
    stored = json.loads(aws["s3"].get_object(Bucket="failed-batches", Key=listed["Key"])["Body"].read())
    matched = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{3}Z$", stored["timestamp"])
    assert matched is not None, stored["timestamp"]
    stamp = matched.groups()
    shard = stored["DDBStreamBatchInfo"]["shardId"]
    assert listed["Key"] == (f"aws/lambda/{UUID}/{shard}/{stamp[0]}/{stamp[1]}/{stamp[2]}/"
                             f"{stamp[0]}-{stamp[1]}-{stamp[2]}T{stamp[3]}.{stamp[4]}.{stamp[5]}"
                             "-11111111-2222-4333-8444-555555555555")
    assert [r["dynamodb"]["SequenceNumber"] for r in stored["payload"]["Records"]] == streams.sequence_numbers()
    assert stored["payload"]["Records"][0]["eventSource"] == "aws:dynamodb"
    assert stored["DDBStreamBatchInfo"]["batchSize"] == 2


def test_a_missing_topic_fails_the_send_so_the_runner_keeps_the_batch(aws):
    destination = SnsFailureDestination(aws["sns"], topic_name="never-created")

    with pytest.raises(LookupError, match="never-created"):
        destination.send({"timestamp": "x"}, [])


def test_a_missing_bucket_fails_the_send(aws):
    destination = S3FailureDestination(aws["s3"], bucket="never-created", mapping_uuid=UUID)
    message = {"timestamp": "2026-01-01T00:00:00.000Z", "DDBStreamBatchInfo": {"shardId": "shardId-1"}}

    with pytest.raises(Exception, match="NoSuchBucket"):
        destination.send(message, [])


def test_the_s3_object_is_the_record_plus_the_event():
    assert s3_failure_object({"version": "1.0"}, [{"eventID": "e"}]) == {
        "version": "1.0", "payload": {"Records": [{"eventID": "e"}]}}


def test_the_mapping_uuid_is_stable_per_function_and_table():
    assert mapping_uuid("f", "t") == mapping_uuid("f", "t") != mapping_uuid("f", "u")


@pytest.mark.parametrize("kind, expected", [
    ("SQS", SqsFailureDestination), ("SNS", SnsFailureDestination), ("S3", S3FailureDestination)])
def test_build_picks_the_destination_by_kind(kind, expected):
    session = boto3.session.Session(region_name=REGION)

    built = failure_destination(OnFailure(kind, "X", logical=True), session, None, name="local-name", mapping=UUID)

    assert isinstance(built, expected)


# --- the database host creates what the template names -------------------------------------------

def template_with(destination: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    template = copy.deepcopy(yaml.safe_load(TEMPLATE.read_text()))
    template["Resources"].update(extra)
    event = template["Resources"]["Process"]["Properties"]["Events"]["ProcessDynamodbEventSource"]
    event["Properties"]["DestinationConfig"] = {"OnFailure": destination}
    return template


NAMES = FailureNames(queue="q-local", topic="t-local", bucket="b-local")


def test_the_template_names_the_destination_of_its_stream_event():
    assert stream_on_failure(yaml.safe_load(TEMPLATE.read_text())) is not None
    assert stream_on_failure({"Resources": {"F": {"Properties": {"Events": {"E": {"Properties": {"Queue": "q"}}}}}}}) \
        is None


def test_an_sns_destination_is_created_as_a_topic(aws):
    template = template_with({"Type": "SNS", "Destination": {"Ref": "FailureTopic"}},
                             {"FailureTopic": {"Type": "AWS::SNS::Topic"}})

    described = ensure_failure_destination(template, NAMES, sqs=aws["sqs"], sns=aws["sns"], s3=aws["s3"],
                                           region=REGION)

    assert described == "SNS t-local"
    assert [t["TopicArn"].rsplit(":", 1)[-1] for t in aws["sns"].list_topics()["Topics"]] == ["t-local"]


def test_an_s3_destination_is_created_with_its_notification_to_the_queue(aws):
    template = template_with(
        {"Type": "S3", "Destination": {"Fn::GetAtt": ["FailureBucket", "Arn"]}},
        {"FailureBucket": {"Type": "AWS::S3::Bucket", "Properties": {"NotificationConfiguration": {
            "QueueConfigurations": [{"Event": "s3:ObjectCreated:*",
                                     "Queue": {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]},
                                     "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "aws/lambda/"}]}}}]}}}})

    described = ensure_failure_destination(template, NAMES, sqs=aws["sqs"], sns=aws["sns"], s3=aws["s3"],
                                           region=REGION)
    aws["s3"].put_object(Bucket="b-local", Key="aws/lambda/u/shard/2026/01/01/x", Body=b"{}")
    aws["s3"].put_object(Bucket="b-local", Key="elsewhere", Body=b"{}")

    assert described == "S3 b-local"
    url = aws["sqs"].get_queue_url(QueueName="q-local")["QueueUrl"]
    received = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in received]
    # keys in S3 notifications are URL-encoded (moto encodes "/" too): a reader unquotes them
    events: List[str] = [body.get("Event") or unquote_plus(body["Records"][0]["s3"]["object"]["key"])
                         for body in bodies]
    assert sorted(events) == ["aws/lambda/u/shard/2026/01/01/x", "s3:TestEvent"]  # as S3 does (docs: IAM-3)


def test_ensuring_twice_changes_nothing(aws):
    template = yaml.safe_load(TEMPLATE.read_text())

    first = ensure_failure_destination(template, NAMES, sqs=aws["sqs"], sns=aws["sns"], s3=aws["s3"], region=REGION)
    configured = aws["s3"].get_bucket_notification_configuration(Bucket=NAMES.bucket)["QueueConfigurations"]
    again = ensure_failure_destination(template, NAMES, sqs=aws["sqs"], sns=aws["sns"], s3=aws["s3"], region=REGION)

    assert first == again is not None
    assert aws["s3"].get_bucket_notification_configuration(Bucket=NAMES.bucket)["QueueConfigurations"] == configured
    assert [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]] == [NAMES.bucket]
    # S3 sends a test event on every configuration write: the second call wrote none.
    url = aws["sqs"].get_queue_url(QueueName=NAMES.queue)["QueueUrl"]
    received = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["Event"] for m in received] == ["s3:TestEvent"]
