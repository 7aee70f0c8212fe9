"""The reliability suite (reliability/), small and fast: every scenario on moto at a few hundred
requests, the load scenario on DynamoDB Local too, plus the checks' own logic on made-up answers.
`make reliability` runs the same scenarios at full size on both backends."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import List

import pytest

from reliability.load import Attempt, Planned, Sent, plan
from reliability.report import Result, describe
from reliability.scenarios import crashes, load, outage, poison, throttle
from reliability.stack import stack_env
from reliability.verify import Item, check, read_runs

SEED = 7


@pytest.fixture(autouse=True)
def local_credentials() -> None:
    stack_env()


def passed(result: Result) -> Result:
    """Assert the scenario passed, showing its whole report if not."""
    print(describe(result))
    assert result.ok, describe(result)
    return result


def injected(faults: str, pattern: str) -> int:
    """A count the fault proxy reported, from the scenario's `faults` line."""
    match = re.search(pattern, faults)
    assert match, (pattern, faults)
    return int(match.group(1))


# --- the scenarios, small ------------------------------------------------------------------------

# moto finishes ~40 requests a second end to end, DynamoDB Local several times that.
@pytest.mark.parametrize("backend, size", [("moto", 150), ("dynamodb-local", 300)])
def test_load_every_request_is_stored_finished_as_dictated_and_run_once(backend, size, tmp_path):
    result = passed(load.run(backend, size, SEED, tmp_path))

    f = result.findings
    assert (f.accepted, f.answers, f.extra_runs) == (size, Counter({202: size}), 0)
    assert len(f.latencies_ms) == size and f.stream_records == 2 * size  # each INSERT and its write-back


def test_crashes_lose_nothing_and_every_duplicate_is_explained_by_a_kill(tmp_path):
    result = passed(crashes.run("moto", 150, SEED, tmp_path, kills=3))

    assert result.findings.accepted == 150
    assert (tmp_path / "runs.txt").read_bytes().count(crashes.MARKER) == 3  # every kill happened


def test_throttling_gives_429s_that_store_nothing_and_write_backs_that_land(tmp_path):
    result = passed(throttle.run("moto", 100, SEED, tmp_path))

    f = result.findings
    assert f.answers[429] > 0 and f.accepted > 80  # five tries get nearly all through
    # Write-backs were throttled too, and the requests still finished (passed() above).
    assert injected(result.faults, r"UpdateItem (\d+)/") > 0


def test_an_outage_gives_503s_that_store_nothing_and_the_runner_recovers(tmp_path):
    result = passed(outage.run("moto", 150, SEED, tmp_path, send_s=5.0, down_s=1.0))

    assert result.findings.answers[503] > 0
    assert injected(result.faults, r"(\d+) calls answered 503") > 0
    assert injected(result.faults, r"(\d+) calls or connections refused") > 0


def test_a_poison_request_fails_after_its_retries_and_the_rest_finish(tmp_path):
    result = passed(poison.run("moto", 100, SEED, tmp_path, rate=50.0))

    f = result.findings
    assert f.poison_runs == [11] and len(f.latencies_ms) == 99


# --- the checks, on made-up answers ----------------------------------------------------------------

def sent(key: str, *statuses: int, expect: str = "SUCCEEDED", poison: bool = False, detail: str = "") -> Sent:
    planned = Planned(key, b"{}", expect, None if expect == "SUCCEEDED" else "RejectedRequest", poison=poison)
    return Sent(planned, [Attempt(status, 1.0, 1.0, detail) for status in statuses])


def item(status: str = "SUCCEEDED", error: str = "") -> Item:
    return Item(status, error or None, None, 1000, 1500)


def test_the_plan_is_seeded_and_each_request_knows_its_end_state():
    first, again = plan("p", 1000, 3, unknown_share=0.1, poison_share=0.01), plan("p", 1000, 3, poison_share=0.01)

    assert first == again
    assert Counter(p.error_type for p in first) == Counter({None: 890, "RejectedRequest": 100, "RetriesExhausted": 10})
    body = json.loads(first[0].body)
    assert body["ref"] == first[0].key == "p-000000"


def test_check_finds_every_kind_of_violation():
    maybe = "storage unreachable; the request may or may not be stored: retry with the same Idempotency-Key"
    answers: List[Sent] = [
        sent("ok", 202), sent("lost", 202), sent("stuck", 202), sent("wrong", 202),
        sent("phantom", 429, 409), sent("refused", 503, 503), sent("twice", 202),
        sent("no-answer", 0), sent("maybe-409", 503, 409, detail=maybe), sent("maybe-pending", 503, detail=maybe),
    ]
    items = {"ok": item(), "stuck": item("PENDING"), "wrong": item("FAILED", "RejectedRequest"),
             "phantom": item(), "twice": item(), "no-answer": item(), "maybe-409": item(),
             "maybe-pending": item("PENDING")}
    runs = Counter({"ok": 1, "wrong": 1, "phantom": 1, "twice": 2, "refused": 1, "no-answer": 1, "maybe-409": 1})

    found = check(answers, items, runs, allowed={429, 503})

    assert (found.lost, found.wrong_outcome[0][:5]) == (["lost"], "wrong")
    # A request stored after an answer that said it might be must still finish.
    assert found.stuck == ["stuck", "maybe-pending"]
    assert found.stored_without_2xx == ["phantom"]  # its 409 proves the 429 had stored it
    assert found.ran_without_2xx == ["phantom", "refused"]
    assert found.bad_answers == ["phantom: 409 ", "no-answer: 0 "]  # a 409 after "may be stored" is fine
    assert found.stored_unconfirmed == ["no-answer", "maybe-pending"]
    assert (found.accepted, found.extra_runs, found.duplicated) == (6, 1, ["twice"])
    assert not found.ok(duplicates_allowed=True)


def test_a_stream_record_a_reader_would_skip_fails_the_run():
    found = check([sent("ok", 202)], {"ok": item()}, Counter({"ok": 1}), allowed=set())
    assert found.ok(duplicates_allowed=False)

    found.stream_out_of_order = 1
    assert not found.ok(duplicates_allowed=False)


def test_a_duplicate_without_a_kill_between_its_runs_is_unexplained(tmp_path: Path):
    runs = tmp_path / "runs.txt"
    runs.write_bytes(b"a\nb\n#kill 1\na\nc\nc\n")

    assert crashes.unexplained_duplicates(runs, ["a", "c"]) == ["c"]
    assert read_runs(runs) == Counter({"a": 2, "b": 1, "c": 2})


def test_only_a_503_in_flight_at_a_cut_counts_as_an_unknown_outcome():
    cut = 1000.0
    in_flight = Attempt(503, cut - 0.05, 80.0)  # sent before the cut, answered after it
    before = Attempt(503, cut - 0.5, 10.0)
    after = Attempt(503, cut + 0.5, 10.0)

    assert outage.cut_in_flight(in_flight, [cut])
    assert not outage.cut_in_flight(before, [cut]) and not outage.cut_in_flight(after, [cut])
    assert not outage.cut_in_flight(Attempt(202, cut - 0.05, 80.0), [cut])
