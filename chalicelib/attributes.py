"""Plain JSON-compatible Python values as DynamoDB's typed attributes, and back."""
from __future__ import annotations

import json
import math
from decimal import Context, Decimal
from typing import Any, Dict, Mapping, Optional, cast


def to_attribute(value: Any) -> Dict[str, Any]:
    """A JSON-compatible Python value as a typed DynamoDB attribute (numbers exact as Decimal).

    What DynamoDB gets is what a JSON round trip (floats parsed as Decimal) through boto3's
    TypeSerializer makes. Plain dicts with string keys, lists, strings, finite numbers, booleans and
    None are converted directly, to the same attribute; anything else (subclasses, tuples, other keys,
    NaN) takes the round trip itself. The round trip for every result was a seventh of the
    processor's CPU per record (docs/measurements.md)."""
    from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

    fast = _typed(value, DYNAMODB_CONTEXT)
    if fast is not None:
        return fast

    exact = json.loads(json.dumps(value), parse_float=Decimal)
    # The stubs type the result as a TypedDict of every attribute kind; callers treat it as a plain dict.
    return cast(Dict[str, Any], TypeSerializer().serialize(exact))


def _typed(value: Any, context: Context) -> Optional[Dict[str, Any]]:
    """to_attribute's value for the plain JSON types, or None when the round trip must decide."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is int:
        return {"N": str(context.create_decimal(value))}  # raises beyond 38 digits, as boto3 does
    if kind is float:
        # json.dumps writes float.__repr__; json.loads hands that text to Decimal.
        return {"N": str(context.create_decimal(Decimal(repr(value))))} if math.isfinite(value) else None
    if kind is list:
        items = []
        for item in value:
            typed = _typed(item, context)
            if typed is None:
                return None  # at once: the round trip meets the same values in the same order
            items.append(typed)
        return {"L": items}
    if kind is dict:
        if any(type(key) is not str for key in value):
            return None
        members = {}
        for key, item in value.items():
            typed = _typed(item, context)
            if typed is None:
                return None
            members[key] = typed
        return {"M": members}
    return None


def from_attribute(value: Mapping[str, Any]) -> Any:
    """A typed DynamoDB attribute as plain JSON-compatible Python (ints stay ints)."""
    from boto3.dynamodb.types import TypeDeserializer

    # The stubs want their attribute TypedDict; an item read from the client is a mapping of the same shape.
    return _plain(TypeDeserializer().deserialize(cast(Any, value)))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, frozenset)):
        return [_plain(v) for v in value]
    return value
