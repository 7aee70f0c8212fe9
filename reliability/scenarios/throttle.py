"""Scenario 3a, storage throttling: the launcher's fault proxy (devserver/faults.py) sits between
`chalice local` (its API Gateway, stream mapping and function instances) and the table, and answers
a seeded 20% of PutItem (the API's write), BatchExecuteStatement (the processor's write-backs:
conditional PartiQL UPDATEs, up to 25 a call) and BatchGetItem (its status reads) with DynamoDB's
ThrottlingException; the table never sees those calls.

Clients get 202 or 429, and retry a 429 with the same Idempotency-Key (at most 5 tries). Checked:
every 202 has its item and it ends as dictated; a key that never got a 202 has no item and its
logic never ran (and a retry never got 409, which would prove a refused try had stored it); the
processor's write-backs are retried until they land. A duplicate run is allowed only for a request
whose write-back the processor gave up on after botocore's own retries (it logs each one, in
the app host's log).
"""
from __future__ import annotations

import time
from pathlib import Path

from reliability.common import settle_and_check, write_back_failures
from reliability.load import Retry, Sender, plan
from reliability.report import Result
from reliability.stack import dead_parts, fault_state, scenario_stack
from reliability.timeline import Window, of_run

NAME = "throttle"
FULL_SIZE = 2_000
CLIENTS = 32
SHARE = 0.2
WRITE_BACKS = ("BatchExecuteStatement",)
OPERATIONS = ("PutItem", *WRITE_BACKS, "BatchGetItem")


def run(backend: str, size: int, seed: int, state: Path) -> Result:
    began = time.monotonic()
    planned = plan(f"throttle-{seed}", size, seed, unknown_share=0.1)
    with scenario_stack(backend, state, faults=True, fault_seed=seed) as stack:
        stack.faults(throttle=SHARE, throttle_operations=",".join(OPERATIONS), reset_counters=True)
        throttled_from = time.time()
        sent = Sender(stack.api_url, planned, clients=CLIENTS, retry=Retry(max_attempts=5), seed=seed
                      ).run(deadline_s=60 + size / 5)
        # The processor's write-backs keep being throttled until every request is finished.
        findings = settle_and_check(stack, sent, allowed={429}, deadline_s=120 + size / 5)
        throttled = Window(throttled_from, time.time(), f"{SHARE:.0%} of {', '.join(OPERATIONS)} throttled")
        counters = fault_state(stack)["counters"]
        errors = dead_parts(stack)
    gave_up, unexplained = write_back_failures(stack, findings)
    injected = {op: counters.get(f"DynamoDB_20120810.{op}", {}).get("throttled", 0) for op in OPERATIONS}
    calls = {op: sum(counters.get(f"DynamoDB_20120810.{op}", {}).values()) for op in OPERATIONS}
    never = sum(1 for s in sent if s.attempts and not s.accepted)
    return Result(
        NAME, backend, size, load=f"{size:,} requests from {CLIENTS} clients, 429s retried (<= 5 tries, same key)",
        faults=f"{SHARE:.0%} of {', '.join(OPERATIONS)} throttled: "
               + ", ".join(f"{op} {injected[op]}/{calls[op]}" for op in OPERATIONS),
        findings=findings, runtime_s=time.monotonic() - began, state=state, duplicates_allowed=True,
        unexplained_duplicates=unexplained, errors=errors, timeline=of_run(sent, findings, windows=[throttled]),
        facts={"clients": f"{never} request(s) still 429 after 5 tries (must have no item)",
               "dupes": f"{findings.extra_runs} extra runs; write-backs given up after botocore's retries: "
                        f"{len(gave_up)}"},
        table_notes=[f"{findings.answers.get(429, 0)} answers 429, {never} request(s) never stored (no item)",
                     f"duplicates: {len(gave_up)} write-backs still throttled after botocore's 3 tries"])
