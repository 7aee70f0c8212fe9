"""devserver/aws_endpoint.py: the canary on the moto it extends, and the Swagger 2.0 import against
moto's API Gateway backend in process. tests/test_deploy.py runs the endpoint itself."""
from __future__ import annotations

import copy
import hashlib
import inspect
from typing import Any, Dict, Iterator, Tuple

import boto3
import moto
import pytest
from moto import mock_aws
from moto.apigateway.models import APIGatewayBackend, RestAPI, apigateway_backends
from moto.awslambda.models import LambdaFunction
from moto.ssm.models import ParameterDict

from devserver.aws_endpoint import STAND_IN_LAYER_VERSION, import_swagger, install_extensions

MOTO_VERSION = "5.2.5"
# What devserver/aws_endpoint.py replaces (the first four) or calls, with a digest of its source.
EXTENDED = {
    APIGatewayBackend.import_rest_api: "dedcce114ca39db4",
    APIGatewayBackend.put_rest_api: "f1dc2dc5beb0efd1",
    LambdaFunction._get_layers_data: "dd2f13beb05252c8",
    ParameterDict._check_loading_status: "7cfa610f1d0e77b6",
    APIGatewayBackend.create_rest_api: "a9cca3da13a75ce6",
    APIGatewayBackend.create_model: "b443ac00b11ea093",
    APIGatewayBackend.create_request_validator: "f81c5d3e9b74ba6a",
    APIGatewayBackend.put_gateway_response: "4503cc10ef8ff9fd",
    APIGatewayBackend.create_resource: "677e7b7a5078b3df",
    APIGatewayBackend.put_method: "c9b886c8d14768b4",
    APIGatewayBackend.put_method_response: "fdd4cbcb9dc84e0c",
    APIGatewayBackend.put_integration: "a9227e033ac89bec",
    APIGatewayBackend.put_integration_response: "8e93df510bb2d264",
    RestAPI.get_resource_for_path: "ecc33ba0bdd94ac2",
    RestAPI.__init__: "5e4642db77632935",  # the attributes an overwrite resets
}
ROLE = "arn:aws:iam::123456789012:role/put-item"
TEMPLATE = '{"TableName": "T", "Item": {"id": {"S": "$context.requestId"}}}'
DOCUMENT: Dict[str, Any] = {
    "swagger": "2.0",
    "info": {"version": "1.0", "title": "storefirst"},  # no description: Chalice sets none
    "securityDefinitions": {
        "sigv4": {"in": "header", "type": "apiKey", "name": "Authorization",
                  "x-amazon-apigateway-authtype": "awsSigv4"},
        "api_key": {"in": "header", "type": "apiKey", "name": "x-api-key"}},
    "x-amazon-apigateway-binary-media-types": ["application/octet-stream"],
    "x-amazon-apigateway-request-validators": {"body-only": {"validateRequestBody": True,
                                                             "validateRequestParameters": False}},
    "x-amazon-apigateway-gateway-responses": {"BAD_REQUEST_BODY": {
        "statusCode": 400, "responseTemplates": {"application/json": '{"message": "$context.error.message"}'}}},
    "definitions": {"Empty": {"type": "object", "title": "Empty Schema"}, "RequestBody": {"type": "object"}},
    "paths": {
        "/requests": {
            "put": {
                "consumes": ["application/json", "application/json; charset=utf-8"],
                "produces": ["application/json"],
                "security": [{"sigv4": []}],
                "x-amazon-apigateway-request-validator": "body-only",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "type": "string"},
                               {"name": "body", "in": "body", "required": True,
                                "schema": {"$ref": "#/definitions/RequestBody"}}],
                "responses": {"202": {"description": "stored", "schema": {"$ref": "#/definitions/Empty"}},
                              "400": {"description": "bad"}},
                "x-amazon-apigateway-integration": {
                    "type": "aws", "httpMethod": "POST", "credentials": ROLE, "passthroughBehavior": "never",
                    "uri": "arn:aws:apigateway:eu-central-1:dynamodb:action/PutItem",
                    "requestTemplates": {"application/json": TEMPLATE},
                    "responses": {"default": {"statusCode": "202", "responseTemplates": {"application/json": "{}"}},
                                  "4\\d{2}": {"statusCode": "400"}}}},
            "options": {
                "responses": {"200": {"description": "CORS", "headers": {"Access-Control-Allow-Origin": {}}}},
                "x-amazon-apigateway-integration": {
                    "type": "mock", "requestTemplates": {"application/json": '{"statusCode": 200}'},
                    "responses": {"default": {"statusCode": "200", "responseParameters": {
                        "method.response.header.Access-Control-Allow-Origin": "'*'"}}}}}},
        "/requests/{request_id}": {
            "get": {
                "security": [{"api_key": []}],
                "parameters": [{"name": "request_id", "in": "path", "required": True, "type": "string"}],
                "responses": {"200": {"description": "200 response", "schema": {"$ref": "#/definitions/Empty"}}},
                "x-amazon-apigateway-integration": {
                    "type": "aws_proxy", "httpMethod": "POST", "passthroughBehavior": "when_no_match",
                    "contentHandling": "CONVERT_TO_TEXT",
                    "uri": "arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/"
                           "arn:aws:lambda:eu-central-1:123456789012:function:storefirst-dev/invocations",
                    "responses": {"default": {"statusCode": "200"}}}}}},
}


@pytest.fixture
def api() -> Iterator[Tuple[APIGatewayBackend, str, Any]]:
    with mock_aws():
        backend = apigateway_backends["123456789012"]["eu-central-1"]
        rest_api = backend.create_rest_api(name="storefirst", description="")
        yield backend, rest_api.id, boto3.client("apigateway", region_name="eu-central-1")


