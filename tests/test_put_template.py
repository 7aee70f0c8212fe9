"""The PUT /requests templates FROM infra/template.yaml, rendered by devserver.vtl, against moto.

The law: whatever JSON object a client sends is stored byte for byte in `request`; and every
way DynamoDB can refuse the put maps to the status the API documents.
"""
from __future__ import annotations

import itertools
import json
import re
from typing import Any, Dict, Iterator, Mapping, Optional

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.ownership import ANONYMOUS, OWNER_PATTERN, item_key, owner_of
from devserver import infra
from devserver.apigw_responses import HttpResponse, MethodRequest, integration_response, select_integration_response
from devserver.apigw_transport import BotocoreTransport
from devserver.vtl import render
from devserver.vtl_context import identity as anonymous_identity
from tests.conftest import TABLE, TEMPLATE

REGION = "eu-central-1"
EPOCH_MS = 1767225600123
KEY_MESSAGE = "Idempotency-Key must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"


def load_route(table: str = TABLE) -> infra.IntegrationRoute:
    template = infra.load_template(TEMPLATE)
    refs = infra.local_refs(template, region=REGION, physical_names={"RequestsTable": table})
    (route,) = infra.integration_routes(template, refs)
    return route


ROUTE = load_route()


def method_request(headers: Optional[Mapping[str, str]] = None, request_id: str = "req-1",
                   **identity: str) -> MethodRequest:
    """`identity`: the caller's `$context.identity` fields beyond an anonymous caller's."""
    return MethodRequest(
        params={"path": {}, "querystring": {}, "header": dict(headers or {})},
        context={"requestId": request_id, "extendedRequestId": "ext", "requestTimeEpoch": EPOCH_MS,
                 "identity": {**anonymous_identity("198.51.100.7", "test"), **identity}},
        accept=None,
        stage_variables={},
    )


def render_put(body: str, request: MethodRequest, route: infra.IntegrationRoute = ROUTE) -> str:
    return render(route.request_templates["application/json"], body=body, params=request.params,
                  context=request.context)


def respond(route: infra.IntegrationRoute, request: MethodRequest, status: int, answer: bytes) -> HttpResponse:
    selected = select_integration_response(route, status)
    assert selected is not None
    return integration_response(selected, request, answer)


def response_json(response: HttpResponse) -> Dict[str, Any]:
    return json.loads(response.body)


@pytest.fixture
def transport(dynamodb: Any) -> Iterator[BotocoreTransport]:
    """moto reached the way API Gateway reaches DynamoDB: the rendered JSON, the raw answer."""
    client = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
    yield BotocoreTransport(client)


def stored_request(dynamodb: Any, item_id: str) -> Optional[Dict[str, Any]]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": item_key(ANONYMOUS, item_id)}},
                             ConsistentRead=True).get("Item")


def put_through(transport: BotocoreTransport, body: str, request: MethodRequest,
                route: infra.IntegrationRoute = ROUTE) -> HttpResponse:
    status, answer = transport("PutItem", render_put(body, request, route).encode("utf-8"))
    return respond(route, request, status, answer)


# --- the rendered put ----------------------------------------------------------------------------

