"""Render API Gateway (REST v1) mapping templates the way AWS does.

Engine: airspeed-ext 0.6.9 (module `airspeed`, pinned in requirements-dev.txt), the fork
LocalStack uses. Stock airspeed 0.7.1 decodes backslashes inside string literals, so the
documented `replaceAll("\\\\'", "'")` workaround does nothing there and a correct template
renders invalid JSON (docs: APIGW-7, LOCAL-4). airspeed-ext keeps literals as Velocity does,
renders undefined references as "" (docs: APIGW-6) and prints `true`/`false`.

What API Gateway does beyond plain Velocity, as recorded on AWS:
- `$input.body` of an empty payload is `{}` (docs: APIGW-2);
- a null equals `""` in `==`/`!=` (docs: APIGW-5);
- lists from JSON print as JSON, maps as `{k=v}` (docs: APIGW-4), see devserver.vtl_java;
- `$context` maps print as "" and the overrides persist across one request's templates
  (docs: APIGW-10, APIGW-12), see devserver.vtl_context.

Where airspeed-ext still differs from Velocity 1.7, each compiled template is adapted, per
parse-tree node, never by patching airspeed globally:
- `#if($undefined)` is false and `!$undefined` is true (airspeed-ext: the opposite);
  any non-null non-Boolean value is true, even "" and 0 (Velocity 1.7).
- `#set($x = <null>)` leaves `$x` unchanged, and evaluates its right side once.
- `#set` of a new variable inside `#foreach` is visible after the loop (one global context).
- `"a" + 1` concatenates; `==` between different types compares their string forms;
  integer `/` and `%` truncate toward zero and give null on division by zero.
- string, list and map literals carry Java's methods (devserver.vtl_java).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping
from typing import Any, Callable

import airspeed
import jsonpath_ng
from airspeed import operators as ast

from devserver.vtl_context import Overrides, context_map
from devserver.vtl_java import JavaMap, JavaString, from_json, java_str, to_java
from devserver.vtl_util import Util, parse_json

__all__ = ["BodyNotJson", "Overrides", "VtlError", "render"]

EMPTY_BODY = "{}"  # what `$input.body` is for an empty payload (docs: APIGW-2)


class VtlError(Exception):
    """The template could not be parsed or failed while rendering."""


class BodyNotJson(VtlError):
    """$input.json/$input.path was used on a body that is not JSON.

    On AWS this fails the request with "Could not parse request body into json" (docs: APIGW-3).
    """


def render(
    template: str,
    *,
    body: str,
    params: Mapping[str, Mapping[str, str]],
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str] | None = None,
    overrides: Overrides | None = None,
) -> str:
    """Render one mapping template.

    body: `$input.body` (the request body, or the integration response body for a response
    template); params: `{"path": {...}, "querystring": {...}, "header": {...}}`, always the
    method request's; context: `$context` (copied, so the caller's mapping is never touched);
    overrides: the request's `requestOverride`/`responseOverride`, shared by its templates
    (a fresh set when None): what the template set in them is read there (docs: APIGW-12).
    """
    overrides = overrides if overrides is not None else Overrides()
    namespace = {
        "input": _Input(body, params),
        "util": Util(),
        "context": context_map(context, overrides),
        "stageVariables": to_java(dict(stage_variables or {})),
    }
    try:
        output = _compile(template).merge(namespace)
    except VtlError:
        raise
    except airspeed.TemplateError as exc:  # execution errors carry the original exception as the cause
        cause = exc.__cause__
        if isinstance(cause, VtlError):
            raise cause from exc
        raise VtlError(str(exc)) from exc
    rendered: str = output
    return rendered


class _Input:
    """`$input`; attribute and method names are the VTL names."""

    def __init__(self, body: str, params: Mapping[str, Mapping[str, str]]) -> None:
        self.body = JavaString(body or EMPTY_BODY)
        self._params = JavaMap(
            (JavaString(kind), to_java(dict(params.get(kind, {})))) for kind in ("path", "querystring", "header")
        )
        self._parsed: Any = None
        self._is_parsed = False

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        # Exact names (as the client spelled them), searched in this order (docs: APIGW-9).
        for kind in ("path", "querystring", "header"):
            if name in self._params[kind]:
                return self._params[kind][name]
        return None

    def path(self, path: str) -> Any:
        matches = self._matches(path)
        return from_json(_single_or_list(matches)) if matches else None

    def json(self, path: str) -> JavaString:
        matches = self._matches(path)
        # Unverified on AWS: a path that matches nothing prints "" here (LocalStack does the same).
        if not matches:
            return JavaString("")
        return JavaString(json.dumps(_single_or_list(matches), ensure_ascii=False, separators=(",", ":")))

    def _matches(self, path: str) -> list[Any]:
        if not self._is_parsed:
            try:
                self._parsed = parse_json(self.body)
            except ValueError as exc:
                raise BodyNotJson(f"Could not parse request body into json: {exc}") from exc
            self._is_parsed = True
        try:
            return [match.value for match in jsonpath_ng.parse(str(path)).find(self._parsed)]
        except Exception as exc:  # jsonpath_ng raises bare Exception subclasses for bad syntax
            raise VtlError(f"invalid JSONPath {path!r}: {exc}") from exc


def _single_or_list(matches: list[Any]) -> Any:
    return matches[0] if len(matches) == 1 else matches


# ---------------------------------------------------------------------------------------------
# Velocity 1.7 semantics grafted onto one compiled airspeed tree (see module docstring).


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> airspeed.Template:
    compiled = airspeed.Template(template)
    try:
        compiled.ensure_compiled()
    except airspeed.TemplateSyntaxError as exc:
        raise VtlError(f"template syntax error: {exc}") from exc
    _adapt(compiled.root_element, set())
    return compiled


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _velocity_equals(left: Any, right: Any) -> bool:
    if left is None or right is None:
        other = right if left is None else left
        return other is None or other == ""  # a null equals "" on AWS (docs: APIGW-5)
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, str) and isinstance(right, str) or type(left) is type(right):
        return bool(left == right)
    return java_str(left) == java_str(right)


def _plus(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        return JavaString(java_str(left) + java_str(right))
    return left + right


def _arithmetic(
    on_integers: Callable[[int, int], int], on_floats: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if right == 0:
            return None
        if isinstance(left, int) and isinstance(right, int):
            return on_integers(left, right)
        return on_floats(left, right)

    return apply


def _java_div(left: int, right: int) -> int:
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _java_mod(left: int, right: int) -> int:
    return left - right * _java_div(left, right)


def _ordering(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def apply(left: Any, right: Any) -> bool:
        try:
            return bool(op(left, right))
        except TypeError:
            return False  # Velocity logs and treats an incomparable pair as false

    return apply


_BINARY = {
    "+": _plus,
    "==": _velocity_equals,
    "eq": _velocity_equals,
    "!=": lambda left, right: not _velocity_equals(left, right),
    "ne": lambda left, right: not _velocity_equals(left, right),
    "&&": lambda left, right: _truthy(left) and _truthy(right),
    "and": lambda left, right: _truthy(left) and _truthy(right),
    "||": lambda left, right: _truthy(left) or _truthy(right),
    "or": lambda left, right: _truthy(left) or _truthy(right),
    "/": _arithmetic(_java_div, operator.truediv),
    "%": _arithmetic(_java_mod, operator.mod),
    "<": _ordering(operator.lt),
    "lt": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    "le": _ordering(operator.le),
    ">": _ordering(operator.gt),
    "gt": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "ge": _ordering(operator.ge),
}
_BINARY_BY_AIRSPEED_FUNCTION = {
    id(function): _BINARY[name] for name, function in ast.BinaryOperator.OPERATORS.items() if name in _BINARY
}


def _assign(node: Any) -> Callable[..., None]:
    def evaluate_raw(stream: Any, namespace: Any, loader: Any) -> None:
        value = node.value.calculate(namespace, loader)
        if value is None:
            return
        if not node.terms:
            owner = namespace.find_outermost(node.root_term) if isinstance(namespace, ast.LocalNamespace) else None
            target = owner if owner is not None else _template_scope(namespace)
            target[node.root_term] = value
            return
        container = namespace[node.root_term]
        for term in node.terms[:-1]:
            container = container[term.calculate(namespace, loader)]
        container[node.terms[-1].calculate(namespace, loader)] = value

    return evaluate_raw


def _template_scope(namespace: Any) -> Any:
    """The namespace the whole template shares: the one below airspeed's per-block scopes."""
    while isinstance(namespace, ast.LocalNamespace) and isinstance(namespace.parent, ast.LocalNamespace):
        namespace = namespace.parent
    return namespace


