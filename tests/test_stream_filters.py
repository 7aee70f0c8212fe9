"""Filter patterns on Lambda-shaped DynamoDB records (docs: ESM-13). Each case says whether AWS matches."""
from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from devserver.stream.filters import FilterPattern, PatternError, matches_any

RECORD: Dict[str, Any] = {
    "eventID": "5d0b4c2f9e8a4f1c8b7a6e5d4c3b2a19",
    "eventName": "INSERT",
    "eventVersion": "1.1",
    "eventSource": "aws:dynamodb",
    "awsRegion": "eu-central-1",
    "dynamodb": {
        "ApproximateCreationDateTime": 1767225600.0,
        "Keys": {"id": {"S": "REQ#42"}},
        "NewImage": {"id": {"S": "REQ#42"}, "status": {"S": "PENDING"}, "amount": {"N": "101"},
                     "tags": {"SS": ["a", "b"]}, "flag": {"BOOL": True}},
        "SequenceNumber": "4421584500000000017450439091",
        "SizeBytes": 61,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
    "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/requests/stream/2026-01-01T00:00:00.000",
}
TTL_REMOVE = {**RECORD, "eventName": "REMOVE",
              "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}


def match(pattern: Any, record: Dict[str, Any] = RECORD) -> bool:
    return FilterPattern.parse(json.dumps(pattern)).matches(record)


@pytest.mark.parametrize("pattern, expected", [
    # typed values: the S wrapper is required (AWS-observed)
    ({"dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": ["PENDING"]}}}, False),
    ({"dynamodb": {"NewImage": {"status": {"S": ["pending"]}}}}, False),  # case-sensitive
    # lists are OR, fields are AND
    ({"dynamodb": {"NewImage": {"status": {"S": ["DONE", "PENDING"]}}}}, True),
    ({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}, True),
    ({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}, False),
    # eventName filtering works on AWS (AWS-observed)
    ({"eventName": ["INSERT", "MODIFY"]}, True),
    ({"eventName": ["REMOVE"]}, False),
    # numeric never matches an N attribute: its value is a string (AWS-observed)
    ({"dynamodb": {"NewImage": {"amount": {"N": [{"numeric": [">", 100]}]}}}}, False),
    ({"dynamodb": {"NewImage": {"amount": {"N": ["101"]}}}}, True),  # but the string itself matches
    # ApproximateCreationDateTime is a number: numeric works (AWS-observed date_time_conversion)
    ({"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", 1767225600]}]}}, True),
    ({"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 1767225600, "<", 1767225700]}]}}, False),
    ({"dynamodb": {"ApproximateCreationDateTime": [{"numeric": ["=", 1767225600]}]}}, True),
    ({"dynamodb": {"SizeBytes": [61]}}, True),
    ({"dynamodb": {"SizeBytes": [61.0]}}, False),  # numbers compare by string form: 61 != 61.0
    # exists on leaves
    ({"dynamodb": {"NewImage": {"status": {"S": [{"exists": True}]}}}}, True),
    ({"dynamodb": {"NewImage": {"missing": {"S": [{"exists": True}]}}}}, False),
    ({"dynamodb": {"NewImage": {"missing": {"S": [{"exists": False}]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}}, False),
    # exists:false on a non-leaf matched an item that HAD the attribute (AWS-observed quirk)
    ({"dynamodb": {"NewImage": {"status": [{"exists": False}]}}}, True),
    ({"dynamodb": {"NewImage": {"status": [{"exists": True}]}}}, False),
    ({"dynamodb": {"OldImage": {"status": {"S": [{"exists": False}]}}}}, True),  # INSERT: no OldImage
    # prefix / suffix / equals-ignore-case
    ({"dynamodb": {"Keys": {"id": {"S": [{"prefix": "REQ#"}]}}}}, True),
    ({"dynamodb": {"Keys": {"id": {"S": [{"prefix": "req#"}]}}}}, False),
    ({"dynamodb": {"Keys": {"id": {"S": [{"suffix": "#42"}]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"equals-ignore-case": "pending"}]}}}}, True),
    # anything-but
    ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["DONE", "FAILED"]}]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": "PENDING"}]}}}}, False),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": {"prefix": "PEN"}}]}}}}, False),
    ({"dynamodb": {"NewImage": {"missing": {"S": [{"anything-but": "x"}]}}}}, False),  # needs a value
    # arrays in the record: any element may match
    ({"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}, True),
    ({"dynamodb": {"NewImage": {"tags": {"SS": ["c"]}}}}, False),
    # booleans are typed
    ({"dynamodb": {"NewImage": {"flag": {"BOOL": [True]}}}}, True),
    ({"dynamodb": {"NewImage": {"flag": {"BOOL": [1]}}}}, False),
    # an empty pattern matches everything
    ({}, True),
])
def test_pattern(pattern: Any, expected: bool) -> None:
    assert match(pattern) is expected


def test_ttl_deletes_can_be_told_apart_by_user_identity() -> None:
    # AWS's TTL recipe filters on userIdentity (docs: ESM-13, DDB-7)
    pattern = {"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}
    assert match(pattern, TTL_REMOVE) and not match(pattern, RECORD)


def test_several_filters_are_ored_and_none_means_everything() -> None:
    done = FilterPattern.parse('{"dynamodb": {"NewImage": {"status": {"S": ["DONE"]}}}}')
    insert = FilterPattern.parse('{"eventName": ["INSERT"]}')
    assert matches_any((done, insert), RECORD)
    assert not matches_any((done,), RECORD)
    assert matches_any((), RECORD)


def test_the_template_filter_admits_pending_inserts_only() -> None:
    pattern = FilterPattern.parse('{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}')
    assert pattern.matches(RECORD)
    # the processor's own write-back and TTL deletes must not re-trigger it (docs: ESM-14)
    write_back = {**RECORD, "eventName": "MODIFY",
                  "dynamodb": {**RECORD["dynamodb"], "NewImage": {"status": {"S": "DONE"}},
                               "OldImage": {"status": {"S": "PENDING"}}}}
    assert not pattern.matches(write_back)
    assert not pattern.matches(TTL_REMOVE)


@pytest.mark.parametrize("text", [
    "not json", "[]", '"x"', '{"a": "x"}', '{"a": []}', '{"a": [[1]]}', '{"a": [{"prefix": 1}]}',
    '{"a": [{"prefix": "x", "suffix": "y"}]}', '{"a": [{"exists": "yes"}]}', '{"a": [{"numeric": ["<"]}]}',
    '{"a": [{"numeric": ["~", 1]}]}', '{"a": [{"numeric": ["<", 5, ">", 1]}]}', '{"a": [{"anything-but": []}]}',
    '{"$or": [{"a": ["x"]}]}',
])
def test_invalid_patterns_are_rejected(text: str) -> None:
    with pytest.raises(PatternError):
        FilterPattern.parse(text)


def test_patterns_compare_by_source() -> None:
    assert FilterPattern.parse('{"a": ["x"]}') == FilterPattern.parse('{"a": ["x"]}')
    assert len({FilterPattern.parse('{"a": ["x"]}'), FilterPattern.parse('{"a": ["x"]}')}) == 1
