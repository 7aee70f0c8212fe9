"""The local API Gateway: a WSGI app serving infra/template.yaml's `aws` integration routes the
way API Gateway does, and every other request through Chalice's own local gateway.

Per integration request, in API Gateway's order (docs: APIGW-13, APIGW-14, APIGW-17, APIGW-19):
 1. payload over 10 MB -> REQUEST_TOO_LARGE (checked before the body is read; the front end
    refuses it before any method processing, so the Content-Type does not matter);
 2. method request validation: when the validator validates bodies and the method has a model
    for the request's Content-Type (AWS docs: "If no matching content type is found, request
    validation is not performed"), the body (empty = `{}`, docs: APIGW-15) must satisfy it -> BAD_REQUEST_BODY;
 3. integration request: template by exact Content-Type (missing = application/json);
    no template -> 415 UNSUPPORTED_MEDIA_TYPE under `never`, and under `when_no_templates` when
    any template exists, else the raw body passes through;
 4. the rendered body is POSTed to DynamoDB (the uri's action) -> INTEGRATION_FAILURE /
    INTEGRATION_TIMEOUT when no answer comes;
 5. integration response by DynamoDB's status (devserver.apigw_responses).
A template that fails to render gives AWS's 500 "Internal server error". The request and
response templates of one request share its `$context` overrides (docs: APIGW-12). Header names
reach the templates as the client spelled them (docs: APIGW-9): the WSGI environ upper-cases them,
so the server's request handler (make_server) records the spelling.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib
import logging
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException
from werkzeug import serving
from werkzeug.wrappers import Request, Response

from devserver import infra
from devserver.apigw_auth import Denied, LocalAuth
from devserver.apigw_responses import (
    HttpResponse,
    MethodRequest,
    check_parameters,
    gateway_response,
    integration_response,
    select_integration_response,
)
from devserver.apigw_transport import DynamoDBTransport, HttpTransport, IntegrationFailure, IntegrationTimeout
from devserver.apigw_validation import validation_error
from devserver.vtl import BodyNotJson, Overrides, VtlError, render
from devserver.vtl_context import identity

__all__ = [
    "HEADER_NAMES", "CaseKeepingRequestHandler", "ChaliceRoutes", "IdGenerator", "IdentifiedGateway", "LocalApiGateway",
    "make_app", "make_server",
]

LOG = logging.getLogger(__name__)
NO_AUTH = LocalAuth()
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway quota "10 MB" (docs: APIGW-20)
HEADER_NAMES = "storefirst.header_names"  # environ key: the request's header names as sent
BODY = "storefirst.body"  # environ key: the payload, once read (request_body)
PROJECT_DIR = Path(__file__).resolve().parent.parent
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _short_id(text: str) -> str:
    """A stable 6-character id, shaped like API Gateway's resource and deployment ids."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]


def _extended_request_id() -> str:
    # Shaped like API Gateway's (e.g. "BQGojGkBoAMFwYg="): 11 random bytes, base64.
    return base64.b64encode(os.urandom(11)).decode("ascii")


@dataclass(frozen=True)
class IdGenerator:
    request_id: Callable[[], str] = lambda: str(uuid.uuid4())
    extended_request_id: Callable[[], str] = _extended_request_id


def request_body(request: Request) -> bytes | None:
    """The payload, read once and kept for whoever asks next; None when it is over API Gateway's
    10 MB quota (the stream is read no further than that, whatever Content-Length says)."""
    if BODY not in request.environ:
        body = None if (request.content_length or 0) > MAX_PAYLOAD_BYTES else request.stream.read(MAX_PAYLOAD_BYTES + 1)
        request.environ[BODY] = None if body is None or len(body) > MAX_PAYLOAD_BYTES else body
    kept: bytes | None = request.environ[BODY]
    return kept


def _anonymous(request: Request) -> dict[str, str | None]:
    """`$context.identity` before (or without) a signature: where the call came from."""
    return identity(request.remote_addr or "127.0.0.1", request.headers.get("User-Agent"))


