"""No request left behind, end to end on the local stack (moto): a poison request goes through the
failure bucket and its queue to FAILED and back to SUCCEEDED after a retry; a request whose stream record was
skipped is found by the reconciler; failed requests are listed page by page; the operator CLI."""
from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from devserver.db import client
from devserver.db_process import free_port
from devserver.stack import Child, drain, read_values, start, stop
from devserver.stream.checkpoint import FileCheckpointStore
from ops.__main__ import main as ops_main
from tests.test_e2e import ORDER, http, runner_status, wait_for

REGION = "eu-central-1"
POISON = {"table": 5, "items": [{"dish": "tiramisu", "qty": 1}], "note": "poison"}
UNKNOWN = {"table": 5, "items": [{"dish": "durian", "qty": 1}]}


class Local:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.logs = state / "logs"
        self.poison_flag = state / "poison-on"
        self.db = start("db", ["db", "--port", str(free_port()), "--region", REGION, "--log-dir", str(self.logs)],
                        self.logs)
        self.values = read_values(self.db, "#")
        drain(self.db)
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = start("api", ["api", *self.args(), "--port", str(port)], self.logs)
        read_values(self.api, "API_URL")
        drain(self.api)
        self.runner: Optional[Child] = None

    def args(self) -> List[str]:
        return ["--dynamodb-endpoint", self.values["DYNAMODB_ENDPOINT_URL"], "--region", REGION,
                "--table-name", self.values["TABLE_NAME"], "--status-file", str(self.state / "status.json")]

    def start_runner(self) -> None:
        self.runner = start(
            "runner", ["runner", *self.args(), "--checkpoint", str(self.checkpoint), "--schedule-every", "0.5",
                       "--business-logic", "tests.poison_logic:handle"],
            self.logs, env={"POISON_FLAG": str(self.poison_flag), "RECONCILE_AFTER_SECONDS": "2",
                            "GIVE_UP_AFTER_SECONDS": "30"})
        read_values(self.runner, "RUNNER_CHECKPOINT")
        drain(self.runner)

    def stop_runner(self) -> None:
        assert self.runner is not None
        self.runner.process.send_signal(signal.SIGTERM)
        self.runner.process.wait(timeout=5)
        self.runner = None

    @property
    def checkpoint(self) -> Path:
        return self.state / "checkpoints.json"

    def put(self, body: Any) -> str:
        status, answer = http("PUT", f"{self.api_url}/requests", json.dumps(body).encode())
        assert status == 202, answer
        return answer["id"]

    def get(self, request_id: str) -> Dict[str, Any]:
        return http("GET", f"{self.api_url}/requests/{request_id}")[1]

    def status_is(self, request_id: str, status: str, timeout: float = 30.0) -> Dict[str, Any]:
        wait_for(lambda: self.get(request_id).get("status") == status, timeout)
        return self.get(request_id)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    stack = Local(tmp_path_factory.mktemp("operations"))
    stack.start_runner()
    yield stack
    stop([c for c in (stack.runner, stack.api, stack.db) if c is not None])


def test_a_poison_request_goes_through_the_failure_bucket_and_succeeds_after_a_retry(local):
    local.poison_flag.touch()
    healthy = local.put(ORDER)
    poison = local.put(POISON)

    assert local.status_is(healthy, "SUCCEEDED", timeout=10)["attempts"] == 1  # the shard is not blocked
    failed = local.status_is(poison, "FAILED", timeout=45)  # 10 retries with backoff, then the bucket
    assert failed["error"]["type"] == "RetriesExhausted"
    assert "after 11 invocations (RetryAttemptsExhausted)" in failed["error"]["message"]
    # Every delivery counted a transient failure: 1 + MaximumRetryAttempts, plus the
    # reconciler's re-drive when it fired (its age threshold is 2 s here).
    assert failed["attempts"] >= 11

    local.poison_flag.unlink()  # the fix is deployed
    assert http("POST", f"{local.api_url}/requests/{poison}/retry")[0] == 202

    done = local.status_is(poison, "SUCCEEDED", timeout=10)
    assert done["errorHistory"][0]["type"] == "RetriesExhausted"
    # The runner rewrites its status file every 0.25 s, so the consumer's delete (made after the
    # handler returned, possibly after the retry already succeeded) shows up within a beat or two.
    # Two messages: S3's test event when the database host set up the bucket's notification, then
    # the failure object's (docs: ESM-16).
    wait_for(lambda: runner_status(local).get("sqs-handle_failures", {}).get("deleted") == 2, 5)
    assert runner_status(local)["counters"]["batches_sent_to_failure"] == 1


def test_a_request_the_stream_skipped_is_redriven_by_the_reconciler(local):
    local.stop_runner()
    skipped = local.put(ORDER)
    dynamodb = client("dynamodb", local.values["DYNAMODB_ENDPOINT_URL"], REGION)
    streams = client("dynamodbstreams", local.values["DYNAMODB_ENDPOINT_URL"], REGION)
    arn = dynamodb.describe_table(TableName=local.values["TABLE_NAME"])["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    last = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"][-1]["dynamodb"]["SequenceNumber"]
    FileCheckpointStore(local.checkpoint).put(arn, shard, last)  # as if it had been read and lost

    local.start_runner()

    done = local.status_is(skipped, "SUCCEEDED", timeout=20)
    assert done["attempts"] == 1
    item = dynamodb.get_item(TableName=local.values["TABLE_NAME"], Key={"id": {"S": skipped}})["Item"]
    assert item["redriven"] == {"BOOL": True}


def test_failed_requests_are_listed_page_by_page(local):
    ids = {local.put(UNKNOWN) for _ in range(12)}
    for request_id in ids:
        local.status_is(request_id, "FAILED", timeout=15)

    listed, cursor, pages = [], None, 0
    while True:
        query = "status=FAILED&limit=5" + (f"&cursor={cursor}" if cursor else "")
        status, page = http("GET", f"{local.api_url}/requests?{query}")
        assert status == 200
        listed += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if not cursor:
            break

    assert ids <= set(listed) and len(listed) == len(set(listed))
    assert pages >= 3


def test_the_operator_cli_shows_lists_and_retries(local):
    failed = local.put(UNKNOWN)
    local.status_is(failed, "FAILED", timeout=15)
    out, err = io.StringIO(), io.StringIO()

    assert ops_main(["--api-url", local.api_url, "show", failed], out, err) == 0
    assert json.loads(out.getvalue())["status"] == "FAILED"

    out = io.StringIO()
    assert ops_main(["--api-url", local.api_url, "failed"], out, err) == 0
    assert failed in out.getvalue() and "durian" in out.getvalue()

    out, err = io.StringIO(), io.StringIO()
    code = ops_main(["--api-url", local.api_url, "retry-failed", "--yes"], out, err)
    assert (code, out.getvalue()[:8]) == (0, "retried "), err.getvalue()
    assert "] " in err.getvalue()  # the progress bar
    local.status_is(failed, "FAILED", timeout=15)  # still an unknown dish: it fails again
    assert len(local.get(failed)["errorHistory"]) == 1

    out, err = io.StringIO(), io.StringIO()
    assert ops_main(["--api-url", local.api_url, "retry", "no-such-request"], out, err) == 1
    assert "404" in err.getvalue()
    assert ops_main(["--api-url", "http://127.0.0.1:9", "show", "x"], io.StringIO(), err) == 2
