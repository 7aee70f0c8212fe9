"""The local stack for one scenario, as `make run` builds it but part by part, so a scenario can put
the fault proxy between the parts and the table, and kill and restart the stream runner.

Every part is `python -m devserver <part>` in a process of its own, on free loopback ports, with
its state and logs in one directory the report names. The runner runs tests/counting_logic.py,
which appends each run's request id to `runs_file`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from devserver.db import client
from devserver.db_process import free_port
from devserver.stack import Child, drain, read_values, start

REGION = "us-east-1"  # moto stamps every stream record with us-east-1: all parts use it
LOGIC = "devserver.testing.logic:counting"
HOST = "127.0.0.1"
STOP_WITHIN_S = 5.0


class LocalStack:
    """db (+ optional fault proxy) + api + runner. Use as a context manager: everything it started
    is stopped on exit, and its logs are complete once the `with` block is left."""

    def __init__(self, backend: str, state: Path, *, faults: bool = False,
                 runner_env: Optional[Dict[str, str]] = None, fault_seed: int = 1) -> None:
        self.backend = backend
        self.state = state
        self.logs = state / "logs"
        self.runs_file = state / "runs.txt"
        self.with_faults = faults
        self.fault_seed = fault_seed
        # The success TTL is raised so that no finished item expires before it is checked: on moto
        # the local sweeper deletes expired items, DynamoDB Local deletes them itself.
        self.runner_env = {"RUNS_FILE": str(self.runs_file), "SUCCESS_TTL_SECONDS": "86400", **(runner_env or {})}
        self.db: Optional[Child] = None
        self.proxy: Optional[Child] = None
        self.api: Optional[Child] = None
        self.runner: Optional[Child] = None
        self.values: Dict[str, str] = {}
        self.faults_url = ""
        self.api_url = ""
        self._drains: List[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> "LocalStack":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.runs_file.touch()
        db_argv = ["db", "--backend", self.backend, "--port", str(free_port()), "--host", HOST,
                   "--region", REGION, "--log-dir", str(self.logs), "--data-dir", str(self.state / "data")]
        if self.backend == "dynamodb-local":
            db_argv += ["--sqs-port", str(free_port())]
        self.db = start("db", db_argv, self.logs)
        self.values = read_values(self.db, "#", timeout=90)
        self._drain(self.db)
        if self.with_faults:
            self.proxy = start("faults", ["faults", "--upstream", self.ddb_url, "--host", HOST,
                                          "--port", str(free_port()), "--seed", str(self.fault_seed)], self.logs)
            self.faults_url = read_values(self.proxy, "FAULTS_URL")["FAULTS_URL"]
            self._drain(self.proxy)
        port = free_port()
        # The API and the runner start side by side: each spends ~1.5 s importing.
        self.api = start("api", ["api", *self._part_args(), "--host", HOST, "--port", str(port)], self.logs)
        self._spawn_runner()
        self.api_url = read_values(self.api, "API_URL", timeout=60)["API_URL"]
        self._drain(self.api)
        self._await_runner()

    def close(self) -> None:
        """SIGTERM to every part at once (the runner first), then wait: the checks of the data are
        done by now, so nothing depends on the order they go in; leftovers are killed."""
        children = [c for c in (self.runner, self.api, self.proxy, self.db) if c is not None]
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN_S
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        # The checks read the logs: wait until the last lines a part wrote (its print()s are
        # block-buffered into the pipe until it exits) are copied.
        for thread in self._drains:
            thread.join(max(0.1, deadline + 5 - time.monotonic()))
        self.runner = self.api = self.proxy = self.db = None

    def _drain(self, child: Child) -> None:
        self._drains.append(drain(child))

    # --- the parts -----------------------------------------------------------------------------------

    @property
    def ddb_url(self) -> str:
        """The database itself, never through the proxy: what the checks read."""
        return self.values["DYNAMODB_ENDPOINT_URL"]

    @property
    def table(self) -> str:
        return self.values["TABLE_NAME"]

    def _part_args(self) -> List[str]:
        endpoint = self.faults_url or self.ddb_url  # the API and the runner both go through the proxy
        return ["--dynamodb-endpoint", endpoint, "--sqs-endpoint", self.values["SQS_ENDPOINT_URL"],
                "--region", REGION, "--table-name", self.table, "--status-file", str(self.status_file)]

    @property
    def status_file(self) -> Path:
        return self.state / "runner-status.json"

    def start_runner(self) -> None:
        """Start the runner and wait until it reads the stream (from its checkpoint, if any)."""
        self._spawn_runner()
        self._await_runner()

    def _spawn_runner(self) -> None:
        argv = ["runner", *self._part_args(), "--checkpoint", str(self.state / "checkpoints.json"),
                "--business-logic", LOGIC]
        self.runner = start("runner", argv, self.logs, env=self.runner_env)

    def _await_runner(self) -> None:
        assert self.runner is not None
        read_values(self.runner, "RUNNER_CHECKPOINT", timeout=60)
        self._drain(self.runner)

    def kill_runner(self) -> None:
        """SIGKILL: no handler runs, no checkpoint is saved, threads die mid-call."""
        assert self.runner is not None
        self.runner.process.send_signal(signal.SIGKILL)
        self.runner.process.wait(timeout=10)
        self.runner = None  # its log stays open: the drain thread may still copy the last lines

    def runner_status(self) -> Dict[str, Any]:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def exited(self) -> List[str]:
        """Names of parts that have exited (a dead part makes the scenario's result meaningless)."""
        parts = {"db": self.db, "faults": self.proxy, "api": self.api, "runner": self.runner}
        return [name for name, child in parts.items() if child is not None and child.process.poll() is not None]

    def dynamodb(self) -> Any:
        return client("dynamodb", self.ddb_url, REGION)

    def streams(self) -> Any:
        return client("dynamodbstreams", self.ddb_url, REGION)

    # --- the fault proxy ---------------------------------------------------------------------------

    def faults(self, **changes: Any) -> Dict[str, Any]:
        """POST /_faults (see devserver/faults.py for the keys); returns the proxy's new state."""
        request = urllib.request.Request(f"{self.faults_url}/_faults", data=json.dumps(changes).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def fault_state(self, timeout: float = 15.0) -> Dict[str, Any]:
        """GET /_faults: per-operation `counters`, `totals`, `refused_connections`; waits while
        the proxy refuses connections (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.faults_url}/_faults", timeout=5) as answer:
                    return dict(json.loads(answer.read()))
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def stack_env() -> None:
    """The checks' boto3 clients need credentials and a region, never the machine's real ones."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = REGION
