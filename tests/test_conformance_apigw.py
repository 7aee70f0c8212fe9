"""Conformance: the local API Gateway against behaviour recorded on real AWS.

Every expected value below was recorded against AWS by LocalStack's snapshot tests at commit
8b9a79f (each test's .validation.json says when); the templates and inputs are those tests', the
expected outputs their recorded values. Each case names its snapshot; docs/api-gateway.md states
the fact in our words. No processes: templates are rendered by devserver.vtl, requests go through
devserver.apigw's WSGI app with a recording transport in place of the integration.
"""
from __future__ import annotations

import base64
import http.client
import json
import textwrap
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import boto3
import pytest
from botocore.config import Config
from werkzeug.test import Client

from devserver import infra
from devserver.apigw import LocalApiGateway, make_server
from devserver.apigw_transport import BotocoreTransport
from devserver.vtl import Overrides, render
from tests.conftest import TABLE

pytestmark = pytest.mark.conformance

LS = "https://github.com/localstack/localstack/blob/8b9a79f05846835cf4dff63ab7eefdde9df83783/tests/aws/services/apigateway"
COMMON = f"{LS}/test_apigateway_common.snapshot.json"
INTEGRATIONS = f"{LS}/test_apigateway_integrations.snapshot.json"
SQS = f"{LS}/test_apigateway_sqs.snapshot.json"
DYNAMODB = f"{LS}/test_apigateway_dynamodb.snapshot.json"
REGION = "eu-central-1"


class Recording:
    """Stands in for the integration: answers `answer(body)` and keeps what it was sent."""

    def __init__(self, answer: Callable[[bytes], Tuple[int, bytes]] = lambda body: (200, b"")) -> None:
        self.answer = answer
        self.sent: list = []

    def __call__(self, action: str, body: bytes) -> Tuple[int, bytes]:
        self.sent.append(body)
        return self.answer(body)


def api(request_template: Optional[str], responses: Dict[str, Any], *, path: str = "/things",
        validator: bool = False, model: Optional[Dict[str, Any]] = None) -> infra.RestApi:
    operation: Dict[str, Any] = {}
    if validator:
        operation["x-amazon-apigateway-request-validator"] = "all"
        operation["parameters"] = [{"name": "body", "in": "body", "schema": model}]
    template = {"Resources": {"RestAPI": {"Properties": {"DefinitionBody": {
        "x-amazon-apigateway-request-validators": {"all": {"validateRequestBody": True}},
        "paths": {path: {"post": {**operation, "x-amazon-apigateway-integration": {
            "type": "aws", "httpMethod": "POST", "uri": "arn:aws:apigateway:eu-central-1:dynamodb:action/PutItem",
            "requestTemplates": {} if request_template is None else {"application/json": request_template},
            "responses": responses}}}},
    }}}}}
    return infra.rest_api(template, infra.local_refs(template, region=REGION))


def client(rest_api: infra.RestApi, transport: Recording) -> Client:
    return Client(LocalApiGateway(rest_api, transport, lambda request, caller: pytest.fail("reached Chalice"),
                                  clock=lambda: 1767225600.0))


# --- $input.path printing, null comparisons (docs: APIGW-4, APIGW-5, APIGW-6) ----------------------

PATH = '#set($result = $input.path("$.json"))$result'
NESTED = '#set($result = $input.path("$.json"))$result.nested'
LIST = '#set($result = $input.path("$.json"))$result[0]'
TO_STRING = '#set($result = $input.path("$.json"))$result.toString()'
PROBE = ('{"body": $result, "nested": $result.nested, "isNull": #if( $result == $null )"true"#else"false"#end, '
         '"isEmptyString": #if( $result == "" )"true"#else"false"#end}')
INVALID_PATH = '#set($result = $input.path("$.nonExisting"))' + PROBE
NESTED_LIST = '#set($result = $input.path("$.json.listValue"))' + PROBE
_NO_BODY = object()