class IdentifiedGateway(LocalGateway):
    """Chalice's local gateway, whose events carry the caller's `requestContext.identity` as API
    Gateway fills it (devserver.apigw_auth): Chalice's own has only `sourceIp`. It overrides
    `_generate_lambda_event`, a private method of chalice.local; tests/test_chalice_local.py's
    canary fails if a Chalice release changes it."""

    identity: Mapping[str, Any] = {}

    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: Any) -> Any:
        event = super()._generate_lambda_event(method, path, headers, body)
        event["requestContext"]["identity"] = dict(self.identity)
        return event


class ChaliceRoutes:
    """Chalice's own routes through chalice.local.LocalGateway, what `chalice local` runs.

    Calls are serialised: Chalice keeps `app.current_request` on the app object, and `chalice
    local` makes that thread-local by rewriting the app's class; a lock avoids that trick."""

    def __init__(self, app: Chalice, *, chalice_stage: str = "dev", project_dir: Path = PROJECT_DIR) -> None:
        config = Config.create(
            chalice_stage=chalice_stage, app_name=app.app_name, chalice_app=app, project_dir=str(project_dir)
        )
        self._gateway = IdentifiedGateway(app, config)
        self._lock = threading.Lock()

    def __call__(self, request: Request, identity: Mapping[str, Any]) -> HttpResponse:
        # The path as the client sent it, as `chalice local` hands it over: werkzeug's `path` is
        # decoded, and quoting it again would encode what the client did not (":" -> "%3A").
        path = request.environ.get("RAW_URI") or urllib.parse.quote(request.path)
        if "?" not in path and request.query_string:
            path += "?" + request.query_string.decode("latin-1")
        # Chalice's event converter expects lower-case names (it checks 'content-type').
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = request_body(request)
        try:
            with self._lock:
                self._gateway.identity = identity
                answer = self._gateway.handle_request(method=request.method, path=path, headers=headers,
                                                      body=body or None)
        except LocalGatewayException as exc:
            return HttpResponse(exc.CODE, tuple(exc.headers.items()), exc.body or b"")
        headers_out = [(k, str(v)) for k, v in (answer.get("headers") or {}).items()]
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers_out.extend((name, str(value)) for value in values)
        payload = answer.get("body") or b""
        if answer.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in headers_out):
            headers_out.append(("Content-Type", "application/json"))
        return HttpResponse(answer["statusCode"], tuple(headers_out), payload)