HOSTILE_BODIES = [
    '{"q": "\\"quoted\\""}',
    '{"a": "it\'s", "b": "\'\'", "c": "\\\\\'", "d": "\'"}',
    '{"path": "C:\\\\temp\\\\new", "trail": "\\\\"}',
    '{"escaped": "line1\\nline2\\ttab\\r\\b\\f"}',
    '{\n\t"pretty": [\n\t\t1,\n\t\t2\n\t]\r\n}',
    '{"raw DEL and C1": "\x7f\u0080"}',  # raw U+0000-U+001F are not JSON: the validator refuses those
    '{"escaped control": "\\u0000\\u001f"}',
    '{"é": "café", "jp": "日本語", "rtl": "עברית"}',
    '{"emoji": "😀👍🏽🏳️‍🌈"}',
    '{"surrogates": "\\ud83d\\ude00"}',
    '{"html": "</script><script>alert(1)</script>", "slash": "a/b\\/c"}',
    '{"separators": "\u2028\u2029"}',
    '{"a": {"b": [{"c": [1, 2, {"d": null, "e": true, "f": false}]}]}}',
    '{"n": 1.0, "big": 1e400, "neg": -0, "exp": 1E-7, "long": 123456789012345678901234567890}',
    '{"vtl": "$context.requestId ${x} $util.escapeJavaScript(1) #set($a = 1) ## not a comment"}',
    '{"empty": "", "spaces": "   "}',
    '   {"padded": true}   ',
    '{"": null}',
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_hostile_bodies_render_a_valid_put_that_stores_the_body_exactly(body, dynamodb):
    put = json.loads(render_put(body, method_request(request_id="req-hostile")))

    assert put == {
        "TableName": TABLE,
        "ConditionExpression": "attribute_not_exists(id)",
        "Item": {
            "id": {"S": "anonymous/req-hostile"},
            "owner": {"S": "anonymous"},
            "request": {"S": body},
            "status": {"S": "PENDING"},
            "createdAt": {"N": str(EPOCH_MS)},
            "updatedAt": {"N": str(EPOCH_MS)},
            "attempts": {"N": "0"},
            "listStatus": {"S": "PENDING"},
            "redriven": {"BOOL": False},
        },
    }
    dynamodb.put_item(**put)
    item = stored_request(dynamodb, "req-hostile")
    assert item is not None and item["request"]["S"].encode("utf-8") == body.encode("utf-8")


JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text())
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
DUMPS_OPTIONS = st.fixed_dictionaries({
    "ensure_ascii": st.booleans(),
    "indent": st.none() | st.integers(min_value=0, max_value=4) | st.just("\t"),
    "separators": st.sampled_from([None, (",", ":"), (", ", ": "), (" , ", " : ")]),
    "sort_keys": st.booleans(),
})
_ids = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(st.text(), JSON_VALUES, min_size=1, max_size=6), options=DUMPS_OPTIONS)
def test_any_json_object_is_stored_byte_for_byte(document, options, dynamodb):
    body = json.dumps(document, **options)
    request_id = f"prop-{next(_ids)}"

    dynamodb.put_item(**json.loads(render_put(body, method_request(request_id=request_id))))

    stored = stored_request(dynamodb, request_id)
    assert stored is not None and stored["request"]["S"].encode("utf-8") == body.encode("utf-8")


# --- ids -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_a_valid_idempotency_key_becomes_the_id_whatever_the_header_case(header):
    put = json.loads(render_put('{"a": 1}', method_request({header: "order-42:v1.x_y"})))

    assert put["Item"]["id"] == {"S": "anonymous/order-42:v1.x_y"}


def test_without_a_key_the_request_id_is_the_id():
    put = json.loads(render_put('{"a": 1}', method_request(request_id="c6af9ac6-7b61")))

    assert put["Item"]["id"] == {"S": "anonymous/c6af9ac6-7b61"}


def test_a_key_of_100_characters_is_accepted(transport, dynamodb):
    key = "k" * 100

    response = put_through(transport, '{"a": 1}', method_request({"Idempotency-Key": key}))

    assert (response.status, response_json(response)) == (202, {"id": key})
    assert stored_request(dynamodb, key) is not None


@pytest.mark.parametrize("key", ["", "k" * 101, "../x", "ключ", "a b", 'a"b', "a\\b", "a/b", "x'y"])
def test_an_invalid_key_renders_an_empty_id_that_dynamodb_rejects_with_a_400(key, transport, dynamodb):
    request = method_request({"Idempotency-Key": key})
    assert json.loads(render_put('{"a": 1}', request))["Item"]["id"] == {"S": ""}

    response = put_through(transport, '{"a": 1}', request)

    assert (response.status, response_json(response)) == (400, {"message": KEY_MESSAGE})
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


def test_a_forced_request_id_that_is_not_a_valid_id_is_refused(transport, dynamodb):
    response = put_through(transport, "{}", method_request(request_id="../../etc"))

    assert (response.status, response_json(response)) == (
        400, {"message": "X-Amzn-RequestId must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"})
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


EMPTY_REQUEST = "request body is empty (no body, or {}); send a JSON object with at least one member"


@pytest.mark.parametrize("body", ["", "{}", "{ }", "\n\t{\r\n}"])
def test_an_empty_request_renders_a_put_with_an_empty_key_and_gets_a_400(body, transport, dynamodb):
    # The template sees `{}` for an empty body (docs: APIGW-2) and decides on the parsed body, so
    # no body and an object without members are the same request here and on AWS. (A body of
    # whitespace only is not JSON: the validator refuses it before any template runs.)
    request = method_request({"Idempotency-Key": "k-empty"})
    assert json.loads(render_put(body, request))["Item"]["id"] == {"S": ""}

    response = put_through(transport, body, request)

    assert (response.status, response_json(response)) == (400, {"message": EMPTY_REQUEST})
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


