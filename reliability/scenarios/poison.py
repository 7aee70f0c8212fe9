"""Scenario 4, poison records: 1 request in 100 makes the business logic fail transiently forever.

The load is paced (steady traffic in which poison is rare), so the scenario measures what one
poison batch costs the requests behind it: the processor reports only the poison record in its
partial batch response, Lambda's event source mapping (chalice local's stream mapping) retries
the batch from it with backoff, 10 times
(MaximumRetryAttempts), then sends the range to the failure queue, whose consumer marks the poison
request FAILED (RetriesExhausted). Records behind it in the shard wait meanwhile.

Checked: every healthy request ends as dictated, exactly once; every poison request ends FAILED
with RetriesExhausted after exactly 1 + MaximumRetryAttempts runs. Reported: the healthy
requests' p99 and max PUT->terminal latency and each poison request's time to FAILED.
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from devserver.db import TEMPLATE
from reliability.common import settle_and_check
from reliability.load import Sender, plan
from reliability.report import Result
from reliability.stack import app_status, dead_parts, scenario_stack
from reliability.timeline import Moment, of_run

NAME = "poison"
FULL_SIZE = 600
CLIENTS = 32
RATE = 5.0  # requests/s: one poison request every ~20 s on average
SHARE = 0.01


def max_retry_attempts() -> int:
    import app as app_module
    from devserver.stream.settings import settings_from_template

    return settings_from_template(yaml.safe_load(TEMPLATE.read_text()), app_module.app).max_retry_attempts


def run(backend: str, size: int, seed: int, state: Path, rate: float = RATE) -> Result:
    began = time.monotonic()
    planned = plan(f"poison-{seed}", size, seed, unknown_share=0.1, poison_share=SHARE)
    runs_expected = 1 + max_retry_attempts()
    with scenario_stack(backend, state) as stack:
        sender = Sender(stack.api_url, planned, clients=CLIENTS, rate=rate, seed=seed)
        sent = sender.run(deadline_s=size / rate + 60)
        # Each poison batch holds its shard ~12 s (backoff 0.05 s doubling to a 2 s cap, 10 times).
        findings = settle_and_check(stack, sent, allowed=set(), deadline_s=60 + 20 * max(1, size * SHARE))
        status = app_status(stack)
        counters = status.get("runner", {}).get("counters", {})
        queue = status.get("eventSources", {}).get("sqs-handle_failures", {})
        errors = dead_parts(stack)
    wrong_runs = [n for n in findings.poison_runs if n != runs_expected]
    if wrong_runs:
        findings.notes.append(f"poison requests ran {sorted(wrong_runs)} times, not {runs_expected}")
        errors.append(f"{len(wrong_runs)} poison request(s) did not run exactly {runs_expected} times")
    poison = findings.poison_latencies_ms
    return Result(
        NAME, backend, size, load=f"{size:,} requests at {rate:g}/s, {len(poison)} of them poison",
        faults=f"{len(poison)} poison requests (TransientError on every run)",
        findings=findings, runtime_s=time.monotonic() - began, state=state, errors=errors,
        timeline=of_run(sent, findings, moments=[Moment(s.accepted_at, "poison request accepted")
                                                 for s in sent if s.planned.poison and s.accepted_at is not None]),
        facts={"retries": f"poison requests each ran {sorted(set(findings.poison_runs))} times "
                         f"(1 + {runs_expected - 1} retries); "
                         f"PUT->FAILED max {max(poison, default=0) / 1000:.1f} s",
               "runner": f"{counters.get('retries', 0)} retries, {counters.get('partial_failures', 0)} partial "
                         f"batch responses, {counters.get('bisects', 0)} bisects, "
                         f"{counters.get('batches_sent_to_failure', 0)} batches to the failure queue "
                         f"({counters.get('records_sent_to_failure', 0)} records); failure consumer deleted "
                         f"{queue.get('deleted', 0)} messages"},
        table_notes=[f"each poison request FAILED (RetriesExhausted) after {runs_expected} runs, "
                     f"at most {max(poison, default=0) / 1000:.1f} s after its PUT"])
