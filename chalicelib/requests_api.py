"""The Chalice routes: a request's status, the list of unfinished or failed ones, and retry.
(PUT /requests is not here: API Gateway writes it to DynamoDB itself, see infra/.)

A caller sees only its own requests (chalicelib/ownership.py): `/requests/...` builds the item key
from the caller's identity, so another owner's request is "not found", exactly like a request that
does not exist (no 403 that would tell it exists). Operators see every request through
`/admin/requests/...`; who is an operator is decided by IAM alone: those routes take IAM auth
whenever the stage has auth at all, and only roles granted `execute-api:Invoke` on them may call
them (README "Who can see what").
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable, Dict, Mapping, Optional
from urllib.parse import unquote

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib import config, runtime
from chalicelib.errors import (
    CallerError,
    ConditionFailed,
    InvalidQuery,
    InvalidRequestId,
    RequestConflict,
    RequestNotFound,
    StoreUnavailable,
)
from chalicelib.logs import logger
from chalicelib.model import FAILED, ID_RULE, PENDING, is_valid_id
from chalicelib.ownership import is_owner, item_key, owner_of, public_id, split_key

bp = Blueprint(__name__)
LISTABLE = (PENDING, FAILED)
DEFAULT_LIMIT, MAX_LIMIT = 25, 100


def route_auth(mode: str) -> Dict[str, Any]:
    """The route options for an AUTH_MODE (the PUT route gets the same: infra/merge_stage.py)."""
    if mode == "iam":
        return {"authorizer": IAMAuthorizer()}
    if mode == "api_key":
        return {"api_key_required": True}
    return {}


def operator_auth(mode: str) -> Dict[str, Any]:
    """The operator routes' options: IAM whenever the stage has auth (an API key identifies a
    caller, it cannot grant a role), none only where nothing is guarded (AUTH_MODE none)."""
    return {} if mode == "none" else {"authorizer": IAMAuthorizer()}


# Read once, at import: the stage's value when `chalice package --stage` imports the app.
AUTH = route_auth(config.auth_mode())
OPERATOR_AUTH = operator_auth(config.auth_mode())


def _errors_as_json(view: Callable[..., Any]) -> Callable[..., Any]:
    """The one place errors become responses: a CallerError's own status, 503 for storage that
    is throttled or down (retryable), and Chalice's logged 500 for anything else."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except CallerError as exc:
            return Response(body={"message": str(exc), **exc.details}, status_code=exc.STATUS_CODE)
        except StoreUnavailable as exc:
            logger.warning("storage unavailable", extra={"error": str(exc), **kwargs})
            return Response(body={"message": "storage unavailable; retry later"}, status_code=503,
                            headers={"Retry-After": "1"})
    return wrapper


def _valid_id(request_id: str) -> str:
    if not is_valid_id(request_id):
        raise InvalidRequestId(f"a request id is {ID_RULE}")
    return request_id


def _caller() -> str:
    return owner_of((bp.current_request.context or {}).get("identity"))


def _owned(owner: str, request_id: str) -> str:
    # A path parameter may arrive still percent-encoded ("k%3A1" for "k:1"): `chalice local` never
    # decodes it, and API Gateway keeps a REST API's path as sent. Neither an owner nor an id can
    # contain "%" (ownership.OWNER_PATTERN, model.ID_PATTERN), so decoding once is exact either way.
    owner, request_id = unquote(owner), unquote(request_id)
    if not is_owner(owner):
        raise InvalidRequestId(f"{owner!r} is not an owner")
    return item_key(owner, _valid_id(request_id))


# --- a caller's own requests ---------------------------------------------------------------------

@bp.route("/requests/{request_id}", methods=["GET"], **AUTH)
@_errors_as_json
def get_request(request_id: str) -> Dict[str, Any]:
    return _show(_owned(_caller(), request_id), operator=False)


@bp.route("/requests/{request_id}/retry", methods=["POST"], **AUTH)
@_errors_as_json
def retry_request(request_id: str) -> Response:
    return _retry(_owned(_caller(), request_id))