@pytest.mark.parametrize("template, posted, recorded", [
    pytest.param(PATH, {"foo": "bar"}, "{foo=bar}", id="dict-response"),
    pytest.param(PATH, [{"foo": "bar"}], '[{"foo":"bar"}]', id="json-list"),
    pytest.param(NESTED, {"nested": {"foo": "bar"}}, "{foo=bar}", id="nested-dict"),
    pytest.param(NESTED, {"nested": [{"foo": "bar"}]}, '[{"foo":"bar"}]', id="nested-list"),
    pytest.param(LIST, [{"foo": "bar"}], "{foo=bar}", id="dict-in-list"),
    pytest.param(LIST, [[{"foo": "bar"}]], '[{"foo":"bar"}]', id="list-with-nested-list"),
    pytest.param(PATH, {"foo": [{"nested": "bar"}]}, '{foo=[{"nested":"bar"}]}', id="dict-with-nested-list"),
    pytest.param(PATH, {"bigger": "dict", "to": "test", "with": "separators"},
                 "{bigger=dict, to=test, with=separators}", id="bigger-dict"),
    pytest.param(TO_STRING, {"foo": "bar"}, "{foo=bar}", id="to-string"),
    pytest.param(TO_STRING, {"list": [{"foo": "bar"}]}, '{list=[{"foo":"bar"}]}', id="list-to-string"),
    pytest.param(INVALID_PATH, _NO_BODY, '{"body": , "nested": , "isNull": "true", "isEmptyString": "true"}',
                 id="empty-body"),
    pytest.param(NESTED_LIST, {"listValue": []},
                 '{"body": [], "nested": , "isNull": "false", "isEmptyString": "false"}', id="nested-empty-list"),
    pytest.param(NESTED_LIST, {"listValue": None},
                 '{"body": , "nested": , "isNull": "true", "isEmptyString": "true"}', id="nested-null-list"),
])
def test_input_path_template_formatting(template, posted, recorded):
    """COMMON, test_input_path_template_formatting (recorded 2025-06-18): a response template over an
    HTTP echo integration, which answers the posted JSON under "json" (null without a body)."""
    echoed = json.dumps({"json": None if posted is _NO_BODY else posted})

    assert render(template, body=echoed, params={}, context={}) == recorded


RAW = "#set($result = $input.body)$result"
IN_STRING = "Action=SendMessage&MessageBody=$input.body"
ATTR_ACCESS = "#set($result = $input.body.testAccess)$result"
URL_ENCODE = "EncodedBody=$util.urlEncode($input.body)&EncodedBodyAccess=$util.urlEncode($input.body.testAccess)"
BODIES = {"empty-body": "", "json-body": json.dumps({"some": "value"}), "str-body": "some raw data"}


@pytest.mark.parametrize("route, request_template, response_template, recorded", [
    ("raw-body", RAW, RAW, {"empty-body": "{}", "json-body": '{"some": "value"}', "str-body": "some raw data"}),
    ("str-body-input", IN_STRING, RAW, {
        "empty-body": "Action=SendMessage&MessageBody={}",
        "json-body": 'Action=SendMessage&MessageBody={"some": "value"}',
        "str-body": "Action=SendMessage&MessageBody=some raw data"}),
    ("str-body-output", RAW, IN_STRING, {
        "empty-body": "Action=SendMessage&MessageBody={}",
        "json-body": 'Action=SendMessage&MessageBody={"some": "value"}',
        "str-body": "Action=SendMessage&MessageBody=some raw data"}),
    ("str-body-all", IN_STRING, IN_STRING, {
        "empty-body": "Action=SendMessage&MessageBody=Action=SendMessage&MessageBody={}",
        "json-body": 'Action=SendMessage&MessageBody=Action=SendMessage&MessageBody={"some": "value"}',
        "str-body": "Action=SendMessage&MessageBody=Action=SendMessage&MessageBody=some raw data"}),
    ("body-attr-access", ATTR_ACCESS, RAW, {"empty-body": "{}", "json-body": "{}", "str-body": "{}"}),
    ("url-encode", URL_ENCODE, RAW, {
        "empty-body": "EncodedBody=%7B%7D&EncodedBodyAccess=",
        "json-body": "EncodedBody=%7B%22some%22%3A+%22value%22%7D&EncodedBodyAccess=",
        "str-body": "EncodedBody=some+raw+data&EncodedBodyAccess="}),
])
def test_input_body_formatting(route, request_template, response_template, recorded):
    """COMMON, test_input_body_formatting (recorded 2025-03-19): the request template's output goes
    to a function that answers it unchanged, and the response template renders that answer; an
    empty body is `{}` on both sides (docs: APIGW-2, APIGW-8)."""
    for name, body in BODIES.items():
        sent = render(request_template, body=body, params={}, context={})
        answered = render(response_template, body=sent, params={}, context={})
        assert (name, answered) == (name, recorded[name])


