"""Local TTL: a sweeper that deletes expired items, and the rule that marks such deletes in the stream.

moto never expires items (docs: LOCAL-111). DynamoDB Local 3.3.1 does (within ~10 s when TTL is
enabled), but its stream record for the delete has eventName "UNKNOWN_TO_SDK_VERSION" and no
userIdentity (observed, docs: LOCAL-111). On AWS a TTL delete is a REMOVE with
userIdentity {"type": "Service", "principalId": "dynamodb.amazonaws.com"} (docs: DDB-7), and our ESM
filter and processor rely on that shape, so the stream runner passes each record through
`tag_ttl_remove` before filtering.

The rule: a REMOVE whose OldImage holds a Number TTL attribute with
    now - 5 years <= ttl <= ApproximateCreationDateTime
is a TTL delete. The sweeper only deletes items that satisfy exactly that at delete time, so every
sweeper delete is tagged. The rule also tags a user's delete of an item that had expired but was not
swept yet; on AWS that would be a user delete. Nothing in this project deletes requests by hand.
Run the sweeper against moto only: DynamoDB Local expires items itself, and its minute-floored
ApproximateCreationDateTime would make the rule miss a sweeper delete made within the expiry minute.
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

TTL_USER_IDENTITY: dict[str, str] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
# DynamoDB ignores TTL values more than five years in the past (DynamoDB Local 3.3.1 does too: observed).
MAX_TTL_AGE_SECONDS = 5 * 365 * 24 * 3600
# What DynamoDB Local 3.3.1 writes as eventName for its own TTL deletes.
DYNAMODB_LOCAL_TTL_EVENT_NAME = "UNKNOWN_TO_SDK_VERSION"
# On AWS a String compared with a Number is just false; moto 5.2.5 answers HTTP 500 instead, so the
# type test comes first (AND short-circuits in moto).
_EXPIRED = "attribute_type(#ttl, :number) AND #ttl BETWEEN :oldest AND :now"


def tag_ttl_remove(record: dict[str, Any], ttl_attribute: str) -> dict[str, Any]:
    """The record, or a copy marked as a TTL delete (eventName REMOVE + the service userIdentity).

    Accepts the boto3 shape (ApproximateCreationDateTime a datetime) and the Lambda-event shape
    (epoch seconds as a number). Records that already carry a userIdentity are left alone.
    """
    if "userIdentity" in record:
        return record
    stream = record.get("dynamodb") or {}
    name = record.get("eventName")
    if name == DYNAMODB_LOCAL_TTL_EVENT_NAME and "NewImage" not in stream:
        return _tagged(record)  # only DynamoDB Local's TTL worker produces this name
    if name != "REMOVE":
        return record
    expires = _number((stream.get("OldImage") or {}).get(ttl_attribute))
    created = _epoch(stream.get("ApproximateCreationDateTime"))
    if expires is None or created is None:
        return record
    if created - MAX_TTL_AGE_SECONDS <= expires <= created:
        return _tagged(record)
    return record


class TtlSweeper:
    """Deletes items whose TTL attribute (Number, epoch seconds) is <= now, like DynamoDB's TTL does.

    Each delete is conditional on the item still existing and still being expired, so an item whose
    TTL was pushed forward (or removed) after the scan survives. `clock` returns epoch seconds.
    """

    def __init__(self, dynamodb: Any, table_name: str, ttl_attribute: str, *,
                 key_names: Sequence[str] | None = None, clock: Callable[[], float] = time.time,
                 interval_seconds: float = 1.0) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._ttl = ttl_attribute
        self._keys = list(key_names) if key_names else None
        self._clock = clock
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep_once(self) -> int:
        """One scan and the deletes it calls for; returns how many items were deleted."""
        now = int(self._clock())  # whole seconds, as TTL values are
        deleted = 0
        for key in self.find_expired(now):
            if self.delete_if_expired(key, now):
                deleted += 1
        if deleted:
            log.info("TTL sweep deleted %s expired item(s) from %s", deleted, self._table)
        return deleted

    def find_expired(self, now: int) -> list[dict[str, Any]]:
        """Keys of the items that are expired at `now` (a scan: fine for a local table)."""
        keys = self._key_names()
        names = {f"#k{i}": name for i, name in enumerate(keys)} | {"#ttl": self._ttl}
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": _EXPIRED,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._bounds(now),
        }
        found: list[dict[str, Any]] = []
        while True:
            page = self._dynamodb.scan(**request)
            found += [{name: item[name] for name in keys} for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete_if_expired(self, key: Mapping[str, Any], now: int) -> bool:
        """Delete one item if it is still there and still expired at `now`; False if it changed."""
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key=dict(key),
                ConditionExpression=f"attribute_exists(#k) AND {_EXPIRED}",
                ExpressionAttributeNames={"#k": next(iter(key)), "#ttl": self._ttl},
                ExpressionAttributeValues=self._bounds(now),
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                log.debug("TTL sweep: %s changed after the scan; kept", key)
                return False
            raise

    def start(self) -> None:
        """Sweep every `interval_seconds` in a daemon thread until stop()."""
        if self._thread and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"ttl-sweeper-{self._table}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self.sweep_once()
            except Exception:  # the database may be restarting: keep sweeping once it is back
                log.warning("TTL sweep of %s failed; retrying in %.1fs", self._table, self._interval,
                            exc_info=True)
            self._stopping.wait(self.pause_after(time.monotonic() - began))

    def pause_after(self, sweep_seconds: float) -> float:
        """The wait before the next sweep: the interval, or longer when a sweep (a full scan)
        takes long, so it stays under ~5% of the database's time. AWS deletes within days anyway."""
        return max(self._interval, 20 * sweep_seconds)

    def _key_names(self) -> list[str]:
        if self._keys is None:
            schema = self._dynamodb.describe_table(TableName=self._table)["Table"]["KeySchema"]
            self._keys = [part["AttributeName"] for part in schema]
        return self._keys

    @staticmethod
    def _bounds(now: int) -> dict[str, Any]:
        return {":number": {"S": "N"}, ":oldest": {"N": str(now - MAX_TTL_AGE_SECONDS)}, ":now": {"N": str(now)}}


def _tagged(record: dict[str, Any]) -> dict[str, Any]:
    tagged = copy.copy(record)
    tagged["eventName"] = "REMOVE"
    tagged["userIdentity"] = dict(TTL_USER_IDENTITY)
    return tagged


def _number(value: Any) -> Decimal | None:
    if not isinstance(value, Mapping) or "N" not in value:
        return None
    try:
        number = Decimal(str(value["N"]))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _epoch(value: Any) -> Decimal | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # boto3 always attaches a zone; a naive one is taken as UTC
            value = value.replace(tzinfo=dt.timezone.utc)
        return Decimal(str(value.timestamp()))
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value))
    return None
