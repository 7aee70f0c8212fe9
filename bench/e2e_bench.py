"""End-to-end latency and throughput of the local stack (issue items 5 and 7b).

One local stack (devserver's launcher: the database host on moto and `chalice local`) serves every
step:
- baseline: single requests at random gaps (~4/s), so each one meets an idle stack: the floor
  (the runner's poll phase plus one request's own work);
- load steps at rising offered rates (Poisson arrivals, `seconds` each), until the stack stops
  keeping up (finishes under 80% of the offered rate); 50 and 200 requests/s are always run
  (the issue's two reference rates). The first step whose p99 is over the limit is reported too:
  with the runner's 50 ms idle poll that can happen long before the stack saturates.
Each step also records the CPU each process of the stack spent per request (/proc), which says
which one saturates where the curve bends (bench/local_stack.py: moto, the database host, the app
host and the function instances).

Since the stack runs under `chalice local`, each batch is an invocation of a function instance (a
process of its own, reached over a socket) instead of a call into the runner's process: both the
steps and the baseline pay that hop, so the baseline still means "the floor of one request on the
idle stack", of this stack.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List

from bench.e2e_latency import database_endpoint, measure, start_stack
from bench.local_stack import cpu_by_role, cpu_seconds, processes
from devserver.launcher import LocalStack


def step(stack: LocalStack, rate: float, count: int) -> Dict[str, Any]:
    roles = processes(stack)
    before, began = cpu_seconds(roles), time.monotonic()
    result = measure(stack.api_url, database_endpoint(stack), rate, count, jitter=True)
    wall = time.monotonic() - began
    roles.update(processes(stack))  # function instances started during the step
    spent = cpu_by_role(before, cpu_seconds(roles), roles)
    result["cpu_ms_per_request"] = {r: seconds / max(count, 1) * 1000 for r, seconds in spent.items()}
    # Share of one core each role used while the step ran (sending + draining).
    result["cpu_share"] = {r: seconds / wall for r, seconds in spent.items()}
    return result


def run(rates: Iterable[float] = (50, 200), sweep: Iterable[float] = (10, 25, 50, 100, 200),
        seconds: float = 4.0, p99_limit_ms: float = 250.0, baseline_count: int = 20,
        min_count: int = 10) -> Dict[str, Any]:
    required = sorted(set(rates))
    steps: List[Dict[str, Any]] = []
    with start_stack("moto") as (stack, startup):
        baseline = step(stack, 4.0, baseline_count)
        saturated = False
        for rate in sorted(set(sweep) | set(required)):
            if saturated and rate not in required:
                continue
            result = step(stack, rate, max(min_count, int(rate * seconds)))
            result["breach"] = result["p99_ms"] > p99_limit_ms or result["finished"] < result["count"]
            result["saturated"] = result["throughput_rps"] < 0.8 * min(rate, result["sent_rps"])
            steps.append(result)
            saturated = saturated or result["saturated"]
    first_breach = next((s for s in steps if s["breach"]), None)
    first_saturated = next((s for s in steps if s["saturated"]), None)
    return {
        "startup_s": startup, "seconds_per_step": seconds, "p99_limit_ms": p99_limit_ms,
        "baseline": baseline, "steps": steps,
        "at": {int(s["offered_rps"]): s for s in steps if s["offered_rps"] in required},
        "max_throughput_rps": max((s["throughput_rps"] for s in steps), default=0.0),
        "first_breach_rps": first_breach["offered_rps"] if first_breach else None,
        "first_saturated_rps": first_saturated["offered_rps"] if first_saturated else None,
    }
