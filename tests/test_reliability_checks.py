"""The reliability suite's checks (reliability/) on made-up answers: the plan, what counts as lost,
stuck, duplicated or wrongly answered, how the crash and outage scenarios explain what they
injected, and which answers to a cross-owner attempt count as refused. No stack is started
(test_reliability.py runs the scenarios)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import List

from reliability import cross_owner
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


# --- the owners scenario's judgement of cross-owner attempts ----------------------------------------

NO_ROUTE_ANSWER = {"message": cross_owner.NO_ROUTE_MESSAGE + " Authorization=AWS4-HMAC-SHA256 Credential=BOB/..."}


def test_only_the_promised_refusals_pass_for_another_owners_id():
    assert cross_owner.refusal_problem(cross_owner.NOT_FOUND, (404, {"message": "no request with id k1"}), "k1") is None
    assert cross_owner.refusal_problem(cross_owner.BAD_ID, (400, {"message": cross_owner.BAD_ID_MESSAGE})) is None
    assert cross_owner.refusal_problem(cross_owner.NO_ROUTE, (403, NO_ROUTE_ANSWER)) is None

    told = [
        (cross_owner.NOT_FOUND, (200, {"id": "k1", "status": "FAILED"})),  # the other's request
        (cross_owner.NOT_FOUND, (202, {"id": "k1", "status": "PENDING"})),  # retried it
        (cross_owner.NOT_FOUND, (409, {"id": "k1", "message": "only a FAILED request can be retried: ..."})),
        (cross_owner.NOT_FOUND, (404, {"message": "no request with id k1", "owner": "iam-ALICE"})),
        (cross_owner.NOT_FOUND, (404, {"message": "no request with id k2"})),  # not the unknown-id message
        (cross_owner.NO_ROUTE, (403, {"message": "User: ... is not authorized to perform: execute-api:Invoke"})),
        (cross_owner.BAD_ID, (404, {"message": "no request with id k1"})),
    ]
    for answer, got in told:
        assert cross_owner.refusal_problem(answer, got, "k1"), (answer, got)


def test_an_answer_that_differs_from_an_unused_ids_is_an_oracle():
    signed = {"message": cross_owner.NO_ROUTE_MESSAGE + " Authorization=...Signature=ab"}
    resigned = {"message": cross_owner.NO_ROUTE_MESSAGE + " Authorization=...Signature=cd"}

    assert cross_owner.same_answer((403, signed), (403, resigned), "k1", "k1-unused")
    assert cross_owner.same_answer((404, {"message": "no request with id k1"}),
                                   (404, {"message": "no request with id k1-unused"}), "k1", "k1-unused")
    assert not cross_owner.same_answer((404, {"message": "no request with id k1"}), (400, {"message": "x"}),
                                       "k1", "k1-unused")


def test_every_owner_ish_shape_names_the_other_owner_or_id():
    for shape in cross_owner.OWNER_ISH:
        segment = shape.segment("iam-ALICE", "k1")
        assert "iam-ALICE" in segment or "k1" in segment, shape.name
        assert {shape.expected(route) for route in cross_owner.ROUTES} <= set(cross_owner.STATUS), shape.name
    assert len({shape.name for shape in cross_owner.OWNER_ISH}) == len(cross_owner.OWNER_ISH)


def test_a_tally_counts_answers_and_fails_the_findings_on_a_violation():
    tally = cross_owner.Tally()
    tally.add("cross-owner GET", 404)
    tally.add("cross-owner GET", 200, "k1: 200 {...} (expected 404)")
    tally.add("listing page", None, "listing FAILED holds another's ids: k2")

    assert (tally.total(), tally.total("listing page")) == (2, 0)
    assert tally.describe("cross-owner GET") == "2 (200: 1, 404: 1)"
    assert cross_owner.foreign([{"id": "k1"}, {"id": "k2"}], {"k1"}) == ["k2"]
    found = check([sent("ok", 202)], {"ok": item()}, Counter({"ok": 1}), allowed=set())
    found.cross_owner += tally.violations
    assert not found.ok(duplicates_allowed=True)
