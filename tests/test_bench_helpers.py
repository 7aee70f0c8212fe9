"""The benchmarks' helpers that need no process: request keys of the record/replay tape, percentiles."""
from __future__ import annotations

from bench.common import percentile
from bench.ddbhooks import request_key


def test_request_keys_ignore_timestamps_and_name_the_ids() -> None:
    update = b'{"TableName": "t", "Key": {"id": {"S": "a"}}, "ExpressionAttributeValues": {":now": {"N": "1"}}}'
    later = update.replace(b'"1"', b'"2"')
    assert request_key("DynamoDB_20120810.UpdateItem", update) == request_key("DynamoDB_20120810.UpdateItem", later)
    batch = b'{"RequestItems": {"t": {"Keys": [{"id": {"S": "b"}}, {"id": {"S": "a"}}]}}}'
    assert request_key("DynamoDB_20120810.BatchGetItem", batch) == ("BatchGetItem", ("a", "b"))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5, 1, 3], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([], 0.5) == 0.0