@pytest.fixture
def imported(api: Tuple[APIGatewayBackend, str, Any]) -> Tuple[Any, str]:
    """DOCUMENT imported as `chalice deploy` sends it: the client and the API's id."""
    backend, api_id, client = api
    import_swagger(backend, api_id, DOCUMENT, "overwrite")
    return client, api_id


def method(client: Any, api_id: str, path: str, http_method: str) -> Dict[str, Any]:
    [resource] = [r for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == path]
    return client.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=http_method)


def test_moto_is_the_version_the_endpoint_extends():
    assert moto.__version__ == MOTO_VERSION, (
        f"moto {moto.__version__} is not {MOTO_VERSION}: re-check devserver/aws_endpoint.py (does moto now import "
        f"Swagger 2.0, or take other accounts' layers? then drop the extension) and the digests in {__file__}")


@pytest.mark.parametrize("function", list(EXTENDED), ids=lambda f: f.__qualname__)
def test_what_the_endpoint_replaces_or_calls_is_unchanged(function):
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]

    assert digest == EXTENDED[function], (
        f"moto's {function.__qualname__} changed: re-check how devserver/aws_endpoint.py replaces or calls it, "
        f"then update its digest here")


def test_a_swagger_import_builds_the_service_integration_as_api_gateway_does(imported):
    client, api_id = imported

    put = method(client, api_id, "/requests", "PUT")
    assert (put["authorizationType"], put["apiKeyRequired"]) == ("AWS_IAM", False)
    assert put["requestParameters"] == {"method.request.header.Idempotency-Key": False}
    assert put["requestModels"] == {"application/json": "RequestBody", "application/json; charset=utf-8": "RequestBody"}
    validator = client.get_request_validator(restApiId=api_id, requestValidatorId=put["requestValidatorId"])
    assert (validator["name"], validator["validateRequestBody"], validator["validateRequestParameters"]) == (
        "body-only", True, False)
    assert put["methodResponses"]["202"]["responseModels"] == {"application/json": "Empty"}
    assert set(put["methodResponses"]) == {"202", "400"}
    integration = put["methodIntegration"]
    assert (integration["type"], integration["httpMethod"], integration["passthroughBehavior"]) == ("AWS", "POST",
                                                                                                  "NEVER")
    assert (integration["uri"], integration["credentials"]) == (
        "arn:aws:apigateway:eu-central-1:dynamodb:action/PutItem", ROLE)
    assert integration["requestTemplates"] == {"application/json": TEMPLATE}
    assert integration["timeoutInMillis"] == 29000
    responses = integration["integrationResponses"]
    assert responses["202"] == {"statusCode": "202", "responseTemplates": {"application/json": "{}"}}
    assert responses["400"]["selectionPattern"] == "4\\d{2}"
    [gateway] = client.get_gateway_responses(restApiId=api_id)["items"]
    assert (gateway["responseType"], gateway["responseTemplates"]) == (
        "BAD_REQUEST_BODY", {"application/json": '{"message": "$context.error.message"}'})
    assert client.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["application/octet-stream"]


def test_chalices_proxy_and_mock_routes_import_too(imported):
    client, api_id = imported

    get = method(client, api_id, "/requests/{request_id}", "GET")
    assert (get["authorizationType"], get["apiKeyRequired"]) == ("NONE", True)
    assert get["requestParameters"] == {"method.request.path.request_id": True}
    assert (get["methodIntegration"]["type"], get["methodIntegration"]["contentHandling"]) == ("AWS_PROXY",
                                                                                               "CONVERT_TO_TEXT")
    options = method(client, api_id, "/requests", "OPTIONS")
    assert options["methodIntegration"]["type"] == "MOCK"
    assert options["methodResponses"]["200"]["responseParameters"] == {
        "method.response.header.Access-Control-Allow-Origin": False}


def test_overwrite_drops_what_the_new_definition_lacks_and_merge_keeps_it(api):
    backend, api_id, client = api
    import_swagger(backend, api_id, DOCUMENT, "overwrite")
    without_put = copy.deepcopy(DOCUMENT)
    del without_put["paths"]["/requests"]["put"]
    del without_put["x-amazon-apigateway-gateway-responses"]

    import_swagger(backend, api_id, without_put, "merge")
    assert method(client, api_id, "/requests", "PUT")["httpMethod"] == "PUT"
    import_swagger(backend, api_id, without_put, "overwrite")

    paths = {r["path"]: set(r.get("resourceMethods", {})) for r in client.get_resources(restApiId=api_id)["items"]}
    assert paths == {"/": set(), "/requests": {"OPTIONS"}, "/requests/{request_id}": {"GET"}}
    assert client.get_gateway_responses(restApiId=api_id)["items"] == []
    assert [v["name"] for v in client.get_request_validators(restApiId=api_id)["items"]] == ["body-only"]


def test_ssm_answers_powertools_public_parameters_with_the_layer_arn_shape():
    install_extensions()
    name = "/aws/service/powertools/python/x86_64/python3.11/3.37.0"
    with mock_aws():
        ssm = boto3.client("ssm", region_name="eu-central-1")

        parameter = ssm.get_parameter(Name=name)["Parameter"]

        assert parameter["Value"] == ("arn:aws:lambda:eu-central-1:017000801446:layer:"
                                      f"AWSLambdaPowertoolsPythonV3-python311-x86_64:{STAND_IN_LAYER_VERSION}")
        with pytest.raises(ssm.exceptions.ParameterNotFound):
            ssm.get_parameter(Name="/aws/service/powertools/python/x86_64/python3.11/latest-ish")
