"""The one way to start the local stack.

- `start_database` / `running_database`: the database host (`python -m devserver db`), found again
  through its state file. `chalice local` (devserver/chalice_local.py) uses them when nothing was
  started for it; a reload finds the same database running.
- `LocalStack`: a context manager for tests, bench and reliability. It owns the ports, region,
  credentials, backend, the fault proxy and every start-up handshake: the database host (owned by
  this process), optionally the fault proxy in front of it, then the app host, which is `chalice
  local` itself, told the endpoints through STOREFIRST_* (devserver/local_config.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional

from devserver import aws_guard
from devserver.db_process import free_port
from devserver.local_config import BUSINESS_LOGIC, PROJECT_DIR, LocalConfig, chalice_local_argv
from devserver.processes import Child, process_alive, read_json, spawn, stop, wait_until

DATABASE_STATE = "db.json"
DATABASE_START_TIMEOUT_S = 90.0  # DynamoDB Local's JVM on a loaded 2-core machine
APP_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Database:
    """A running database host, as its state file describes it."""

    pid: int
    backend: str
    region: str
    dynamodb_endpoint: str
    sqs_endpoint: str

    @classmethod
    def read(cls, state_file: Path) -> Optional["Database"]:
        values = read_json(state_file)
        if not isinstance(values, dict) or "PID" not in values:
            return None
        return cls(pid=int(values["PID"]), backend=values["BACKEND"], region=values["AWS_REGION"],
                   dynamodb_endpoint=values["DYNAMODB_ENDPOINT_URL"],
                   sqs_endpoint=values["SQS_ENDPOINT_URL"] or values["DYNAMODB_ENDPOINT_URL"])

    def reachable(self) -> bool:
        """The process lives and its DynamoDB endpoint accepts connections."""
        if not process_alive(self.pid):
            return False
        return accepts_connections(self.dynamodb_endpoint)


def accepts_connections(url: str, timeout: float = 1.0) -> bool:
    host_port = url.split("//", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 80)), timeout=timeout).close()
        return True
    except (OSError, ValueError):
        return False


def running_database(state_dir: Path) -> Optional[Database]:
    database = Database.read(state_dir / DATABASE_STATE)
    return database if database is not None and database.reachable() else None


def python_environment() -> Dict[str, str]:
    """Environment for a Python process of the stack: it writes no bytecode, because a new file in
    the project's __pycache__ folders restarts `chalice local` (its watcher sees every file)."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def start_database(config: LocalConfig, *, table_name: str, template: Path, owner_pid: int,
                   timeout: float = DATABASE_START_TIMEOUT_S) -> Database:
    """Start the database host for `config` and wait until its table and queue exist.

    It stops by itself once `owner_pid` is gone, so it can outlive the process that started it
    (a `chalice local` worker that reloads) without outliving the stack."""
    state = config.state_dir
    state_file = state / DATABASE_STATE
    state_file.unlink(missing_ok=True)
    logs = state / "logs"
    argv = [sys.executable, "-m", "devserver", "db", "--backend", config.backend, "--region", config.region,
            "--table-name", table_name, "--template", str(template), "--log-dir", str(logs),
            "--data-dir", str(state / "dynamodb"), "--state-file", str(state_file), "--owner-pid", str(owner_pid)]
    if config.backend == "url":
        argv += ["--endpoint-url", str(config.endpoint_url)]
    else:
        argv += ["--port", str(free_port())]
    if config.backend == "dynamodb-local":
        argv += ["--sqs-port", str(free_port())]
    if config.reset:
        argv.append("--reset")
    env = aws_guard.without_real_credentials(python_environment())
    child = spawn("database", argv, log_path=logs / "db.log", cwd=PROJECT_DIR, env=env)
    return wait_until(child, lambda: Database.read(state_file), timeout=timeout,
                      what="its table and queue were ready")


@dataclass(frozen=True)
class StackOptions:
    """A local stack for a test, a benchmark or a reliability scenario."""

    backend: str = LocalConfig.backend
    endpoint_url: Optional[str] = None
    region: str = LocalConfig.region
    state_dir: Optional[Path] = None  # None: a temporary directory, deleted on close
    stage: str = "dev"
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    autoreload: bool = False
    faults: bool = False  # a fault proxy between the app host and the database
    fault_seed: Optional[int] = None
    business_logic: Optional[str] = None  # module:function run instead of app.py's
    function_env: Mapping[str, str] = field(default_factory=dict)
    poll_interval: float = LocalConfig.poll_interval
    schedule_every: Optional[float] = None  # seconds between scheduled runs; None: the app's rate
    project_dir: Path = PROJECT_DIR
    auth: Optional[str] = None  # None: the stage's (devserver/apigw_auth.py's local_auth)
    operators: FrozenSet[str] = frozenset()


