"""The storage boundary: botocore errors mapped completely, batch reads that survive throttling."""
from __future__ import annotations

import enum
import json
from decimal import Decimal
from typing import Any, Dict, List

import botocore.session
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError
from hypothesis import given, settings, strategies as st

from chalicelib.attributes import from_attribute, to_attribute
from chalicelib.errors import ConditionFailed, ItemTooLarge, StoreMisconfigured, StoreUnavailable
from chalicelib.store import ERROR_CLASSES, STATEMENT_ERROR_CLASSES, RequestStore, map_error, statement_error
from devserver.testing import fakes
from devserver.testing.events import pending_item
from tests.conftest import TABLE


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return fakes.client_error(code, "PutItem", message=message, status=status)


def test_every_error_in_dynamodbs_model_has_a_decided_meaning():
    model = botocore.session.get_session().get_service_model("dynamodb")

    undecided = {shape.name for shape in model.error_shapes} - set(ERROR_CLASSES)

    assert undecided == set()


def test_every_per_statement_error_code_has_a_decided_meaning():
    model = botocore.session.get_session().get_service_model("dynamodb")

    codes = set(model.shape_for("BatchStatementErrorCodeEnum").enum)  # type: ignore[attr-defined]

    assert codes == set(STATEMENT_ERROR_CLASSES)


@pytest.mark.parametrize("code, message, expected", [
    ("ConditionalCheckFailed", "The conditional request failed", ConditionFailed),
    ("ThrottlingError", "slow down", StoreUnavailable),
    ("ValidationError", "Item size to update has exceeded the maximum allowed size", ItemTooLarge),
    ("ValidationError", "Invalid PartiQL syntax", StoreMisconfigured),
    ("AccessDenied", "no", StoreMisconfigured),
    ("SomethingNew", "", StoreUnavailable),  # retried: trying again loses nothing
])
def test_a_failed_statement_maps_to_what_to_do_next(code, message, expected):
    error = statement_error(code, message)
    assert type(error) is expected and error.code == code


@pytest.mark.parametrize("code, status, expected", [
    ("ProvisionedThroughputExceededException", 400, StoreUnavailable),
    ("ThrottlingException", 400, StoreUnavailable),
    ("RequestLimitExceeded", 400, StoreUnavailable),
    ("InternalServerError", 500, StoreUnavailable),
    ("ServiceUnavailable", 503, StoreUnavailable),
    ("SomethingNew", 502, StoreUnavailable),
    ("ConditionalCheckFailedException", 400, ConditionFailed),
    ("AccessDeniedException", 400, StoreMisconfigured),
    ("ResourceNotFoundException", 400, StoreMisconfigured),
    ("ValidationException", 400, StoreMisconfigured),
    ("SomethingNew", 400, StoreMisconfigured),
])
def test_client_errors_map_by_code_then_status(code, status, expected):
    mapped = map_error(client_error(code, status))

    assert type(mapped) is expected
    assert mapped.code == code


def test_an_oversized_item_is_its_own_error():
    mapped = map_error(client_error("ValidationException", message="Item size has exceeded the maximum allowed size"))

    assert isinstance(mapped, ItemTooLarge)


def test_transport_failures_are_transient_and_local_mistakes_are_not():
    assert isinstance(map_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")), StoreUnavailable)
    assert isinstance(map_error(ReadTimeoutError(endpoint_url="http://127.0.0.1:1")), StoreUnavailable)
    assert isinstance(map_error(ParamValidationError(report="bad")), StoreMisconfigured)
    with pytest.raises(TypeError):
        map_error(ValueError("not botocore"))


class UnprocessedOnce:
    """BatchGetItem that leaves every key unprocessed `times` times, as DynamoDB does when throttled."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self._times = times
        self.calls = 0

    def batch_get_item(self, RequestItems: Dict[str, Any]) -> Dict[str, Any]:
        self.calls += 1
        if self.calls <= self._times:
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
        return self._client.batch_get_item(RequestItems=RequestItems)


def test_unprocessed_keys_are_read_again_with_backoff(dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("a", {}))
    sleeps: List[float] = []
    flaky = UnprocessedOnce(dynamodb, times=2)

    states = RequestStore(flaky, TABLE, sleep=sleeps.append).current_states(["a", "missing"])

    assert set(states) == {"a"} and states["a"].status == "PENDING"
    assert flaky.calls == 3 and len(sleeps) == 2 and sleeps[0] < sleeps[1]


def test_keys_left_unprocessed_after_all_retries_are_a_transient_failure(dynamodb):
    store = RequestStore(UnprocessedOnce(dynamodb, times=99), TABLE, sleep=lambda _: None, unprocessed_retries=3)

    with pytest.raises(StoreUnavailable):
        store.current_states(["a"])


def test_status_reads_are_consistent_and_chunked_by_one_hundred(dynamodb):
    calls: List[Dict[str, Any]] = []

    class Recording:
        def batch_get_item(self, RequestItems: Dict[str, Any]) -> Dict[str, Any]:
            calls.append(RequestItems[TABLE])
            return dynamodb.batch_get_item(RequestItems=RequestItems)

    RequestStore(Recording(), TABLE).current_states([f"r{i}" for i in range(250)] + ["r0"])

    assert [len(c["Keys"]) for c in calls] == [100, 100, 50]
    assert all(c["ConsistentRead"] is True for c in calls)


@pytest.mark.parametrize("value", [{"a": 1, "b": [1.5, "x", None, True], "c": {"d": -2}}, [], "text", 0])
def test_values_round_trip_through_typed_attributes(value):
    assert from_attribute(to_attribute(value)) == value


def json_round_trip_attribute(value: Any) -> Dict[str, Any]:
    """What to_attribute made for every value before its direct conversion: JSON, then TypeSerializer."""
    return dict(TypeSerializer().serialize(json.loads(json.dumps(value), parse_float=Decimal)))


class Level(enum.IntEnum):
    LOW = 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30)
odd_values = st.recursive(
    json_values | st.sampled_from([Level.LOW, 10 ** 40, -0.0, 1e300, 5e-324, float("nan"), float("inf")])
    | st.tuples(st.integers()),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(st.text(max_size=3), st.integers(), st.booleans(), st.none()), children, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(json_values, odd_values))
def test_typed_attributes_are_what_the_json_round_trip_made(value):
    try:
        expected: Any = json_round_trip_attribute(value)
    except Exception as exc:  # noqa: BLE001 - the same error must come out
        with pytest.raises(type(exc)):
            to_attribute(value)
        return
    assert to_attribute(value) == expected
