"""Scenario 3b, storage outage: in the middle of a paced load the backend is unavailable twice for
5 s, through the fault proxy: first every DynamoDB and DynamoDB Streams call is answered 503
(`down_mode 503`), later the proxy stops listening and drops its open connections (`refuse`).

Clients get 202 or 503 and retry a 503 with the same Idempotency-Key (at most 5 tries, ~3 s of
backoff, so requests sent during a window may exhaust their tries: they must have left no item).
Checked as in the throttle scenario; the stream mapping's reads and the processor's write-backs must
recover by themselves.

When the proxy starts refusing, it cuts the connections it has open, including PutItems that
DynamoDB has already applied. The API answers those (and every refused call) 503 "storage
unreachable; the request may or may not be stored: retry with the same Idempotency-Key"
(INTEGRATION_FAILURE in infra/template.yaml, reworded after this suite found such puts stored);
the client's retry with the same key then gets 409, which confirms it was stored. So the checks
accept either outcome after that answer, and must find no item after a 503 saying "not stored"
(DynamoDB's own 5xx, the first window). Each stored "may or may not" request is also matched to
a cut: its call must have been in flight at that moment, or the report says so.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List

from reliability.common import settle_and_check, write_back_failures
from reliability.load import Attempt, Retry, Sender, plan
from reliability.report import Result
from reliability.stack import dead_parts, fault_state, scenario_stack
from reliability.timeline import Window, of_run
from reliability.verify import read_items

NAME = "outage"
FULL_SIZE = 2_000
CLIENTS = 32
SEND_S = 30.0  # the load is spread over this long, so both windows fall in its middle
DOWN_S = 5.0
# (share of the load's time, mode): the 503 window opens at 25% (7.5 s), the refuse one at 60% (18 s).
WINDOWS = ((0.25, "503"), (0.60, "refuse"))
SAYS = {"503": "storage answers 503", "refuse": "storage refuses connections"}
EVERY_CALL = "*,DynamoDBStreams_20120810.*"


def run(backend: str, size: int, seed: int, state: Path, send_s: float = SEND_S, down_s: float = DOWN_S) -> Result:
    began = time.monotonic()
    planned = plan(f"outage-{seed}", size, seed, unknown_share=0.1)
    opened: List[str] = []
    cuts: List[float] = []  # time.time() when a refuse window opened: open connections are cut then
    down: List[Window] = []
    with scenario_stack(backend, state, faults=True, fault_seed=seed) as stack:
        stack.faults(down_operations=EVERY_CALL, reset_counters=True)

        sender = Sender(stack.api_url, planned, clients=CLIENTS, rate=size / send_s,
                        retry=Retry(max_attempts=5), seed=seed)

        def windows(elapsed: float) -> None:
            for share, mode in WINDOWS[len(opened):len(opened) + 1]:
                if elapsed >= share * send_s:
                    if mode == "refuse":
                        cuts.append(time.time())
                    stack.faults(down_mode=mode, down_for_seconds=down_s)
                    at = time.time()
                    down.append(Window(at, at + down_s, SAYS[mode]))
                    opened.append(f"{mode} at {elapsed:.1f} s")

        sent = sender.run(deadline_s=send_s + 120, between=windows)
        findings = settle_and_check(stack, sent, allowed={503, 504}, deadline_s=120 + size / 5)
        stored = set(read_items(stack.client("dynamodb"), stack.table_name, [s.planned.key for s in sent]))
        proxy = fault_state(stack)
        errors = dead_parts(stack)
    if len(opened) < len(WINDOWS):
        errors.append(f"only {len(opened)} of {len(WINDOWS)} outage windows were opened")
    # Stored although no try got a 202: allowed only after a "may or may not be stored" answer.
    maybe = [s for s in sent if s.planned.key in stored and not s.accepted]
    at_cut = sorted(s.planned.key for s in maybe if any(cut_in_flight(a, cuts) for a in s.attempts))
    elsewhere = sorted({s.planned.key for s in maybe} - set(at_cut))
    if elsewhere:
        findings.notes.append(f"{len(elsewhere)} request(s) stored after a 'may or may not be stored' answer that "
                              f"was not in flight at a cut: {', '.join(elsewhere[:5])}")
    confirmed = sum(1 for s in maybe if any(a.status == 409 for a in s.attempts))
    gave_up, unexplained = write_back_failures(stack, findings)
    never = sum(1 for s in sent if s.attempts and s.planned.key not in stored)
    return Result(
        NAME, backend, size, load=f"{size:,} requests over {send_s:.0f} s from {CLIENTS} clients, 503s retried "
                                 f"(<= 5 tries, same key)",
        faults=f"2 x {down_s:g} s down ({', '.join(opened)}): {proxy['totals']['unavailable']} calls answered "
               f"503, {proxy['totals']['refused'] + proxy['refused_connections']} calls or connections refused",
        findings=findings, runtime_s=time.monotonic() - began, state=state, duplicates_allowed=True,
        unexplained_duplicates=unexplained, errors=errors, timeline=of_run(sent, findings, windows=down),
        facts={"clients": f"{never} request(s) never stored (their tries all refused); "
                          f"{len(maybe)} stored without a 202 after a 'may or may not be stored' 503",
               "dupes": f"{findings.extra_runs} extra runs; write-backs given up: {len(gave_up)}"},
        table_notes=[f"{findings.answers.get(503, 0)} answers 503, {never} request(s) never stored (no item)",
                     f"duplicates: {len(gave_up)} write-backs failed past botocore's retries"]
        + ([f"{len(maybe)} stored after a 503 'may or may not be stored' ("
            + ("every one in flight when connections were cut" if not elsewhere
               else f"{len(elsewhere)} NOT in flight at a cut")
            + (f", {confirmed} confirmed by a 409 on retry" if confirmed else "") + "), all finished"]
           if maybe else []))


def cut_in_flight(attempt: Attempt, cuts: List[float]) -> bool:
    """A 503 whose PUT was sent before a cut and answered after it (0.1 s for the proxy to act)."""
    answered = attempt.sent_at + attempt.elapsed_ms / 1000
    return attempt.status == 503 and any(attempt.sent_at <= cut + 0.1 and answered >= cut for cut in cuts)
