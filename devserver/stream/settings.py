"""Event source mapping settings, parsed from infra/template.yaml plus the Chalice decorator.

`chalice package --merge-template infra/template.yaml` deep-merges the template over Chalice's own
SAM output, so a property set in the template wins over the decorator's value; the parser applies
the same precedence. Values are validated with the ranges the Lambda API enforces (esm §2), so a
setting that AWS would reject at deploy time fails here too, instead of silently behaving
differently on the laptop.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from .filters import FilterPattern, PatternError

log = logging.getLogger(__name__)

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")  # AT_TIMESTAMP is Kinesis/MSK only (esm §2)
MAX_PATTERN_CHARS = 4096  # esm §4 [LFAPI]
MAX_FILTERS = 20  # CloudFormation's array limit; the service quota is 5, raisable to 10 (esm §4)
DEFAULT_FILTER_QUOTA = 5


class SettingsError(ValueError):
    """A mapping setting that Lambda would reject (InvalidParameterValueException on AWS)."""


@dataclass(frozen=True)
class EsmSettings:
    """One DynamoDB event source mapping, already validated. Defaults are Lambda's (esm §2)."""

    batch_size: int = 100
    batching_window_s: float = 0
    starting_position: str = "LATEST"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires
    max_record_age_s: int = -1  # -1: no limit besides the stream's 24 h retention
    on_failure_queue: Optional[str] = None  # logical id, queue name or ARN, as the template names it
    filters: Tuple[FilterPattern, ...] = ()
    enabled: bool = True
    function_name: str = "process"  # Chalice's name for the handler, e.g. "process"


@dataclass(frozen=True)
class DecoratorValues:
    """What `@app.on_dynamodb_record(...)` contributes (Chalice exposes only these, esm §2)."""

    name: str
    batch_size: int = 100
    starting_position: str = "LATEST"
    maximum_batching_window_in_seconds: int = 0


def decorator_values(app: Any, name: Optional[str] = None) -> DecoratorValues:
    """Read the DynamoDB event source of a Chalice app (blueprints included) via `app.event_sources`."""
    found = [
        src for src in getattr(app, "event_sources", [])
        if hasattr(src, "stream_arn") and hasattr(src, "starting_position")
        and (name is None or src.name == name)
    ]
    if len(found) != 1:
        names = [getattr(s, "name", "?") for s in found]
        raise SettingsError(
            "expected exactly one @on_dynamodb_record handler%s in the Chalice app, found %d %s"
            % ("" if name is None else " named %r" % name, len(found), names))
    src = found[0]
    return DecoratorValues(
        name=src.name,
        batch_size=src.batch_size,
        starting_position=src.starting_position,
        maximum_batching_window_in_seconds=src.maximum_batching_window_in_seconds,
    )


def cfn_name(name: str) -> str:
    """Chalice's `to_cfn_resource_name` (chalice/utils.py):
    "process-dynamodb-event-source" -> "ProcessDynamodbEventSource"."""
    for sep in ("-", "_"):
        name = "".join(part[0].upper() + part[1:] for part in name.split(sep) if part)
    return "".join(ch for ch in name if ch.isalnum())


def event_source_properties(template: Mapping[str, Any], function_name: str) -> Mapping[str, Any]:
    """The template's properties for the function's DynamoDB event (empty if the template adds none)."""
    resources = template.get("Resources") or {}
    function = resources.get(cfn_name(function_name)) or {}
    events = (function.get("Properties") or {}).get("Events") or {}
    event = events.get(cfn_name(function_name + "-dynamodb-event-source")) or {}
    props = event.get("Properties") or {}
    if not isinstance(props, Mapping):
        raise SettingsError("event source Properties must be a mapping")
    return props


