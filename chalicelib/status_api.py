"""GET /requests/{request_id}: what happened to a request."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable, Dict, Optional

from chalice import Blueprint, Response

from chalicelib import config
from chalicelib.errors import ClientError, InvalidRequestId, RequestNotFound, StoreUnavailable
from chalicelib.logs import logger
from chalicelib.model import is_valid_id
from chalicelib.store import RequestStore

bp = Blueprint(__name__)
_store: Optional[RequestStore] = None


def use_store(store: Optional[RequestStore]) -> None:
    """Inject the store (tests); None rebuilds it from the environment on next use."""
    global _store
    _store = store


def _current_store() -> RequestStore:
    global _store
    if _store is None:
        from chalicelib.aws import dynamodb_client

        settings = config.Settings.from_env()
        _store = RequestStore(dynamodb_client(settings), settings.table_name)
    return _store


def _client_errors_as_json(view: Callable[..., Any]) -> Callable[..., Any]:
    """The one place errors become responses: a ClientError's own status, 503 for storage that
    is throttled or down (retryable), and Chalice's logged 500 for anything else."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ClientError as exc:
            return Response(body={"message": str(exc)}, status_code=exc.STATUS_CODE)
        except StoreUnavailable as exc:
            logger.warning("status read failed: storage unavailable", extra={"error": str(exc), **kwargs})
            return Response(body={"message": "storage unavailable; retry later"}, status_code=503,
                            headers={"Retry-After": "1"})
    return wrapper


@bp.route("/requests/{request_id}", methods=["GET"])
@_client_errors_as_json
def get_request(request_id: str) -> Dict[str, Any]:
    if not is_valid_id(request_id):
        raise InvalidRequestId("a request id is 1 to 100 characters of A-Z a-z 0-9 . _ : -")
    item = _current_store().get(request_id)
    if item is None:
        logger.info("status read: not found", extra={"request_id": request_id})
        raise RequestNotFound(f"no request with id {request_id}")
    logger.info("status read", extra={"request_id": request_id, "status": item.get("status")})
    return view_of(item)


def view_of(item: Dict[str, Any]) -> Dict[str, Any]:
    """The public view of an item: never the stored body, times as ISO 8601 UTC."""
    view: Dict[str, Any] = {
        "id": item["id"],
        "status": item.get("status"),
        "createdAt": _iso(item.get("createdAt")),
        "updatedAt": _iso(item.get("updatedAt")),
        "attempts": item.get("attempts", 0),
    }
    for optional in ("result", "error", "lastError"):
        if optional in item:
            view[optional] = item[optional]
    return view


def _iso(epoch_ms: Any) -> Optional[str]:
    if not isinstance(epoch_ms, int):
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
