"""Processes of the local stack: start one with its log in a file, wait until it is ready, stop it.

Every start-up handshake is "poll a readiness check while the child lives": a state file the child
writes once ready (the database host, the fault proxy) or an HTTP answer (chalice local). Output
goes to a log file, never a pipe, so nobody has to drain it and a full pipe never blocks a child.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

T = TypeVar("T")


class StartError(RuntimeError):
    """A process of the local stack exited or was not ready in time; the message has its log's tail."""


def process_alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) is all we know


def write_json_atomically(path: Path, document: Any) -> None:
    """Replace `path` in one step: a reader sees the old document or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


def read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class Child:
    name: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, command: Sequence[str], *, log_path: Path, cwd: Path,
          env: Optional[Mapping[str, str]] = None) -> Child:
    """Start `command` with its output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=cwd, env=dict(env) if env is not None else None)
    return Child(name, process, log_path)


def wait_until(child: Child, ready: Callable[[], Optional[T]], *, timeout: float, what: str) -> T:
    """Poll `ready` until it returns a value; StartError if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value is not None:
            return value
        if not child.alive():
            raise StartError(f"{child.name} exited with code {child.process.returncode} before {what}; "
                             f"last lines of {child.log_path}:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise StartError(f"{child.name} did not get {what} within {timeout:.0f} s; "
                             f"last lines of {child.log_path}:\n{child.log_tail()}")
        time.sleep(0.05)


def stop(children: Iterable[Child], *, timeout: float = 5.0, sig: int = signal.SIGINT) -> None:
    """Send `sig` (Ctrl-C by default) to each child in order; SIGKILL what is left after `timeout`."""
    deadline = time.monotonic() + timeout
    for child in children:
        if child.alive():
            child.process.send_signal(sig)
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
