"""The request item: its statuses, attribute names and what a valid id looks like."""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

PENDING = "PENDING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"

# The same pattern guards ids in the PUT template (infra/template.yaml): a key or request id
# outside it is refused there, so an id outside it cannot exist.
ID_PATTERN = r"[A-Za-z0-9._:-]{1,100}"
ID_RULE = "1 to 100 characters of A-Z a-z 0-9 . _ : -"  # ID_PATTERN in words, for error messages
_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def created_at_ms(item: Mapping[str, Any]) -> Optional[int]:
    """`createdAt` of a typed item or stream image (the PUT template stamps epoch milliseconds)."""
    created = (item.get("createdAt") or {}).get("N")
    return int(created) if isinstance(created, str) and created.isdigit() else None
