"""End to end over real HTTP against `chalice local` as users run it (`make run` runs the same),
on moto and on AWS's DynamoDB Local, with a fault proxy between the app and the database.

The black-box checks: hostile bodies stored byte-exact, every error status, idempotency; the app
host killed mid-stream and started again resumes from its checkpoint; DynamoDB throttling and
outages at PUT time and at write-back time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict

import pytest

from chalicelib.ownership import ANONYMOUS, item_key
from devserver.db_process import free_port
from devserver.launcher import LocalStack
from devserver.local_config import PROJECT_DIR
from devserver.processes import process_alive
from devserver.testing.api import Api, http, read_until, wait_for
from devserver.testing.events import pending_item
from tests.conftest import listening

pytestmark = pytest.mark.stack

ORDER = {"table": 9, "items": [{"dish": "margherita", "qty": 2}, {"dish": "tiramisu", "qty": 2}]}
HOSTILE = [
    {"quote": "it's \"quoted\" and 'single'", "slashes": "C:\\temp\\x / a\\/b"},
    {"control": "line1\nline2\ttab\r\u0001\u001f\u007f", "script": "</script><script>alert(1)</script>"},
    {"unicode": "café ☕ 😀 \u2028\u2029 עברית", "nested": {"a": [1, 2.5, -0.0, 1e30, None, True]}},
]


@pytest.fixture
def api(faults_off: LocalStack) -> Api:
    return Api(faults_off.api_url)


def stored_request(stack: LocalStack, request_id: str) -> str:
    key = {"id": {"S": item_key(ANONYMOUS, request_id)}}
    item = stack.client("dynamodb").get_item(TableName=stack.table_name, Key=key, ConsistentRead=True).get("Item")
    assert item is not None, f"{request_id} was not stored"
    return str(item["request"]["S"])


def count_items(stack: LocalStack) -> int:
    return int(stack.client("dynamodb").scan(TableName=stack.table_name, Select="COUNT")["Count"])


def test_a_valid_order_is_accepted_then_succeeds(api):
    status, accepted = api.put(ORDER)

    assert status == 202
    done = api.finished(accepted["id"])
    assert done["status"] == "SUCCEEDED" and done["attempts"] == 1
    assert done["result"] == {"table": 9, "portions": {"margherita": 2, "tiramisu": 2},
                              "totalPortions": 4, "readyInMinutes": 12}


def test_an_unknown_dish_ends_failed_with_the_reason(api):
    status, accepted = api.put({"table": 2, "items": [{"dish": "pineapple pizza", "qty": 1}]})

    assert status == 202
    done = api.finished(accepted["id"])
    assert done["status"] == "FAILED"
    assert done["error"] == {"type": "RejectedRequest", "message": "unknown dish 'pineapple pizza': not on the menu"}


@pytest.mark.parametrize("body", HOSTILE, ids=["quotes", "control", "unicode"])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_stored_request_is_the_body_byte_for_byte(local_stack, api, body, ensure_ascii):
    text = json.dumps(body, ensure_ascii=ensure_ascii)

    status, accepted = api.put(text.encode("utf-8"))

    assert status == 202
    assert stored_request(local_stack, accepted["id"]).encode("utf-8") == text.encode("utf-8")


@pytest.mark.parametrize("body, headers, expected_status, message_part", [
    (b"[1, 2]", {}, 400, "request body must be a JSON object"),
    (b'"text"', {}, 400, "request body must be a JSON object"),
    (b"{not json", {}, 400, "request body must be a JSON object"),
    (b"", {}, 400, "request body is empty"),
    (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type must be application/json"),
    (b"{}", {"Idempotency-Key": "../etc"}, 400, "Idempotency-Key must be"),
    (b"{}", {"Idempotency-Key": "k" * 101}, 400, "Idempotency-Key must be"),
    (json.dumps({"blob": "x" * 401 * 1024}).encode(), {}, 413, "too large"),
])
def test_bad_requests_get_their_status_and_nothing_is_stored(local_stack, api, body, headers, expected_status,
                                                             message_part):
    before = count_items(local_stack)

    status, answer = api.put(body, headers)

    assert (status, message_part in answer["message"]) == (expected_status, True), answer
    assert count_items(local_stack) == before


def test_a_repeated_idempotency_key_is_409_and_never_overwrites(local_stack, api):
    key = f"order-{local_stack.options.backend}-42"
    assert api.put(ORDER, {"Idempotency-Key": key}) == (202, {"id": key})

    status, answer = api.put({"table": 1, "items": [{"dish": "tiramisu", "qty": 1}]}, {"Idempotency-Key": key})

    assert status == 409 and answer["id"] == key
    assert json.loads(stored_request(local_stack, key)) == ORDER
    assert api.finished(key)["result"]["table"] == 9


def test_an_unknown_id_is_404_and_an_impossible_one_400(api):
    assert api.get("no-such-request")[0] == 404
    assert api.get("x" * 101)[0] == 400


def caught_up(stack: LocalStack, delivered: int) -> bool:
    runner = stack.status()["runner"]
    shards = runner.get("shards", {}).values()
    return runner.get("counters", {}).get("records_delivered") == delivered and \
        bool(shards) and all(shard["uncommitted"] == 0 for shard in shards)


def test_an_app_host_killed_mid_stream_resumes_without_losing_or_rerunning(faults_off, api):
    stack = faults_off
    stack.stop_app()  # a fresh app host, so its counters start here
    stack.start_app()
    first = [api.accepted(ORDER) for _ in range(5)]
    for request_id in first:
        api.finished(request_id)
    wait_for(lambda: caught_up(stack, delivered=5))
    stack.kill_app()
    # While it is down nothing serves PUTs: the requests are written as the PUT template writes them.
    table = stack.client("dynamodb")
    while_down = [f"while-down-{stack.options.backend}-{n}" for n in range(20)]
    for request_id in while_down:
        table.put_item(TableName=stack.table_name, Item=pending_item(request_id, ORDER, owner=ANONYMOUS,
                                                                     created_at_ms=int(time.time() * 1000)))

    stack.start_app()

    results = [api.finished(request_id) for request_id in first + while_down]
    assert {r["status"] for r in results} == {"SUCCEEDED"}
    assert {r["attempts"] for r in results} == {1}  # the business logic ran once for each
    wait_for(lambda: caught_up(stack, delivered=20))  # only the new records were delivered again


def test_a_stopped_app_host_saves_the_checkpoint_it_reported(faults_off, api):
    stack = faults_off
    api.finished(api.accepted(ORDER))  # so there is a checkpoint to save
    reported = wait_for(lambda: {shard_id: int(s["checkpoint"]) for shard_id, s in
                                 stack.status()["runner"].get("shards", {}).items()
                                 if s["uncommitted"] == 0 and s["checkpoint"] is not None})

    stack.stop_app()
    try:
        assert stack.app is not None and not stack.app.alive()
        saved = {shard_id: int(value) for streams in json.loads(
            (stack.state_dir / "checkpoints.json").read_text())["streams"].values()
            for shard_id, value in streams.items()}
        # The runner may commit later records (the write-back's own, filtered out) between the
        # status read and the stop: what it saved is at or past what it reported, never before.
        assert all(saved.get(shard_id, -1) >= checkpoint for shard_id, checkpoint in reported.items()), \
            (reported, saved)
    finally:
        stack.start_app()  # the module's other tests share this stack


# --- DynamoDB faults, through the proxy between the app host and the database -------------------

def proxy_counts(stack: LocalStack, operation: str) -> Dict[str, int]:
    answer: Dict[str, int] = http("GET", f"{stack.faults_url}/_faults")[1]["counters"].get(
        f"DynamoDB_20120810.{operation}", {})
    return answer


def test_a_throttled_put_is_429_and_nothing_is_stored(faults_off, api):
    stack = faults_off
    stack.faults(throttle=1.0, throttle_operations="PutItem")
    before = count_items(stack)

    status, answer = api.put(ORDER)

    assert (status, answer) == (429, {"message": "storage is throttled; the request was not stored, retry later"})
    assert count_items(stack) == before
    assert proxy_counts(stack, "PutItem") == {"forwarded": 0, "throttled": 1, "unavailable": 0, "refused": 0,
                                               "upstream_error": 0}
    stack.faults(throttle=0.0)
    status, accepted = api.put(ORDER)
    assert status == 202 and api.finished(accepted["id"])["status"] == "SUCCEEDED"


def test_a_put_while_the_database_answers_503_is_503_and_nothing_is_stored(faults_off, api):
    stack = faults_off
    stack.faults(down_for_seconds=5, down_operations="PutItem")
    before = count_items(stack)

    status, answer = api.put(ORDER)

    assert (status, answer) == (503, {"message": "storage unavailable; the request was not stored, retry later"})
    assert count_items(stack) == before
    assert proxy_counts(stack, "PutItem")["unavailable"] == 1
    stack.faults(down=False)
    status, accepted = api.put(ORDER)
    assert status == 202 and api.finished(accepted["id"])["status"] == "SUCCEEDED"


def test_a_put_while_the_database_refuses_connections_is_503_integration_failure(faults_off, api):
    stack = faults_off
    before = count_items(stack)
    began = time.monotonic()
    stack.faults(down_mode="refuse", down_for_seconds=1.5)

    status, answer = api.put(ORDER)

    assert (status, answer) == (503, {
        "message": "storage unreachable; the request may or may not be stored: retry with the same Idempotency-Key"})
    assert stack.faults_url is not None
    # The proxy refuses requests at once and closes its listener from its watcher thread (within
    # its 50 ms poll, longer when this process is busy): the 503 can come first.
    wait_for(lambda: not listening(str(stack.faults_url)), timeout=1.0, what="the proxy stopped listening")
    wait_for(lambda: listening(str(stack.faults_url)), timeout=5)  # the window ends by itself
    assert time.monotonic() - began >= 1.4
    assert count_items(stack) == before
    status, accepted = api.put(ORDER)
    assert status == 202 and api.finished(accepted["id"], timeout=20)["status"] == "SUCCEEDED"


def test_a_throttled_write_back_stays_pending_then_succeeds_once_the_throttle_lifts(faults_off, api):
    stack = faults_off
    before = stack.status()["runner"]["counters"]
    stack.faults(throttle=1.0, throttle_operations="BatchExecuteStatement")
    status, accepted = api.put(ORDER)
    assert status == 202

    def counters() -> Dict[str, int]:
        return {k: v - before.get(k, 0) for k, v in stack.status()["runner"]["counters"].items()}
    # The processor's client tries a throttled call 3 times (chalicelib/aws.py, total_max_attempts)
    # with up to 1+2 s of backoff, then reports the record for retry: the stream mapping retries.
    wait_for(lambda: counters().get("retries", 0) >= 1, timeout=25)
    assert proxy_counts(stack, "BatchExecuteStatement")["forwarded"] == 0  # so it is still PENDING
    assert api.get(accepted["id"])[1]["status"] == "PENDING"

    stack.faults(throttle=0.0)
    done = api.finished(accepted["id"], timeout=20)
    assert done["status"] == "SUCCEEDED" and done["attempts"] == 1
    assert proxy_counts(stack, "BatchExecuteStatement")["forwarded"] >= 1
    assert counters()["partial_failures"] >= 1
    assert proxy_counts(stack, "BatchExecuteStatement")["throttled"] >= 3


# --- make run -------------------------------------------------------------------------------------

def test_make_run_is_chalice_local_and_stops_on_ctrl_c_within_2_s(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFIRST_")}
    run = subprocess.Popen([sys.executable, "-m", "devserver", "--port", str(port), "--no-autoreload",
                            "--state-dir", str(tmp_path / "state")], cwd=PROJECT_DIR, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = "\n".join(read_until(run, "Ctrl-C stops everything", timeout=60))
        assert f"http://127.0.0.1:{port}" in printed and "storefirst-requests" in printed, printed
        assert "max retries 10" in printed and "report item failures True" in printed
        local = Api(f"http://127.0.0.1:{port}")
        assert local.finished(local.accepted(ORDER))["status"] == "SUCCEEDED"
        database = json.loads((tmp_path / "state" / "db.json").read_text())

        began = time.monotonic()
        run.send_signal(signal.SIGINT)
        run.wait(timeout=5)
        assert time.monotonic() - began < 2.0
        wait_for(lambda: not process_alive(int(database["PID"])), timeout=2)  # it watched its owner
    finally:
        if run.poll() is None:
            run.kill()
