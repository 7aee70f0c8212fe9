"""`--auth iam` on the local API Gateway: SigV4 as botocore signs it, the caller's identity in the
templates and in Chalice's events, and API Gateway's 403s for everything else (devserver/apigw_auth.py)."""
from __future__ import annotations

import datetime
import json
import time
from typing import Any, Callable, Dict, Mapping, Optional

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice import Chalice
from werkzeug.test import Client, TestResponse

from devserver.apigw import make_app
from devserver.apigw_auth import LocalAuth
from devserver.apigw_transport import DynamoDBTransport
from devserver.local_config import LocalConfig, LocalConfigError
from tests.conftest import TABLE, TEMPLATE

REGION = "us-east-1"
AUTH = LocalAuth(mode="iam", operators=frozenset({"OPS"}), region=REGION)


def echo_app() -> Chalice:
    """Chalice routes that answer with the identity their event carries."""
    app = Chalice(app_name="echo")

    @app.route("/requests/{request_id}", methods=["GET", "POST"])
    def show(request_id: str) -> Dict[str, Any]:
        request: Any = app.current_request
        return {"identity": request.context.get("identity"), "body": request.raw_body.decode()}

    @app.route("/admin/requests", methods=["GET"])
    def everything() -> Dict[str, Any]:
        request: Any = app.current_request
        return {"operator": request.context["identity"]["user"]}
    return app


class Recorder:
    """A DynamoDB stand-in: records the rendered PutItem and answers {} (stored)."""

    def __init__(self) -> None:
        self.puts: list[Dict[str, Any]] = []

    def __call__(self, action: str, body: bytes) -> tuple[int, bytes]:
        self.puts.append(json.loads(body))
        return 200, b"{}"


def gateway(transport: DynamoDBTransport, auth: LocalAuth = AUTH, clock: Callable[[], float] = time.time) -> Client:
    return Client(make_app(TEMPLATE, TABLE, "http://127.0.0.1:9", REGION, chalice_app=echo_app(),
                           transport=transport, clock=clock, auth=auth))


