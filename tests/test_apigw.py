"""The local API Gateway (devserver.apigw) end to end: werkzeug's test Client -> the WSGI app ->
the templates from infra/template.yaml -> DynamoDB (moto), plus the infra parsing it rests on.
Cases that state AWS's behaviour cite the fact in docs/api-gateway.md that names the recording."""
from __future__ import annotations

import http.client
import http.server
import itertools
import json
import re
import socket
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import boto3
import pytest
from botocore.config import Config
from chalice import Chalice
from moto.server import ThreadedMotoServer
from werkzeug.test import Client, TestResponse

from chalicelib.ownership import ANONYMOUS, item_key
from devserver import infra
from devserver.apigw import IdGenerator, LocalApiGateway, make_app, make_server
from devserver.apigw_transport import BotocoreTransport, DynamoDBTransport, HttpTransport, IntegrationTimeout
from devserver.apigw_validation import validation_error
from tests.conftest import TABLE, TEMPLATE

REGION = "eu-central-1"
NOW = 1767225600.123
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


# --- fakes ----------------------------------------------------------------------------------------

class RecordingTransport:
    """Answers with `answer` (or delegates to `inner`) and records what was sent."""

    def __init__(self, inner: Optional[Callable[[str, bytes], Tuple[int, bytes]]] = None,
                 answer: Tuple[int, bytes] = (200, b"{}")) -> None:
        self.inner, self.answer = inner, answer
        self.calls: List[Tuple[str, bytes]] = []

    def __call__(self, action: str, body: bytes) -> Tuple[int, bytes]:
        self.calls.append((action, body))
        return self.inner(action, body) if self.inner else self.answer


class TimingOutTransport:
    def __call__(self, action: str, body: bytes) -> Tuple[int, bytes]:
        raise IntegrationTimeout("no answer")


def sequential_ids() -> IdGenerator:
    request_ids, extended_ids = itertools.count(1), itertools.count(1)
    return IdGenerator(request_id=lambda: f"rid-{next(request_ids)}",
                       extended_request_id=lambda: f"ext{next(extended_ids)}=")


def stand_in_chalice() -> Chalice:
    app = Chalice(app_name="stand-in")

    @app.route("/requests/{request_id}", methods=["GET"])
    def get_request(request_id: str) -> Dict[str, str]:
        return {"served_by": "chalice", "id": request_id}

    return app


def gateway(transport: DynamoDBTransport, chalice_app: Optional[Chalice] = None) -> Client:
    app = make_app(TEMPLATE, TABLE, "http://127.0.0.1:9", REGION, chalice_app=chalice_app or stand_in_chalice(),
                   transport=transport, clock=lambda: NOW, ids=sequential_ids())
    return Client(app)


def error_body(error_type: str, message: str = "m") -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message}).encode()


def message(response: TestResponse) -> str:
    return json.loads(response.get_data())["message"]


@pytest.fixture
def moto_transport(dynamodb: Any) -> RecordingTransport:
    client = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
    return RecordingTransport(BotocoreTransport(client))


@pytest.fixture
def api(moto_transport: RecordingTransport) -> Client:
    return gateway(moto_transport)


def item(dynamodb: Any, item_id: str) -> Optional[Dict[str, Any]]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": item_key(ANONYMOUS, item_id)}},
                             ConsistentRead=True).get("Item")


def count(dynamodb: Any) -> int:
    return dynamodb.scan(TableName=TABLE)["Count"]


# --- PUT /requests: the happy paths -------------------------------------------------------------------

def test_a_put_is_stored_pending_and_answered_202_with_its_id(api, dynamodb):
    body = '{"order": "it\'s 😀"}'

    response = api.put("/requests", data=body.encode(), headers=JSON)

    assert (response.status_code, response.json) == (202, {"id": "rid-1"})
    assert response.headers["x-amzn-RequestId"] == "rid-1"
    assert response.headers["x-amz-apigw-id"] == "ext1="
    assert response.headers["Content-Type"] == "application/json"
    assert item(dynamodb, "rid-1") == {
        "id": {"S": "anonymous/rid-1"}, "owner": {"S": "anonymous"}, "request": {"S": body}, "status": {"S": "PENDING"},
        "createdAt": {"N": "1767225600123"}, "updatedAt": {"N": "1767225600123"}, "attempts": {"N": "0"},
        "listStatus": {"S": "PENDING"}, "redriven": {"BOOL": False},
    }


