"""EventBridge-style filter patterns, as Lambda applies them to DynamoDB stream records (docs: ESM-12, ESM-13).

Semantics kept from AWS:
- fields in one pattern are AND-ed, values in a list are OR-ed, several patterns are OR-ed;
- matching is exact and case-sensitive; numbers compare by their JSON text (300 != 300.0);
- DynamoDB values keep their type wrapper, so `{"S": ["x"]}` is needed to match a string attribute;
- `numeric` only matches JSON numbers; an item's `{"N": "101"}` is a string, so numeric never
  matches it (AWS-observed), while ApproximateCreationDateTime (a number) does;
- `exists` is reliable only on leaves: an attribute's value is an object (`{"S": ...}`), which is
  not a leaf, so `{"attr": [{"exists": false}]}` matches even when attr is present (AWS-observed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Sequence, Tuple

_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_LOWER = (">", ">=")
_UPPER = ("<", "<=")


class PatternError(ValueError):
    """A pattern Lambda would reject at create/update (InvalidParameterValueException, docs: ESM-12)."""


@dataclass(frozen=True)
class _Matcher:
    kind: str  # eq | prefix | suffix | equals-ignore-case | anything-but | anything-but-prefix | numeric | exists
    arg: Any


@dataclass(frozen=True)
class FilterPattern:
    """One parsed `Pattern`. Equality and hashing use the source text only."""

    source: str
    tree: Dict[str, Any] = field(compare=False, hash=False, repr=False, default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "FilterPattern":
        try:
            doc = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise PatternError("not valid JSON: %s" % exc) from exc
        if not isinstance(doc, dict):
            raise PatternError("a pattern must be a JSON object")
        return cls(source=text, tree=_compile_object(doc, "$"))

    def matches(self, record: Mapping[str, Any]) -> bool:
        return _match_object(self.tree, record)


def matches_any(patterns: Sequence[FilterPattern], record: Mapping[str, Any]) -> bool:
    """No patterns: everything passes; otherwise any one pattern must match (docs: ESM-12)."""
    return not patterns or any(p.matches(record) for p in patterns)


# --- compile (validation happens here, so a bad template fails at start-up like on AWS) ---

def _compile_object(doc: Mapping[str, Any], path: str) -> Dict[str, Any]:
    tree: Dict[str, Any] = {}
    for key, value in doc.items():
        where = "%s.%s" % (path, key)
        if key.startswith("$"):
            raise PatternError("%s: %r operators are not supported by the local runner" % (where, key))
        if isinstance(value, dict):
            tree[key] = _compile_object(value, where)
        elif isinstance(value, list):
            if not value:
                raise PatternError("%s: an empty list can never match" % where)
            tree[key] = tuple(_compile_value(v, where) for v in value)
        else:
            raise PatternError("%s: leaf values must be lists, got %s" % (where, json.dumps(value)))
    return tree


def _compile_value(value: Any, where: str) -> _Matcher:
    if value is None or isinstance(value, (str, bool, int, float)):
        return _Matcher("eq", value)
    if not isinstance(value, dict) or len(value) != 1:
        raise PatternError("%s: %s is neither a value nor a single-operator object" % (where, json.dumps(value)))
    (op, arg), = value.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise PatternError("%s: %s needs a string" % (where, op))
        return _Matcher(op, arg)
    if op == "exists":
        if not isinstance(arg, bool):
            raise PatternError("%s: exists needs true or false" % where)
        return _Matcher(op, arg)
    if op == "numeric":
        return _Matcher(op, _compile_numeric(arg, where))
    if op == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix") \
                    or not isinstance(next(iter(arg.values())), str):
                raise PatternError("%s: anything-but accepts a value, a list or {prefix|suffix: string}" % where)
            (sub, text), = arg.items()
            return _Matcher("anything-but-" + sub, text)
        values = arg if isinstance(arg, list) else [arg]
        if not values or any(isinstance(v, (dict, list)) for v in values):
            raise PatternError("%s: anything-but needs scalar values" % where)
        return _Matcher(op, tuple(values))
    raise PatternError("%s: unknown operator %r" % (where, op))


def _compile_numeric(arg: Any, where: str) -> Tuple[Tuple[str, float], ...]:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError("%s: numeric needs [op, number] or [lower-op, n, upper-op, n]" % where)
    pairs = []
    for op, num in zip(arg[::2], arg[1::2], strict=True):  # len(arg) is 2 or 4
        if op not in _NUMERIC_OPS:
            raise PatternError("%s: unknown numeric operator %r" % (where, op))
        if isinstance(num, bool) or not isinstance(num, (int, float)):
            raise PatternError("%s: numeric bounds must be numbers, got %r" % (where, num))
        pairs.append((op, num))
    if len(pairs) == 2:
        (op1, n1), (op2, n2) = pairs
        if op1 not in _LOWER or op2 not in _UPPER or n1 > n2:
            raise PatternError("%s: a numeric range is [>|>=, low, <|<=, high]" % where)
    return tuple(pairs)


# --- match ---

_MISSING = object()


def _match_object(tree: Mapping[str, Any], event: Any) -> bool:
    obj = event if isinstance(event, Mapping) else {}
    for key, sub in tree.items():
        value = obj.get(key, _MISSING)
        if isinstance(sub, dict):
            if not _match_object(sub, value):
                return False
        elif not _match_leaf(sub, value):
            return False
    return True


def _match_leaf(matchers: Iterable[_Matcher], value: Any) -> bool:
    # Objects are not leaves: only `exists: false` can match them (AWS-observed quirk, docs: ESM-13).
    is_leaf = value is not _MISSING and not isinstance(value, Mapping)
    candidates = value if isinstance(value, list) else [value]
    for m in matchers:
        if m.kind == "exists":
            if m.arg == is_leaf:
                return True
        elif is_leaf and any(_match_scalar(m, c) for c in candidates):
            return True
    return False


def _same(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, bool) or pattern is None or isinstance(pattern, str):
        return type(value) is type(pattern) and value == pattern
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return json.dumps(pattern) == json.dumps(value)  # by string form: 300 != 300.0 (docs: ESM-13)


def _match_scalar(m: _Matcher, value: Any) -> bool:
    if m.kind == "eq":
        return _same(m.arg, value)
    if m.kind == "anything-but":
        return not any(_same(v, value) for v in m.arg)
    if m.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False  # "N" attribute values are strings: never numeric (docs: ESM-13)
        return all(_compare(value, op, bound) for op, bound in m.arg)
    if not isinstance(value, str):
        return False
    if m.kind == "prefix":
        return value.startswith(m.arg)
    if m.kind == "suffix":
        return value.endswith(m.arg)
    if m.kind == "equals-ignore-case":
        return value.casefold() == m.arg.casefold()
    if m.kind == "anything-but-prefix":
        return not value.startswith(m.arg)
    if m.kind == "anything-but-suffix":
        return not value.endswith(m.arg)
    return False


def _compare(value: float, op: str, bound: float) -> bool:
    return {"=": value == bound, "<": value < bound, "<=": value <= bound,
            ">": value > bound, ">=": value >= bound}[op]