def signed(method: str, path: str, body: bytes = b"", *, key: str = "ALICE", secret: str = "testing",
           region: str = REGION, service: str = "execute-api",
           headers: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    request = AWSRequest(method=method, url=f"http://localhost{path}", data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return dict(request.headers.items())


def send(client: Client, method: str, path: str, body: bytes = b"", headers: Optional[Mapping[str, str]] = None,
         **signing: Any) -> TestResponse:
    sent = signed(method, path, body, **signing) if headers is None else dict(headers)
    # The raw request line, as the server hands it over (what SigV4 signs: the path still encoded).
    return client.open(path, method=method, data=body, headers=sent, environ_overrides={"RAW_URI": path})


def answer(response: TestResponse) -> Any:
    return json.loads(response.get_data())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Client:
    return gateway(recorder)


def test_a_signed_put_stores_the_signers_identity_as_owner(client, recorder):
    response = send(client, "PUT", "/requests", b'{"a": 1}', headers=None, key="ALICE")

    assert response.status_code == 202, response.get_data()
    [put] = recorder.puts
    assert put["Item"]["owner"] == {"S": "iam-ALICE"} and put["Item"]["id"]["S"].startswith("iam-ALICE/")


def test_a_chalice_route_gets_the_identity_api_gateway_would_give_it(client):
    # The canary for devserver.apigw.IdentifiedGateway: Chalice's local events carry only sourceIp.
    response = send(client, "POST", "/requests/a%3Ab?x=1&y=%2F", b'{"z": "\xc3\xa9"}', key="BOB")

    assert response.status_code == 200, response.get_data()
    body = answer(response)
    assert body["body"] == '{"z": "\u00e9"}'
    identity = body["identity"]
    assert {k: identity[k] for k in ("user", "caller", "accessKey", "accountId", "userArn")} == {
        "user": "BOB", "caller": "BOB", "accessKey": "BOB", "accountId": "123456789012",
        "userArn": "arn:aws:iam::123456789012:user/BOB"}
    assert identity["sourceIp"] == "127.0.0.1"


def test_without_auth_every_caller_is_anonymous(recorder):
    client = gateway(recorder, auth=LocalAuth())

    response = send(client, "GET", "/requests/x", headers={})

    assert response.status_code == 200 and answer(response)["identity"]["user"] is None


def test_headers_added_after_signing_do_not_matter_but_signed_ones_do(client):
    headers = signed("GET", "/requests/x")
    assert send(client, "GET", "/requests/x", headers={**headers, "X-Unsigned": "anything"}).status_code == 200

    tampered = send(client, "GET", "/requests/x", headers={**headers, "X-Amz-Date": "20260101T000000Z"})
    assert tampered.status_code == 403


def test_a_signature_for_another_path_or_body_is_refused(client, recorder):
    for method, path, body in (("GET", "/requests/y", b""), ("PUT", "/requests", b'{"a": 2}')):
        headers = signed(method, "/requests/x" if method == "GET" else "/requests", b'{"a": 1}')
        response = send(client, method, path, body, headers=headers)

        assert response.status_code == 403
        assert answer(response)["message"].startswith("The request signature we calculated does not match")
    assert recorder.puts == []


@pytest.mark.parametrize("signing, message", [
    ({"secret": "wrong"}, "The request signature we calculated does not match the signature you provided."),
    ({"region": "eu-west-1"}, "Credential should be scoped to a valid region, not 'eu-west-1'."),
    ({"service": "dynamodb"}, "Credential should be scoped to correct service: 'execute-api'."),
])
def test_a_wrongly_signed_request_is_403_with_the_reason(client, recorder, signing, message):
    response = send(client, "PUT", "/requests", b'{"a": 1}', **signing)

    assert response.status_code == 403
    assert answer(response)["message"].startswith(message)
    assert response.headers["x-amzn-RequestId"]
    assert recorder.puts == []


@pytest.mark.parametrize("headers, message", [
    ({}, "Missing Authentication Token"),
    ({"Authorization": "Bearer abc"}, "Authorization header requires 'AWS4-HMAC-SHA256'."),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=ALICE/20261201/us-east-1/execute-api/aws4_request"},
     "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders'"),
    ({"Authorization": "AWS4-HMAC-SHA256 Credential=ALICE/x, SignedHeaders=host, Signature=00"},
     "Credential must have exactly 5 slash-delimited elements"),
])
def test_a_missing_or_malformed_signature_is_403(client, recorder, headers, message):
    response = send(client, "PUT", "/requests", b'{"a": 1}', headers=headers)

    assert (response.status_code, answer(response)["message"].startswith(message)) == (403, True), answer(response)
    assert recorder.puts == []


@pytest.mark.parametrize("skew, message", [(-301, "Signature not yet current: "), (301, "Signature expired: ")])
def test_a_signature_more_than_five_minutes_from_now_is_refused(recorder, skew, message):
    headers = signed("GET", "/requests/x")
    # The gateway's clock from the signature's own second (X-Amz-Date drops the fraction): the
    # answer must not hang on how much of that second had passed when it was signed.
    signed_at = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    at = signed_at.replace(tzinfo=datetime.timezone.utc).timestamp()
    client = gateway(recorder, clock=lambda: at + skew)

    response = send(client, "GET", "/requests/x", headers=headers)

    assert response.status_code == 403 and answer(response)["message"].startswith(message)


def test_a_signature_four_minutes_old_is_accepted(recorder):
    client = gateway(recorder, clock=lambda: time.time() + 240)

    assert send(client, "GET", "/requests/x").status_code == 200


def test_only_operators_may_call_the_admin_routes(client):
    refused = send(client, "GET", "/admin/requests?status=FAILED", key="ALICE")
    allowed = send(client, "GET", "/admin/requests?status=FAILED", key="OPS")

    assert refused.status_code == 403
    assert answer(refused)["message"] == (
        "User: arn:aws:iam::123456789012:user/ALICE is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:123456789012:local/api/GET/admin/requests")
    assert (allowed.status_code, answer(allowed)) == (200, {"operator": "OPS"})


def test_a_body_over_the_quota_is_413_before_any_signature_check(client):
    body = b"x" * (10 * 1024 * 1024 + 1)

    response = client.open("/requests/x/retry", method="POST", data=body, headers={"Content-Type": "application/json"})

    # The API's own REQUEST_TOO_LARGE gateway response, as on the PUT route: gateway responses are API-wide.
    assert response.status_code == 413
    assert answer(response)["message"].startswith("request body too large")


# --- configuration -----------------------------------------------------------------------------------

def test_the_local_config_reads_auth_operators_and_secret_from_the_environment():
    config = LocalConfig.from_env({"STOREFIRST_AUTH": "iam", "STOREFIRST_OPERATORS": "OPS, AUDIT,",
                                   "STOREFIRST_SECRET_KEY": "s3cret"})

    assert (config.auth, config.operators, config.secret_key) == ("iam", frozenset({"OPS", "AUDIT"}), "s3cret")
    assert LocalConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize("environ, message", [
    ({"STOREFIRST_AUTH": "cognito"}, "STOREFIRST_AUTH must be one of none, iam"),
    ({"STOREFIRST_AUTH": "none", "STOREFIRST_OPERATORS": "OPS"}, "it needs STOREFIRST_AUTH=iam"),
])
def test_bad_auth_settings_are_refused_with_the_reason(environ, message):
    with pytest.raises(LocalConfigError, match=message):
        LocalConfig.from_env(environ)


@pytest.mark.parametrize("explicit, stage_mode, expected", [
    (None, "iam", "iam"), (None, "none", "none"), (None, "api_key", "none"), ("none", "iam", "none"),
    ("iam", "none", "iam"),
])
def test_the_local_auth_follows_the_stage_unless_told(explicit, stage_mode, expected):
    from devserver.apigw_auth import local_auth

    assert local_auth(LocalConfig(auth=explicit), stage_mode).mode == expected