def test_the_idempotency_key_is_the_id(api, dynamodb):
    response = api.put("/requests", data=b'{"a": 1}', headers={**JSON, "Idempotency-Key": "order-7"})

    assert (response.status_code, response.json) == (202, {"id": "order-7"})
    stored = item(dynamodb, "order-7")
    assert stored is not None and stored["status"] == {"S": "PENDING"}


def test_a_duplicate_idempotency_key_answers_409_and_keeps_the_first_request(api, dynamodb):
    api.put("/requests", data=b'{"n": 1}', headers={**JSON, "Idempotency-Key": "dup"})

    response = api.put("/requests", data=b'{"n": 2}', headers={**JSON, "Idempotency-Key": "dup"})

    assert response.status_code == 409
    assert json.loads(response.get_data()) == {
        "id": "dup", "message": "a request with this id already exists; it was not changed"}
    stored = item(dynamodb, "dup")
    assert stored is not None and stored["request"] == {"S": '{"n": 1}'}


def test_a_forced_x_amzn_request_id_is_the_id(api, dynamodb):
    response = api.put("/requests", data=b'{"a": 1}', headers={**JSON, "X-Amzn-RequestId": "client-chosen-1"})

    assert (response.status_code, response.json) == (202, {"id": "client-chosen-1"})
    assert response.headers["x-amzn-RequestId"] == "client-chosen-1"
    assert item(dynamodb, "client-chosen-1") is not None


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=utf-8", None])
def test_json_with_a_charset_or_without_a_content_type_is_accepted(content_type, api, dynamodb):
    headers = {"Content-Type": content_type} if content_type else {}

    response = api.put("/requests", data=b'{"a": 1}', headers=headers)

    assert response.status_code == 202
    stored = item(dynamodb, response.json["id"])
    assert stored is not None and stored["request"] == {"S": '{"a": 1}'}


# --- PUT /requests: refused before DynamoDB ------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "application/octet-stream", "application/JSON", "application/xml"])
def test_another_content_type_is_415(content_type, api, moto_transport, dynamodb):
    response = api.put("/requests", data=b'{"a": 1}', headers={"Content-Type": content_type})

    assert (response.status_code, message(response)) == (415, "Content-Type must be application/json")
    assert response.headers["x-amzn-RequestId"] == "rid-1"
    assert moto_transport.calls == [] and count(dynamodb) == 0


@pytest.mark.parametrize("body, found", [
    (b"[1, 2]", "array"), (b'"text"', "string"), (b"42", "integer"), (b"4.2", "number"),
    (b"null", "null"), (b"true", "boolean"),
])
def test_a_body_that_is_not_an_object_is_400(body, found, api, moto_transport, dynamodb):
    response = api.put("/requests", data=body, headers=JSON)

    assert response.status_code == 400
    assert json.loads(response.get_data()) == {"message": (
        f"request body must be a JSON object: [instance type ({found}) does not match any allowed primitive type "
        '(allowed: ["object"])]')}
    assert moto_transport.calls == [] and count(dynamodb) == 0


def test_validation_messages_use_the_java_validator_wording_escaped_for_a_json_string():
    schema = {"type": "object", "required": ["a", "b"], "properties": {"n": {"maximum": 1}}}

    assert validation_error(schema, b'{"a": 1, "b": 2}') is None
    assert validation_error(schema, b"") == '[object has missing required properties ([\\"a\\",\\"b\\"])]'
    assert validation_error(schema, b'{"a": 1, "b": 2, "n": 5}') == "[5 is greater than the maximum of 1]"


@pytest.mark.parametrize("body", [b"{nope", b'{"a": 1', b"{'a': 1}", b'{"a": NaN}', b"   "])
def test_invalid_json_is_400(body, api, moto_transport, dynamodb):
    response = api.put("/requests", data=body, headers=JSON)

    assert response.status_code == 400
    assert message(response).startswith("request body must be a JSON object: [Invalid JSON in request body: ")
    assert moto_transport.calls == [] and count(dynamodb) == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_a_body_that_is_not_utf8_is_400(api, moto_transport, dynamodb, content_type):
    response = api.put("/requests", data=b'{"a": "\xff\xfe"}', headers={"Content-Type": content_type})

    assert response.status_code == 400
    assert "Invalid UTF-8 in request body" in message(response)
    assert moto_transport.calls == [] and count(dynamodb) == 0


EMPTY_REQUEST = "request body is empty (no body, or {}); send a JSON object with at least one member"


