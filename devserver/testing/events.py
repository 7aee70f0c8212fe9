"""DynamoDB stream events shaped like the ones Lambda delivers (docs: ESM-1, ESM-2), for tests.

Chalice's test client has no DynamoDB event generator. This one keeps what ordering and
checkpoint tests depend on: increasing sequence numbers, a real-shaped stream ARN,
eventVersion "1.1", epoch-second ApproximateCreationDateTime, and only the images the
stream view type includes.
"""
from __future__ import annotations

import itertools
import json
import uuid
from typing import Any, Dict, Mapping, Optional

_IMAGES = {
    "KEYS_ONLY": (False, False),
    "NEW_IMAGE": (True, False),
    "OLD_IMAGE": (False, True),
    "NEW_AND_OLD_IMAGES": (True, True),
}
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class StreamEvents:
    def __init__(
        self,
        table: str = "storefirst-requests",
        *,
        region: str = "eu-central-1",
        account: str = "123456789012",
        view_type: str = "NEW_AND_OLD_IMAGES",
        first_sequence: int = 4421584500000000017450439091,
        created_at: float = 1767225600.0,
    ) -> None:
        self.region = region
        self.view_type = view_type
        self.stream_arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/2026-01-01T00:00:00.000"
        self._sequence = itertools.count(first_sequence, 137)
        self._created_at = created_at

    def insert(self, new: Mapping[str, Any]) -> Dict[str, Any]:
        return self._record("INSERT", new=new)

    def modify(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> Dict[str, Any]:
        return self._record("MODIFY", old=old, new=new)

    def remove(self, old: Mapping[str, Any], *, by_ttl: bool = False) -> Dict[str, Any]:
        record = self._record("REMOVE", old=old)
        if by_ttl:
            record["userIdentity"] = dict(TTL_IDENTITY)
        return record

    @staticmethod
    def event(*records: Dict[str, Any]) -> Dict[str, Any]:
        return {"Records": list(records)}

    def _record(
        self,
        name: str,
        *,
        new: Optional[Mapping[str, Any]] = None,
        old: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        keep_new, keep_old = _IMAGES[self.view_type]
        image = new if new is not None else old
        assert image is not None
        change: Dict[str, Any] = {
            "ApproximateCreationDateTime": float(int(self._created_at)),
            "Keys": {"id": dict(image["id"])},
            "SequenceNumber": str(next(self._sequence)),
            "StreamViewType": self.view_type,
        }
        if keep_new and new is not None:
            change["NewImage"] = dict(new)
        if keep_old and old is not None:
            change["OldImage"] = dict(old)
        change["SizeBytes"] = len(json.dumps({k: v for k, v in change.items() if k != "SequenceNumber"}))
        return {
            "eventID": uuid.uuid4().hex,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }


def pending_item(request_id: str, body: Any, *, created_at_ms: int = 1767225600000,
                 owner: Optional[str] = None) -> Dict[str, Any]:
    """The item the PUT template writes, as typed attributes: keyed "<owner>/<request_id>" with its
    owner when `owner` is given (what the routes read), else by `request_id` alone."""
    text = body if isinstance(body, str) else json.dumps(body)
    ownership = {} if owner is None else {"owner": {"S": owner}}
    return {
        "id": {"S": request_id if owner is None else f"{owner}/{request_id}"},
        **ownership,
        "request": {"S": text},
        "status": {"S": "PENDING"},
        "createdAt": {"N": str(created_at_ms)},
        "updatedAt": {"N": str(created_at_ms)},
        "attempts": {"N": "0"},
        "listStatus": {"S": "PENDING"},
        "redriven": {"BOOL": False},
    }
