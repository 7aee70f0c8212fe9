"""Which stream records are requests to process, read from the Lambda event's typed images."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from chalicelib.model import PENDING, created_at_ms


@dataclass(frozen=True)
class NewRequest:
    sequence_number: str
    request_id: str
    # The body exactly as the client sent it; None when the item has no request attribute.
    body: Optional[str]
    created_at_ms: Optional[int]


def new_request(record: Mapping[str, Any]) -> Optional[NewRequest]:
    """The request a record brings into PENDING, or None for any other change.

    Requests are: a new item (INSERT), a retry (FAILED -> PENDING) and the reconciler's one
    re-drive of a stuck item (PENDING with `redriven` false -> true). The processor's own
    write-backs (MODIFY out of PENDING, or PENDING -> PENDING) and TTL deletes (REMOVE) are not.
    infra/ filters them out before Lambda is invoked; this check keeps the processor correct
    where no filter applies (tests, other runners).
    """
    change = record.get("dynamodb") or {}
    new_image = change.get("NewImage") or {}
    if _string(new_image, "status") != PENDING:
        return None
    old_image = change.get("OldImage")
    if old_image and _string(old_image, "status") == PENDING and not _redriven_now(old_image, new_image):
        return None
    request_id = _string(new_image, "id") or _string(change.get("Keys") or {}, "id")
    sequence_number = change.get("SequenceNumber")
    if not request_id or not sequence_number:
        return None
    return NewRequest(
        sequence_number=str(sequence_number),
        request_id=request_id,
        body=_string(new_image, "request"),
        created_at_ms=created_at_ms(new_image),
    )


def _string(image: Mapping[str, Any], name: str) -> Optional[str]:
    value = (image.get(name) or {}).get("S")
    return value if isinstance(value, str) else None


def _redriven_now(old_image: Mapping[str, Any], new_image: Mapping[str, Any]) -> bool:
    return (old_image.get("redriven") or {}).get("BOOL") is False and \
        (new_image.get("redriven") or {}).get("BOOL") is True