def _wrap_calculate(node: Any) -> None:
    original = node.calculate
    node.calculate = lambda namespace, loader: to_java(original(namespace, loader))


def _adapt(node: Any, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    for child in _children(node):
        _adapt(child, seen)
    if isinstance(node, (ast.StringLiteral, ast.ArrayLiteral, ast.DictionaryLiteral)):
        _wrap_calculate(node)
    elif isinstance(node, ast.Assignment):
        node.evaluate_raw = _assign(node)
    elif isinstance(node, ast.UnaryOperatorValue):
        node.calculate = lambda namespace, loader, value=node.value: not _truthy(value.calculate(namespace, loader))
    elif isinstance(node, ast.Condition):
        node.calculate = lambda namespace, loader, expression=node.expression: _truthy(
            expression.calculate(namespace, loader)
        )
    elif isinstance(node, ast.ElseifBlock):
        node.calculate = node.condition.calculate  # airspeed bound the unadapted method at parse time
    elif isinstance(node, ast.BinaryOperator):
        replacement = _BINARY_BY_AIRSPEED_FUNCTION.get(id(node.apply_to))
        if replacement is not None:
            node.apply_to = replacement


def _children(node: Any) -> list[Any]:
    found: list[Any] = []
    pending = list(vars(node).values()) if hasattr(node, "__dict__") else []
    while pending:
        value = pending.pop()
        if isinstance(value, ast._Element):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(getattr(value, "__self__", None), ast._Element):
            # e.g. ParenthesizedExpression keeps its Expression only as a bound `calculate`
            found.append(value.__self__)
    return found

