"""The reliability suite's checks (reliability/) on made-up answers: the plan, what counts as lost,
stuck, duplicated or wrongly answered, and how the crash and outage scenarios explain what they
injected. No stack is started (test_reliability.py runs the scenarios)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import List

from reliability.crash import Crash
from reliability.load import NO_ANSWER, Attempt, Planned, Sent, plan
from reliability.scenarios import crashes, outage
from reliability.verify import Item, check, read_runs


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


def test_a_failed_connection_is_allowed_only_while_the_app_host_was_down():
    down = Crash("app host", at=1000.0, down_s=4.0)
    in_window = Sent(Planned("a", b"{}", "SUCCEEDED"), [Attempt(NO_ANSWER, 1002.0, 1.0), Attempt(202, 1003.0, 1.0)])
    later = Sent(Planned("b", b"{}", "SUCCEEDED"), [Attempt(NO_ANSWER, 1010.0, 1.0, "ConnectionRefusedError")])
    an_instance = Crash("instance", at=1010.0)  # the API stays up when an instance dies

    assert crashes.refused_while_up([in_window, later], [down, an_instance]) == [
        "b: no answer while the app host was up (ConnectionRefusedError)"]