# --- $context (docs: APIGW-10) -------------------------------------------------------------------------

CONTEXT_TEMPLATE = textwrap.dedent("""
    {
        "QueueUrl": "q",
        "MessageBody": "{\\"context\\": {#foreach( $key in $context.keySet() )\\"$key\\": \\"$context.get($key)\\"#if($foreach.hasNext),#end#end},\\"identity\\": {#foreach( $key in $context.identity.keySet() )\\"$key\\": \\"$context.identity.get($key)\\"#if($foreach.hasNext),#end#end},\\"requestOverride\\": {#foreach( $key in $context.requestOverride.keySet() )\\"$key\\": \\"$context.requestOverride.get($key)\\"#if($foreach.hasNext),#end#end},\\"responseOverride\\": {#foreach( $key in $context.responseOverride.keySet() )\\"$key\\": \\"$context.responseOverride.get($key)\\"#if($foreach.hasNext),#end#end},\\"authorizer_keys\\": {#foreach( $key in $context.authorizer.keySet() )\\"$key\\": \\"$util.escapeJavaScript($context.authorizer.get($key))\\"#if($foreach.hasNext),#end#end}}"}
""")  # noqa: E501  (the recorded test's template; only the queue URL differs)
RECORDED_CONTEXT_KEYS = ["resourceId", "resourcePath", "httpMethod", "extendedRequestId", "requestTime", "path",
                         "accountId", "protocol", "requestOverride", "stage", "domainPrefix", "requestTimeEpoch",
                         "requestId", "identity", "domainName", "deploymentId", "responseOverride", "apiId"]
RECORDED_IDENTITY = {"cognitoIdentityPoolId": "", "accountId": "", "cognitoIdentityId": "", "caller": "",
                     "principalOrgId": "", "accessKey": "", "cognitoAuthenticationType": "",
                     "cognitoAuthenticationProvider": "", "userArn": "", "userAgent": "python/requests/tests",
                     "user": ""}


def test_sqs_amz_json_protocol_context():
    """SQS, test_sqs_amz_json_protocol (recorded 2025-05-20): `$context`'s keys in AWS's order, its
    maps printed as "", the identity keys, and the override maps."""
    transport = Recording(lambda body: (200, b"{}"))

    client(api(CONTEXT_TEMPLATE, {"default": {"statusCode": "200"}}), transport).post(
        "/things", headers={"User-Agent": "python/requests/tests"})

    message = json.loads(json.loads(transport.sent[0])["MessageBody"])
    assert list(message["context"]) == RECORDED_CONTEXT_KEYS
    assert {k: message["context"][k] for k in ("requestOverride", "identity", "responseOverride")} == {
        "requestOverride": "", "identity": "", "responseOverride": ""}
    assert (message["context"]["resourcePath"], message["context"]["httpMethod"]) == ("/things", "POST")
    assert {k: v for k, v in message["identity"].items() if k != "sourceIp"} == RECORDED_IDENTITY
    assert list(message["identity"]) == list(RECORDED_IDENTITY)[:4] + ["sourceIp"] + list(RECORDED_IDENTITY)[4:]
    assert message["requestOverride"] == {"path": "", "header": "", "querystring": ""}
    assert message["responseOverride"] == {"header": ""}
    assert message["authorizer_keys"] == {}