@pytest.mark.parametrize("body", [b"", b"{}", b"{ }", b"\n{\n}\n"])
def test_no_body_and_an_empty_object_are_one_empty_request_refused_with_400(body, api, dynamodb):
    # API Gateway hands the template and the validator `{}` for an empty body (docs: APIGW-2,
    # APIGW-15): the template refuses an object without members, so both are refused alike.
    response = api.put("/requests", data=body, headers={**JSON, "Idempotency-Key": "k-empty"})

    assert (response.status_code, message(response)) == (400, EMPTY_REQUEST)
    assert count(dynamodb) == 0


def test_over_10_mb_is_413_before_dynamodb(api, moto_transport):
    response = api.put("/requests", data=b" " * (10 * 1024 * 1024 + 1), headers={"Content-Type": "text/plain"})

    assert response.status_code == 413
    assert "400 KB" in message(response)
    assert moto_transport.calls == []


def test_a_charset_qualified_array_is_refused_like_a_plain_one(api, dynamodb):
    response = api.put("/requests", data=b"[1]", headers={"Content-Type": "application/json; charset=utf-8"})

    assert response.status_code == 400


# --- PUT /requests: DynamoDB refuses or is unreachable ----------------------------------------------

def test_a_401_kb_body_is_413_and_not_stored(api, dynamodb):
    response = api.put("/requests", data=json.dumps({"blob": "x" * (401 * 1024)}).encode(), headers=JSON)

    assert response.status_code == 413
    assert count(dynamodb) == 0


@pytest.mark.parametrize("idempotency_key", ["", "k" * 101, "../x", "ключ", "a b"])
def test_an_invalid_idempotency_key_is_400_and_not_stored(idempotency_key, api, dynamodb):
    response = api.put("/requests", data=b'{"a": 1}', headers={**JSON, "Idempotency-Key": idempotency_key})

    assert response.status_code == 400
    assert message(response) == "Idempotency-Key must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"
    assert count(dynamodb) == 0


@pytest.mark.parametrize("answer, status", [
    ((400, error_body("ThrottlingException")), 429),
    ((400, error_body("ProvisionedThroughputExceededException")), 429),
    ((400, error_body("AccessDeniedException")), 500),
    ((500, error_body("InternalServerError")), 503),
    ((503, b"<html>unavailable</html>"), 503),
])
def test_dynamodb_errors_map_to_the_documented_statuses(answer, status):
    response = gateway(RecordingTransport(answer=answer)).put("/requests", data=b'{"a": 1}', headers=JSON)

    assert response.status_code == status


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_503_integration_failure():
    transport = HttpTransport(f"http://127.0.0.1:{closed_port()}", REGION, timeout_seconds=2)

    response = gateway(transport).put("/requests", data=b'{"a": 1}', headers=JSON)

    assert (response.status_code, message(response)) == (
        503, "storage unreachable; the request may or may not be stored: retry with the same Idempotency-Key")


def test_no_answer_in_time_is_504_integration_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        transport = HttpTransport(f"http://127.0.0.1:{silent.getsockname()[1]}", REGION, timeout_seconds=0.2)

        response = gateway(transport).put("/requests", data=b'{"a": 1}', headers=JSON)

    assert response.status_code == 504
    assert message(response).startswith("storage timed out")


def test_concurrent_calls_keep_their_connections_for_the_next_round():
    # As many calls at once as the reliability suite's clients: none of their connections is
    # dropped for want of room in the pool, so the next round opens none.
    clients = 32
    barrier, ports = threading.Barrier(clients), set()

    class AllAtOnce(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            ports.add(self.client_address[1])
            barrier.wait(timeout=10)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        # All connect at once: with socketserver's backlog of 5 the kernel drops SYNs past it, and
        # their retries (after 1, 3, 7 s) could outlast the barrier on a busy machine.
        request_queue_size = clients

    server = Server(("127.0.0.1", 0), AllAtOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", REGION, timeout_seconds=15)
    try:
        for _ in range(2):
            calls = [threading.Thread(target=transport, args=("GetItem", b"{}")) for _ in range(clients)]
            for call in calls:
                call.start()
            for call in calls:
                call.join()
    finally:
        server.shutdown()
        server.server_close()

    assert len(ports) == clients


def test_a_timing_out_transport_is_504():
    assert gateway(TimingOutTransport()).put("/requests", data=b'{"a": 1}', headers=JSON).status_code == 504


def test_botocore_transport_answers_what_dynamodb_would_for_a_body_it_cannot_send(dynamodb):
    transport = BotocoreTransport(boto3.client("dynamodb", region_name=REGION))

    not_json = transport("PutItem", b"{nope")
    missing_parameter = transport("PutItem", b'{"Item": {"id": {"S": "x"}}}')

    assert not_json[0] == 400 and json.loads(not_json[1])["__type"].endswith("#SerializationException")
    assert missing_parameter[0] == 400 and json.loads(missing_parameter[1])["__type"].endswith("#ValidationException")


def test_botocore_transport_maps_an_unreachable_endpoint_to_integration_failure():
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=f"http://127.0.0.1:{closed_port()}",
                          config=Config(retries={"total_max_attempts": 1}, connect_timeout=1))

    response = gateway(BotocoreTransport(client)).put("/requests", data=b'{"a": 1}', headers=JSON)

    assert response.status_code == 503


# --- everything else goes to Chalice -----------------------------------------------------------------

def test_chalice_routes_are_delegated_to_chalice(api):
    response = api.get("/requests/abc?x=1")

    assert (response.status_code, response.json) == (200, {"served_by": "chalice", "id": "abc"})


@pytest.mark.parametrize("sent", ["k:1.x", "k%3A1.x"])
def test_chalice_gets_the_path_as_the_client_sent_it(api, sent):
    # As `chalice local` hands it over: ":" is not re-encoded, "%3A" not decoded (the route decodes).
    response = api.get(f"/requests/{sent}")

    assert (response.status_code, response.json) == (200, {"served_by": "chalice", "id": sent})


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("POST", "/requests"), ("GET", "/requests")])
def test_unknown_routes_get_chalice_local_403(method, path, api):
    response = api.open(path, method=method)

    assert (response.status_code, message(response)) == (403, "Missing Authentication Token")


