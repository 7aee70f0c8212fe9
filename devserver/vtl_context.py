"""`$context` as API Gateway's mapping templates see it, and the overrides templates write into it.

- Every map inside `$context` (`identity`, `requestOverride`, its `header` ...) prints as the empty
  string, not its contents; `keySet()` and `get()` still work (docs: APIGW-10).
- `requestOverride` (`path`, `header`, `querystring`) and `responseOverride` (`header`, later
  `status`) live for one request: what the request template writes, the response template reads,
  and a response status or header set by either template changes the answer (docs: APIGW-12).
- Overrides are final: writing the same override twice fails the template, which API Gateway
  answers with a 5XX (docs: APIGW-12).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver.vtl_java import JavaMap, java_str, to_java

__all__ = ["IDENTITY_KEYS", "ContextMap", "OverrideTwice", "Overrides", "context_map", "identity"]

# `$context.identity.keySet()` as recorded on AWS for an unauthenticated call (docs: APIGW-10).
IDENTITY_KEYS = (
    "cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "sourceIp", "principalOrgId", "accessKey",
    "cognitoAuthenticationType", "cognitoAuthenticationProvider", "userArn", "userAgent", "user",
)


class OverrideTwice(ValueError):
    """A template wrote an override that was already written in this request."""


class ContextMap(JavaMap):
    """A map inside `$context`: prints as "" (docs: APIGW-10)."""

    def __str__(self) -> str:
        return ""


class OverrideMap(ContextMap):
    """One level of `requestOverride`/`responseOverride`: each key may be written once."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self:
            raise OverrideTwice(f"override {key!r} is already set; overrides are final")
        super().__setitem__(key, value)

    def putAll(self, other: dict[Any, Any]) -> None:
        for key, value in other.items():
            self[key] = value


def _fresh_request_override() -> OverrideMap:
    return OverrideMap(path=OverrideMap(), header=OverrideMap(), querystring=OverrideMap())


def _fresh_response_override() -> OverrideMap:
    return OverrideMap(header=OverrideMap())


@dataclass
class Overrides:
    """The overrides of one request, shared by its request and response templates."""

    request: OverrideMap = field(default_factory=_fresh_request_override)
    response: OverrideMap = field(default_factory=_fresh_response_override)

    @property
    def status(self) -> int | None:
        """The response status override: only an int counts (a string "409" is ignored)."""
        value = self.response.get("status")
        return value if type(value) is int else None

    @property
    def response_headers(self) -> dict[str, str]:
        headers = self.response.get("header")
        return {str(k): java_str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}


def identity(source_ip: str, user_agent: str | None) -> dict[str, str | None]:
    """`$context.identity` of a caller without IAM or Cognito auth: only these two have values."""
    values: dict[str, str | None] = dict.fromkeys(IDENTITY_KEYS)
    values.update(sourceIp=source_ip, userAgent=user_agent)
    return values


def context_map(context: Mapping[str, Any], overrides: Overrides) -> ContextMap:
    """`$context` for one template: a copy of `context` (the caller's is never changed) whose maps
    print as "", with this request's override maps in place."""
    converted = _convert(context)
    converted["requestOverride"] = overrides.request
    converted["responseOverride"] = overrides.response
    return converted


def _convert(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ContextMap((to_java(k), _convert(v)) for k, v in value.items())
    return to_java(value)
