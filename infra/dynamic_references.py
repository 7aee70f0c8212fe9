"""CloudFormation's `{{resolve:ssm:...}}` dynamic references, resolved as CloudFormation resolves them
when it deploys (docs: CFN-4), for the `chalice deploy` path, which applies infra/template.yaml's
patches without CloudFormation (infra/chalice_patches.py).

Only plain String parameters are resolved: `ssm-secure` and `secretsmanager` references would put a
secret into what Chalice sends, so they are refused, as is any other dynamic reference.
"""
from __future__ import annotations

import re
from typing import Any, Callable

# {{resolve:ssm:name}} or {{resolve:ssm:name:version}}; anything else after `resolve:` is refused.
_DYNAMIC = re.compile(r"\{\{resolve:(?P<service>[a-z-]+):(?P<reference>[^}]*)\}\}")

ParameterLookup = Callable[[str], str]  # SSM parameter name (with :version, if any) -> value


class DynamicReferenceError(ValueError):
    """A dynamic reference the deploy path cannot resolve."""


def resolve_dynamic_references(value: Any, lookup: ParameterLookup) -> Any:
    """`value` with every `{{resolve:ssm:...}}` inside its strings replaced by the parameter's value
    (a new structure)."""
    if isinstance(value, list):
        return [resolve_dynamic_references(item, lookup) for item in value]
    if isinstance(value, dict):
        return {key: resolve_dynamic_references(item, lookup) for key, item in value.items()}
    if isinstance(value, str) and "{{resolve:" in value:
        return _DYNAMIC.sub(lambda match: _resolved(match, lookup), value)
    return value


def _resolved(match: "re.Match[str]", lookup: ParameterLookup) -> str:
    if match.group("service") != "ssm":
        raise DynamicReferenceError(f"{match.group(0)}: the chalice deploy path resolves only "
                                    f"{{{{resolve:ssm:...}}}} (String parameters), not {match.group('service')}")
    return lookup(match.group("reference"))