def test_the_project_app_reads_back_what_the_put_stored(dynamodb, moto_transport, monkeypatch):
    # Loose on purpose: chalicelib's status route is owned elsewhere; this shows the item the VTL
    # wrote is one the project's Chalice app (app.py, loaded by make_app) can read.
    from chalicelib import runtime

    monkeypatch.setenv("TABLE_NAME", TABLE)
    runtime.reset()
    app = make_app(TEMPLATE, TABLE, "http://127.0.0.1:9", REGION, transport=moto_transport, clock=lambda: NOW)
    client = Client(app)

    put = client.put("/requests", data=b'{"a": 1}', headers={**JSON, "Idempotency-Key": "e2e-1"})
    got = client.get("/requests/e2e-1")
    runtime.reset()

    assert put.status_code == 202
    assert got.status_code == 200 and got.json is not None and got.json["id"] == "e2e-1"


# --- over real sockets: a moto server as DynamoDB, the gateway as a threaded server -----------------

@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_over_http_with_a_signed_x_amz_target_request(moto_server):
    table = "http-requests"
    dynamo = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server)
    dynamo.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    server = make_server(make_app(TEMPLATE, table, moto_server, REGION, chalice_app=stand_in_chalice()), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        results = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("PUT", "/requests", body=b'{"over": "http"}',
                               headers={"Content-Type": "application/json", "Idempotency-Key": "h-1"})
            answer = connection.getresponse()
            results.append((answer.status, json.loads(answer.read())))
            connection.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)
        dynamo.delete_table(TableName=table)

    assert results[0] == (202, {"id": "h-1"})
    assert results[1][0] == 409


# --- the API Gateway rules, on small synthetic APIs ------------------------------------------------------

