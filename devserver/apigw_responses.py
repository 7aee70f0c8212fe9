"""What goes back to the client: integration responses and gateway responses.

Integration response (docs: APIGW-17): chosen by a FULL regex match of its selection pattern
against the backend's HTTP status (LocalStack's `re.match` only anchors the start, docs: LOCAL-3),
else the default; none at all is a 500. Its template is chosen by Accept, then application/json,
then the first one; no template passes the backend body through (an empty one is `{}` to a
template, docs: APIGW-2). The request's `$context.responseOverride` (set by the request or the
response template, docs: APIGW-12) comes last: its status wins when it is an int in 100-599, and
its headers replace response parameters of the same name.

Gateway response (API Gateway's own errors, docs: APIGW-19): the API's customisation of that type,
else its DEFAULT_4XX/DEFAULT_5XX customisation, else AWS's default
`{"message":$context.error.messageString}`. Its template is NOT run through VTL: AWS documents
"simple variable substitution" only, so `$context.*`, `$stageVariables.*` and
`$method.request.<where>.<name>` are replaced and everything else, `#if` included, stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devserver.infra import GatewayResponse, InfraError, IntegrationResponse, IntegrationRoute
from devserver.vtl import Overrides, render
from devserver.vtl_java import java_str

__all__ = [
    "GATEWAY_RESPONSE_DEFAULTS",
    "HttpResponse",
    "MethodRequest",
    "check_parameters",
    "gateway_response",
    "integration_response",
    "select_integration_response",
]

# AWS defaults per gateway response type: status and $context.error.message.
GATEWAY_RESPONSE_DEFAULTS: Mapping[str, tuple[int, str]] = {
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_SIGNATURE": (403, "Forbidden"),
    "ACCESS_DENIED": (403, "Forbidden"),
    "DEFAULT_4XX": (400, "Bad Request"),
    "DEFAULT_5XX": (500, "Internal server error"),
}
_DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
_LITERAL = re.compile(r"^'(.*)'$", re.S)
_REQUEST_PARAMETER = re.compile(r"^method\.request\.(path|querystring|header)\.(.+)$")
_GATEWAY_VARIABLE = re.compile(
    r"\$(?:(context(?:\.[A-Za-z0-9_]+)+)|stageVariables\.([A-Za-z0-9_]+)"
    r"|method\.request\.(path|querystring|header)\.([A-Za-z0-9_-]+))"
)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class MethodRequest:
    """What templates may read about the client's request: `$input.params()`, `$context`, Accept."""

    params: Mapping[str, Mapping[str, str]]
    context: Mapping[str, Any]
    accept: str | None
    stage_variables: Mapping[str, str]

    def id_headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("x-amzn-RequestId", self.context["requestId"]),
            ("x-amz-apigw-id", self.context["extendedRequestId"]),
        )


def check_parameters(
    integration_responses: Iterable[IntegrationResponse], gateway: Mapping[str, GatewayResponse]
) -> None:
    """Fail at start-up on response parameters this emulator cannot evaluate (transports return
    no backend headers, so `integration.response.*` mappings are not available)."""
    for parameters in [r.parameters for r in integration_responses] + [g.parameters for g in gateway.values()]:
        for target, source in parameters.items():
            if not (_LITERAL.match(source) or _REQUEST_PARAMETER.match(source)):
                raise InfraError(
                    f"response parameter {target}: {source!r} is not emulated (only 'literal' and method.request.*)"
                )


def pick_template(templates: Mapping[str, str], accept: str | None) -> tuple[str, str] | None:
    if not templates:
        return None
    for content_type in (accept, "application/json"):
        if content_type is not None and content_type in templates:
            return content_type, templates[content_type]
    return next(iter(templates.items()))


def select_integration_response(route: IntegrationRoute, status: int) -> IntegrationResponse | None:
    for response in route.responses:
        if response.selection_pattern is not None and re.fullmatch(response.selection_pattern, str(status)):
            return response
    return route.default_response


def integration_response(
    response: IntegrationResponse,
    request: MethodRequest,
    backend_body: bytes,
    *,
    overrides: Overrides | None = None,
) -> HttpResponse:
    """Map the backend answer; raises VtlError when the response template fails. `overrides` are
    the request's so far (what its request template set); a fresh set when None."""
    overrides = overrides if overrides is not None else Overrides()
    picked = pick_template(response.templates, request.accept)
    if picked is None:
        body, content_type = backend_body, "application/json"
    else:
        content_type, template = picked
        body = render(
            template,
            body=backend_body.decode("utf-8", "replace"),
            params=request.params,
            context=request.context,
            stage_variables=request.stage_variables,
            overrides=overrides,
        ).encode("utf-8")
    status = response.status_code
    if overrides.status is not None and 100 <= overrides.status <= 599:
        status = overrides.status
    replaced = {name.lower() for name in overrides.response_headers}
    headers = [
        *request.id_headers(),
        *((name, value) for name, value in _parameters(response.parameters, "method.response.header.", request)
          if name.lower() not in replaced),
        *overrides.response_headers.items(),
    ]
    return HttpResponse(status, (("Content-Type", content_type), *headers), body)


def gateway_response(
    configured: Mapping[str, GatewayResponse],
    response_type: str,
    request: MethodRequest,
    *,
    message: str | None = None,
    validation_error: str = "",
) -> HttpResponse:
    default_status, default_message = GATEWAY_RESPONSE_DEFAULTS[response_type]
    message = default_message if message is None else message
    family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
    spec = configured.get(response_type) or configured.get(family)
    # A DEFAULT_4XX/5XX customisation lends its templates, never its status, to another type.
    status = default_status
    if spec is not None and spec.response_type == response_type and spec.status_code is not None:
        status = spec.status_code
    templates = spec.templates if spec is not None and spec.templates else {"application/json": _DEFAULT_TEMPLATE}
    content_type, template = pick_template(templates, request.accept) or ("application/json", _DEFAULT_TEMPLATE)
    context = dict(request.context)
    context["error"] = {
        "message": message,
        "messageString": json.dumps(message),
        "responseType": response_type,
        "validationErrorString": validation_error,
    }
    body = _GATEWAY_VARIABLE.sub(lambda match: _gateway_variable(match, context, request), template)
    headers = [("Content-Type", content_type), *request.id_headers()]
    if spec is not None:
        headers.extend(_parameters(spec.parameters, "gatewayresponse.header.", request))
    return HttpResponse(status, tuple(headers), body.encode("utf-8"))


def _gateway_variable(match: re.Match[str], context: Mapping[str, Any], request: MethodRequest) -> str:
    context_path, stage_variable, where, name = match.groups()
    if stage_variable is not None:
        value: Any = request.stage_variables.get(stage_variable)
    elif where is not None:
        value = request.params.get(where, {}).get(name)
    else:
        value = context
        for key in context_path.split(".")[1:]:
            value = value.get(key) if isinstance(value, Mapping) else None
    # Unverified on AWS: an unknown variable is taken to substitute as "", as VTL references do.
    return "" if value is None else java_str(value)


def _parameters(parameters: Mapping[str, str], prefix: str, request: MethodRequest) -> list[tuple[str, str]]:
    headers = []
    for target, source in parameters.items():
        if not target.startswith(prefix):
            continue
        literal = _LITERAL.match(source)
        if literal:
            headers.append((target[len(prefix) :], literal.group(1)))
            continue
        kind, name = _REQUEST_PARAMETER.match(source).groups()  # type: ignore[union-attr]  # check_parameters ran
        value = request.params.get(kind, {}).get(name)
        if value is not None:
            headers.append((target[len(prefix) :], value))
    return headers
