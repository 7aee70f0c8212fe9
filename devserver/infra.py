"""Read the API Gateway integration routes out of infra/template.yaml into frozen specs.

Pure: the only I/O is reading the file. The merge template uses long-form intrinsics only, so
`yaml.safe_load` reads it (anchors and aliases resolve); CloudFormation intrinsics are then
resolved against a caller-supplied mapping of logical ids / attributes / pseudo parameters:
`{"RequestsTable": "<table name>", "RequestsTable.Arn": "...", "AWS::Region": "us-east-1"}`.
`local_refs` builds such a mapping for a local stack.

Swagger facts relied on (docs: APIGW-13, APIGW-14, APIGW-17, CHALICE-1, CHALICE-3): the
integration lives in `paths.<path>.<method>.x-amazon-apigateway-integration`; response keys are selection patterns
("default" is the catch-all); validators are declared in `x-amazon-apigateway-request-validators`
and attached with `x-amazon-apigateway-request-validator` (operation, else API level); a body
parameter's schema becomes the method's request model for each `consumes` media type.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "GatewayResponse",
    "IntegrationResponse",
    "IntegrationRoute",
    "InfraError",
    "RequestValidator",
    "RestApi",
    "gateway_responses",
    "integration_routes",
    "load_template",
    "local_refs",
    "resolve",
    "rest_api",
]

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ACTION_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]*:(?P<service>[^:]+):action/(?P<action>[A-Za-z0-9]+)$")
# API Gateway's default integration timeout (50 ms - 29 s, docs: APIGW-20).
DEFAULT_TIMEOUT_MS = 29_000


class InfraError(ValueError):
    """The template uses something this local stack cannot resolve or emulate."""


@dataclass(frozen=True)
class RequestValidator:
    name: str
    validate_body: bool
    validate_parameters: bool


@dataclass(frozen=True)
class IntegrationResponse:
    selection_pattern: str | None  # None: the default response
    status_code: int
    templates: Mapping[str, str]
    parameters: Mapping[str, str]  # method.response.header.X -> 'literal' | integration.response.header.Y


@dataclass(frozen=True)
class IntegrationRoute:
    path: str
    method: str
    service: str
    action: str
    request_templates: Mapping[str, str]
    passthrough_behavior: str  # when_no_match | when_no_templates | never
    validator: RequestValidator | None
    body_models: Mapping[str, Mapping[str, Any]]  # request content type -> JSON schema ($refs inlined)
    responses: tuple[IntegrationResponse, ...]
    timeout_ms: int

    @property
    def default_response(self) -> IntegrationResponse | None:
        return next((r for r in self.responses if r.selection_pattern is None), None)


@dataclass(frozen=True)
class GatewayResponse:
    response_type: str
    status_code: int | None
    templates: Mapping[str, str]
    parameters: Mapping[str, str]  # gatewayresponse.header.X -> 'literal' | method.request.header.Y


@dataclass(frozen=True)
class RestApi:
    routes: tuple[IntegrationRoute, ...]
    gateway_responses: Mapping[str, GatewayResponse]


# libyaml's safe loader when PyYAML has it: the same documents, parsed ~8x faster (the template
# is read by every gateway, stream runner and test that builds one).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_template(path: str | Path) -> dict[str, Any]:
    """The template at `path`, parsed (a fresh object each call: callers may change theirs)."""
    path = Path(path)
    return copy.deepcopy(_parsed(path.resolve(), path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=_YAML_LOADER)
    if not isinstance(loaded, dict):
        raise InfraError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return loaded


def local_refs(
    template: Mapping[str, Any],
    *,
    region: str,
    account_id: str = "123456789012",
    physical_names: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Refs for a local stack: each resource's Ref is its physical name (default: logical id),
    plus `.Arn` for the resource types whose ARN shape is fixed by their name."""
    names = dict(physical_names or {})
    refs = {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    arn_formats = {
        "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
        "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
        "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
        "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    }
    for logical_id, resource in (template.get("Resources") or {}).items():
        name = names.get(logical_id, logical_id)
        refs[logical_id] = name
        arn_format = arn_formats.get((resource or {}).get("Type", ""))
        if arn_format:
            refs[f"{logical_id}.Arn"] = arn_format.format(region=region, account=account_id, name=name)
    return refs


def resolve(value: Any, refs: Mapping[str, Any]) -> Any:
    """Resolve Ref, Fn::Sub, Fn::Join and Fn::GetAtt anywhere inside value (a new structure)."""
    if isinstance(value, list):
        return [resolve(item, refs) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, argument), = value.items()
        if key == "Ref":
            return _lookup(argument, refs)
        if key == "Fn::GetAtt":
            return _get_att(argument, refs)
        if key == "Fn::Sub":
            return _sub(argument, refs)
        if key == "Fn::Join":
            return _join(argument, refs)
        if key.startswith("Fn::"):
            raise InfraError(f"unsupported intrinsic {key}: only Ref, Fn::Sub, Fn::Join and Fn::GetAtt resolve locally")
    return {key: resolve(item, refs) for key, item in value.items()}


def _lookup(name: Any, refs: Mapping[str, Any]) -> Any:
    if not isinstance(name, str):
        raise InfraError(f"malformed reference {name!r}")
    if name not in refs:
        raise InfraError(f"template references {name!r}, which the supplied refs do not define")
    return refs[name]


def _get_att(argument: Any, refs: Mapping[str, Any]) -> Any:
    if isinstance(argument, str) and "." in argument:
        return _lookup(argument, refs)
    if isinstance(argument, list) and len(argument) == 2 and all(isinstance(part, str) for part in argument):
        return _lookup(f"{argument[0]}.{argument[1]}", refs)
    raise InfraError(f"malformed Fn::GetAtt {argument!r}")


def _sub(argument: Any, refs: Mapping[str, Any]) -> str:
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
        text, variables = argument[0], {name: resolve(v, refs) for name, v in argument[1].items()}
    else:
        text, variables = argument, {}
    if not isinstance(text, str):
        raise InfraError(f"malformed Fn::Sub {argument!r}")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} writes ${Literal}
            return "${" + name[1:] + "}"
        value = variables[name] if name in variables else _lookup(name, refs)
        if not isinstance(value, (str, int)):
            raise InfraError(f"Fn::Sub variable {name!r} resolves to {value!r}, not a string")
        return str(value)

    return _SUB_VARIABLE.sub(substitute, text)


def _join(argument: Any, refs: Mapping[str, Any]) -> str:
    if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
        raise InfraError(f"malformed Fn::Join {argument!r}")
    parts = resolve(argument[1], refs)
    if not isinstance(parts, list) or not all(isinstance(part, str) for part in parts):
        raise InfraError(f"Fn::Join needs a list of strings, got {parts!r}")
    return argument[0].join(parts)


def rest_api(template: Mapping[str, Any], refs: Mapping[str, Any]) -> RestApi:
    return RestApi(routes=integration_routes(template, refs), gateway_responses=gateway_responses(template, refs))


def _definition_body(template: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    except (KeyError, TypeError) as exc:
        raise InfraError("template has no Resources.RestAPI.Properties.DefinitionBody") from exc
    if not isinstance(body, dict):
        raise InfraError("RestAPI DefinitionBody is not a mapping")
    return body


def gateway_responses(template: Mapping[str, Any], refs: Mapping[str, Any]) -> Mapping[str, GatewayResponse]:
    declared = resolve(_definition_body(template).get("x-amazon-apigateway-gateway-responses") or {}, refs)
    return MappingProxyType(
        {
            response_type: GatewayResponse(
                response_type=response_type,
                status_code=int(spec["statusCode"]) if spec.get("statusCode") is not None else None,
                templates=MappingProxyType(dict(spec.get("responseTemplates") or {})),
                parameters=MappingProxyType(dict(spec.get("responseParameters") or {})),
            )
            for response_type, spec in declared.items()
        }
    )


def integration_routes(template: Mapping[str, Any], refs: Mapping[str, Any]) -> tuple[IntegrationRoute, ...]:
    """Every path+method whose integration is of type `aws` (service integrations).

    `aws_proxy` operations are Chalice's (its own routes) and are skipped; any other type is
    an error rather than a route silently left unserved."""
    body = resolve(_definition_body(template), refs)
    validators = body.get("x-amazon-apigateway-request-validators") or {}
    api_validator = body.get("x-amazon-apigateway-request-validator")
    definitions = body.get("definitions") or {}
    routes = []
    for path, operations in (body.get("paths") or {}).items():
        for method, operation in (operations or {}).items():
            if method not in _HTTP_METHODS:
                continue
            integration = operation.get("x-amazon-apigateway-integration")
            if not integration or integration.get("type", "").lower() == "aws_proxy":
                continue
            if integration.get("type", "").lower() != "aws":
                kind = integration.get("type")
                raise InfraError(f"{method.upper()} {path}: integration type {kind!r} is not emulated")
            service, action = _service_action(integration.get("uri"), f"{method.upper()} {path}")
            consumes = operation.get("consumes") or body.get("consumes") or ["application/json"]
            routes.append(
                IntegrationRoute(
                    path=path,
                    method=method.upper(),
                    service=service,
                    action=action,
                    request_templates=MappingProxyType(dict(integration.get("requestTemplates") or {})),
                    passthrough_behavior=str(integration.get("passthroughBehavior", "when_no_match")).lower(),
                    validator=_validator(
                        operation.get("x-amazon-apigateway-request-validator", api_validator), validators
                    ),
                    body_models=MappingProxyType(_body_models(operation, consumes, definitions)),
                    responses=tuple(_responses(integration.get("responses") or {})),
                    timeout_ms=int(integration.get("timeoutInMillis", DEFAULT_TIMEOUT_MS)),
                )
            )
    return tuple(routes)


def _service_action(uri: Any, where: str) -> tuple[str, str]:
    match = _ACTION_URI.match(uri) if isinstance(uri, str) else None
    if not match:
        raise InfraError(f"{where}: uri {uri!r} is not an `action/<Action>` service uri")
    return match.group("service"), match.group("action")


def _validator(name: str | None, validators: Mapping[str, Any]) -> RequestValidator | None:
    if name is None:
        return None
    if name not in validators:
        raise InfraError(f"request validator {name!r} is not declared in x-amazon-apigateway-request-validators")
    spec = validators[name] or {}
    return RequestValidator(
        name=name,
        validate_body=bool(spec.get("validateRequestBody", False)),
        validate_parameters=bool(spec.get("validateRequestParameters", False)),
    )


def _body_models(operation: Mapping[str, Any], consumes: list[str], definitions: Mapping[str, Any]) -> dict[str, Any]:
    body_parameters = [p for p in operation.get("parameters") or [] if p.get("in") == "body"]
    if not body_parameters or "schema" not in body_parameters[0]:
        return {}
    schema = _inline_refs(body_parameters[0]["schema"], definitions, ())
    return {content_type: schema for content_type in consumes}


def _inline_refs(schema: Any, definitions: Mapping[str, Any], trail: tuple[str, ...]) -> Any:
    if isinstance(schema, list):
        return [_inline_refs(item, definitions, trail) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/definitions/")
        if name == ref or name not in definitions:
            raise InfraError(f"model reference {ref!r} does not name an entry of definitions")
        if name in trail:
            raise InfraError(f"model {name!r} refers to itself ({' -> '.join(trail + (name,))})")
        return _inline_refs(definitions[name], definitions, trail + (name,))
    return {key: _inline_refs(value, definitions, trail) for key, value in schema.items()}


def _responses(declared: Mapping[str, Any]) -> list[IntegrationResponse]:
    return [
        IntegrationResponse(
            selection_pattern=None if pattern == "default" else str(pattern),
            status_code=int(spec["statusCode"]),
            templates=MappingProxyType(dict(spec.get("responseTemplates") or {})),
            parameters=MappingProxyType(dict(spec.get("responseParameters") or {})),
        )
        for pattern, spec in declared.items()
    ]
