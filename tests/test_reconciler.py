"""The reconciler: stuck PENDING requests are re-driven once, then failed; others are left alone."""
from __future__ import annotations

from typing import Any, Dict, Optional

from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.reconciler import Reconciler, ReconcileSettings
from chalicelib.store import RequestStore
from devserver.testing.events import pending_item
from tests.conftest import TABLE

HOUR_MS = 3_600_000
NOW_MS = 1767225600000 + 10 * HOUR_MS
SETTINGS = ReconcileSettings(reconcile_after_seconds=7200, give_up_after_seconds=3900)


def add(dynamodb: Any, request_id: str, age_ms: int, owner: Optional[str] = None, **extra: Dict[str, Any]) -> None:
    item = {**pending_item(request_id, {}, created_at_ms=NOW_MS - age_ms, owner=owner),
            "listStatus": {"S": "PENDING"}, "redriven": {"BOOL": False}, **extra}
    dynamodb.put_item(TableName=TABLE, Item=item)


def item(dynamodb: Any, request_id: str) -> Dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}})["Item"]


def reconciler(dynamodb: Any, now_ms: int = NOW_MS, **settings: Any) -> Reconciler:
    merged = ReconcileSettings(**{**SETTINGS.__dict__, **settings})
    return Reconciler(RequestStore(dynamodb, TABLE), merged, now=lambda: now_ms / 1000)


def test_a_request_pending_too_long_is_redriven_once(dynamodb):
    add(dynamodb, "stuck", age_ms=3 * HOUR_MS)
    add(dynamodb, "recent", age_ms=HOUR_MS)

    counts = reconciler(dynamodb).run()

    assert counts == {"examined": 1, "redriven": 1, "failed": 0}
    stuck = item(dynamodb, "stuck")
    assert stuck["redriven"] == {"BOOL": True} and stuck["redrivenAt"] == {"N": str(NOW_MS)}
    assert stuck["status"] == {"S": "PENDING"}
    assert item(dynamodb, "recent")["redriven"] == {"BOOL": False}


def test_a_redriven_request_still_pending_after_the_grace_period_is_failed(dynamodb):
    add(dynamodb, "stuck", age_ms=3 * HOUR_MS)
    reconciler(dynamodb).run()

    again_soon = reconciler(dynamodb, now_ms=NOW_MS + 3800_000).run()
    later = reconciler(dynamodb, now_ms=NOW_MS + 3901_000).run()

    assert again_soon["failed"] == 0 and later["failed"] == 1
    failed = item(dynamodb, "stuck")
    assert failed["status"] == {"S": "FAILED"} and failed["listStatus"] == {"S": "FAILED"}
    assert failed["error"]["M"]["type"] == {"S": "Stuck"}
    assert "POST /requests/stuck/retry" in failed["error"]["M"]["message"]["S"]


def test_an_owners_stuck_request_is_failed_with_the_retry_its_owner_can_call(dynamodb):
    add(dynamodb, "stuck", age_ms=3 * HOUR_MS, owner="iam-ALICE")
    add(dynamodb, "stuck", age_ms=HOUR_MS, owner="iam-BOB")  # another owner's, same id, not stuck
    reconciler(dynamodb).run()

    counts = reconciler(dynamodb, now_ms=NOW_MS + 3901_000).run()

    assert counts["failed"] == 1
    alices = item(dynamodb, "iam-ALICE/stuck")
    assert alices["status"] == {"S": "FAILED"}
    assert "retry with POST /requests/stuck/retry" in alices["error"]["M"]["message"]["S"]
    assert item(dynamodb, "iam-BOB/stuck")["status"] == {"S": "PENDING"}


def test_finished_requests_are_never_touched(dynamodb):
    add(dynamodb, "done", age_ms=3 * HOUR_MS)
    RequestStore(dynamodb, TABLE).finish_succeeded("done", {}, now_ms=NOW_MS, expires_at=1)

    assert reconciler(dynamodb).run() == {"examined": 0, "redriven": 0, "failed": 0}


def test_a_request_that_moved_on_after_being_listed_is_skipped(dynamodb):
    add(dynamodb, "raced", age_ms=3 * HOUR_MS)
    store = RequestStore(dynamodb, TABLE)

    class FinishesOnList(RequestStore):
        def list_by_status(self, *args: Any, **kwargs: Any) -> Any:
            page = super().list_by_status(*args, **kwargs)
            store.finish_succeeded("raced", {}, now_ms=NOW_MS, expires_at=1)
            return page

    counts = Reconciler(FinishesOnList(dynamodb, TABLE), SETTINGS, now=lambda: NOW_MS / 1000).run()

    assert counts["redriven"] == 0
    assert item(dynamodb, "raced")["status"] == {"S": "SUCCEEDED"}


def test_one_run_is_bounded_and_pages_through_the_index(dynamodb):
    for n in range(250):
        add(dynamodb, f"s{n:03d}", age_ms=3 * HOUR_MS + n)

    first = reconciler(dynamodb, max_items=120).run()
    second = reconciler(dynamodb, max_items=1000).run()

    assert first["redriven"] in range(120, 201)  # stops after the page that crossed the bound
    assert first["redriven"] + second["redriven"] == 250


def test_the_schedule_is_wired_through_chalice(dynamodb):
    add(dynamodb, "stuck", age_ms=100 * HOUR_MS)
    runtime.reset()
    with Client(app_module.app, stage_name="dev") as client:
        payload = client.lambda_.invoke("reconcile", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])).payload
    runtime.reset()

    assert payload["redriven"] == 1
