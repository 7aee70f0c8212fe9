"""The whole lifecycle in-process (devserver.testing.pipeline): PUT rendered by the real template,
stream records through the real mapping to the processor via Chalice's test client, GET via
`client.http`; on moto's in-memory backend, with no server and no port."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping

import pytest

from app import app
from chalicelib import processor
from chalicelib.errors import RejectedRequest, TransientError
from chalicelib.orders import take_order
from devserver.testing.pipeline import LocalPipeline

README = Path(__file__).resolve().parent.parent / "README.md"


def echo(request: Mapping[str, Any]) -> Dict[str, Any]:
    if request.get("reject"):
        raise RejectedRequest("rejected as asked")
    if request.get("flaky"):
        raise TransientError("a dependency is down")
    return {"echo": dict(request)}


def test_a_request_is_stored_processed_and_read_back():
    with LocalPipeline(app, business_logic=echo) as pipeline:
        accepted = pipeline.put({"n": 1}, {"Idempotency-Key": "pipeline-1"})
        assert (accepted.status_code, accepted.json_body) == (202, {"id": "pipeline-1"})
        assert pipeline.get("pipeline-1").json_body["status"] == "PENDING"

        counters = pipeline.process()

        done = pipeline.get("pipeline-1").json_body
        assert (done["status"], done["result"], done["attempts"]) == ("SUCCEEDED", {"echo": {"n": 1}}, 1)
        assert (counters["records_delivered"], counters["invocations"]) == (1, 1)


def test_the_put_answers_come_from_the_template():
    with LocalPipeline(app, business_logic=echo) as pipeline:
        assert pipeline.put({"n": 1}, {"Idempotency-Key": "twice"}).status_code == 202
        repeated = pipeline.put({"n": 2}, {"Idempotency-Key": "twice"})
        assert (repeated.status_code, repeated.json_body["id"]) == (409, "twice")
        assert pipeline.put(b"[1, 2]").status_code == 400
        assert pipeline.put({"n": 1}, {"Content-Type": "text/plain"}).status_code == 415


def test_a_rejected_request_fails_and_a_retry_runs_it_again():
    with LocalPipeline(app, business_logic=echo) as pipeline:
        request_id = pipeline.put({"reject": True}).json_body["id"]
        pipeline.process()
        assert pipeline.get(request_id).json_body["error"] == {"type": "RejectedRequest",
                                                               "message": "rejected as asked"}
        assert [item["id"] for item in pipeline.list("FAILED").json_body["items"]] == [request_id]

        assert pipeline.retry(request_id).status_code == 202
        pipeline.process()

        again = pipeline.get(request_id).json_body
        assert again["status"] == "FAILED" and len(again["errorHistory"]) == 1


def test_a_request_that_keeps_failing_transiently_ends_failed_through_the_failure_queue():
    with LocalPipeline(app, business_logic=echo) as pipeline:
        healthy = pipeline.put({"n": 1}).json_body["id"]
        flaky = pipeline.put({"flaky": True}).json_body["id"]

        counters = pipeline.process()

        assert pipeline.get(healthy).json_body["status"] == "SUCCEEDED"
        failed = pipeline.get(flaky).json_body
        assert (failed["status"], failed["error"]["type"], failed["attempts"]) == ("FAILED", "RetriesExhausted", 11)
        assert (counters["retries"], counters["batches_sent_to_failure"]) == (10, 1)
        assert pipeline.clock.skipped > 0  # the backoffs were skipped over, not slept


def test_the_app_gets_its_own_logic_back_afterwards():
    with LocalPipeline(app, business_logic=echo):
        assert processor.configured_logic() is echo
    assert processor.configured_logic() is take_order


def test_the_readme_example_runs_as_printed():
    block = re.search(r"```python\n(# tests/test_my_logic\.py\n.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README has no `# tests/test_my_logic.py` example"
    namespace: Dict[str, Any] = {}
    exec(compile(block.group(1), "README example", "exec"), namespace)  # noqa: S102 - our own README
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert tests
    for test in tests:
        test()


@pytest.mark.parametrize("requests", [100])
def test_many_requests_in_one_pass(requests):
    with LocalPipeline(app, business_logic=echo) as pipeline:
        ids = [pipeline.put({"n": n}).json_body["id"] for n in range(requests)]
        counters = pipeline.process()
        assert {pipeline.get(i).json_body["status"] for i in ids} == {"SUCCEEDED"}
        # One batch per lane: the stage's ParallelizationFactor splits the shard's 100 records by item key.
        assert counters["invocations"] == pipeline.runner.settings.parallelization_factor
        assert counters["records_delivered"] == requests
