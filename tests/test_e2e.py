"""End to end over real HTTP: the local stack's processes, on moto and on AWS's DynamoDB Local.

Each backend gets its own database process; the API and the stream runner are started as
`python -m devserver api|runner`, as `make run` starts them, so a test can kill and restart them.
"""
from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from devserver.db import client
from devserver.db_process import free_port
from devserver.stack import Child, drain, read_values, start, stop
from tests.conftest import ctrl_c_reaches_it, listening

ORDER = {"table": 9, "items": [{"dish": "margherita", "qty": 2}, {"dish": "tiramisu", "qty": 2}]}
HOSTILE = [
    {"quote": "it's \"quoted\" and 'single'", "slashes": "C:\\temp\\x / a\\/b"},
    {"control": "line1\nline2\ttab\r\u0001\u001f\u007f", "script": "</script><script>alert(1)</script>"},
    {"unicode": "café ☕ 😀 \u2028\u2029 עברית", "nested": {"a": [1, 2.5, -0.0, 1e30, None, True]}},
]
REGION = "eu-central-1"


@dataclass
class Stack:
    backend: str
    state: Path
    db: Child
    values: Dict[str, str]
    api: Child
    api_url: str
    runner: Optional[Child] = None

    def part_args(self) -> List[str]:
        return ["--dynamodb-endpoint", self.values["DYNAMODB_ENDPOINT_URL"],
                "--sqs-endpoint", self.values["SQS_ENDPOINT_URL"], "--region", REGION,
                "--table-name", self.values["TABLE_NAME"], "--status-file", str(self.state / "status.json")]

    def start_runner(self) -> None:
        self.runner = start("runner", ["runner", *self.part_args(), "--checkpoint", str(self.state / "cp.json")],
                            self.state / "logs")
        read_values(self.runner, "RUNNER_CHECKPOINT")
        drain(self.runner)

    def dynamodb(self) -> Any:
        return client("dynamodb", self.values["DYNAMODB_ENDPOINT_URL"], REGION)


