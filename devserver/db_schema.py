"""Create the requests table and the failure queue as infra/template.yaml defines them."""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

TABLE_RESOURCE = "RequestsTable"
QUEUE_RESOURCE = "ProcessorFailureQueue"
# Local names of the failure path's resources (.chalice/config.json names the queue the same way).
DEFAULT_QUEUE = "storefirst-processor-failures"
DEFAULT_BUCKET = "storefirst-processor-failures"
DEFAULT_TOPIC = "storefirst-processor-failures"
# How moto (missing operation), old DynamoDB Local releases (UnknownOperation) and a TTL already set
# on another attribute (ValidationException) refuse UpdateTimeToLive.
_TTL_REFUSALS = {"UnknownOperationException", "ValidationException", "InvalidAction", "NotImplemented"}


def table_properties(template: Mapping[str, Any]) -> dict[str, Any]:
    """`Resources.RequestsTable.Properties` of the loaded template."""
    try:
        return dict(template["Resources"][TABLE_RESOURCE]["Properties"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"template has no Resources.{TABLE_RESOURCE}.Properties") from exc


def ttl_attribute(template: Mapping[str, Any]) -> str | None:
    """The TTL attribute name if the template enables TTL, else None."""
    spec = table_properties(template).get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


def create_table_request(template: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the table's key, attributes, billing mode, indexes and stream.

    Deliberately not copied: DeletionProtectionEnabled (local tables must be disposable), SSE and
    PITR (no local meaning), TimeToLiveSpecification (a separate API call, see ensure_table).
    """
    props = table_properties(template)
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(kind):
            request[kind] = [_index(index, request["BillingMode"], kind) for index in props[kind]]
    view_type = (props.get("StreamSpecification") or {}).get("StreamViewType")
    if view_type:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    return request


def ensure_table(dynamodb: Any, template: Mapping[str, Any], table_name: str, *,
                 timeout: float = 15.0) -> str | None:
    """Create the table if missing, switch its stream and TTL on, wait for ACTIVE; return LatestStreamArn.

    Idempotent. An existing table with another stream view type is an error (the runner's filter
    relies on OldImage), not something to fix silently.
    """
    request = create_table_request(template, table_name)
    table = _describe(dynamodb, table_name)
    if table is None:
        log.info("creating table %s", table_name)
        try:
            dynamodb.create_table(**request)
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":  # created meanwhile by someone else
                raise
    table = _wait_active(dynamodb, table_name, timeout)
    wanted = request.get("StreamSpecification")
    if wanted:
        current = table.get("StreamSpecification") or {}
        if not current.get("StreamEnabled"):
            log.info("enabling the %s stream on existing table %s", wanted["StreamViewType"], table_name)
            dynamodb.update_table(TableName=table_name, StreamSpecification=wanted)
            table = _wait_active(dynamodb, table_name, timeout)
        elif current.get("StreamViewType") != wanted["StreamViewType"]:
            raise ValueError(f"table {table_name} streams {current.get('StreamViewType')}, infra says "
                             f"{wanted['StreamViewType']}: delete it (or reset the local database)")
    attribute = ttl_attribute(template)
    if attribute:
        _enable_ttl(dynamodb, table_name, attribute)
    return table.get("LatestStreamArn")


def queue_attributes(template: Mapping[str, Any]) -> dict[str, str]:
    """SQS attributes of ProcessorFailureQueue that mean something locally (retention)."""
    props = (template.get("Resources", {}).get(QUEUE_RESOURCE) or {}).get("Properties") or {}
    return {"MessageRetentionPeriod": str(props["MessageRetentionPeriod"])} \
        if "MessageRetentionPeriod" in props else {}


def ensure_queue(sqs: Any, name: str, attributes: Mapping[str, str] | None = None) -> str:
    """Create the queue if missing; return its URL. Existing queues are left as they are."""
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if _code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
    log.info("creating queue %s", name)
    return str(sqs.create_queue(QueueName=name, Attributes=dict(attributes or {}))["QueueUrl"])


def _enable_ttl(dynamodb: Any, table_name: str, attribute: str) -> None:
    try:
        current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if current.get("AttributeName") != attribute:
                log.warning("table %s has TTL on %s, infra says %s; left as it is",
                            table_name, current.get("AttributeName"), attribute)
            return
        dynamodb.update_time_to_live(TableName=table_name,
                                     TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True})
        log.info("TTL enabled on %s.%s", table_name, attribute)
    except ClientError as exc:
        if _code(exc) not in _TTL_REFUSALS:
            raise
        # Not fatal: locally the TtlSweeper deletes expired items whatever the table says.
        log.warning("TTL not enabled on %s (%s: %s); rely on the local TtlSweeper",
                    table_name, _code(exc), exc.response.get("Error", {}).get("Message"))


def _describe(dynamodb: Any, table_name: str) -> dict[str, Any] | None:
    try:
        return dict(dynamodb.describe_table(TableName=table_name)["Table"])
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def _wait_active(dynamodb: Any, table_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        table = _describe(dynamodb, table_name)
        if table is not None and table.get("TableStatus") == "ACTIVE":
            return table
        if time.monotonic() > deadline:
            status = table.get("TableStatus") if table else "missing"
            raise TimeoutError(f"table {table_name} not ACTIVE after {timeout:.0f}s (status {status})")
        time.sleep(0.2)


def _throughput(value: Mapping[str, Any] | None) -> dict[str, int]:
    if not value:
        raise ValueError("BillingMode PROVISIONED needs ProvisionedThroughput")
    return {"ReadCapacityUnits": int(value["ReadCapacityUnits"]),
            "WriteCapacityUnits": int(value["WriteCapacityUnits"])}


def _index(index: Mapping[str, Any], billing_mode: str, kind: str) -> dict[str, Any]:
    # CloudFormation index entries may carry keys CreateTable does not take (ContributorInsights...).
    out = {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
    if billing_mode == "PROVISIONED" and kind == "GlobalSecondaryIndexes":
        out["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return out


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
