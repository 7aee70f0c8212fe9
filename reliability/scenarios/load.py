"""Scenario 1, load: N PUTs from 32 concurrent clients as fast as they go, no faults.

Every request must be answered 202, every 202 must have its item, every item must end as its
content dictates (valid orders SUCCEEDED with the right result, unknown dishes FAILED), and the
business logic must have run exactly once per request. No 5xx, no other answer.
"""
from __future__ import annotations

import time
from pathlib import Path

from reliability.common import settle_and_check
from reliability.load import Sender, plan
from reliability.report import Result
from reliability.stack import app_status, dead_parts, scenario_stack
from reliability.timeline import of_run

NAME = "load"
FULL_SIZE = 10_000
CLIENTS = 32


def run(backend: str, size: int, seed: int, state: Path) -> Result:
    began = time.monotonic()
    planned = plan(f"load-{seed}", size, seed, unknown_share=0.1)
    with scenario_stack(backend, state) as stack:
        sender = Sender(stack.api_url, planned, clients=CLIENTS, seed=seed)
        # Bounds, not expectations: ~100 PUTs/s are expected on this kind of machine.
        sent = sender.run(deadline_s=60 + size / 5)
        put_s = sender.finished_at - sender.started_at
        findings = settle_and_check(stack, sent, allowed=set(), deadline_s=60 + size / 5)
        errors = dead_parts(stack)
        counters = app_status(stack).get("runner", {}).get("counters", {})
    unknown = sum(1 for p in planned if p.error_type == "RejectedRequest")
    return Result(
        NAME, backend, size, load=f"{size:,} PUTs from {CLIENTS} clients ({unknown:,} unknown dishes)",
        faults="none", findings=findings, runtime_s=time.monotonic() - began, state=state, errors=errors,
        timeline=of_run(sent, findings),
        facts={"intake": f"{size / put_s:.0f} PUTs/s over {put_s:.1f} s" if put_s else "-",
               "runner": _runner_line(counters)},
        table_notes=[f"intake {size / put_s:.0f} PUT/s" if put_s else "no intake"]
        + (["no 5xx", "the logic ran exactly once per request"] if findings.ok(duplicates_allowed=False) else []))


def _runner_line(counters: dict) -> str:
    names = ("records_delivered", "invocations", "retries", "bisects", "batches_sent_to_failure")
    return ", ".join(f"{name} {counters.get(name, 0)}" for name in names)