@pytest.fixture(scope="module", params=["moto", "dynamodb-local"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp(request.param)
    logs = state / "logs"
    db_argv = ["db", "--backend", request.param, "--port", str(free_port()), "--region", REGION,
               "--log-dir", str(logs), "--data-dir", str(state / "data")]
    if request.param == "dynamodb-local":
        db_argv += ["--sqs-port", str(free_port())]
    db = start("db", db_argv, logs)
    values = read_values(db, "#")
    drain(db)
    api_port = free_port()
    # Ignored (arg-type): api is None for one line, as the API starts from the stack's own arguments.
    stack = Stack(request.param, state, db, values, api=None, api_url=f"http://127.0.0.1:{api_port}")  # type: ignore[arg-type]
    stack.api = start("api", ["api", *stack.part_args(), "--port", str(api_port)], logs)
    read_values(stack.api, "API_URL")
    drain(stack.api)
    stack.start_runner()
    yield stack
    stop([c for c in (stack.runner, stack.api, db) if c is not None])


def http(method: str, url: str, body: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def put(stack: Stack, body: Any, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http("PUT", f"{stack.api_url}/requests", data, headers)


def finished(stack: Stack, request_id: str, timeout: float = 15.0) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http("GET", f"{stack.api_url}/requests/{request_id}")
        if status == 200 and body["status"] != "PENDING":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{request_id} not finished within {timeout} s: {status} {body}")


def stored_request(stack: Stack, request_id: str) -> str:
    item = stack.dynamodb().get_item(TableName=stack.values["TABLE_NAME"], Key={"id": {"S": request_id}},
                                     ConsistentRead=True).get("Item")
    assert item is not None, f"{request_id} was not stored"
    return item["request"]["S"]


def count_items(stack: Stack) -> int:
    return stack.dynamodb().scan(TableName=stack.values["TABLE_NAME"], Select="COUNT")["Count"]


def test_a_valid_order_is_accepted_then_succeeds(stack):
    status, accepted = put(stack, ORDER)

    assert status == 202
    done = finished(stack, accepted["id"])
    assert done["status"] == "SUCCEEDED" and done["attempts"] == 1
    assert done["result"] == {"table": 9, "portions": {"margherita": 2, "tiramisu": 2},
                              "totalPortions": 4, "readyInMinutes": 12}


def test_an_unknown_dish_ends_failed_with_the_reason(stack):
    status, accepted = put(stack, {"table": 2, "items": [{"dish": "pineapple pizza", "qty": 1}]})

    assert status == 202
    done = finished(stack, accepted["id"])
    assert done["status"] == "FAILED"
    assert done["error"] == {"type": "RejectedRequest", "message": "unknown dish 'pineapple pizza': not on the menu"}


@pytest.mark.parametrize("body", HOSTILE, ids=["quotes", "control", "unicode"])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_stored_request_is_the_body_byte_for_byte(stack, body, ensure_ascii):
    text = json.dumps(body, ensure_ascii=ensure_ascii)

    status, accepted = put(stack, text.encode("utf-8"))

    assert status == 202
    assert stored_request(stack, accepted["id"]).encode("utf-8") == text.encode("utf-8")


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
def test_bad_requests_get_their_status_and_nothing_is_stored(stack, body, headers, expected_status, message_part):
    before = count_items(stack)

    status, answer = put(stack, body, headers)

    assert (status, message_part in answer["message"]) == (expected_status, True), answer
    assert count_items(stack) == before


def test_a_repeated_idempotency_key_is_409_and_never_overwrites(stack):
    key = f"order-{stack.backend}-42"
    assert put(stack, ORDER, {"Idempotency-Key": key}) == (202, {"id": key})

    status, answer = put(stack, {"table": 1, "items": [{"dish": "tiramisu", "qty": 1}]}, {"Idempotency-Key": key})

    assert status == 409 and answer["id"] == key
    assert json.loads(stored_request(stack, key)) == ORDER
    assert finished(stack, key)["result"]["table"] == 9


def test_an_unknown_id_is_404_and_an_impossible_one_400(stack):
    assert http("GET", f"{stack.api_url}/requests/no-such-request")[0] == 404
    assert http("GET", f"{stack.api_url}/requests/{'x' * 101}")[0] == 400


def runner_status(stack: Stack) -> Dict[str, Any]:
    try:
        return json.loads((stack.state / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def committed(stack: Stack, delivered: int) -> bool:
    status = runner_status(stack)
    shards = status.get("shards", {}).values()
    return status.get("counters", {}).get("records_delivered") == delivered and \
        bool(shards) and all(shard["uncommitted"] == 0 for shard in shards)


def test_a_runner_killed_mid_stream_resumes_without_losing_or_rerunning(stack):
    stack.runner.process.send_signal(signal.SIGTERM)  # a fresh runner, so its counters start here
    stack.runner.process.wait(timeout=5)
    stack.start_runner()
    first = [put(stack, ORDER)[1]["id"] for _ in range(5)]
    for request_id in first:
        finished(stack, request_id)
    wait_for(lambda: committed(stack, delivered=5))
    assert stack.runner is not None
    stack.runner.process.send_signal(signal.SIGKILL)
    stack.runner.process.wait(timeout=5)

    while_down = [put(stack, ORDER)[1]["id"] for _ in range(20)]
    assert all(http("GET", f"{stack.api_url}/requests/{i}")[1]["status"] == "PENDING" for i in while_down)
    stack.start_runner()

    results = [finished(stack, request_id) for request_id in first + while_down]
    assert {r["status"] for r in results} == {"SUCCEEDED"}
    assert {r["attempts"] for r in results} == {1}  # the business logic ran once for each
    wait_for(lambda: committed(stack, delivered=20))  # only the new records were delivered again


def test_a_stopped_runner_saves_its_checkpoint_and_reports_it(stack):
    finished(stack, put(stack, ORDER)[1]["id"])  # so there is a checkpoint to save
    wait_for(lambda: all(shard["uncommitted"] == 0 and shard["checkpoint"] is not None
                         for shard in runner_status(stack).get("shards", {}).values()))
    stack.runner.process.send_signal(signal.SIGTERM)

    assert stack.runner.process.wait(timeout=2) == 0
    status = runner_status(stack)
    assert status["stopped"] is True
    checkpoints = json.loads((stack.state / "cp.json").read_text())
    saved = [shard["checkpoint"] for shard in status["shards"].values()]
    assert saved and all(str(value) in json.dumps(checkpoints) for value in saved)
    stack.start_runner()


def test_make_runs_stack_starts_reports_status_and_stops_on_ctrl_c_within_2_s(tmp_path):
    import subprocess
    import sys

    from devserver.db import REPO_ROOT

    api_port = free_port()
    stack = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--db-port", str(free_port()), "--api-port", str(api_port),
         "--state-dir", str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_reaches_it)
    try:
        lines = []
        assert stack.stdout is not None
        for line in stack.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        printed = "".join(lines)
        assert f"http://127.0.0.1:{api_port}" in printed and "storefirst-requests" in printed
        assert "max retries 10" in printed and "report item failures True" in printed
        status, accepted = http("PUT", f"http://127.0.0.1:{api_port}/requests", json.dumps(ORDER).encode())
        assert status == 202
        wait_for(lambda: http("GET", f"http://127.0.0.1:{api_port}/requests/{accepted['id']}")[1]["status"]
                 == "SUCCEEDED")
        wait_for(lambda: http("GET", f"http://127.0.0.1:{api_port}/_local/status")[1]["runner"]
                 .get("counters", {}).get("invocations") == 1)
        local = http("GET", f"http://127.0.0.1:{api_port}/_local/status")[1]
        assert local["runner"]["running"] is True and local["failureQueue"] == {"depth": 0}

        began = time.monotonic()
        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=5) == 0
        assert time.monotonic() - began < 2.0
        assert json.loads((tmp_path / "runner-status.json").read_text())["stopped"] is True
    finally:
        if stack.poll() is None:
            stack.kill()


# --- DynamoDB faults: a fault proxy (python -m devserver faults) between the parts and the table ---

FAULTS_RESET = {"throttle": 0.0, "throttle_operations": "*", "down": False, "down_mode": "503",
                "down_operations": "*", "reset_counters": True}


@dataclass
class Faulty:
    """A fault proxy in front of the stack's database, and an API part that writes through it."""

    stack: Stack
    proxy: Child
    url: str
    api: Child
    api_url: str

    def control(self, **changes: Any) -> Dict[str, Any]:
        status, state = http("POST", f"{self.url}/_faults", json.dumps(changes).encode())
        assert status == 200, state
        return state

    def counts(self, operation: str) -> Dict[str, int]:
        return http("GET", f"{self.url}/_faults")[1]["counters"].get(f"DynamoDB_20120810.{operation}", {})

    def put(self, body: Any) -> Tuple[int, Dict[str, Any]]:
        return http("PUT", f"{self.api_url}/requests", json.dumps(body).encode())

    def listening(self) -> bool:
        return listening(self.url)


@pytest.fixture(scope="module")
def faulty_parts(stack: Stack) -> Iterator[Faulty]:
    logs = stack.state / "logs"
    proxy = start("faults", ["faults", "--upstream", stack.values["DYNAMODB_ENDPOINT_URL"],
                             "--port", str(free_port()), "--seed", "1"], logs)
    url = read_values(proxy, "FAULTS_URL")["FAULTS_URL"]
    drain(proxy)
    api_port = free_port()
    args = stack.part_args()
    args[args.index("--dynamodb-endpoint") + 1] = url
    api = start("faulty-api", ["api", *args, "--port", str(api_port)], logs)
    read_values(api, "API_URL")
    drain(api)
    yield Faulty(stack, proxy, url, api, f"http://127.0.0.1:{api_port}")
    stop([api, proxy])


@pytest.fixture
def faulty(faulty_parts: Faulty) -> Faulty:
    faulty_parts.control(**FAULTS_RESET)
    return faulty_parts


def test_a_throttled_put_is_429_and_nothing_is_stored(stack, faulty):
    faulty.control(throttle=1.0, throttle_operations="PutItem")
    before = count_items(stack)

    status, answer = faulty.put(ORDER)

    assert (status, answer) == (429, {"message": "storage is throttled; the request was not stored, retry later"})
    assert count_items(stack) == before
    assert faulty.counts("PutItem") == {"forwarded": 0, "throttled": 1, "unavailable": 0, "refused": 0,
                                        "upstream_error": 0}
    faulty.control(throttle=0.0)
    status, accepted = faulty.put(ORDER)  # through the proxy, once it lets writes pass
    assert status == 202 and finished(stack, accepted["id"])["status"] == "SUCCEEDED"


def test_a_put_while_the_database_answers_503_is_503_and_nothing_is_stored(stack, faulty):
    faulty.control(down_for_seconds=5)
    before = count_items(stack)

    status, answer = faulty.put(ORDER)

    assert (status, answer) == (503, {"message": "storage unavailable; the request was not stored, retry later"})
    assert count_items(stack) == before
    assert faulty.counts("PutItem")["unavailable"] == 1
    faulty.control(down=False)
    status, accepted = faulty.put(ORDER)
    assert status == 202 and finished(stack, accepted["id"])["status"] == "SUCCEEDED"


def test_a_put_while_the_database_refuses_connections_is_503_integration_failure(stack, faulty):
    before = count_items(stack)
    began = time.monotonic()
    faulty.control(down_mode="refuse", down_for_seconds=1.5)

    status, answer = faulty.put(ORDER)

    assert (status, answer) == (503, {
        "message": "storage unreachable; the request may or may not be stored: retry with the same Idempotency-Key"})
    assert not faulty.listening()
    wait_for(faulty.listening, timeout=5)  # the window ends by itself
    assert time.monotonic() - began >= 1.4
    assert count_items(stack) == before
    status, accepted = faulty.put(ORDER)
    assert status == 202 and finished(stack, accepted["id"])["status"] == "SUCCEEDED"


def test_a_throttled_write_back_stays_pending_then_succeeds_once_the_throttle_lifts(stack, faulty):
    # The stack's runner stops (its checkpoint saved); a runner whose DynamoDB and Streams calls go
    # through the proxy takes over from that checkpoint. Only UpdateItem (the write-back) is throttled.
    faulty.control(throttle=1.0, throttle_operations="UpdateItem")
    assert stack.runner is not None
    wait_for(lambda: all(shard["uncommitted"] == 0 for shard in runner_status(stack).get("shards", {}).values()))
    stack.runner.process.send_signal(signal.SIGTERM)
    stack.runner.process.wait(timeout=5)
    status_file = stack.state / "faulty-runner-status.json"
    args = stack.part_args()
    args[args.index("--dynamodb-endpoint") + 1] = faulty.url
    args[args.index("--status-file") + 1] = str(status_file)
    runner = start("faulty-runner", ["runner", *args, "--checkpoint", str(stack.state / "cp.json")],
                   stack.state / "logs")
    try:
        read_values(runner, "RUNNER_CHECKPOINT")
        drain(runner)
        status, accepted = put(stack, ORDER)
        assert status == 202

        def counters() -> Dict[str, int]:
            try:
                return json.loads(status_file.read_text())["counters"]
            except (OSError, ValueError, KeyError):
                return {}
        # The processor's client tries a throttled call 3 times (chalicelib/aws.py, total_max_attempts)
        # with up to 1+2 s of backoff, then reports the record for retry: the runner retries.
        wait_for(lambda: counters().get("retries", 0) >= 1, timeout=25)
        assert faulty.counts("UpdateItem")["forwarded"] == 0  # so it is still PENDING
        assert http("GET", f"{stack.api_url}/requests/{accepted['id']}")[1]["status"] == "PENDING"

        faulty.control(throttle=0.0)
        done = finished(stack, accepted["id"], timeout=20)
        assert done["status"] == "SUCCEEDED" and done["attempts"] == 1
        assert faulty.counts("UpdateItem")["forwarded"] >= 1
        assert counters()["partial_failures"] >= 1
        assert faulty.counts("UpdateItem")["throttled"] >= 3
    finally:
        stop([runner])
        stack.start_runner()
