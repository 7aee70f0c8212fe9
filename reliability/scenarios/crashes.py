"""Scenario 2, processor crashes: while `chalice local` works through a load of N requests, function
instances of `process` are SIGKILLed 10 times (Lambda's sandbox dying mid-invocation: a function
error, which the stream mapping retries as Lambda's event source mapping does), and the whole app
host is SIGKILLed 3 times and started again at once (its checkpoint is durable, the database host
survives). reliability/crash.py says how each is done.

Kill moments are seeded: kill k happens once the business logic has recorded its T_k-th run
(T_k drawn from the middle 90% of the load) plus a seeded 0-250 ms, so kills land inside batches,
between a run and its write-back, during status reads and checkpoint saves; which of them take
the whole app host is seeded too. Each kill appends a marker line to the runs file; a duplicate run
is explained only if a marker separates the two runs of that request (the first run's write-back
died with its process). Nothing may be lost or stuck; every other duplicate is a violation.

The app host is also the API: while it is down, clients' connections fail. They retry with the
same Idempotency-Key (a 409 then confirms an earlier try was stored); a failed connection is
allowed only while the app host was down.
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from devserver.launcher import LocalStack
from reliability.common import settle_and_check
from reliability.crash import MARKER, Crash, crash_app_host, crash_instance, instance_to_kill
from reliability.load import NO_ANSWER, RETRYABLE, Attempt, Retry, Sender, Sent, plan
from reliability.report import Result
from reliability.stack import app_status, dead_parts, runs_file, scenario_stack
from reliability.timeline import Moment, Window, of_run

NAME = "crashes"
FULL_SIZE = 2_000
KILLS = 10  # function instances of `process`
APP_KILLS = 3  # the whole app host
CLIENTS = 32
STALL_S = 60.0  # no run for this long: the pipeline is not coming back, stop waiting for kill moments
# While the app host restarts (a few seconds) connections are refused: up to ~17 s of backoff.
RETRY = Retry(max_attempts=12, base_s=0.2, cap_s=2.0, on=RETRYABLE | {NO_ANSWER})
# A keep-alive connection to a killed app host fails at its next use, just after the restart.
DOWN_GRACE_S = 1.0


class Killer:
    """Watches the runs file from a thread and crashes an instance or the app host at the planned
    moments (the app host is started again at once)."""

    def __init__(self, stack: LocalStack, size: int, seed: int, kills: int, app_kills: int,
                 deadline_s: float) -> None:
        rng = random.Random(seed)
        self._stack = stack
        self._runs = runs_file(stack.state_dir)
        self.thresholds = sorted(rng.sample(range(size // 20, size * 19 // 20), kills + app_kills))
        self.delays = [rng.uniform(0.0, 0.25) for _ in self.thresholds]
        self.app_at = set(rng.sample(range(len(self.thresholds)), app_kills))  # which kills take the app host
        self.crashes: List[Crash] = []
        self.error: Optional[str] = None
        # The pool's and the stream mapping's counters of the app hosts killed so far (each new one
        # starts from zero).
        self.counted: Dict[str, int] = {"crashes": 0, "function_errors": 0}
        self._deadline = time.monotonic() + deadline_s
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 60)

    def count(self) -> Dict[str, int]:
        """What the current app host counted, plus what the killed ones had."""
        status = app_status(self._stack)
        return {"crashes": self.counted["crashes"] + status.get("functions", {}).get("process", {}).get("crashes", 0),
                "function_errors": self.counted["function_errors"]
                + status.get("runner", {}).get("counters", {}).get("function_errors", 0)}

    def _runs_so_far(self, offset: int, count: int) -> "tuple[int, int]":
        with self._runs.open("rb") as handle:
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
                if k in self.app_at:
                    time.sleep(self.delays[k])
                    self.counted = self.count()  # read before the kill: what it counts after is lost
                    crash = crash_app_host(self._stack, self._runs, f"{k + 1} app host")
                else:
                    pid = instance_to_kill(self._stack)  # asked first: the kill then lands on time
                    time.sleep(self.delays[k])
                    crash = crash_instance(self._stack, self._runs, f"{k + 1}", pid)
                self.crashes.append(crash)
                if crash.problem:
                    self.error = crash.problem
                    return
        except Exception as exc:  # noqa: BLE001 - reported as a harness error, never swallowed
            self.error = f"killer failed: {exc!r}"


def unexplained_duplicates(runs: Path, duplicated: List[str]) -> List[str]:
    """Duplicated ids whose consecutive runs are not separated by a kill marker."""
    wanted, bad = set(duplicated), []
    last_epoch: Dict[str, int] = {}  # id -> how many kills had happened at its latest run
    epoch = 0
    with runs.open("rb") as handle:
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


def while_down(attempt: Attempt, crashes: List[Crash]) -> bool:
    """A try in flight at some moment the app host was down (killed, not yet serving again)."""
    answered = attempt.sent_at + attempt.elapsed_ms / 1000
    return any(attempt.sent_at <= c.at + c.down_s + DOWN_GRACE_S and answered >= c.at - DOWN_GRACE_S
               for c in crashes if c.what == "app host")


def refused_while_up(sent: List[Sent], crashes: List[Crash]) -> List[str]:
    return [f"{s.planned.key}: no answer while the app host was up ({a.detail})"
            for s in sent for a in s.attempts if a.status == NO_ANSWER and not while_down(a, crashes)]


def run(backend: str, size: int, seed: int, state: Path, kills: int = KILLS, app_kills: int = APP_KILLS) -> Result:
    began = time.monotonic()
    planned = plan(f"crashes-{seed}", size, seed, unknown_share=0.1)
    with scenario_stack(backend, state) as stack:
        killer = Killer(stack, size, seed, kills, app_kills, deadline_s=120 + size / 5)
        killer.start()
        sent = Sender(stack.api_url, planned, clients=CLIENTS, retry=RETRY, seed=seed).run(deadline_s=60 + size / 5)
        killer.join()
        findings = settle_and_check(stack, sent, allowed={NO_ANSWER}, deadline_s=60 + size / 5)
        counted = killer.count()
        errors = dead_parts(stack) + ([killer.error] if killer.error else [])
    findings.bad_answers += refused_while_up(sent, killer.crashes)
    unexplained = unexplained_duplicates(runs_file(state), findings.duplicated)
    instances = [c for c in killer.crashes if c.what == "instance"]
    hosts = [c for c in killer.crashes if c.what == "app host"]
    restart = max((c.restart_s for c in hosts), default=0.0)
    no_answer = findings.answers.get(NO_ANSWER, 0)
    return Result(
        NAME, backend, size, load=f"{size:,} PUTs from {CLIENTS} clients, failed connections retried (same key)",
        faults=f"{len(instances)} SIGKILLs of `process` function instances and {len(hosts)} of the app host, "
               f"restarted at once (seed {seed})",
        findings=findings, runtime_s=time.monotonic() - began, state=state, duplicates_allowed=True,
        unexplained_duplicates=unexplained, errors=errors,
        timeline=of_run(sent, findings, windows=[Window(c.at, c.at + c.down_s, "app host SIGKILLed, until it "
                                                        "serves again") for c in hosts],
                        moments=[Moment(c.at, "function instance SIGKILLed") for c in instances]),
        facts={"kills": f"after runs {killer.thresholds} (+0-250 ms), the app host at kills "
                        f"{sorted(k + 1 for k in killer.app_at)}; restarts took up to {restart:.1f} s",
               "seen": f"the pools counted {counted['crashes']} Runtime.ExitError (instances killed mid-invocation "
                       f"or mid-init), the stream mappings {counted['function_errors']} function errors; "
                       f"clients {no_answer} failed connections",
               "dupes": f"{findings.extra_runs} extra runs, all separated by a kill" if not unexplained
               else f"{len(unexplained)} duplicated requests without a kill between their runs"},
        table_notes=[f"{no_answer} failed connections while the app host was down, retried"]
        + (["every duplicate run is separated from the first by a kill (side effect done, write-back not)"]
           if findings.extra_runs and not unexplained else []))
