"""The local console's server side without a browser: what it lists (devserver/console_reads.py, on
moto's in-memory table in the states the real store writes) and the paths under /_local/
(devserver/local_pages.py). test_console_browser.py drives the page itself in Chromium."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from werkzeug.test import Client

from chalicelib.store import RequestStore
from devserver import console_reads
from devserver.console_reads import RecentIds, RequestReads
from devserver.local_pages import LocalPages, Unavailable
from devserver.testing.events import pending_item
from tests.conftest import TABLE

FAILURE = {"type": "RejectedRequest", "message": "unknown dish '<b>durian</b>': not on the menu"}


def stored(dynamodb: Any, request_id: str, created_at_ms: int) -> None:
    dynamodb.put_item(TableName=TABLE, Item=pending_item(request_id, {"secret": "the body"},
                                                         created_at_ms=created_at_ms))


# --- what the console lists ------------------------------------------------------------------------

def test_open_requests_are_listed_newest_first_with_their_totals_and_errors(dynamodb):
    store = RequestStore(dynamodb, TABLE)
    for n in range(5):
        stored(dynamodb, f"failed-{n}", 1_000 + n)
        store.finish_failed(f"failed-{n}", FAILURE, now_ms=2_000 + n)
    for n in range(3):
        stored(dynamodb, f"pending-{n}", 1_500 + n)

    lists = RequestReads(dynamodb, TABLE, RecentIds(), shown=2, clock=lambda: 3.0).snapshot()

    failed, pending = lists["FAILED"], lists["PENDING"]
    assert [item["id"] for item in failed["items"]] == ["failed-4", "failed-3"]
    assert (failed["total"], failed["totalIsAtLeast"]) == (5, False)
    assert failed["items"][0]["error"] == FAILURE
    assert failed["items"][0]["updatedAt"] == "1970-01-01T00:00:02.004Z"  # as GET /requests/{id} shows it
    assert [item["id"] for item in pending["items"]] == ["pending-2", "pending-1"] and pending["total"] == 3
    assert lists["readAt"] == 3000


def test_succeeded_requests_are_the_recent_ones_read_back_by_id_never_with_their_body(dynamodb):
    store = RequestStore(dynamodb, TABLE)
    recent = RecentIds()
    for n, request_id in enumerate(["old", "a", "b", "still-pending"]):
        stored(dynamodb, request_id, 1_000 + n)
    for n, request_id in enumerate(["old", "a", "b"]):
        store.finish_succeeded(request_id, {"portions": n}, now_ms=2_000 + n, expires_at=9_999_999_999)
    recent.add(["a", "b", "still-pending", "never-stored"])

    succeeded = RequestReads(dynamodb, TABLE, recent).snapshot()["SUCCEEDED"]

    assert [item["id"] for item in succeeded["items"]] == ["b", "a"]  # latest finish first; "old" was not seen
    assert succeeded["watched"] == 4
    assert succeeded["items"][0]["result"] == {"portions": 2}
    assert "request" not in json.dumps(succeeded)


def test_a_request_that_finishes_between_the_reads_is_listed_once_where_it_now_is(dynamodb):
    # The index is read first, the recent ids last: a request PENDING for the first read and SUCCEEDED
    # by the second used to be listed under both until the next refresh.
    store, recent = RequestStore(dynamodb, TABLE), RecentIds()
    stored(dynamodb, "racer", 1_000)
    stored(dynamodb, "waiting", 1_001)
    recent.add(["racer", "waiting"])

    class FinishesDuringTheRead:
        def query(self, **kwargs: Any) -> Any:
            return dynamodb.query(**kwargs)

        def batch_get_item(self, **kwargs: Any) -> Any:
            store.finish_succeeded("racer", {"ok": True}, now_ms=2_000, expires_at=9_999_999_999)
            return dynamodb.batch_get_item(**kwargs)

    lists = RequestReads(FinishesDuringTheRead(), TABLE, recent).snapshot()

    assert [item["id"] for item in lists["SUCCEEDED"]["items"]] == ["racer"]
    assert [item["id"] for item in lists["PENDING"]["items"]] == ["waiting"]


class EndlessIndex:
    """A DynamoDB client whose status index never ends: every COUNT page says there is more."""

    def __init__(self) -> None:
        self.count_queries = 0

    def query(self, **kwargs: Any) -> Dict[str, Any]:
        if kwargs.get("Select") == "COUNT":
            self.count_queries += 1
            return {"Count": 1000, "LastEvaluatedKey": {"id": {"S": "x"}}}
        return {"Items": []}


def test_counting_a_huge_index_stops_after_a_few_pages_and_says_at_least():
    client = EndlessIndex()

    failed = RequestReads(client, TABLE, RecentIds()).snapshot()["FAILED"]

    assert (failed["total"], failed["totalIsAtLeast"]) == (1000 * console_reads.COUNT_PAGES, True)
    assert client.count_queries == 2 * console_reads.COUNT_PAGES  # FAILED and PENDING


def test_recent_ids_keep_the_newest_distinct_ids_and_watching_passes_the_batch_on():
    recent = RecentIds(size=3)
    seen: List[Any] = []

    def handler_of_the_function(event: Any, context: Any) -> str:
        seen.append(event)
        return "answer"
    handler = recent.watching(handler_of_the_function)
    event = {"Records": [{"dynamodb": {"Keys": {"id": {"S": key}}}} for key in ("a", "b", "a", "c", "d")]}

    assert handler(event, None) == "answer" and seen == [event]
    assert recent.newest_first() == ["d", "c", "a"]
    recent.add(["c"])
    assert recent.newest_first() == ["c", "d", "a"]


# --- the paths under /_local/ ----------------------------------------------------------------------

def unavailable() -> Dict[str, Any]:
    raise Unavailable("the database host (pid 42) is not running")


@pytest.fixture
def pages() -> Client:
    return Client(LocalPages(status=lambda: {"ready": True}, requests=unavailable))


def test_the_console_page_and_its_files_are_served_uncached(pages):
    page = pages.get("/_local/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<script src="console.js"' in page.text and page.headers["Cache-Control"] == "no-store"
    assert pages.get("/_local/console.js").mimetype == "text/javascript"
    assert pages.get("/_local/console.css").mimetype == "text/css"
    assert pages.get("/_local").headers["Location"] == "/_local/"


def test_the_documents_answer_json_and_a_problem_is_a_503_naming_it(pages):
    assert pages.get("/_local/status").json == {"ready": True}
    answer = pages.get("/_local/requests")
    assert answer.status_code == 503
    assert answer.json == {"problem": "the database host (pid 42) is not running"}


def test_nothing_under_local_writes_and_unknown_paths_say_what_is_there(pages):
    assert pages.post("/_local/status").status_code == 405
    missing = pages.get("/_local/nothing")
    assert missing.status_code == 404 and "/_local/requests" in missing.json["paths"]