class LocalApiGateway:
    """WSGI application: integration routes from infra, everything else to Chalice."""

    def __init__(
        self,
        api: infra.RestApi,
        transport: DynamoDBTransport,
        chalice_routes: Callable[[Request, Mapping[str, Any]], HttpResponse],
        *,
        auth: LocalAuth = NO_AUTH,
        clock: Callable[[], float] = time.time,
        ids: IdGenerator = IdGenerator(),
        stage: str = "api",
        account_id: str = "123456789012",
        api_id: str = "local",
    ) -> None:
        check_parameters([response for route in api.routes for response in route.responses], api.gateway_responses)
        self._api = api
        self._routes = [(_path_pattern(route.path), route) for route in api.routes]
        self._transport = transport
        self._chalice_routes = chalice_routes
        self._auth = auth
        self._clock = clock
        self._ids = ids
        self._stage = stage
        self._account_id = account_id
        self._api_id = api_id
        # Stand-ins for API Gateway's generated ids: stable per resource, new per API definition.
        self._resource_ids = {route.path: _short_id(route.path) for route in api.routes}
        self._deployment_id = _short_id(repr(api))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        answer = self.handle(request)
        response = Response(answer.body, status=answer.status)
        for name, value in answer.headers:
            if name.lower() == "content-type":
                response.headers.set(name, value)  # replaces werkzeug's text/html default
            else:
                response.headers.add(name, value)
        return response(environ, start_response)

    def handle(self, request: Request) -> HttpResponse:
        if request_body(request) is None:
            # Over the payload quota: refused on every route, before auth and routing (docs:
            # APIGW-20), with the API's REQUEST_TOO_LARGE gateway response, which is API-wide.
            return gateway_response(self._api.gateway_responses, "REQUEST_TOO_LARGE",
                                    self._method_request(None, {}, request, _anonymous(request)))
        caller = self._caller(request)
        if isinstance(caller, HttpResponse):
            return caller
        for pattern, route in self._routes:
            match = pattern.fullmatch(request.path)
            if match and route.method == request.method:
                return self._invoke(route, match.groupdict(), request, caller)
        return self._chalice_routes(request, caller)

    def _caller(self, request: Request) -> dict[str, str | None] | HttpResponse:
        """The caller's `$context.identity`, or the 403 that refuses it (devserver.apigw_auth)."""
        anonymous = _anonymous(request)
        body = request_body(request) or b""  # never None here: handle() refused that
        signed = self._auth.caller(request, body,
                                   datetime.datetime.fromtimestamp(self._clock(), datetime.timezone.utc))
        if isinstance(signed, Denied):
            call = self._method_request(None, {}, request, anonymous)
            LOG.info("%s %s -> 403 %s requestId=%s", request.method, request.path, signed.response_type,
                     call.context["requestId"])
            return gateway_response(self._api.gateway_responses, signed.response_type, call, message=signed.message)
        return {**anonymous, **(signed or {})}

    def _invoke(self, route: infra.IntegrationRoute, path_params: dict[str, str], request: Request,
                caller: Mapping[str, str | None]) -> HttpResponse:
        method_request = self._method_request(route, path_params, request, caller)
        answer = self._integrate(route, method_request, request)
        LOG.info(
            "%s %s -> %d requestId=%s", route.method, route.path, answer.status, method_request.context["requestId"]
        )
        return answer

    def _integrate(self, route: infra.IntegrationRoute, call: MethodRequest, request: Request) -> HttpResponse:
        def failure(response_type: str, **details: str) -> HttpResponse:
            return gateway_response(self._api.gateway_responses, response_type, call, **details)

        overrides = Overrides()  # this request's $context.requestOverride / responseOverride
        body = request_body(request) or b""  # never None here: handle() refused that
        content_type = request.headers.get("Content-Type") or "application/json"
        model = route.body_models.get(content_type)
        if route.validator is not None and route.validator.validate_body and model is not None:
            error = validation_error(model, body)
            if error is not None:
                return failure("BAD_REQUEST_BODY", validation_error=error)
        template = route.request_templates.get(content_type)
        if template is None:
            if route.passthrough_behavior == "never" or (
                route.passthrough_behavior == "when_no_templates" and route.request_templates
            ):
                return failure("UNSUPPORTED_MEDIA_TYPE")
            integration_body = body
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                # AWS behaviour unverified (LocalStack answers 500, docs: LOCAL-3): a text template
                # cannot see these bytes, so the client gets a 400 that says why.
                return failure("DEFAULT_4XX", message="request body is not valid UTF-8 text")
            try:
                integration_body = render(
                    template,
                    body=text,
                    params=call.params,
                    context=call.context,
                    stage_variables=call.stage_variables,
                    overrides=overrides,
                ).encode("utf-8")
            except BodyNotJson as exc:
                return failure("DEFAULT_4XX", message=str(exc))
            except VtlError:
                LOG.exception("request template failed requestId=%s", call.context["requestId"])
                return failure("DEFAULT_5XX")
        try:
            status, answer = self._transport(route.action, integration_body)
        except IntegrationTimeout:
            return failure("INTEGRATION_TIMEOUT")
        except IntegrationFailure:
            LOG.warning("integration failure requestId=%s", call.context["requestId"], exc_info=True)
            return failure("INTEGRATION_FAILURE")
        selected = select_integration_response(route, status)
        if selected is None:
            LOG.error("No match for output mapping and no default output mapping configured (status %d)", status)
            return failure("DEFAULT_5XX")
        try:
            return integration_response(selected, call, answer, overrides=overrides)
        except VtlError:
            LOG.exception("response template failed requestId=%s", call.context["requestId"])
            return failure("DEFAULT_5XX")

    def _method_request(
        self, route: infra.IntegrationRoute | None, path_params: dict[str, str], request: Request,
        caller: Mapping[str, str | None],
    ) -> MethodRequest:
        """What the method's templates see; `route` None: a request refused before any method."""
        now = self._clock()
        request_id = request.headers.get("X-Amzn-RequestId")  # clients may force it (docs: APIGW-1)
        request_id = None if request_id is None else request_id.strip(" \t")
        host = request.host or "localhost"
        # AWS's keys in AWS's keySet() order (docs: APIGW-10); the two override maps are this
        # request's own, put in place by devserver.vtl_context for each template.
        resource = route.path if route is not None else request.path
        context = {
            "resourceId": self._resource_ids.get(resource) or _short_id(resource),
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": self._ids.extended_request_id(),
            "requestTime": _clf_time(now),
            "path": f"/{self._stage}{request.path}",
            "accountId": self._account_id,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestOverride": {},
            "stage": self._stage,
            "domainPrefix": host.split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id if request_id is not None else self._ids.request_id(),
            "identity": dict(caller),
            "domainName": host,
            "deploymentId": self._deployment_id,
            "responseOverride": {},
            "apiId": self._api_id,
        }
        params = {
            "path": path_params,
            "querystring": {name: values[-1] for name, values in request.args.lists()},
            # HTTP drops a field value's surrounding whitespace (RFC 9110 §5.5); API Gateway does too.
            "header": {name: value.strip(" \t") for name, value in _headers_as_sent(request)},
        }
        return MethodRequest(params=params, context=context, accept=request.headers.get("Accept"), stage_variables={})