# --- integration responses: DynamoDB's answer -> the client's ---------------------------------------

def test_a_stored_request_answers_202_with_its_id(transport):
    response = put_through(transport, '{"a": 1}', method_request({"Idempotency-Key": "k-1"}))

    assert (response.status, response_json(response)) == (202, {"id": "k-1"})
    assert ("Content-Type", "application/json") in response.headers


def test_a_duplicate_id_answers_409_and_leaves_the_first_request(transport, dynamodb):
    first = put_through(transport, '{"n": 1}', method_request({"Idempotency-Key": "dup"}))
    second = put_through(transport, '{"n": 2}', method_request({"Idempotency-Key": "dup"}))

    assert first.status == 202
    assert (second.status, response_json(second)) == (
        409, {"id": "dup", "message": "a request with this id already exists; it was not changed"})
    stored = stored_request(dynamodb, "dup")
    assert stored is not None and stored["request"]["S"] == '{"n": 1}'


def test_a_body_over_the_item_size_answers_413(transport, dynamodb):
    body = json.dumps({"blob": "x" * (401 * 1024)})

    response = put_through(transport, body, method_request({"Idempotency-Key": "big"}))

    assert response.status == 413
    assert "400 KB" in response_json(response)["message"]
    assert stored_request(dynamodb, "big") is None


def test_a_missing_table_answers_500(transport):
    route = load_route(table="no-such-table")

    response = put_through(transport, '{"a": 1}', method_request(), route)

    assert (response.status, response_json(response)) == (500, {"message": MISCONFIGURED})


def dynamodb_error(error_type: str, message: str = "m") -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message}).encode()


THROTTLED = "storage is throttled; the request was not stored, retry later"
MISCONFIGURED = "storage is misconfigured; the request was not stored"


@pytest.mark.parametrize("error_type, message, status, client_message", [
    ("ProvisionedThroughputExceededException", "m", 429, THROTTLED),
    ("ThrottlingException", "m", 429, THROTTLED),
    ("RequestLimitExceeded", "m", 429, THROTTLED),
    ("TransactionConflictException", "m", 429, THROTTLED),
    ("ValidationException", "Item size has exceeded the maximum allowed size", 413,
     "request body too large: a stored request must fit in one 400 KB DynamoDB item"),
    ("ValidationException", "One or more parameter values were invalid: An AttributeValue may not contain an "
     "empty string. Key: id", 400, EMPTY_REQUEST),
    ("ValidationException", "something else", 400, "storage rejected the request; it was not stored"),
    ("AccessDeniedException", "not authorized", 500, MISCONFIGURED),
    ("ResourceNotFoundException", "Requested resource not found", 500, MISCONFIGURED),
    ("UnrecognizedClientException", "bad token", 500, MISCONFIGURED),
])
def test_each_dynamodb_400_maps_to_its_status(error_type, message, status, client_message):
    response = respond(ROUTE, method_request({"Idempotency-Key": "k"}), 400, dynamodb_error(error_type, message))

    assert (response.status, response_json(response)) == (status, {"message": client_message})


@pytest.mark.parametrize("message, status, client_message", [
    ("Item size has exceeded the maximum allowed size", 413,
     "request body too large: a stored request must fit in one 400 KB DynamoDB item"),
    ("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty "
     "string value. Key: id", 400, EMPTY_REQUEST),
])
def test_dynamodb_locals_error_body_maps_the_same(message, status, client_message):
    # DynamoDB Local names the type com.amazon.coral.validate#... and capitalises "Message".
    answer = json.dumps({"__type": "com.amazon.coral.validate#ValidationException", "Message": message}).encode()

    response = respond(ROUTE, method_request(), 400, answer)

    assert (response.status, response_json(response)) == (status, {"message": client_message})


@pytest.mark.parametrize("status", [500, 503])
def test_a_dynamodb_server_error_answers_503(status):
    response = respond(ROUTE, method_request(), status, dynamodb_error("InternalServerError"))

    assert (response.status, response_json(response)) == (
        503, {"message": "storage unavailable; the request was not stored, retry later"})