@bp.route("/requests", methods=["GET"], **AUTH)
@_errors_as_json
def list_requests() -> Dict[str, Any]:
    return _list(owner=_caller())


# --- operators: every request ---------------------------------------------------------------------

@bp.route("/admin/requests/{owner}/{request_id}", methods=["GET"], **OPERATOR_AUTH)
@_errors_as_json
def operator_get_request(owner: str, request_id: str) -> Dict[str, Any]:
    return _show(_owned(owner, request_id), operator=True)


@bp.route("/admin/requests/{owner}/{request_id}/retry", methods=["POST"], **OPERATOR_AUTH)
@_errors_as_json
def operator_retry_request(owner: str, request_id: str) -> Response:
    return _retry(_owned(owner, request_id))


@bp.route("/admin/requests", methods=["GET"], **OPERATOR_AUTH)
@_errors_as_json
def operator_list_requests() -> Dict[str, Any]:
    return _list(owner=None)


def _show(key: str, *, operator: bool) -> Dict[str, Any]:
    item = runtime.store().get(key)
    if item is None:
        logger.info("status read: not found", extra={"request_id": key})
        raise RequestNotFound(f"no request with id {public_id(key)}")
    logger.info("status read", extra={"request_id": key, "status": item.get("status")})
    return view_of(item, operator=operator)


def _retry(key: str) -> Response:
    try:
        before = runtime.store().retry(key, now_ms=int(time.time() * 1000))
    except ConditionFailed as exc:
        logger.info("retry refused", extra={"request_id": key, "reason": str(exc)})
        raise RequestConflict(f"only a FAILED request can be retried: {exc}", id=public_id(key)) from exc
    logger.info("retry accepted", extra={"request_id": key, "error": before.get("error")})
    return Response(body={"id": public_id(key), "status": PENDING}, status_code=202)


def _list(*, owner: Optional[str]) -> Dict[str, Any]:
    query: Mapping[str, str] = bp.current_request.query_params or {}
    status = query.get("status")
    if status not in LISTABLE:
        raise InvalidQuery(f"status must be one of {', '.join(LISTABLE)}")
    limit = _limit(query.get("limit"))
    start = decode_cursor(query["cursor"], status) if query.get("cursor") else None
    items, last = runtime.store().list_by_status(status, limit=limit, start=start, owner=owner)
    logger.info("listed", extra={"status": status, "count": len(items), "owner": owner or "*"})
    return {"items": [view_of(item, operator=owner is None) for item in items],
            "next": encode_cursor(last) if last else None}


def _limit(raw: Optional[str]) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, status: str) -> Dict[str, Any]:
    """The index position a cursor names; anything that is not one this API made is a 400."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        valid = (isinstance(key, dict) and set(key) == {"id", "listStatus", "createdAt"}
                 and key["listStatus"] == {"S": status} and _is_item_key(key["id"]["S"])
                 and str(key["createdAt"]["N"]).isdigit())
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidQuery("cursor is not valid: pass back the `next` value of the previous page unchanged")
    valid_key: Dict[str, Any] = key
    return valid_key


def _is_item_key(key: str) -> bool:
    owner, request_id = split_key(key)
    return is_owner(owner) and is_valid_id(request_id)


def view_of(item: Dict[str, Any], *, operator: bool = False) -> Dict[str, Any]:
    """The view of an item: its id as its owner knows it (operators also see the owner), never the
    stored body, times as ISO 8601 UTC."""
    owner, request_id = split_key(item["id"])
    view: Dict[str, Any] = {
        "id": request_id,
        **({"owner": owner} if operator else {}),
        "status": item.get("status"),
        "createdAt": _iso(item.get("createdAt")),
        "updatedAt": _iso(item.get("updatedAt")),
        "attempts": item.get("attempts", 0),
    }
    for optional in ("result", "error", "lastError", "errorHistory"):
        if optional in item:
            view[optional] = item[optional]
    return view


def _iso(epoch_ms: Any) -> Optional[str]:
    if not isinstance(epoch_ms, int):
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
