"""Event source mapping settings, parsed from infra/template.yaml plus the Chalice decorator.

`chalice package --merge-template infra/template.yaml` deep-merges the template over Chalice's own
SAM output, so a property set in the template wins over the decorator's value; the parser applies
the same precedence. Values are validated with the ranges the Lambda API enforces (docs: ESM-3), so a
setting that AWS would reject at deploy time fails here too, instead of silently behaving
differently on the laptop.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .filters import FilterPattern, PatternError

log = logging.getLogger(__name__)

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")  # AT_TIMESTAMP is Kinesis/MSK only (docs: ESM-3)
MAX_PATTERN_CHARS = 4096  # (docs: ESM-12)
MAX_FILTERS = 20  # CloudFormation's array limit; the service quota is 5, raisable to 10 (docs: ESM-12)
DEFAULT_FILTER_QUOTA = 5
# The destinations a DynamoDB stream mapping takes (docs: ESM-7), by ARN service and resource type.
DESTINATION_KINDS = {"sqs": "SQS", "sns": "SNS", "s3": "S3"}
RESOURCE_KINDS = {"AWS::SQS::Queue": "SQS", "AWS::SNS::Topic": "SNS", "AWS::S3::Bucket": "S3"}
# infra/template.yaml's `Mappings` entry of stream mapping properties per Chalice stage.
BY_STAGE = "StreamMappingByStage"


class SettingsError(ValueError):
    """A mapping setting that Lambda would reject (InvalidParameterValueException on AWS)."""


@dataclass(frozen=True)
class OnFailure:
    """Where Lambda sends the record of a batch it gives up on (docs: ESM-7)."""

    kind: str  # "SQS", "SNS" or "S3"
    name: str  # the template's logical id, or the resource name an ARN carries
    logical: bool  # name is a logical id of the template (the local stack names the resource)

    def __str__(self) -> str:
        return "%s %s" % (self.kind, self.name)

    def local_name(self, *, queue: str, topic: str, bucket: str) -> str:
        """The resource's name on the local stack: the one its ARN gives, else the name of its kind."""
        if not self.logical:
            return self.name
        return {"SQS": queue, "SNS": topic, "S3": bucket}[self.kind]


@dataclass(frozen=True)
class EsmSettings:
    """One DynamoDB event source mapping, already validated. Defaults are Lambda's (docs: ESM-3)."""

    batch_size: int = 100
    batching_window_s: float = 0
    starting_position: str = "LATEST"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires
    max_record_age_s: int = -1  # -1: no limit besides the stream's 24 h retention
    parallelization_factor: int = 1  # concurrent batches per shard (docs: ESM-3, ESM-17)
    on_failure: Optional[OnFailure] = None
    filters: Tuple[FilterPattern, ...] = ()
    enabled: bool = True
    function_name: str = "process"  # Chalice's name for the handler, e.g. "process"


@dataclass(frozen=True)
class DecoratorValues:
    """What `@app.on_dynamodb_record(...)` contributes (Chalice exposes only these, docs: CHALICE-2)."""

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
    parallelization = _int(props.get("ParallelizationFactor", 1), "ParallelizationFactor", 1, 10)
    bisect = _bool(props.get("BisectBatchOnFunctionError", False), "BisectBatchOnFunctionError")
    enabled = _bool(props.get("Enabled", True), "Enabled")
    types = props.get("FunctionResponseTypes", [])
    if not isinstance(types, list) or any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
        raise SettingsError("FunctionResponseTypes may only contain %r, got %r"
                            % (REPORT_BATCH_ITEM_FAILURES, types))
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
        parallelization_factor=parallelization,
        on_failure=parse_on_failure(props.get("DestinationConfig"), template.get("Resources") or {}),
        filters=parse_filter_criteria(props.get("FilterCriteria")),
        enabled=enabled,
        function_name=decorator.name,
    )