@pytest.mark.parametrize("status, pattern", [(200, None), (400, "4\\d{2}"), (404, "4\\d{2}"), (500, "5\\d{2}"),
                                             (599, "5\\d{2}")])
def test_selection_patterns_match_the_whole_status(status, pattern):
    selected = select_integration_response(ROUTE, status)
    assert selected is not None and selected.selection_pattern == pattern


# --- owners ------------------------------------------------------------------------------------------

USER = {"user": "AIDAEXAMPLEUSER1", "caller": "AIDAEXAMPLEUSER1", "accessKey": "AKIAEXAMPLE1",
        "userArn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"}


@pytest.mark.parametrize("identity, owner", [
    ({}, "anonymous"),
    (USER, "iam-AIDAEXAMPLEUSER1"),
    ({"user": "AROAEXAMPLEROLE1:session-17", "caller": "AROAEXAMPLEROLE1:session-17"}, "iam-AROAEXAMPLEROLE1"),
    ({"user": "123456789012:bob"}, "iam-123456789012:bob"),  # a federated user: its name is its own
    ({"apiKeyId": "a1b2c3d4e5"}, "key-a1b2c3d4e5"),
])
def test_the_put_stores_the_callers_stable_identity_as_owner(identity, owner):
    put = json.loads(render_put('{"a": 1}', method_request({"Idempotency-Key": "k-1"}, **identity)))

    assert put["Item"]["owner"] == {"S": owner}
    assert put["Item"]["id"] == {"S": f"{owner}/k-1"}


def test_every_session_of_a_role_is_one_owner():
    puts = [json.loads(render_put('{"a": 1}', method_request(user=f"AROAEXAMPLEROLE1:{session}")))
            for session in ("botocore-session-1", "i-0abc", "alice@example.com")]
    owners = {put["Item"]["owner"]["S"] for put in puts}
    assert owners == {"iam-AROAEXAMPLEROLE1"}


IDENTITY_VALUES = st.one_of(st.none(), st.just(""), st.text(alphabet="AROIDKEY019:+=,.@_-", max_size=30),
                            st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(user=IDENTITY_VALUES, api_key_id=IDENTITY_VALUES)
def test_the_template_and_the_routes_agree_on_every_owner(user, api_key_id):
    identity = {name: value for name, value in (("user", user), ("apiKeyId", api_key_id)) if value is not None}
    put = json.loads(render_put('{"a": 1}', method_request({"Idempotency-Key": "k-1"}, **identity)))
    owner = owner_of(identity)

    if re.fullmatch(OWNER_PATTERN, owner):
        assert put["Item"]["id"] == {"S": f"{owner}/k-1"} and put["Item"]["owner"] == {"S": owner}
    else:  # an identity the routes could never match to an item: the template stores nothing
        assert put["Item"]["id"] == {"S": ""}


def test_two_owners_may_use_one_key_and_neither_learns_of_the_other(transport, dynamodb):
    alice = put_through(transport, '{"n": 1}', method_request({"Idempotency-Key": "table-12-order-1"}, **USER))
    bob = put_through(transport, '{"n": 2}', method_request({"Idempotency-Key": "table-12-order-1"},
                                                            user="AIDAEXAMPLEUSER2"))
    alice_again = put_through(transport, '{"n": 3}', method_request({"Idempotency-Key": "table-12-order-1"}, **USER))

    assert (alice.status, response_json(alice)) == (202, {"id": "table-12-order-1"})
    assert (bob.status, response_json(bob)) == (202, {"id": "table-12-order-1"})
    assert (alice_again.status, response_json(alice_again)["id"]) == (409, "table-12-order-1")
    items = {item["id"]["S"]: item["request"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]}
    assert items == {"iam-AIDAEXAMPLEUSER1/table-12-order-1": '{"n": 1}',
                     "iam-AIDAEXAMPLEUSER2/table-12-order-1": '{"n": 2}'}


def test_an_identity_that_cannot_own_requests_is_403_and_nothing_is_stored(transport, dynamodb):
    response = put_through(transport, '{"a": 1}', method_request(user='AIDA"}, "status": {"S": "SUCCEEDED'))

    assert (response.status, response_json(response)) == (
        403, {"message": "the caller's identity cannot own requests; nothing was stored"})
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0
