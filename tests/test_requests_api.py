"""GET /requests/{id} through Chalice's test client, against moto."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.ownership import ANONYMOUS, item_key
from chalicelib.store import RequestStore
from devserver.testing.events import pending_item
from devserver.testing.fakes import FailingClient
from tests.conftest import TABLE


@pytest.fixture
def http(dynamodb: Any) -> Iterator[Any]:
    runtime.reset()
    with Client(app_module.app, stage_name="dev") as client:
        yield client.http
    runtime.reset()


def stored(request_id: str, body: Any, **options: Any) -> Any:
    """An item the test client's caller owns: it calls without identity, as the anonymous owner."""
    return pending_item(request_id, body, owner=ANONYMOUS, **options)


def mine(request_id: str) -> str:
    return item_key(ANONYMOUS, request_id)


def get(http: Any, request_id: str) -> Any:
    return http.get(f"/requests/{request_id}")


def test_a_pending_request_shows_its_state_but_never_its_body(http, dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=stored("r-1", {"secret": "s3cr3t"}, created_at_ms=1767225600123))

    response = get(http, "r-1")

    assert response.status_code == 200
    assert json.loads(response.body) == {
        "id": "r-1", "status": "PENDING", "attempts": 0,
        "createdAt": "2026-01-01T00:00:00.123Z", "updatedAt": "2026-01-01T00:00:00.123Z",
    }
    assert b"s3cr3t" not in response.body


def test_a_finished_request_shows_its_result_or_error(http, dynamodb):
    store = RequestStore(dynamodb, TABLE)
    for request_id in ("ok", "bad"):
        dynamodb.put_item(TableName=TABLE, Item=stored(request_id, {}))
    store.finish_succeeded(mine("ok"), {"portions": {"margherita": 2}, "ratio": 0.5}, now_ms=1767225601000,
                           expires_at=1)
    store.finish_failed(mine("bad"), {"type": "RejectedRequest", "message": "unknown dish"}, now_ms=1767225602000)

    ok, bad = json.loads(get(http, "ok").body), json.loads(get(http, "bad").body)

    assert ok["status"] == "SUCCEEDED" and ok["result"] == {"portions": {"margherita": 2}, "ratio": 0.5}
    assert ok["attempts"] == 1 and ok["updatedAt"] == "2026-01-01T00:00:01.000Z" and "error" not in ok
    assert bad["status"] == "FAILED" and bad["error"] == {"type": "RejectedRequest", "message": "unknown dish"}
    assert "result" not in bad


def test_a_pending_request_shows_its_last_transient_error(http, dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=stored("r-1", {}))
    transient = {"type": "TransientError", "message": "printer"}
    RequestStore(dynamodb, TABLE).record_attempt(mine("r-1"), transient, now_ms=5)

    body = json.loads(get(http, "r-1").body)

    assert body["status"] == "PENDING" and body["attempts"] == 1
    assert body["lastError"] == {"type": "TransientError", "message": "printer"}


def test_each_id_returns_only_its_own_item(http, dynamodb):
    for request_id in ("a", "b", "a.b", "a:b"):
        dynamodb.put_item(TableName=TABLE, Item=stored(request_id, {}))

    assert {json.loads(get(http, i).body)["id"] for i in ("a", "b", "a.b", "a:b")} == {"a", "b", "a.b", "a:b"}
    assert get(http, "a-").status_code == 404


def test_an_unknown_id_is_a_json_404(http):
    response = get(http, "nope")

    assert response.status_code == 404
    assert json.loads(response.body) == {"message": "no request with id nope"}


@pytest.mark.parametrize("request_id", ["x" * 101, "%20a", "caf%C3%A9", "a%2Fb", "%2E%2E%2Fetc", "a%22b"])
def test_an_id_that_cannot_be_valid_is_a_json_400(http, request_id):
    response = get(http, request_id)

    assert response.status_code == 400
    assert "1 to 100 characters" in json.loads(response.body)["message"]


def test_storage_trouble_is_not_reported_as_not_found(http, dynamodb):
    dynamodb.delete_table(TableName=TABLE)

    response = get(http, "r-1")

    assert response.status_code == 500


def test_throttled_storage_is_a_retryable_503(dynamodb):
    runtime.use("store", RequestStore(FailingClient(dynamodb, "get_item"), TABLE))
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.get("/requests/r-1")
    runtime.reset()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body) == {"message": "storage unavailable; retry later"}


# --- POST /requests/{id}/retry ------------------------------------------------------------------

def fail(dynamodb: Any, request_id: str, message: str = "unknown dish") -> None:
    dynamodb.put_item(TableName=TABLE, Item={**stored(request_id, {}), "listStatus": {"S": "PENDING"}})
    RequestStore(dynamodb, TABLE).finish_failed(mine(request_id), {"type": "RejectedRequest", "message": message},
                                                now_ms=1767225601000)