def synthetic_api(integration: Dict[str, Any], gateway_responses: Optional[Dict[str, Any]] = None,
                  path: str = "/things", operation: Optional[Dict[str, Any]] = None,
                  definitions: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"Resources": {"RestAPI": {"Properties": {"DefinitionBody": {
        "x-amazon-apigateway-gateway-responses": gateway_responses or {},
        "definitions": definitions or {},
        "paths": {path: {"post": {**(operation or {}), "x-amazon-apigateway-integration": {
            "type": "aws", "httpMethod": "POST",
            "uri": {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:dynamodb:action/PutItem"},
            **integration}}}},
    }}}}}


def synthetic_client(template: Dict[str, Any], transport: Any) -> Client:
    api = infra.rest_api(template, infra.local_refs(template, region=REGION))
    return Client(LocalApiGateway(api, transport, lambda request, caller: pytest.fail("reached Chalice"),
                                  clock=lambda: NOW, ids=sequential_ids()))


DEFAULT_OK = {"default": {"statusCode": "200"}}


def test_when_no_match_passes_an_unmapped_body_through():
    transport = RecordingTransport()
    template = synthetic_api({"passthroughBehavior": "when_no_match", "requestTemplates": {"application/json": "{}"},
                              "responses": DEFAULT_OK})

    response = synthetic_client(template, transport).post("/things", data=b"raw text", headers=TEXT)

    assert response.status_code == 200 and response.get_data() == b"{}"
    assert transport.calls == [("PutItem", b"raw text")]


@pytest.mark.parametrize("templates, status", [({"application/json": "{}"}, 415), ({}, 200)])
def test_when_no_templates_refuses_only_when_templates_exist(templates, status):
    template = synthetic_api({"passthroughBehavior": "when_no_templates", "requestTemplates": templates,
                              "responses": DEFAULT_OK})

    response = synthetic_client(template, RecordingTransport()).post("/things", data=b"x", headers=TEXT)

    assert response.status_code == status


def test_aws_default_gateway_responses_apply_when_none_is_customised():
    template = synthetic_api({"passthroughBehavior": "never", "requestTemplates": {"application/json": "{}"},
                              "responses": DEFAULT_OK})

    response = synthetic_client(template, RecordingTransport()).post("/things", data=b"x", headers=TEXT)

    assert (response.status_code, response.get_data()) == (415, b'{"message":"Unsupported Media Type"}')


def test_a_default_4xx_customisation_applies_with_the_types_own_status():
    template = synthetic_api({"passthroughBehavior": "never", "requestTemplates": {"application/json": "{}"},
                              "responses": DEFAULT_OK},
                             gateway_responses={"DEFAULT_4XX": {
                                 "responseTemplates": {"application/json": '{"error": "$context.error.responseType"}'},
                                 "responseParameters": {
                                     "gatewayresponse.header.X-Origin": "method.request.header.Origin",
                                     "gatewayresponse.header.X-Static": "'yes'"}}})

    response = synthetic_client(template, RecordingTransport()).post(
        "/things", data=b"x", headers={"Content-Type": "text/plain", "Origin": "https://o.example"})

    assert (response.status_code, response.json) == (415, {"error": "UNSUPPORTED_MEDIA_TYPE"})
    assert (response.headers["X-Origin"], response.headers["X-Static"]) == ("https://o.example", "yes")


def test_gateway_response_templates_substitute_variables_but_run_no_vtl():
    template = synthetic_api({"passthroughBehavior": "never", "requestTemplates": {"application/json": "{}"},
                              "responses": DEFAULT_OK},
                             gateway_responses={"UNSUPPORTED_MEDIA_TYPE": {"statusCode": 400, "responseTemplates": {
                                 "application/json": "#if(true)$context.requestId $method.request.header.X-Trace "
                                                     "[$stageVariables.none] $context.error.messageString#end"}}})

    response = synthetic_client(template, RecordingTransport()).post(
        "/things", data=b"x", headers={"Content-Type": "text/plain", "X-Trace": "t-1"})

    assert (response.status_code, response.get_data()) == (
        400, b'#if(true)rid-1 t-1 [] "Unsupported Media Type"#end')


def test_no_matching_integration_response_and_no_default_is_500():
    template = synthetic_api({"requestTemplates": {"application/json": "{}"},
                              "responses": {"2\\d{2}": {"statusCode": "200"}}})

    response = synthetic_client(template, RecordingTransport(answer=(400, b"{}"))).post("/things", data=b"{}")

    assert (response.status_code, response.get_data()) == (500, b'{"message":"Internal server error"}')


def test_a_failing_response_template_is_500():
    template = synthetic_api({"requestTemplates": {"application/json": "{}"}, "responses": {
        "default": {"statusCode": "200", "responseTemplates": {"application/json": "$input.path('$.x')"}}}})

    response = synthetic_client(template, RecordingTransport(answer=(200, b"not json"))).post("/things", data=b"{}")

    assert response.status_code == 500


def test_a_request_template_reading_a_body_that_is_not_json_is_400():
    template = synthetic_api({"requestTemplates": {"application/json": "$input.json('$')"}, "responses": DEFAULT_OK})
    transport = RecordingTransport()

    response = synthetic_client(template, transport).post("/things", data=b"{nope", headers=JSON)

    assert response.status_code == 400
    assert message(response).startswith("Could not parse request body into json")
    assert transport.calls == []


def test_a_request_template_that_fails_is_500_and_nothing_is_sent():
    template = synthetic_api({"requestTemplates": {"application/json": '#set($s = "ab")$s.substring(5)'},
                              "responses": DEFAULT_OK})
    transport = RecordingTransport()

    response = synthetic_client(template, transport).post("/things", data=b"{}", headers=JSON)

    assert (response.status_code, response.get_data()) == (500, b'{"message":"Internal server error"}')
    assert transport.calls == []


@pytest.mark.parametrize("override, status", [("201", 201), ("700", 200), ('"201"', 200)])
def test_response_override_status_is_honoured_only_as_an_int_in_range(override, status):
    template = synthetic_api({"requestTemplates": {"application/json": "{}"}, "responses": {"default": {
        "statusCode": "200", "responseTemplates": {"application/json": (
            f"#set($context.responseOverride.status = {override})"
            "#set($context.responseOverride.header.X-Echo = $input.params('Origin'))ok")}}}})

    response = synthetic_client(template, RecordingTransport()).post("/things", data=b"{}", headers={"Origin": "o"})

    assert (response.status_code, response.headers["X-Echo"], response.get_data()) == (status, "o", b"ok")


def test_a_response_override_in_the_request_template_sets_the_answer_without_a_response_template():
    # recorded on AWS: status 444 and header foo: bar, body passed through (docs: APIGW-12)
    template = synthetic_api({"requestTemplates": {"application/json": (
        '#set($context.responseOverride.status = 444)#set($context.responseOverride.header.foo = "bar"){}')},
        "responses": {"default": {"statusCode": "200"}}})

    response = synthetic_client(template, RecordingTransport(answer=(200, b""))).post("/things", data=b"{}")

    assert (response.status_code, response.headers["foo"], response.get_data()) == (444, "bar", b"")


def test_an_override_header_replaces_a_response_parameter_of_the_same_name():
    # AWS applies overrides after the standard mappings (docs: APIGW-12)
    template = synthetic_api({"requestTemplates": {"application/json": "{}"}, "responses": {"default": {
        "statusCode": "200", "responseParameters": {"method.response.header.X-Who": "'mapping'"},
        "responseTemplates": {"application/json": '#set($context.responseOverride.header.X-Who = "override")'}}}})

    response = synthetic_client(template, RecordingTransport()).post("/things", data=b"{}")

    assert response.headers.getlist("X-Who") == ["override"]


def test_an_override_written_twice_is_500_and_nothing_is_sent():
    # "Overrides are final": a second write of the same override is a 5XX (docs: APIGW-12)
    template = synthetic_api({"requestTemplates": {"application/json": (
        "#set($context.responseOverride.status = 201)#set($context.responseOverride.status = 202)")},
        "responses": DEFAULT_OK})
    transport = RecordingTransport()

    response = synthetic_client(template, transport).post("/things", data=b"{}")

    assert (response.status_code, transport.calls) == (500, [])


def test_context_has_awss_keys_in_awss_order_and_its_maps_print_as_nothing():
    # $context.keySet() and $context.identity.keySet() as recorded on AWS (docs: APIGW-10)
    template = synthetic_api({"requestTemplates": {"application/json": (
        "#foreach($k in $context.keySet())$k=$context.get($k);#end|"
        "#foreach($k in $context.identity.keySet())$k=$!context.identity.get($k);#end|"
        "#foreach($k in $context.requestOverride.keySet())$k=$context.requestOverride.get($k);#end|"
        "#foreach($k in $context.responseOverride.keySet())$k;#end")}, "responses": DEFAULT_OK})
    transport = RecordingTransport()

    synthetic_client(template, transport).post("/things", data=b"{}", headers={"User-Agent": "ua/1"})

    keys, identity, request_override, response_override = transport.calls[0][1].decode().split("|")
    assert [pair.split("=")[0] for pair in keys.split(";")[:-1]] == [
        "resourceId", "resourcePath", "httpMethod", "extendedRequestId", "requestTime", "path", "accountId",
        "protocol", "requestOverride", "stage", "domainPrefix", "requestTimeEpoch", "requestId", "identity",
        "domainName", "deploymentId", "responseOverride", "apiId"]
    assert "identity=;" in keys and "requestOverride=;" in keys and "responseOverride=;" in keys
    assert re.search(r"resourceId=[0-9a-f]{6};", keys) and re.search(r"deploymentId=[0-9a-f]{6};", keys)
    assert identity == ("cognitoIdentityPoolId=;accountId=;cognitoIdentityId=;caller=;sourceIp=127.0.0.1;"
                        "principalOrgId=;accessKey=;cognitoAuthenticationType=;cognitoAuthenticationProvider=;"
                        "userArn=;userAgent=ua/1;user=;")
    assert (request_override, response_override) == ("path=;header=;querystring=;", "header;")


def test_header_names_reach_the_template_as_the_client_spelled_them():
    # recorded: $input.params('HeaderFoo') finds a header sent as HeaderFoo (docs: APIGW-9);
    # werkzeug's environ would name it Headerfoo, so the server records the spelling
    template = synthetic_api({"requestTemplates": {"application/json": (
        "[$input.params('HeaderFoo')][$input.params('Headerfoo')]"
        "#foreach($n in $input.params().header.keySet())#if($n.startsWith('X'))$n;#end#end")},
        "responses": DEFAULT_OK})
    transport = RecordingTransport()
    api = infra.rest_api(template, infra.local_refs(template, region=REGION))
    local_gateway = LocalApiGateway(api, transport, lambda request, caller: pytest.fail("reached Chalice"))
    server = make_server(local_gateway, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.putrequest("POST", "/things")
        for name, value in [("HeaderFoo", "BAR-Header"), ("X-MiXeD", "1"), ("Content-Length", "2")]:
            connection.putheader(name, value)
        connection.endheaders(b"{}")
        status = connection.getresponse().status
        connection.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)

    assert (status, transport.calls[0][1]) == (200, b"[BAR-Header][]X-MiXeD;")


@pytest.mark.parametrize("accept, body, content_type", [
    ("text/plain", b"plain", "text/plain"),
    (None, b"json", "application/json"),
    ("image/png", b"json", "application/json"),
])
def test_the_response_template_is_chosen_by_accept_then_json(accept, body, content_type):
    template = synthetic_api({"requestTemplates": {"application/json": "{}"}, "responses": {"default": {
        "statusCode": "200", "responseTemplates": {"text/plain": "plain", "application/json": "json"}}}})
    headers = {"Accept": accept} if accept else {}

    response = synthetic_client(template, RecordingTransport()).post("/things", data=b"{}", headers=headers)

    assert (response.get_data(), response.headers["Content-Type"]) == (body, content_type)


def test_without_a_response_template_the_dynamodb_answer_passes_through():
    template = synthetic_api({"requestTemplates": {"application/json": "{}"}, "responses": {"default": {
        "statusCode": "200", "responseParameters": {"method.response.header.X-Static": "'s'"}}}})

    transport = RecordingTransport(answer=(200, b'{"Attributes": {}}'))

    response = synthetic_client(template, transport).post("/things", data=b"{}")

    assert (response.get_data(), response.headers["X-Static"]) == (b'{"Attributes": {}}', "s")


def test_path_and_querystring_parameters_reach_the_template():
    template = synthetic_api({"requestTemplates": {"application/json": "$input.params('id')/$input.params('q')"},
                              "responses": DEFAULT_OK}, path="/things/{id}")
    transport = RecordingTransport()

    response = synthetic_client(template, transport).post("/things/t-9?q=a&q=b")

    assert response.status_code == 200
    assert transport.calls == [("PutItem", b"t-9/b")]


def test_a_response_parameter_that_cannot_be_emulated_fails_at_start_up():
    template = synthetic_api({"requestTemplates": {}, "responses": {"default": {
        "statusCode": "200", "responseParameters": {"method.response.header.X": "integration.response.header.Y"}}}})

    with pytest.raises(infra.InfraError, match="integration.response.header.Y"):
        synthetic_client(template, RecordingTransport())


# --- infra: the template parsed into specs --------------------------------------------------------------

def test_the_put_route_as_parsed_from_infra():
    template = infra.load_template(TEMPLATE)
    api = infra.rest_api(template, infra.local_refs(template, region=REGION, physical_names={"RequestsTable": "tbl"}))
    (route,) = api.routes

    assert (route.path, route.method, route.service, route.action) == ("/requests", "PUT", "dynamodb", "PutItem")
    assert route.passthrough_behavior == "never"
    assert route.validator == infra.RequestValidator("body-only", validate_body=True, validate_parameters=False)
    model = {"$schema": "http://json-schema.org/draft-04/schema#", "title": "Any JSON object", "type": "object"}
    assert dict(route.body_models) == {content_type: model for content_type in (
        "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8")}
    assert set(route.request_templates) == {
        "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
    assert len(set(route.request_templates.values())) == 1  # one anchor, three keys
    assert '"TableName": "tbl"' in route.request_templates["application/json"]
    assert [(r.selection_pattern, r.status_code) for r in route.responses] == [
        (None, 202), ("4\\d{2}", 400), ("5\\d{2}", 503)]
    assert route.timeout_ms == 29000
    assert {t: g.status_code for t, g in api.gateway_responses.items()} == {
        "BAD_REQUEST_BODY": 400, "UNSUPPORTED_MEDIA_TYPE": 415, "REQUEST_TOO_LARGE": 413,
        "INTEGRATION_FAILURE": 503, "INTEGRATION_TIMEOUT": 504}


REFS = {"Table": "t1", "Table.Arn": "arn:aws:dynamodb:r:1:table/t1", "AWS::Region": "eu-central-1"}


@pytest.mark.parametrize("value, resolved", [
    ({"Ref": "Table"}, "t1"),
    ({"Fn::GetAtt": ["Table", "Arn"]}, "arn:aws:dynamodb:r:1:table/t1"),
    ({"Fn::GetAtt": "Table.Arn"}, "arn:aws:dynamodb:r:1:table/t1"),
    ({"Fn::Sub": "${Table} in ${AWS::Region}: ${Table.Arn}"}, "t1 in eu-central-1: arn:aws:dynamodb:r:1:table/t1"),
    ({"Fn::Sub": "${!Literal} and $context.x"}, "${Literal} and $context.x"),
    ({"Fn::Sub": ["${A}-${Table}", {"A": {"Ref": "AWS::Region"}}]}, "eu-central-1-t1"),
    ({"Fn::Join": ["/", ["a", {"Ref": "Table"}]]}, "a/t1"),
    ({"k": [{"Ref": "Table"}, {"x": "y"}]}, {"k": ["t1", {"x": "y"}]}),
])
def test_intrinsics_resolve(value, resolved):
    assert infra.resolve(value, REFS) == resolved


@pytest.mark.parametrize("value, error", [
    ({"Ref": "Nope"}, "'Nope'"),
    ({"Fn::Sub": "${Nope.Arn}"}, "'Nope.Arn'"),
    ({"Fn::If": ["c", 1, 2]}, "unsupported intrinsic Fn::If"),
    ({"Fn::GetAtt": ["only-one"]}, "malformed Fn::GetAtt"),
    ({"Fn::Join": ["/", {"Ref": "Table"}]}, "Fn::Join needs a list"),
])
def test_unresolvable_intrinsics_are_clear_errors(value, error):
    with pytest.raises(infra.InfraError, match=error.replace(".", "\\.").replace("[", "\\[")):
        infra.resolve(value, REFS)


@pytest.mark.parametrize("integration, operation, error", [
    ({"type": "http"}, {}, "integration type 'http' is not emulated"),
    ({"uri": "arn:aws:apigateway:r:dynamodb:path/x"}, {}, "not an `action/<Action>` service uri"),
    ({}, {"x-amazon-apigateway-request-validator": "missing"}, "request validator 'missing'"),
    ({}, {"parameters": [{"in": "body", "schema": {"$ref": "#/definitions/Nope"}}]}, "does not name an entry"),
])
def test_what_cannot_be_emulated_is_refused(integration, operation, error):
    with pytest.raises(infra.InfraError, match=error.replace("(", "\\(").replace("`", ".")):
        infra.integration_routes(synthetic_api(integration, operation=operation), infra.local_refs({}, region=REGION))


def test_a_model_that_refers_to_itself_is_refused():
    node = {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}
    template = synthetic_api({}, operation={"parameters": [{"in": "body", "schema": {"$ref": "#/definitions/Node"}}]},
                             definitions={"Node": node})

    with pytest.raises(infra.InfraError, match="refers to itself"):
        infra.integration_routes(template, infra.local_refs(template, region=REGION))


def test_nested_model_references_are_inlined():
    outer = {"type": "object", "properties": {"in": {"$ref": "#/definitions/Inner"}}}
    body_parameter = {"in": "body", "schema": {"$ref": "#/definitions/Outer"}}
    template = synthetic_api({}, operation={"consumes": ["application/x"], "parameters": [body_parameter]},
                             definitions={"Outer": outer, "Inner": {"type": "string"}})

    (route,) = infra.integration_routes(template, infra.local_refs(template, region=REGION))

    assert dict(route.body_models) == {"application/x": {"type": "object", "properties": {"in": {"type": "string"}}}}


def test_aws_proxy_operations_are_left_to_chalice():
    template = synthetic_api({"type": "aws_proxy", "uri": "arn:aws:lambda"})

    assert infra.integration_routes(template, infra.local_refs(template, region=REGION)) == ()


def test_a_template_without_the_rest_api_is_refused():
    with pytest.raises(infra.InfraError, match="DefinitionBody"):
        infra.rest_api({"Resources": {}}, {})


def test_local_refs_name_each_resource_and_its_arn():
    refs = infra.local_refs(infra.load_template(TEMPLATE), region=REGION, physical_names={"RequestsTable": "tbl"})

    assert refs["RequestsTable"] == "tbl"
    assert refs["RequestsTable.Arn"] == f"arn:aws:dynamodb:{REGION}:123456789012:table/tbl"
    assert refs["ApiGatewayPutItemRole.Arn"] == "arn:aws:iam::123456789012:role/ApiGatewayPutItemRole"
    assert refs["AWS::Partition"] == "aws"