def parse_settings(
    template: Mapping[str, Any],
    decorator: DecoratorValues,
) -> EsmSettings:
    """Validate and merge: template properties over decorator values (merge-template semantics)."""
    props = dict(event_source_properties(template, decorator.name))
    batch_size = _int(props.get("BatchSize", decorator.batch_size), "BatchSize", 1, 10_000)
    window = _int(
        props.get("MaximumBatchingWindowInSeconds", decorator.maximum_batching_window_in_seconds),
        "MaximumBatchingWindowInSeconds", 0, 300)
    position = props.get("StartingPosition", decorator.starting_position)
    if position not in STARTING_POSITIONS:
        raise SettingsError("StartingPosition must be one of %s for DynamoDB streams, got %r"
                            % (", ".join(STARTING_POSITIONS), position))
    retries = _int(props.get("MaximumRetryAttempts", -1), "MaximumRetryAttempts", -1, 10_000)
    max_age = _int(props.get("MaximumRecordAgeInSeconds", -1), "MaximumRecordAgeInSeconds", -1, 604_800)
    if 0 <= max_age < 60:
        raise SettingsError("MaximumRecordAgeInSeconds must be -1 or 60..604800, got %d" % max_age)
    bisect = _bool(props.get("BisectBatchOnFunctionError", False), "BisectBatchOnFunctionError")
    enabled = _bool(props.get("Enabled", True), "Enabled")
    types = props.get("FunctionResponseTypes", [])
    if not isinstance(types, list) or any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
        raise SettingsError("FunctionResponseTypes may only contain %r, got %r"
                            % (REPORT_BATCH_ITEM_FAILURES, types))
    factor = _int(props.get("ParallelizationFactor", 1), "ParallelizationFactor", 1, 10)
    if factor > 1:
        # Per-key order is what AWS promises with a factor > 1 (esm §3); one lane keeps a stricter order.
        log.warning("ParallelizationFactor %d: the local runner processes each shard in one lane", factor)
    tumbling = _int(props.get("TumblingWindowInSeconds", 0), "TumblingWindowInSeconds", 0, 900)
    if tumbling:
        raise SettingsError("TumblingWindowInSeconds is not supported by the local stream runner")
    return EsmSettings(
        batch_size=batch_size,
        batching_window_s=window,
        starting_position=position,
        report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in types,
        bisect_on_error=bisect,
        max_retry_attempts=retries,
        max_record_age_s=max_age,
        on_failure_queue=_on_failure(props.get("DestinationConfig")),
        filters=parse_filter_criteria(props.get("FilterCriteria")),
        enabled=enabled,
        function_name=decorator.name,
    )


def settings_from_template(
    template: Mapping[str, Any], app: Any, function_name: Optional[str] = None,
) -> EsmSettings:
    """Convenience: decorator values from the Chalice app, then `parse_settings`."""
    return parse_settings(template, decorator_values(app, function_name))


def parse_filter_criteria(criteria: Any) -> Tuple[FilterPattern, ...]:
    """`{"Filters": [{"Pattern": "<json>"}]}` -> parsed patterns (esm §4: OR-ed, each <= 4096 chars)."""
    if criteria is None:
        return ()
    if not isinstance(criteria, Mapping) or not isinstance(criteria.get("Filters", []), list):
        raise SettingsError("FilterCriteria must be {'Filters': [{'Pattern': '...'}]}")
    entries = criteria.get("Filters", [])
    if len(entries) > MAX_FILTERS:
        raise SettingsError("FilterCriteria allows at most %d filters, got %d" % (MAX_FILTERS, len(entries)))
    if len(entries) > DEFAULT_FILTER_QUOTA:
        log.warning("%d filters exceed Lambda's default quota of %d per mapping (esm §4)",
                    len(entries), DEFAULT_FILTER_QUOTA)
    patterns = []
    for i, entry in enumerate(entries):
        text = entry.get("Pattern") if isinstance(entry, Mapping) else None
        if not isinstance(text, str):
            raise SettingsError("FilterCriteria.Filters[%d].Pattern must be a JSON string" % i)
        if len(text) > MAX_PATTERN_CHARS:
            raise SettingsError("FilterCriteria.Filters[%d].Pattern exceeds %d characters" % (i, MAX_PATTERN_CHARS))
        try:
            patterns.append(FilterPattern.parse(text))
        except PatternError as exc:
            raise SettingsError("FilterCriteria.Filters[%d].Pattern is invalid: %s" % (i, exc)) from exc
    return tuple(patterns)


def _on_failure(config: Any) -> Optional[str]:
    if config is None:
        return None
    on_failure = (config or {}).get("OnFailure") if isinstance(config, Mapping) else None
    if not on_failure:
        return None
    dest_type = on_failure.get("Type", "SQS")
    dest = on_failure.get("Destination")
    if dest_type != "SQS" and not (isinstance(dest, str) and dest.startswith("arn:aws:sqs:")):
        raise SettingsError("OnFailure destination type %r is not supported locally (SQS only)" % dest_type)
    # Fn::GetAtt [Queue, Arn] names a template resource; the local stack creates the queue from it.
    if isinstance(dest, Mapping) and "Fn::GetAtt" in dest:
        return str(dest["Fn::GetAtt"][0])
    if isinstance(dest, Mapping) and "Ref" in dest:
        return str(dest["Ref"])
    if isinstance(dest, str) and dest:
        return dest.rsplit(":", 1)[-1]  # queue ARN -> queue name
    raise SettingsError("OnFailure.Destination must be a queue ARN or Fn::GetAtt, got %r" % (dest,))


def _int(value: Any, name: str, low: int, high: int) -> int:
    # CloudFormation coerces numeric strings; booleans are not numbers to it.
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError("%s must be an integer, got %r" % (name, value))
    if not low <= value <= high:
        raise SettingsError("%s must be in %d..%d, got %d" % (name, low, high, value))
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise SettingsError("%s must be a boolean, got %r" % (name, value))
    return value
