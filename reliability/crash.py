"""The two crashes of the crash scenario, each with its kill marker appended to the runs file at the
one moment that keeps the duplicate check exact: after the last run the killed processes can
record, and before the first run of anything the crash makes retry.

- A function instance of `process` (a Lambda sandbox dying mid-invocation): frozen with SIGSTOP,
  the marker appended once it is stopped, then SIGKILLed. Its pool reports Runtime.ExitError and
  the stream mapping retries the batch, as Lambda's event source mapping does after a function
  error; that retry can only start after the kill, so after the marker.
- The app host (`chalice local`: the local API Gateway, the stream mapping and the function pool):
  frozen so that it starts no further instance, its instances listed, then SIGKILLed. Its instances
  leave by themselves once their parent is gone, and may record runs until they do, so the marker
  is appended once all of them are gone, and before the app host is started again.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench.common import descendants
from devserver.launcher import LocalStack
from devserver.processes import process_alive

MARKER = b"#kill"
FUNCTION = "process"
INSTANCES_LEAVE_S = 5.0  # the instances watch their parent every 0.5 s


@dataclass
class Crash:
    what: str  # "instance" or "app host"
    at: float  # time.time() of the kill (the clock the clients' attempts are stamped with)
    restart_s: float = 0.0  # the app host's: until its stream mapping was reading again
    down_s: float = 0.0  # the app host's: from the kill until it served again
    problem: Optional[str] = None  # the crash did not happen as planned (reported as a harness error)


def append_marker(runs_file: Path, label: str) -> None:
    fd = os.open(runs_file, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, MARKER + f" {label}\n".encode())
    finally:
        os.close(fd)


def instance_to_kill(stack: LocalStack) -> Optional[int]:
    """The instance of FUNCTION that is busy, else an idle one (the stream mapping invokes one at a
    time per shard, so it is mostly the same one): its pid, or None when there is none."""
    pool = stack.status()["functions"][FUNCTION]
    pids = pool["busyPids"] or pool["pids"]
    return int(pids[0]) if pids else None


def crash_instance(stack: LocalStack, runs_file: Path, label: str, pid: Optional[int]) -> Crash:
    """Kill `pid` (from instance_to_kill, read ahead so that the kill lands at its seeded moment),
    or the instance to kill now if that one is gone already."""
    if pid is None or not process_alive(pid):
        pid = instance_to_kill(stack)
    if pid is None:
        return Crash("instance", time.time(), problem=f"kill {label}: no instance of {FUNCTION} to kill")
    _freeze(pid)
    append_marker(runs_file, label)
    _signal(pid, signal.SIGKILL)
    at = time.time()
    problem = None if _gone(pid, INSTANCES_LEAVE_S) else f"kill {label}: instance {pid} survived SIGKILL"
    return Crash("instance", at, problem=problem)


def crash_app_host(stack: LocalStack, runs_file: Path, label: str) -> Crash:
    assert stack.app is not None
    host = stack.app.pid
    _freeze(host)
    instances = descendants(host)
    stack.kill_app()
    at = time.time()
    lingering = [pid for pid in instances if not _gone(pid, INSTANCES_LEAVE_S)]
    for pid in lingering:  # reported below; killed so that the marker still means what it says
        _signal(pid, signal.SIGKILL)
        _gone(pid, INSTANCES_LEAVE_S)
    append_marker(runs_file, label)
    began = time.time()
    stack.start_app()
    problem = (f"kill {label}: {len(lingering)} function instance(s) outlived the app host by "
               f"{INSTANCES_LEAVE_S:g} s") if lingering else None
    return Crash("app host", at, restart_s=time.time() - began, down_s=time.time() - at, problem=problem)


def _freeze(pid: int, timeout: float = 5.0) -> None:
    """SIGSTOP, then wait until the kernel shows the process stopped (or gone): from then on it runs
    no instruction, so it records no run."""
    _signal(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while process_alive(pid) and _state(pid) not in ("T", "t") and time.monotonic() < deadline:
        time.sleep(0.001)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
