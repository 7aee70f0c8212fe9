"""The reconciler: no request stays PENDING forever.

A request can miss the stream for good: its record was trimmed after 24 h of processor outage,
or its failure record could not be resolved. Run on a schedule, this finds PENDING requests
older than `reconcile_after` in the sparse status index (a Query, never a table scan), re-drives
each once through the stream, and fails those still PENDING `give_up_after` after that re-drive.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from chalice import Blueprint, Rate

from chalicelib import runtime
from chalicelib.errors import ConditionFailed
from chalicelib.logs import logger
from chalicelib.model import PENDING
from chalicelib.ownership import public_id
from chalicelib.store import RequestStore

_PAGE = 100


@dataclass(frozen=True)
class ReconcileSettings:
    reconcile_after_seconds: int
    give_up_after_seconds: int
    # Bounds one run's work; the next run continues where this one stopped.
    max_items: int = 1000


class Reconciler:
    def __init__(self, store: RequestStore, settings: ReconcileSettings, *,
                 now: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._now = now

    def run(self) -> Dict[str, int]:
        now_ms = int(self._now() * 1000)
        cutoff = now_ms - self._settings.reconcile_after_seconds * 1000
        give_up_before = now_ms - self._settings.give_up_after_seconds * 1000
        counts = {"examined": 0, "redriven": 0, "failed": 0}
        start: Optional[Dict[str, Any]] = None
        while counts["examined"] < self._settings.max_items:
            items, start = self._store.list_by_status(PENDING, limit=_PAGE, start=start, created_before_ms=cutoff)
            for item in items:
                counts["examined"] += 1
                self._reconcile(item, now_ms, give_up_before, counts)
            if start is None:
                break
        logger.info("reconciled", extra=counts)
        return counts

    def _reconcile(self, item: Dict[str, Any], now_ms: int, give_up_before: int, counts: Dict[str, int]) -> None:
        request_id = item["id"]
        try:
            if not item.get("redriven"):
                self._store.redrive(request_id, now_ms=now_ms)
                counts["redriven"] += 1
                logger.warning("stuck request re-driven through the stream", extra={"request_id": request_id})
            elif int(item.get("redrivenAt", now_ms)) < give_up_before:
                minutes = (now_ms - int(item["createdAt"])) // 60000
                retry = f"POST /requests/{public_id(request_id)}/retry"
                error = {"type": "Stuck", "message": f"still PENDING {minutes} min after it was accepted, even "
                                                     f"after a re-drive; retry with {retry}"}
                self._store.finish_failed(request_id, error, now_ms=now_ms, attempt=False)
                counts["failed"] += 1
                logger.error("stuck request failed", extra={"request_id": request_id})
        except ConditionFailed:
            # The index is eventually consistent: the item moved on since it was listed.
            logger.info("reconcile skipped: the request changed meanwhile", extra={"request_id": request_id})


bp = Blueprint(__name__)


@bp.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile(event: Any) -> Dict[str, int]:
    settings = runtime.settings()
    return Reconciler(runtime.store(), ReconcileSettings(settings.reconcile_after_seconds,
                                                         settings.give_up_after_seconds)).run()
