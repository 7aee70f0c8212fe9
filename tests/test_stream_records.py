"""Raw GetRecords output -> the record Lambda delivers (docs: ESM-1, ESM-2), including moto's gaps (docs: LOCAL-1)."""
from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any, Dict

from dateutil.tz import tzlocal

from devserver.stream.records import creation_seconds, is_noop_modify, to_lambda_record

ARN = "arn:aws:dynamodb:eu-central-1:123456789012:table/requests/stream/2026-01-01T00:00:00.000"

# What boto3 returns for a moto stream record: eventVersion 1.0, region us-east-1, microseconds, raw bytes.
MOTO_RAW: Dict[str, Any] = {
    "eventID": "95e0841cc8c94ab48b05dfa0fbf06fcf",
    "eventName": "INSERT",
    "eventVersion": "1.0",
    "eventSource": "aws:dynamodb",
    "awsRegion": "us-east-1",
    "dynamodb": {
        "ApproximateCreationDateTime": dt.datetime(2026, 1, 1, 0, 0, 0, 971000, tzinfo=dt.timezone.utc),
        "Keys": {"id": {"S": "a"}},
        "NewImage": {"id": {"S": "a"}, "blob": {"B": b"foobar"}, "blobs": {"BS": [b"\x00", b"\xff"]},
                     "n": {"N": "19.99"},
                     "nested": {"M": {"inner": {"B": b"x"}, "list": {"L": [{"B": b"y"}, {"N": "1"}]}}},
                     "set": {"SS": ["a"]}, "nothing": {"NULL": True}},
        "SequenceNumber": "1100000000017454423009",
        "SizeBytes": 247,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
}


def test_moto_record_becomes_aws_shaped() -> None:
    record = to_lambda_record(MOTO_RAW, region="eu-central-1", stream_arn=ARN)
    assert record["eventVersion"] == "1.1"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "eu-central-1"
    assert record["eventSourceARN"] == ARN
    assert record["eventID"] == MOTO_RAW["eventID"] and record["eventName"] == "INSERT"
    ddb = record["dynamodb"]
    assert ddb["ApproximateCreationDateTime"] == 1767225600.0
    assert isinstance(ddb["ApproximateCreationDateTime"], float)
    assert ddb["SequenceNumber"] == "1100000000017454423009"
    assert ddb["SizeBytes"] == 247 and ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    image = ddb["NewImage"]
    assert image["blob"] == {"B": "Zm9vYmFy"}  # AWS-observed base64 text
    assert image["blobs"] == {"BS": ["AA==", "/w=="]}
    assert image["nested"] == {"M": {"inner": {"B": "eA=="}, "list": {"L": [{"B": "eQ=="}, {"N": "1"}]}}}
    assert image["n"] == {"N": "19.99"}  # numbers stay strings (docs: ESM-2)
    assert "OldImage" not in ddb and "userIdentity" not in record
    json.dumps(record)  # nothing left that the Lambda event could not carry


def test_raw_record_is_not_modified() -> None:
    raw = copy.deepcopy(MOTO_RAW)
    to_lambda_record(raw, region="eu-central-1", stream_arn=ARN)
    assert raw == MOTO_RAW


def test_key_order_matches_the_aws_example() -> None:
    record = to_lambda_record(MOTO_RAW, region="eu-central-1", stream_arn=ARN)
    assert list(record) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                            "eventSourceARN"]


def test_ttl_user_identity_is_kept() -> None:
    raw = {**copy.deepcopy(MOTO_RAW), "eventName": "REMOVE",
           "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
    record = to_lambda_record(raw, region="eu-central-1", stream_arn=ARN)
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_creation_time_is_floored_to_whole_seconds() -> None:
    def raw(value: Any) -> Dict[str, Any]:
        return {"dynamodb": {"ApproximateCreationDateTime": value}}

    assert creation_seconds(raw(1767225600.999)) == 1767225600.0
    assert creation_seconds(raw(1767225600)) == 1767225600.0
    # a naive datetime is UTC, as on the wire
    assert creation_seconds(raw(dt.datetime(2026, 1, 1, 0, 0, 1, 500000))) == 1767225601.0
    aware = dt.datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=dt.timezone.utc).astimezone(tzlocal())
    assert creation_seconds(raw(aware)) == 1767225601.0
    assert creation_seconds({"dynamodb": {}}) is None


def test_missing_optional_fields() -> None:
    raw = {"eventID": "e", "eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "a"}}, "SequenceNumber": "1" * 21}}
    record = to_lambda_record(raw, region="eu-central-1", stream_arn=ARN)
    assert "ApproximateCreationDateTime" not in record["dynamodb"]  # optional per the API (docs: DDB-8)
    assert record["dynamodb"]["SizeBytes"] >= 1


def test_already_encoded_binaries_are_left_alone() -> None:
    raw = copy.deepcopy(MOTO_RAW)
    raw["dynamodb"]["NewImage"] = {"blob": {"B": "Zm9vYmFy"}}
    assert to_lambda_record(raw, region="r", stream_arn=ARN)["dynamodb"]["NewImage"]["blob"] == {"B": "Zm9vYmFy"}


def test_noop_modify_is_detected() -> None:
    # moto writes a MODIFY for a put that changed nothing; AWS writes no record (docs: DDB-6, LOCAL-110)
    image = {"id": {"S": "a"}, "blob": {"B": b"x"}}
    same = {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "OldImage": copy.deepcopy(image)}}
    changed = {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "OldImage": {"id": {"S": "a"}}}}
    keys_only = {"eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "a"}}}}
    assert is_noop_modify(same)
    assert not is_noop_modify(changed)
    assert not is_noop_modify(keys_only)  # undetectable without both images
    assert not is_noop_modify({**same, "eventName": "INSERT"})