def for_stage(template: Mapping[str, Any], stage: str) -> Dict[str, Any]:
    """The template as `stage` deploys and runs it: the stage's entry of Mappings.StreamMappingByStage
    set on every stream event source, and that per-stage entry dropped (a new dict). The merge
    template of `make package`, the chalice deploy hook and the local stack all read it so."""
    result: Dict[str, Any] = copy.deepcopy(dict(template))
    mappings = result.get("Mappings") or {}
    by_stage = mappings.pop(BY_STAGE, None)
    if not mappings:
        result.pop("Mappings", None)
    if by_stage is None:
        return result
    if stage not in by_stage:
        raise SettingsError("stage %r has no entry in Mappings.%s of infra/template.yaml (it lists %s): add one"
                            % (stage, BY_STAGE, ", ".join(sorted(by_stage))))
    for resource in (result.get("Resources") or {}).values():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            properties = event.get("Properties") or {}
            if "Stream" in properties:
                properties.update(copy.deepcopy(by_stage[stage]))
    return result


def settings_from_template(
    template: Mapping[str, Any], app: Any, function_name: Optional[str] = None,
) -> EsmSettings:
    """Convenience: decorator values from the Chalice app, then `parse_settings`."""
    return parse_settings(template, decorator_values(app, function_name))


def parse_filter_criteria(criteria: Any) -> Tuple[FilterPattern, ...]:
    """`{"Filters": [{"Pattern": "<json>"}]}` -> parsed patterns (OR-ed, each <= 4096 chars, docs: ESM-12)."""
    if criteria is None:
        return ()
    if not isinstance(criteria, Mapping) or not isinstance(criteria.get("Filters", []), list):
        raise SettingsError("FilterCriteria must be {'Filters': [{'Pattern': '...'}]}")
    entries = criteria.get("Filters", [])
    if len(entries) > MAX_FILTERS:
        raise SettingsError("FilterCriteria allows at most %d filters, got %d" % (MAX_FILTERS, len(entries)))
    if len(entries) > DEFAULT_FILTER_QUOTA:
        log.warning("%d filters exceed Lambda's default quota of %d per mapping (docs: ESM-12)",
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


def parse_on_failure(config: Any, resources: Mapping[str, Any]) -> Optional[OnFailure]:
    """`DestinationConfig` -> the destination, from an ARN or an `Fn::GetAtt`/`Ref` to a template
    resource. SAM's `Type` (docs: CHALICE-7) must agree with what the destination is: SAM would
    otherwise grant the function the wrong permission."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise SettingsError("DestinationConfig must be a mapping, got %r" % (config,))
    on_failure = config.get("OnFailure")
    if not on_failure:
        return None
    if not isinstance(on_failure, Mapping):
        raise SettingsError("DestinationConfig.OnFailure must be a mapping, got %r" % (on_failure,))
    found = _destination(on_failure.get("Destination"), resources)
    sam_type = on_failure.get("Type")
    if sam_type is not None and sam_type != found.kind:
        raise SettingsError("OnFailure Type %r does not match its Destination, an %s (%s); a DynamoDB stream "
                            "mapping takes SQS, SNS or S3" % (sam_type, found.kind, found.name))
    return found


def _destination(dest: Any, resources: Mapping[str, Any]) -> OnFailure:
    if isinstance(dest, str) and dest.startswith("arn:"):
        parts = dest.split(":")
        kind = DESTINATION_KINDS.get(parts[2]) if len(parts) >= 6 else None
        if kind is None:
            raise SettingsError("OnFailure.Destination %r is not an SQS queue, SNS topic or S3 bucket ARN" % dest)
        return OnFailure(kind, parts[-1], logical=False)  # queue name, topic name, bucket name
    logical = _referenced(dest)
    if logical is not None:
        resource_type = (resources.get(logical) or {}).get("Type")
        kind = RESOURCE_KINDS.get(resource_type or "")
        if kind is None:
            raise SettingsError("OnFailure.Destination refers to %s, a %s, not a queue, topic or bucket of "
                                "this template" % (logical, resource_type or "missing resource"))
        return OnFailure(kind, logical, logical=True)
    raise SettingsError("OnFailure.Destination must be an ARN, Fn::GetAtt or Ref, got %r" % (dest,))


def _referenced(dest: Any) -> Optional[str]:
    """The logical id an `Fn::GetAtt` (list or dotted form) or a `Ref` names, else None."""
    if not (isinstance(dest, Mapping) and len(dest) == 1):
        return None
    (function, argument), = dest.items()
    if function == "Ref" and isinstance(argument, str):
        return argument
    if function == "Fn::GetAtt" and isinstance(argument, list) and argument and isinstance(argument[0], str):
        return argument[0]
    if function == "Fn::GetAtt" and isinstance(argument, str):
        return argument.split(".")[0]
    return None


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
