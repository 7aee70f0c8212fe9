"""Turn raw `dynamodbstreams.get_records` records into the records Lambda delivers (docs: ESM-1, ESM-2).

GetRecords and the Lambda event differ: the ESM adds `eventSourceARN`, the event carries
ApproximateCreationDateTime as epoch seconds rounded down (a float such as 1767225600.0), and
binary attributes are base64 text. boto3 hands us a datetime and raw bytes, and moto adds its own
gaps (docs: LOCAL-1): eventVersion "1.0", sub-second timestamps, awsRegion always "us-east-1", a MODIFY
record for writes that changed nothing. All of that is normalised here, in one place.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
from typing import Any, Dict, Mapping, Optional

EVENT_VERSION = "1.1"  # what AWS delivers today, AWS-observed (docs: ESM-1)
EVENT_SOURCE = "aws:dynamodb"
_IMAGE_KEYS = ("Keys", "NewImage", "OldImage")


def to_lambda_record(raw: Mapping[str, Any], *, region: str, stream_arn: str) -> Dict[str, Any]:
    """One AWS-shaped Lambda record; `raw` is not modified."""
    src = raw.get("dynamodb") or {}
    ddb: Dict[str, Any] = {}
    created = creation_seconds(raw)
    if created is not None:
        ddb["ApproximateCreationDateTime"] = created
    for key in _IMAGE_KEYS:
        if key in src:
            ddb[key] = encode_item(src[key])
    ddb["SequenceNumber"] = str(src["SequenceNumber"])
    ddb["SizeBytes"] = int(src.get("SizeBytes") or _size_bytes(ddb))
    if "StreamViewType" in src:
        ddb["StreamViewType"] = src["StreamViewType"]
    record: Dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": EVENT_VERSION,
        "eventSource": EVENT_SOURCE,
        "awsRegion": region,
    }
    if raw.get("userIdentity"):  # only TTL deletes carry it (docs: ESM-1, DDB-7)
        record["userIdentity"] = {k: raw["userIdentity"][k] for k in ("type", "principalId")
                                  if k in raw["userIdentity"]}
    record["dynamodb"] = ddb
    record["eventSourceARN"] = stream_arn
    return record


def creation_seconds(raw: Mapping[str, Any]) -> Optional[float]:
    """ApproximateCreationDateTime as epoch seconds floored to the second, as a float (docs: ESM-2)."""
    value = (raw.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # a naive value from a raw client is UTC, as on the wire
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.timestamp()
    return float(math.floor(float(value)))


def sequence_number(raw: Mapping[str, Any]) -> str:
    return str(raw["dynamodb"]["SequenceNumber"])


def is_noop_modify(raw: Mapping[str, Any]) -> bool:
    """A MODIFY whose images are equal. AWS writes no stream record for such a write (docs: DDB-6);
    moto does (docs: LOCAL-110). Only detectable when the stream carries both images."""
    src = raw.get("dynamodb") or {}
    return (raw.get("eventName") == "MODIFY" and "NewImage" in src and "OldImage" in src
            and encode_item(src["NewImage"]) == encode_item(src["OldImage"]))


def encode_item(item: Mapping[str, Any]) -> Dict[str, Any]:
    """Typed AttributeValue JSON with binaries as base64 text (AWS-observed `"B": "Zm9vYmFy"`)."""
    return {name: encode_value(value) for name, value in item.items()}


def encode_value(value: Mapping[str, Any]) -> Dict[str, Any]:
    (tag, inner), = value.items()
    if tag == "B":
        return {"B": _b64(inner)}
    if tag == "BS":
        return {"BS": [_b64(v) for v in inner]}
    if tag == "M":
        return {"M": encode_item(inner)}
    if tag == "L":
        return {"L": [encode_value(v) for v in inner]}
    if tag in ("SS", "NS"):
        return {tag: list(inner)}
    return {tag: inner}


def _b64(value: Any) -> str:
    # Already-text values came from a client that did not decode (raw JSON): they are base64 already.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _size_bytes(ddb: Mapping[str, Any]) -> int:
    # Only when the source omitted it: an estimate, >= 1 as the API requires (docs: DDB-8).
    return max(1, len(json.dumps({k: ddb[k] for k in _IMAGE_KEYS if k in ddb}, separators=(",", ":"))))