def test_retrying_a_failed_request_makes_it_pending_and_keeps_its_error_history(http, dynamodb):
    fail(dynamodb, "r-1", "first")

    response = http.post("/requests/r-1/retry")

    assert response.status_code == 202
    assert json.loads(response.body) == {"id": "r-1", "status": "PENDING"}
    view = json.loads(get(http, "r-1").body)
    assert view["status"] == "PENDING" and "error" not in view
    assert view["errorHistory"] == [{"type": "RejectedRequest", "message": "first"}]
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": mine("r-1")}})["Item"]
    assert item["listStatus"] == {"S": "PENDING"}


def test_a_second_failure_and_retry_append_to_the_history(http, dynamodb):
    fail(dynamodb, "r-1", "first")
    http.post("/requests/r-1/retry")
    RequestStore(dynamodb, TABLE).finish_failed(mine("r-1"), {"type": "RejectedRequest", "message": "second"}, now_ms=2)

    assert http.post("/requests/r-1/retry").status_code == 202
    assert [e["message"] for e in json.loads(get(http, "r-1").body)["errorHistory"]] == ["first", "second"]


@pytest.mark.parametrize("status", ["PENDING", "SUCCEEDED"])
def test_only_a_failed_request_can_be_retried(http, dynamodb, status):
    dynamodb.put_item(TableName=TABLE, Item={**stored("r-1", {}), "status": {"S": status}})

    response = http.post("/requests/r-1/retry")

    assert response.status_code == 409
    body = json.loads(response.body)
    assert body["id"] == "r-1" and status in body["message"]
    assert dynamodb.get_item(TableName=TABLE, Key={"id": {"S": mine("r-1")}})["Item"]["status"] == {"S": status}


def test_retrying_an_unknown_or_impossible_id(http):
    assert http.post("/requests/nope/retry").status_code == 404
    assert http.post(f"/requests/{'x' * 101}/retry").status_code == 400


# --- GET /requests?status= -------------------------------------------------------------------------

def add_listed(dynamodb: Any, request_id: str, status: str, created_at_ms: int) -> None:
    item = {**stored(request_id, {}, created_at_ms=created_at_ms), "status": {"S": status}}
    if status == "SUCCEEDED":
        del item["listStatus"]  # the sparse index holds only unfinished and failed requests
    else:
        item["listStatus"] = {"S": status}
    dynamodb.put_item(TableName=TABLE, Item=item)


def test_listing_pages_through_every_request_of_a_status_oldest_first(http, dynamodb):
    for n in range(7):
        add_listed(dynamodb, f"f{n}", "FAILED", 1767225600000 + n)
    add_listed(dynamodb, "p0", "PENDING", 1767225600000)
    add_listed(dynamodb, "s0", "SUCCEEDED", 1767225600000)

    seen, cursor, pages = [], None, 0
    while True:
        url = "/requests?status=FAILED&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = json.loads(http.get(url).body)
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break

    assert seen == [f"f{n}" for n in range(7)]
    assert pages >= 3
    assert [i["id"] for i in json.loads(http.get("/requests?status=PENDING").body)["items"]] == ["p0"]


@pytest.mark.parametrize("query, message", [
    ("", "status must be one of PENDING, FAILED"),
    ("?status=SUCCEEDED", "status must be one of"),
    ("?status=FAILED&limit=0", "limit must be"),
    ("?status=FAILED&limit=101", "limit must be"),
    ("?status=FAILED&limit=ten", "limit must be"),
    ("?status=FAILED&cursor=garbage", "cursor is not valid"),
    ("?status=FAILED&cursor=eyJpZCI6eyJTIjoieCJ9fQ", "cursor is not valid"),
])
def test_bad_list_queries_are_400_with_the_reason(http, query, message):
    response = http.get(f"/requests{query}")

    assert response.status_code == 400
    assert message in json.loads(response.body)["message"]


def test_a_cursor_for_one_status_is_refused_for_another(http, dynamodb):
    for n in range(3):
        add_listed(dynamodb, f"f{n}", "FAILED", 1767225600000 + n)
    cursor = json.loads(http.get("/requests?status=FAILED&limit=1").body)["next"]

    assert http.get(f"/requests?status=PENDING&cursor={cursor}").status_code == 400


@pytest.mark.parametrize("path_id", ["k:1.x", "k%3A1.x", "k%3a1%2Ex"])
def test_an_id_reaches_the_route_the_same_encoded_or_not(http, dynamodb, path_id):
    dynamodb.put_item(TableName=TABLE, Item=stored("k:1.x", {}))

    response = get(http, path_id)

    assert (response.status_code, json.loads(response.body)["id"]) == (200, "k:1.x")


@pytest.mark.parametrize("path_id", ["a%2Fb", "iam-BOB%2Fr-1", "..%2F..%2Fx", "%25"])
def test_an_encoded_slash_cannot_name_another_owners_request(http, dynamodb, path_id):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("r-1", {}, owner="iam-BOB"))

    response = get(http, path_id)

    assert response.status_code == 400 and b"r-1" not in response.body