def _headers_as_sent(request: Request) -> list[tuple[str, str]]:
    """The request's headers named as the client spelled them (the first spelling, when one name
    came in two spellings), where the server recorded them; else werkzeug's normalised names."""
    spelled: dict[str, str] = {}
    for name in request.environ.get(HEADER_NAMES, ()):
        spelled.setdefault(name.lower(), name)
    return [(spelled.get(name.lower(), name), value) for name, value in request.headers.items()]


class CaseKeepingRequestHandler(serving.WSGIRequestHandler):
    """werkzeug's request handler, plus the header names as received (under HEADER_NAMES)."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[HEADER_NAMES] = tuple(self.headers.keys())
        return environ


def _path_pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{([A-Za-z0-9_.-]+)\}", path)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(regex)


def _clf_time(epoch_seconds: float) -> str:
    t = time.gmtime(epoch_seconds)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def _load_project_app(project_dir: Path) -> Chalice:
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    app: Chalice = importlib.import_module("app").app
    return app


def make_app(
    template_path: str | Path,
    table_name: str,
    dynamodb_endpoint: str,
    region: str,
    *,
    chalice_app: Chalice | None = None,
    transport: DynamoDBTransport | None = None,
    clock: Callable[[], float] = time.time,
    ids: IdGenerator = IdGenerator(),
    stage: str = "api",
    account_id: str = "123456789012",
    project_dir: Path = PROJECT_DIR,
    physical_names: Mapping[str, str] | None = None,
    chalice_stage: str = "dev",
    auth: LocalAuth = NO_AUTH,
) -> LocalApiGateway:
    """The local API for infra/template.yaml and the project's Chalice app (app.py).

    `RequestsTable` resolves to table_name; the environment the Chalice routes read
    (TABLE_NAME, DYNAMODB_ENDPOINT_URL) is the caller's to set."""
    template = infra.load_template(template_path)
    names = {"RequestsTable": table_name, **(physical_names or {})}
    refs = infra.local_refs(template, region=region, account_id=account_id, physical_names=names)
    api = infra.rest_api(template, refs)
    timeout = max((route.timeout_ms for route in api.routes), default=infra.DEFAULT_TIMEOUT_MS) / 1000
    return LocalApiGateway(
        api,
        transport if transport is not None else HttpTransport(dynamodb_endpoint, region, timeout_seconds=timeout),
        ChaliceRoutes(
            chalice_app if chalice_app is not None else _load_project_app(project_dir), project_dir=project_dir,
            chalice_stage=chalice_stage,
        ),
        clock=clock,
        ids=ids,
        stage=stage,
        account_id=account_id,
        auth=auth,
    )


def make_server(app: Callable[..., Iterable[bytes]], host: str = "127.0.0.1",
                port: int = 8000) -> serving.BaseWSGIServer:
    """A threaded server (port 0 picks a free one); run `serve_forever()`, stop with `shutdown()`.
    It hands `app` the header names as sent (docs: APIGW-9), which a WSGI environ loses."""
    return serving.make_server(host, port, app, threaded=True, request_handler=CaseKeepingRequestHandler)