# --- overrides (docs: APIGW-12) ------------------------------------------------------------------

OVERRIDE_REQUEST = textwrap.dedent("""
    #set($context.responseOverride.status = 444)
    #set($context.responseOverride.header.foo = "bar")
    #set($context.responseOverride.custom = "is also passed around")
    {
      "statusCode": 200
    }
    """)
OVERRIDE_RESPONSE = textwrap.dedent("""
    #set($statusOverride = $context.responseOverride.status)
    #set($fooHeader = $context.responseOverride.header.foo)
    #set($custom = $context.responseOverride.custom)
    {
        "statusOverride": "$statusOverride",
        "fooHeader": "$fooHeader",
        "custom": "$custom"
    }
    """)


@pytest.mark.parametrize("with_response_template, recorded_body", [
    (True, {"custom": "is also passed around", "fooHeader": "bar", "statusOverride": "444"}),
    (False, b""),
])
def test_response_override_in_request_template(with_response_template, recorded_body):
    """INTEGRATIONS, test_integration_mock_with_response_override_in_request_template (recorded
    2025-05-16): status 444 and header foo: bar, with or without a response template. (A MOCK
    integration answers its own 200 with an empty body; a recording transport does the same.)"""
    response = {"statusCode": "200", "responseTemplates": {"application/json": OVERRIDE_RESPONSE}} \
        if with_response_template else {"statusCode": "200"}

    answer = client(api(OVERRIDE_REQUEST, {"2\\d{2}": response}), Recording()).post("/things")

    assert (answer.status_code, answer.headers["foo"]) == (444, "bar")
    assert (json.loads(answer.get_data()) if with_response_template else answer.get_data()) == recorded_body


def test_vtl_map_assignation():
    """INTEGRATIONS, test_integration_mock_with_vtl_map_assignation (recorded 2025-05-29)."""
    request = textwrap.dedent("""
        #set($paramName = "foo")
        #set($context.requestOverride.querystring[$paramName] = "bar")
        #set($paramPutName = "putfoo")
        $context.requestOverride.querystring.put($paramPutName, "putBar")
        #set($context["requestOverride"].querystring["nestedfoo"] = "nestedFoo")
        {
          "statusCode": 200
        }
        """)
    response = textwrap.dedent("""
        #set($value = $context.requestOverride.querystring["foo"])
        #set($value2 = $context.requestOverride.querystring["putfoo"])
        #set($value3 = $context.requestOverride.querystring["nestedfoo"])
        {
            "value": "$value",
            "value2": "$value2",
            "value3": "$value3"
        }
        """)

    answer = client(api(request, {"2\\d{2}": {"statusCode": "200", "responseTemplates": {
        "application/json": response}}}), Recording()).post("/things")

    assert (answer.status_code, json.loads(answer.get_data())) == (
        200, {"value": "bar", "value2": "putBar", "value3": "nestedFoo"})


@pytest.mark.parametrize("message, recorded", [
    ("path1", {"response": "path was path one"}),
    ("path2", {"response": "path was path two"}),
    ("whatever", {"response": "this is the else clause"}),
])
def test_request_overrides_in_response_template(message, recorded):
    """INTEGRATIONS, test_integration_mock_with_request_overrides_in_response_template (recorded
    2024-11-06): a value put in requestOverride by the request template is read by the response one."""
    request = textwrap.dedent("""#set($body = $util.base64Decode($input.params('testPath')))
    #set($context.requestOverride.path.body = $body)
    {
      "statusCode": 200
    }
    """)
    response = textwrap.dedent("""
    #set($body = $util.parseJson($context.requestOverride.path.body))
    #set($inputBody = $body.message)
    #if($inputBody == "path1")
    {
       "response": "path was path one"
    }
    #elseif($inputBody == "path2")
    {
       "response": "path was path two"
    }
    #else
    {
      "response": "this is the else clause"
    }
    #end
    """)
    rest_api = api(request, {"2\\d{2}": {"statusCode": "200", "responseTemplates": {"application/json": response}}},
                   path="/{testPath}")
    path = base64.b64encode(json.dumps({"message": message}).encode()).decode()

    answer = client(rest_api, Recording()).post("/" + path)

    assert json.loads(answer.get_data()) == recorded


