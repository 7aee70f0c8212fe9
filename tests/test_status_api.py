"""GET /requests/{id} through Chalice's test client, against moto."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import status_api
from chalicelib.store import RequestStore
from tests.conftest import TABLE
from tests.fakes import FailingClient
from tests.streamevents import pending_item


@pytest.fixture
def http(dynamodb: Any) -> Iterator[Any]:
    status_api.use_store(None)
    with Client(app_module.app, stage_name="dev") as client:
        yield client.http
    status_api.use_store(None)


def get(http: Any, request_id: str) -> Any:
    return http.get(f"/requests/{request_id}")


def test_a_pending_request_shows_its_state_but_never_its_body(http, dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("r-1", {"secret": "s3cr3t"}, created_at_ms=1767225600123))

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
        dynamodb.put_item(TableName=TABLE, Item=pending_item(request_id, {}))
    store.finish_succeeded("ok", {"portions": {"margherita": 2}, "ratio": 0.5}, now_ms=1767225601000, expires_at=1)
    store.finish_failed("bad", {"type": "RejectedRequest", "message": "unknown dish"}, now_ms=1767225602000)

    ok, bad = json.loads(get(http, "ok").body), json.loads(get(http, "bad").body)

    assert ok["status"] == "SUCCEEDED" and ok["result"] == {"portions": {"margherita": 2}, "ratio": 0.5}
    assert ok["attempts"] == 1 and ok["updatedAt"] == "2026-01-01T00:00:01.000Z" and "error" not in ok
    assert bad["status"] == "FAILED" and bad["error"] == {"type": "RejectedRequest", "message": "unknown dish"}
    assert "result" not in bad


def test_a_pending_request_shows_its_last_transient_error(http, dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=pending_item("r-1", {}))
    RequestStore(dynamodb, TABLE).record_attempt("r-1", {"type": "TransientError", "message": "printer"}, now_ms=5)

    body = json.loads(get(http, "r-1").body)

    assert body["status"] == "PENDING" and body["attempts"] == 1
    assert body["lastError"] == {"type": "TransientError", "message": "printer"}


def test_each_id_returns_only_its_own_item(http, dynamodb):
    for request_id in ("a", "b", "a.b", "a:b"):
        dynamodb.put_item(TableName=TABLE, Item=pending_item(request_id, {}))

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
    status_api.use_store(RequestStore(FailingClient(dynamodb, "get_item"), TABLE))
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.get("/requests/r-1")
    status_api.use_store(None)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body) == {"message": "storage unavailable; retry later"}
