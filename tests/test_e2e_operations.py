"""No request left behind, end to end on the local stack (moto): a poison request goes through the
failure bucket and its queue to FAILED and back to SUCCEEDED after a retry; a request whose stream record was
skipped is found by the reconciler; failed requests are listed page by page; the operator CLI."""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from chalicelib.ownership import ANONYMOUS, item_key
from devserver.launcher import LocalStack, StackOptions
from devserver.stream.checkpoint import FileCheckpointStore
from devserver.testing.api import Api, wait_for
from devserver.testing.events import pending_item
from ops.__main__ import main as ops_main

pytestmark = pytest.mark.stack

ORDER = {"table": 9, "items": [{"dish": "margherita", "qty": 2}]}
POISON = {"table": 5, "items": [{"dish": "tiramisu", "qty": 1}], "note": "poison"}
UNKNOWN = {"table": 5, "items": [{"dish": "durian", "qty": 1}]}


@dataclass
class Local:
    stack: LocalStack
    api: Api
    poison_flag: Path

    @property
    def api_url(self) -> str:
        return self.api.url

    def put(self, body: Any) -> str:
        return self.api.accepted(body)

    def get(self, request_id: str) -> Dict[str, Any]:
        answer: Dict[str, Any] = self.api.get(request_id)[1]
        return answer

    def status_is(self, request_id: str, status: str, timeout: float = 30.0) -> Dict[str, Any]:
        return self.api.status_is(request_id, status, timeout)

    def status(self) -> Dict[str, Any]:
        return self.stack.status()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state = tmp_path_factory.mktemp("operations")
    flag = state / "poison-on"
    options = StackOptions(state_dir=state, business_logic="devserver.testing.logic:poison_while_flagged",
                           schedule_every=0.5,
                           function_env={"POISON_FLAG": str(flag), "RECONCILE_AFTER_SECONDS": "2",
                                         "GIVE_UP_AFTER_SECONDS": "30"})
    with LocalStack(options) as stack:
        yield Local(stack, Api(stack.api_url), flag)


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
    assert local.api.retry(poison)[0] == 202

    done = local.status_is(poison, "SUCCEEDED", timeout=10)
    assert done["errorHistory"][0]["type"] == "RetriesExhausted"
    # The consumer deletes a message after the handler returned, possibly after the retry succeeded.
    # Two messages: S3's test event when the database host set up the bucket's notification, then
    # the failure object's (docs: ESM-16).
    wait_for(lambda: local.status()["eventSources"]["sqs-handle_failures"]["deleted"] == 2, 5)
    assert local.status()["runner"]["counters"]["batches_sent_to_failure"] == 1


def test_a_request_the_stream_skipped_is_redriven_by_the_reconciler(local):
    stack = local.stack
    stack.stop_app()
    skipped = "skipped-by-the-stream"
    dynamodb, streams = stack.client("dynamodb"), stack.client("dynamodbstreams")
    dynamodb.put_item(TableName=stack.table_name, Item=pending_item(skipped, ORDER, owner=ANONYMOUS,
                                                                    created_at_ms=int(time.time() * 1000)))
    arn = dynamodb.describe_table(TableName=stack.table_name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    last = records[-1]["dynamodb"]["SequenceNumber"]
    # As if its record had been read and lost.
    FileCheckpointStore(stack.state_dir / "checkpoints.json").put(arn, shard, last)

    stack.start_app()

    done = local.status_is(skipped, "SUCCEEDED", timeout=20)
    assert done["attempts"] == 1
    item = dynamodb.get_item(TableName=stack.table_name, Key={"id": {"S": item_key(ANONYMOUS, skipped)}})["Item"]
    assert item["redriven"] == {"BOOL": True}


def test_failed_requests_are_listed_page_by_page(local):
    ids = {local.put(UNKNOWN) for _ in range(12)}
    for request_id in ids:
        local.status_is(request_id, "FAILED", timeout=15)

    listed, cursor, pages = [], None, 0
    while True:
        status, page = local.api.list("FAILED", limit="5", **({"cursor": cursor} if cursor else {}))
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
    assert (code, err.getvalue()) == (0, "")  # not a terminal: no progress bar, only the summary line
    assert re.fullmatch(r"retried (\d+) of \1\n", out.getvalue()), out.getvalue()
    local.status_is(failed, "FAILED", timeout=15)  # still an unknown dish: it fails again
    assert len(local.get(failed)["errorHistory"]) == 1

    out, err = io.StringIO(), io.StringIO()
    assert ops_main(["--api-url", local.api_url, "retry", "no-such-request"], out, err) == 1
    assert "no-such-request: no request has this id (404)" in err.getvalue()
    err = io.StringIO()
    assert ops_main(["--api-url", "http://127.0.0.1:9", "--max-attempts", "1", "show", "x"], io.StringIO(), err) == 1
    assert "cannot reach the API at http://127.0.0.1:9" in err.getvalue()
