"""Scenario 2, processor crashes: the stream runner is SIGKILLed 10 times while it works through a
load of N requests, and restarted at once each time.

Kill moments are seeded: kill k happens once the business logic has recorded its T_k-th run
(T_k drawn from the middle 90% of the load) plus a seeded 0-250 ms, so kills land inside batches,
between a run and its write-back, during status reads and checkpoint saves. After each kill the
harness appends a marker line to the runs file; a duplicate run is explained only if a marker
separates the two runs of that request (the first run's write-back died with the process).
Nothing may be lost or stuck; every other duplicate is a violation.
"""
from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from reliability.common import dead_parts, settle_and_check
from reliability.load import Sender, plan
from reliability.report import Result
from reliability.stack import LocalStack

NAME = "crashes"
FULL_SIZE = 2_000
KILLS = 10
CLIENTS = 32
MARKER = b"#kill"
STALL_S = 60.0  # no run for this long: the runner is not coming back, stop waiting for kill moments


class Killer:
    """Watches the runs file from a thread and kills/restarts the runner at the planned moments."""

    def __init__(self, stack: LocalStack, size: int, seed: int, kills: int, deadline_s: float) -> None:
        rng = random.Random(seed)
        self._stack = stack
        self.thresholds = sorted(rng.sample(range(size // 20, size * 19 // 20), kills))
        self.delays = [rng.uniform(0.0, 0.25) for _ in range(kills)]
        self.kill_times: List[float] = []
        self.restart_s: List[float] = []
        self.error: Optional[str] = None
        self._deadline = time.monotonic() + deadline_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 60)

    def _runs_so_far(self, offset: int, count: int) -> "tuple[int, int]":
        with self._stack.runs_file.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line being written is counted next time
        return offset + len(complete), count + complete.count(b"\n") - complete.count(MARKER)

    def _run(self) -> None:
        offset, count, moved = 0, 0, time.monotonic()
        try:
            for k, threshold in enumerate(self.thresholds):
                while count < threshold:
                    if time.monotonic() > self._deadline or time.monotonic() - moved > STALL_S:
                        self.error = f"kill {k + 1} never came: {count} runs of the {threshold} awaited"
                        return
                    time.sleep(0.005)
                    offset, now = self._runs_so_far(offset, count)
                    if now != count:
                        count, moved = now, time.monotonic()
                time.sleep(self.delays[k])
                self._stack.kill_runner()
                self.kill_times.append(time.monotonic())
                _append_marker(self._stack.runs_file, k + 1)
                began = time.monotonic()
                self._stack.start_runner()
                self.restart_s.append(time.monotonic() - began)
        except Exception as exc:  # noqa: BLE001 - reported as a harness error, never swallowed
            self.error = f"killer failed: {exc!r}"


def _append_marker(path: Path, k: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, MARKER + f" {k}\n".encode())
    finally:
        os.close(fd)


def unexplained_duplicates(runs_file: Path, duplicated: List[str]) -> List[str]:
    """Duplicated ids whose consecutive runs are not separated by a kill marker."""
    wanted, bad = set(duplicated), []
    last_epoch: Dict[str, int] = {}  # id -> how many kills had happened at its latest run
    epoch = 0
    with runs_file.open("rb") as handle:
        for line in handle:
            if line.startswith(MARKER):
                epoch += 1
                continue
            key = line.rstrip(b"\n").decode()
            if key in wanted:
                if key in last_epoch and last_epoch[key] == epoch:
                    bad.append(key)
                last_epoch[key] = epoch
    return sorted(set(bad))


def run(backend: str, size: int, seed: int, state: Path, kills: int = KILLS) -> Result:
    began = time.monotonic()
    planned = plan(f"crashes-{seed}", size, seed, unknown_share=0.1)
    with LocalStack(backend, state) as stack:
        killer = Killer(stack, size, seed, kills, deadline_s=120 + size / 5)
        killer.start()
        sent = Sender(stack.api_url, planned, clients=CLIENTS, seed=seed).run(deadline_s=60 + size / 5)
        killer.join()
        findings = settle_and_check(stack, sent, allowed=set(), deadline_s=60 + size / 5)
        errors = dead_parts(stack) + ([killer.error] if killer.error else [])
    unexplained = unexplained_duplicates(stack.runs_file, findings.duplicated)
    restart = max(killer.restart_s) if killer.restart_s else 0.0
    return Result(
        NAME, backend, size, load=f"{size:,} PUTs from {CLIENTS} clients",
        faults=f"{len(killer.kill_times)} SIGKILLs of the stream runner (seed {seed}), each restarted at once",
        findings=findings, runtime_s=time.monotonic() - began, state=state, duplicates_allowed=True,
        unexplained_duplicates=unexplained, errors=errors,
        facts={"kills": f"after runs {killer.thresholds} (+0-250 ms); restarts took up to {restart:.1f} s",
               "dupes": f"{findings.extra_runs} extra runs, all separated by a kill" if not unexplained
               else f"{len(unexplained)} duplicated requests without a kill between their runs"},
        table_notes=["every duplicate run is separated from the first by a kill (side effect done, write-back "
                     "not)"] if findings.extra_runs and not unexplained else [])