class LocalStack:
    """The database host, the optional fault proxy and `chalice local`; everything it started is
    stopped on exit."""

    def __init__(self, options: StackOptions = StackOptions()) -> None:
        self.options = options
        self._temporary = options.state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="storefirst-")) if options.state_dir is None \
            else options.state_dir
        self.logs = self.state_dir / "logs"
        self.database: Optional[Database] = None
        self.faults_url: Optional[str] = None
        self.port = options.port or free_port()
        self.api_url = f"http://{options.host}:{self.port}"
        self.app: Optional[Child] = None
        self._proxy: Optional[Child] = None

    # --- lifecycle ------------------------------------------------------------------------

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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        self.database = start_database(config, table_name=self.table_name,
                                       template=self.options.project_dir / "infra" / "template.yaml",
                                       owner_pid=os.getpid())
        if self.options.faults:
            self._start_fault_proxy()
        self.start_app()

    def start_app(self) -> None:
        """Start (or start again) `chalice local` and wait until its stream mapping is reading."""
        options = self.options
        command = chalice_local_argv(options.project_dir, host=options.host, port=self.port, stage=options.stage,
                                     autoreload=options.autoreload)
        config = replace(self._config(), dynamodb_endpoint=self.dynamodb_endpoint,
                         sqs_endpoint=self.database.sqs_endpoint if self.database else None)
        env = {**aws_guard.without_real_credentials(python_environment()), **config.to_env(),
               "AWS_ACCESS_KEY_ID": aws_guard.FAKE_ACCESS_KEY_ID,
               "AWS_SECRET_ACCESS_KEY": aws_guard.FAKE_SECRET_ACCESS_KEY}
        self.app = spawn("chalice local", command, log_path=self.logs / "app.log", cwd=options.project_dir, env=env)
        wait_until(self.app, self._ready, timeout=APP_START_TIMEOUT_S, what="its stream mapping was reading")

    def stop_app(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> None:
        if self.app is not None:
            stop([self.app], timeout=timeout, sig=sig)

    def kill_app(self) -> None:
        """SIGKILL `chalice local` (its function instances follow it within a second)."""
        if self.app is not None and self.app.alive():
            self.app.process.kill()
            self.app.process.wait()

    def close(self) -> None:
        children: List[Child] = [c for c in (self.app, self._proxy) if c is not None]
        stop(children)
        if self.database is not None and process_alive(self.database.pid):
            os.kill(self.database.pid, signal.SIGINT)
            _wait_gone(self.database.pid, 5.0)
        if self._temporary:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # --- what tests use -------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        return "storefirst-requests"

    @property
    def dynamodb_endpoint(self) -> str:
        """What the app host talks to: the fault proxy if there is one, else the database."""
        assert self.database is not None
        return self.faults_url or self.database.dynamodb_endpoint

    def client(self, service: str, *, direct: bool = True) -> Any:
        """A boto3 client for the local endpoints (`direct`: around the fault proxy)."""
        import boto3

        assert self.database is not None
        endpoint = {"sqs": self.database.sqs_endpoint}.get(
            service, self.database.dynamodb_endpoint if direct else self.dynamodb_endpoint)
        session: Any = boto3.session.Session()
        return session.client(service, endpoint_url=endpoint, region_name=self.database.region,
                            aws_access_key_id=aws_guard.FAKE_ACCESS_KEY_ID,
                            aws_secret_access_key=aws_guard.FAKE_SECRET_ACCESS_KEY)

    def status(self) -> Dict[str, Any]:
        with urllib.request.urlopen(f"{self.api_url}/_local/status", timeout=5) as response:
            document: Dict[str, Any] = json.loads(response.read())
        return document

    def faults(self, **changes: Any) -> Dict[str, Any]:
        """Change the fault proxy's faults at run time (see devserver/faults.py's control)."""
        assert self.faults_url, "start the stack with faults=True"
        request = urllib.request.Request(f"{self.faults_url}/_faults", data=json.dumps(changes).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: Dict[str, Any] = json.loads(response.read())
        return answer

    # --- internals ------------------------------------------------------------------------

    def _config(self) -> LocalConfig:
        options = self.options
        function_env = dict(options.function_env)
        if options.business_logic:
            function_env[BUSINESS_LOGIC] = options.business_logic
        return LocalConfig(state_dir=self.state_dir, backend=options.backend, endpoint_url=options.endpoint_url,
                           region=options.region, function_env=function_env, poll_interval=options.poll_interval,
                           schedule_every=options.schedule_every, auth=options.auth, operators=options.operators)

    def _start_fault_proxy(self) -> None:
        assert self.database is not None
        ready = self.state_dir / "faults.json"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "devserver", "faults", "--upstream", self.database.dynamodb_endpoint,
                "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready)]
        if self.options.fault_seed is not None:
            argv += ["--seed", str(self.options.fault_seed)]
        self._proxy = spawn("fault proxy", argv, log_path=self.logs / "faults.log", cwd=PROJECT_DIR,
                            env=python_environment())

        def url() -> Optional[str]:
            values = read_json(ready)
            return str(values["FAULTS_URL"]) if isinstance(values, dict) else None
        self.faults_url = wait_until(self._proxy, url, timeout=30, what="it was listening")

    def _ready(self) -> Optional[bool]:
        try:
            status = self.status()
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return True if status.get("ready") else None


def _wait_gone(pid: int, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        os.kill(pid, signal.SIGKILL)
