"""The processes of a local stack (devserver.launcher's) whose CPU the benchmarks read from /proc.

Roles: `moto` (the moto server the database host started), `db+ttl sweeper` (the database host),
`app host` (`chalice local`: the local API Gateway, the stream mapping, the failure-queue consumer
and the schedule) and `functions` (its function instances, each invocation's process).
"""
from __future__ import annotations

from typing import Dict, List

from bench.common import ORDER, command_line, descendants, process_cpu_seconds
from devserver.launcher import LocalStack
from devserver.testing.api import Api

# Markers in a command line -> role, for the descendants of the database host and the app host.
ROLES = (("devserver.moto_server", "moto"), ("devserver.function_instance", "functions"))


def warm_up(stack: LocalStack, timeout: float = 30.0) -> None:
    """One request through the whole pipeline, finished: `process`'s instance has done its cold
    start (the launcher's stack is ready once its stream mapping reads, while that instance may
    still be importing app.py), so no measured request waits for it."""
    api = Api(stack.api_url)
    api.finished(api.accepted(ORDER), timeout=timeout)


def processes(stack: LocalStack) -> Dict[int, str]:
    """pid -> role of every process of the stack that runs now."""
    assert stack.database is not None and stack.app is not None
    found = {stack.database.pid: "db+ttl sweeper", stack.app.pid: "app host"}
    for pid in descendants(stack.database.pid) + descendants(stack.app.pid):
        line = command_line(pid)
        role = next((role for marker, role in ROLES if marker in line), None)
        if role is not None:
            found[pid] = role
    return found


def pids_of(stack: LocalStack, role: str) -> List[int]:
    return [pid for pid, name in processes(stack).items() if name == role]


def cpu_seconds(pids: Dict[int, str]) -> Dict[int, float]:
    """CPU so far of each process still running (an exited one is left out)."""
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu_seconds(pid)
        except OSError:
            pass
    return found


def cpu_by_role(before: Dict[int, float], after: Dict[int, float], roles: Dict[int, str]) -> Dict[str, float]:
    """CPU seconds each role spent between two `cpu_seconds` readings. A process started in between
    counts from zero (a function instance's cold start is part of what it cost); the CPU of one that
    exited in between is not known, so it is missing."""
    spent: Dict[str, float] = {role: 0.0 for role in set(roles.values())}
    for pid, seconds in after.items():
        spent[roles[pid]] += seconds - before.get(pid, 0.0)
    return spent
