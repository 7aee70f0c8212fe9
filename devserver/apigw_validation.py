"""Request body validation as API Gateway's request validator does it (docs: APIGW-14).

- Models are JSON Schema draft 4.
- An empty body is validated as `{}` (docs: APIGW-15).
- The result is `$context.error.validationErrorString`: a bracketed list of messages in the
  wording of the Java json-schema-validator API Gateway uses (type and required errors; other
  keywords fall back to jsonschema's wording). The string is escaped for a JSON string
  because gateway-response templates embed it between quotes, as AWS's messages appear there
  (`[\\"object\\"]`). Exact wording on AWS beyond these two messages is unverified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, List, cast

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from devserver.vtl_util import parse_json

__all__ = ["validation_error"]

# bool before int: a Python bool is an int, a JSON boolean is not an integer.
_JSON_TYPES = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object")
)


def validation_error(schema: Mapping[str, Any], body: bytes) -> str | None:
    """None when body satisfies schema, else the validationErrorString."""
    try:
        instance = parse_json(body.decode("utf-8")) if body else {}
    except UnicodeDecodeError as exc:
        return _as_error_string([f"Invalid UTF-8 in request body: {exc.reason} at byte {exc.start}"])
    except ValueError as exc:
        return _as_error_string([f"Invalid JSON in request body: {exc}"])
    except RecursionError:
        return _as_error_string(["Invalid JSON in request body: nested too deeply"])
    errors = sorted(Draft4Validator(schema).iter_errors(instance), key=lambda error: list(error.absolute_path))
    # jsonschema reports each missing required property separately; the Java validator lists them once.
    return _as_error_string(list(dict.fromkeys(_describe(error) for error in errors))) if errors else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return next(name for python_type, name in _JSON_TYPES if isinstance(value, python_type))


def _describe(error: ValidationError) -> str:
    if error.validator == "type":
        allowed = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return (
            f"instance type ({_json_type(error.instance)}) does not match any allowed primitive type "
            f"(allowed: {json.dumps(sorted(allowed), separators=(',', ':'))})"
        )
    if error.validator == "required" and isinstance(error.instance, dict):
        required = cast(List[str], error.validator_value)  # a "required" error's value is the schema's list
        missing = sorted(name for name in required if name not in error.instance)
        return f"object has missing required properties ({json.dumps(missing, separators=(',', ':'))})"
    return error.message


def _as_error_string(messages: list[str]) -> str:
    return json.dumps("[" + ", ".join(messages) + "]", ensure_ascii=False)[1:-1]
