"""The local stack a scenario runs on: devserver.launcher's (the database host, the fault proxy if
the scenario injects faults, `chalice local`), with the counting business logic in the function
instances (devserver/testing/logic.py), which appends the request id of each run to the runs file.

Everything a report points to is in the scenario's state directory: runs.txt, checkpoints.json,
the database's files and logs/ (app.log: `chalice local` and its function instances, whose JSON
logs go to its stdout as Lambda's go to CloudWatch; db.log; faults.log).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional

from devserver.launcher import LocalStack, StackOptions, accepts_connections
from devserver.processes import process_alive
from devserver.testing.api import http
from devserver.testing.logic import RUNS_FILE

LOGIC = "devserver.testing.logic:counting"
# No finished item may expire before it is checked: on moto the local sweeper deletes expired
# items, DynamoDB Local deletes them itself.
SUCCESS_TTL_SECONDS = 86_400


def runs_file(state: Path) -> Path:
    return state / "runs.txt"


def scenario_stack(backend: str, state: Path, *, faults: bool = False, fault_seed: int = 1,
                   auth: Optional[str] = None, operators: FrozenSet[str] = frozenset()) -> LocalStack:
    """The stack for one scenario, not started yet (use it as a context manager). Its state stays
    in `state` after it stops. `auth` "iam": callers sign, `operators` are the access key ids that
    may call /admin (StackOptions)."""
    state.mkdir(parents=True, exist_ok=True)
    runs_file(state).touch()  # read before the first run is recorded (the crash scenario's killer)
    return LocalStack(StackOptions(
        backend=backend, state_dir=state, business_logic=LOGIC, faults=faults, fault_seed=fault_seed,
        function_env={RUNS_FILE: str(runs_file(state)), "SUCCESS_TTL_SECONDS": str(SUCCESS_TTL_SECONDS)},
        auth=auth, operators=operators))


def dead_parts(stack: LocalStack) -> List[str]:
    """The stack's processes that are gone (one gone during a scenario makes its result meaningless).
    Called after the load has settled, when no outage window is open any more."""
    dead = []
    if stack.app is not None and not stack.app.alive():
        dead.append(f"the app host (chalice local) exited; see {stack.logs}/app.log")
    if stack.database is not None and not process_alive(stack.database.pid):
        dead.append(f"the database host exited; see {stack.logs}/db.log")
    if stack.faults_url and not accepts_connections(stack.faults_url):
        dead.append(f"the fault proxy does not listen any more; see {stack.logs}/faults.log")
    return dead


def app_status(stack: LocalStack) -> Dict[str, Any]:
    """GET /_local/status, or {} when the app host does not answer (a dead part is reported as such)."""
    try:
        return stack.status()
    except (OSError, ValueError):
        return {}


def fault_state(stack: LocalStack, timeout: float = 15.0) -> Dict[str, Any]:
    """The fault proxy's GET /_faults: per-operation `counters`, `totals`, `refused_connections`;
    waits while the proxy refuses connections (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, state = http("GET", f"{stack.faults_url}/_faults", timeout=5)
            if status == 200:
                return dict(state)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fault proxy at {stack.faults_url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)
