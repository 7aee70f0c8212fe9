"""End-to-end latency and throughput of the local stack (issue items 5 and 7b).

One `python -m devserver` stack (moto backend) serves every step:
- baseline: single requests at random gaps (~4/s), so each one meets an idle stack: the floor
  (the runner's poll phase plus one request's own work);
- load steps at rising offered rates (Poisson arrivals, `seconds` each), until the stack stops
  keeping up (finishes under 80% of the offered rate); 50 and 200 requests/s are always run
  (the issue's two reference rates). The first step whose p99 is over the limit is reported too:
  with the runner's 50 ms idle poll that can happen long before the stack saturates.
Each step also records the CPU each process of the stack spent per request (/proc), which says
which one saturates where the curve bends.
"""
from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterable, List

from bench.common import command_line, descendants, process_cpu_seconds
from bench.e2e_latency import measure, start_stack, stop_stack

ROLES = {"moto_server": "moto", "devserver db": "db+ttl sweeper", "devserver api": "api", "devserver runner": "runner"}


def _roles(stack_pid: int) -> Dict[str, int]:
    found = {}
    for pid in descendants(stack_pid):
        line = command_line(pid)
        for marker, role in ROLES.items():
            if marker in line:
                found[role] = pid
    return found


def _cpu(pids: Dict[str, int]) -> Dict[str, float]:
    return {role: process_cpu_seconds(pid) for role, pid in pids.items()}


def wait_ready(url: str, timeout_s: float = 15.0) -> None:
    """Until the runner has found the stream (its status says ready), so that the baseline's
    first request does not also measure the runner's start-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/_local/status", timeout=5) as response:
            if json.loads(response.read())["runner"].get("ready"):
                return
        time.sleep(0.1)
    raise RuntimeError("the stream runner was not ready within %.0f s" % timeout_s)


def step(url: str, endpoint: str, pids: Dict[str, int], rate: float, count: int) -> Dict[str, Any]:
    before, began = _cpu(pids), time.monotonic()
    result = measure(url, endpoint, rate, count, jitter=True)
    wall = time.monotonic() - began
    after = _cpu(pids)
    result["cpu_ms_per_request"] = {r: (after[r] - before[r]) / max(count, 1) * 1000 for r in pids}
    # Share of one core each process used while the step ran (sending + draining).
    result["cpu_share"] = {r: (after[r] - before[r]) / wall for r in pids}
    return result


def run(rates: Iterable[float] = (50, 200), sweep: Iterable[float] = (10, 25, 50, 100, 200),
        seconds: float = 4.0, p99_limit_ms: float = 250.0, baseline_count: int = 20,
        min_count: int = 10) -> Dict[str, Any]:
    required = sorted(set(rates))
    steps: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as state:
        stack, url, endpoint, startup = start_stack("moto", Path(state))
        try:
            pids = _roles(stack.pid)
            wait_ready(url)
            baseline = step(url, endpoint, pids, 4.0, baseline_count)
            saturated = False
            for rate in sorted(set(sweep) | set(required)):
                if saturated and rate not in required:
                    continue
                result = step(url, endpoint, pids, rate, max(min_count, int(rate * seconds)))
                result["breach"] = result["p99_ms"] > p99_limit_ms or result["finished"] < result["count"]
                result["saturated"] = result["throughput_rps"] < 0.8 * min(rate, result["sent_rps"])
                steps.append(result)
                saturated = saturated or result["saturated"]
        finally:
            stop_stack(stack)
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