# --- header names (docs: APIGW-9) ---------------------------------------------------------------

def test_message_attribute_from_a_header_named_as_sent():
    """SQS, test_sqs_aws_integration_with_message_attribute (recorded 2024-06-06): a header sent as
    HeaderFoo is `$input.params('HeaderFoo')`. Over a real socket: the WSGI environ loses the case."""
    template = ("Action=SendMessage&MessageBody=$input.body&MessageAttribute.1.Name=user-agent&"
                "MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=$input.params('HeaderFoo')")
    transport = Recording()
    server = make_server(LocalApiGateway(api(template, {"default": {"statusCode": "200"}}), transport,
                                         lambda request, caller: pytest.fail("reached Chalice")), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("POST", "/things", body=b'{"foo": "bar"}',
                           headers={"Content-Type": "application/json", "HeaderFoo": "BAR-Header"})
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)

    assert transport.sent[0].decode().endswith("StringValue=BAR-Header")


# --- the request validator (docs: APIGW-14, APIGW-15) ------------------------------------------------

SCHEMA = {"$schema": "http://json-schema.org/draft-04/schema#", "title": "testSchema", "type": "object",
          "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}


@pytest.mark.parametrize("body, headers, recorded_status", [
    (b'{"a": 1, "b": 2}', {"Content-Type": "application/json"}, 200),
    (b'{"test": "test"}', {"Content-Type": "application/json"}, 400),
    (b"", {}, 400),                                     # no body, no Content-Type: validated as {}
    (b"", {"Content-Type": "application/json"}, 400),
])
def test_request_validator(body, headers, recorded_status):
    """COMMON, test_api_gateway_request_validator (recorded 2024-01-10): 400 "Invalid request body"
    from the default BAD_REQUEST_BODY response, also for a request without a body."""
    answer = client(api("{}", {"default": {"statusCode": "200"}}, validator=True, model=SCHEMA), Recording()).post(
        "/things", data=body, headers=headers)

    assert answer.status_code == recorded_status
    if recorded_status == 400:
        assert json.loads(answer.get_data()) == {"message": "Invalid request body"}


# --- the DynamoDB integration (docs: APIGW-18) ----------------------------------------------------

def test_rest_api_to_dynamodb_put_item(dynamodb):
    """DYNAMODB, test_rest_api_to_dynamodb_integration[PutItem] (recorded 2024-07-19): a 200 with body
    {} (the default response passes DynamoDB's answer through), the request id headers, the item stored."""
    template = json.dumps({"TableName": TABLE, "Item": {"id": {"S": "$input.params('id')"}}})
    transport = BotocoreTransport(boto3.client("dynamodb", region_name=REGION,
                                               config=Config(retries={"total_max_attempts": 1})))
    rest_api = api(template, {"default": {"statusCode": "200"}})
    gateway = Client(LocalApiGateway(rest_api, transport, lambda request, caller: pytest.fail("reached Chalice")))

    answer = gateway.post("/things?id=test-new")

    assert (answer.status_code, json.loads(answer.get_data())) == (200, {})
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["x-amzn-RequestId"] and answer.headers["x-amz-apigw-id"]
    assert dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "test-new"}})["Item"] == {"id": {"S": "test-new"}}


def test_overrides_carry_across_a_request_and_its_response_template():
    # The recorded cases above, at the engine's seam: one Overrides per request (docs: APIGW-12).
    overrides = Overrides()
    render(OVERRIDE_REQUEST, body="", params={}, context={}, overrides=overrides)

    assert json.loads(render(OVERRIDE_RESPONSE, body="", params={}, context={}, overrides=overrides)) == {
        "statusOverride": "444", "fooHeader": "bar", "custom": "is also passed around"}
