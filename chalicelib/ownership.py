"""Who owns a request, and the table key that keeps owners apart.

The owner is the caller's stable identity as API Gateway gives it (docs: IAM-101):
- IAM (SigV4): `identity.user`, the principal id: an IAM user's unique id (AIDA...), or for an
  assumed role "<role id>:<session name>", whose session part is dropped, so every session of a
  role is one owner (AROA...);
- API key: `identity.apiKeyId`;
- neither (AUTH_MODE none): one anonymous owner.
The PUT route's template computes the same owner (infra/template.yaml, `owner_vtl`);
tests/test_put_template.py checks that both agree.

A request's item key is "<owner>/<id>", where <id> is what the client knows (its Idempotency-Key,
or API Gateway's request id). Two owners may use the same key; neither can name the other's item,
because an id cannot contain "/" (model.ID_PATTERN) and every route builds the key from the
caller's own identity.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Tuple

ANONYMOUS = "anonymous"
SEPARATOR = "/"
# What an owner may contain: API Gateway's principal ids (docs: IAM-101) and key ids, behind their
# prefix, in ASCII (Python's \w would also take other scripts' letters, Java's would not). The PUT
# template's $ownerValid is the same pattern: it refuses a request whose owner is anything else.
OWNER_PATTERN = r"(?:anonymous|iam-[A-Za-z0-9_+=,.@:-]{1,200}|key-[A-Za-z0-9]{1,128})"
_OWNER = re.compile(OWNER_PATTERN)
_ROLE_ID_PREFIX = "AROA"


def owner_of(identity: Optional[Mapping[str, Any]]) -> str:
    """The owner of what a caller with this `requestContext.identity` stores."""
    identity = identity or {}
    api_key_id = identity.get("apiKeyId")
    if api_key_id:
        return f"key-{api_key_id}"
    principal = identity.get("user")
    if principal:
        principal = str(principal)
        if principal.startswith(_ROLE_ID_PREFIX) and ":" in principal:
            principal = principal.split(":", 1)[0]  # a role's session: the role itself owns it
        return f"iam-{principal}"
    return ANONYMOUS


def is_owner(value: str) -> bool:
    return _OWNER.fullmatch(value) is not None


def item_key(owner: str, request_id: str) -> str:
    return f"{owner}{SEPARATOR}{request_id}"


def split_key(key: str) -> Tuple[str, str]:
    """(owner, request id) of an item key."""
    owner, _, request_id = key.rpartition(SEPARATOR)
    return owner, request_id


def public_id(key: str) -> str:
    """The id the owner knows their request by."""
    return split_key(key)[1]
