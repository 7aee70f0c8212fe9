"""The app host: everything `chalice local`'s worker runs besides Chalice's own routes.

It finds or starts the database host, points this process and every function instance at it (never
at real AWS), serves the local API Gateway (infra's PUT integration, the Chalice routes, /_local/),
and runs the app's event sources (the stream mapping, the failure-queue consumer, the schedule),
which invoke the app's functions in function instances (devserver/functions.py).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO

from devserver import aws_guard
from devserver.console_reads import RecentIds, RequestReads
from devserver.db_schema import DEFAULT_QUEUE
from devserver.functions import MAX_INSTANCES, FunctionConfig, FunctionPool
from devserver.launcher import Database, running_database, start_database
from devserver.local_config import LocalConfig
from devserver.local_pages import LocalPages, Unavailable, is_local_path, json_answer
from devserver.processes import StartError

log = logging.getLogger(__name__)

# Batches of the stream mapping in flight at once, over all shards: each holds a function instance.
MAX_STREAM_BATCHES = MAX_INSTANCES
# What a function instance inherits from the host besides its own variables: enough to run Python.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH",
              "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONUNBUFFERED")


class StateDirBusy(StartError):
    """Another app host (a second `chalice local`) already uses the state directory."""


@dataclass(frozen=True)
class StageFunctions:
    """The app's Lambda functions other than the API handler, as the stage configures them."""

    stream: Optional[str]
    others: List[str]


def event_functions(app: Any) -> StageFunctions:
    from chalice.app import DynamoDBEventConfig

    stream = [s.name for s in app.event_sources if isinstance(s, DynamoDBEventConfig)]
    others = [s.name for s in app.event_sources if not isinstance(s, DynamoDBEventConfig)]
    return StageFunctions(stream=stream[0] if stream else None, others=others)


class AppHost:
    def __init__(self, app: Any, chalice_config: Any, *, stage: str, local: LocalConfig, project_dir: Path,
                 owner_pid: int) -> None:
        self.app = app
        self.chalice_config = chalice_config
        self.stage = stage
        self.local = local
        self.project_dir = project_dir
        self.template = project_dir / "infra" / "template.yaml"
        self.owner_pid = owner_pid
        self.database: Optional[Database] = None
        self.database_problem: Optional[str] = None
        self.reused_database = False
        self.functions: Optional[FunctionPool] = None
        self.runner: Any = None
        self.recent = RecentIds()  # what the stream function was handed: the console's recent requests
        self._reads: Optional[RequestReads] = None
        self._batches: Optional[ThreadPoolExecutor] = None
        self._others: List[Any] = []
        self._sqs: Any = None
        self._queue_url: Optional[str] = None
        self._lock_file: Optional[TextIO] = None
        self._stopped = threading.Event()
        self._last_check = (0.0, True)

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        self._lock_state_dir()
        self._find_database()
        database = self.database
        endpoints = aws_guard.local_aws_environment(
            region=self.local.region,
            dynamodb=self.local.dynamodb_endpoint or (database.dynamodb_endpoint if database else _UNREACHABLE),
            sqs=self.local.sqs_endpoint or (database.sqs_endpoint if database else _UNREACHABLE))
        aws_guard.apply(endpoints)
        aws_guard.install()
        self.functions = FunctionPool(self._function_configs(), project_dir=self.project_dir)
        if database is not None:
            self._reads = RequestReads(self._console_client(), self.table_name, self.recent)
            self._start_event_sources()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.runner is not None:
            self.runner.stop(timeout=0)
        for source in self._others:
            source.stop(timeout=0)
        if self.functions is not None:
            self.functions.close()  # a function busy in a batch gets its instance killed: no waiting
        if self.runner is not None:
            self.runner.stop(timeout=2.0)
        if self._batches is not None:
            self._batches.shutdown(wait=False, cancel_futures=True)  # what was in flight is redelivered
        for source in self._others:
            source.stop(timeout=1.0)
        if self._lock_file is not None:
            self._lock_file.close()

    # --- the database ---------------------------------------------------------------------

    def _find_database(self) -> None:
        local = self.local
        table = self.table_name
        if local.dynamodb_endpoint:
            self.database = Database(pid=0, backend="given", region=local.region,
                                     dynamodb_endpoint=local.dynamodb_endpoint,
                                     sqs_endpoint=local.sqs_endpoint or local.dynamodb_endpoint)
            return
        found = running_database(local.state_dir)
        if found is not None and found.backend == local.backend:
            self.database, self.reused_database = found, True
            return
        try:
            self.database = start_database(local, table_name=table, template=self.template,
                                           owner_pid=self.owner_pid)
        except StartError as exc:
            self.database_problem = str(exc)
            log.error("the local database could not be started: %s", exc)

    def database_down(self) -> Optional[str]:
        """Why requests cannot be served (no database), or None; checked at most once a second."""
        if self.database_problem is not None:
            return self.database_problem
        database = self.database
        if database is None or database.pid == 0:
            return None
        checked_at, up = self._last_check
        now = time.monotonic()
        if now - checked_at > 1.0:
            up = database.reachable()
            self._last_check = (now, up)
        return None if up else f"the database host (pid {database.pid}) is not running"

    @property
    def table_name(self) -> str:
        return str(self.chalice_config.environment_variables.get("TABLE_NAME", "storefirst-requests"))

    @property
    def database_endpoint(self) -> str:
        """Where the app's DynamoDB calls go (or would go, when the database did not start)."""
        if self.local.dynamodb_endpoint:
            return self.local.dynamodb_endpoint
        if self.database is not None:
            return self.database.dynamodb_endpoint
        return self.local.endpoint_url or f"the {self.local.backend} database this chalice local starts"

    # --- functions and event sources -------------------------------------------------------

    def _function_configs(self) -> Dict[str, FunctionConfig]:
        names = event_functions(self.app)
        functions = [name for name in [names.stream, *names.others] if name]
        inherited = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith("AWS_ENDPOINT_URL")}
        local_aws = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                                                "AWS_DEFAULT_REGION", "DYNAMODB_ENDPOINT_URL")}
        configs = {}
        for name in functions:
            scoped = self.chalice_config.scope(chalice_stage=self.stage, function_name=name)
            deployed_name = f"{self.app.app_name}-{self.stage}-{name}"
            memory = int(scoped.lambda_memory_size or 128)
            environment = {
                **inherited, **scoped.environment_variables, **local_aws,
                "AWS_LAMBDA_FUNCTION_NAME": deployed_name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", **self.local.function_env,
            }
            configs[name] = FunctionConfig(
                name=name, environment=environment, timeout_s=float(scoped.lambda_timeout or 60), memory_mb=memory,
                arn=f"arn:aws:lambda:{self.local.region}:123456789012:function:{deployed_name}")
        return configs

    def _start_event_sources(self) -> None:
        from devserver.db import client
        from devserver.lambda_events import app_event_sources
        from devserver.stream import build_runner

        assert self.functions is not None and self.database is not None
        names = event_functions(self.app)
        sqs_endpoint = self.local.sqs_endpoint or self.database.sqs_endpoint
        dynamodb_endpoint = self.local.dynamodb_endpoint or self.database.dynamodb_endpoint
        self._sqs = client("sqs", sqs_endpoint, self.local.region)
        if names.stream:
            # Up to ParallelizationFactor batches of a shard run at once, each in a function instance.
            self._batches = ThreadPoolExecutor(max_workers=MAX_STREAM_BATCHES, thread_name_prefix="stream-batch")
            self.runner = build_runner(
                template_path=self.template, app=self.app, table_name=self.table_name, region=self.local.region,
                dynamodb_endpoint=dynamodb_endpoint, sqs_endpoint=sqs_endpoint, queue_name=DEFAULT_QUEUE,
                checkpoint_path=self.local.state_dir / "checkpoints.json",
                handler=self.recent.watching(self.functions.handler(names.stream)), stage=self.stage,
                idle_poll_s=self.local.poll_interval, executor=self._batches)
            self.runner.start()
            self.functions.warm(names.stream)
        self._others = app_event_sources(self.app, sqs=self._sqs, region=self.local.region,
                                         schedule_every=self.local.schedule_every,
                                         handler_for=self.functions.handler)
        for source in self._others:
            source.start()

    # --- status ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.runner is not None and bool(self.runner.status()["ready"])

    def status(self) -> Dict[str, Any]:
        database = self.database
        return {
            "ready": self.ready,
            "stage": self.stage,
            "database": {"backend": database.backend if database else self.local.backend,
                         "endpoint": self.database_endpoint, "table": self.table_name,
                         "problem": self.database_down(), "stateDir": str(self.local.state_dir)},
            "runner": self.runner.status() if self.runner is not None else {"running": False},
            "eventSources": {source.name: source.status() for source in self._others},
            "functions": self.functions.status() if self.functions is not None else {},
            "failureQueue": {"depth": self._queue_depth()},
        }

    def requests(self) -> Dict[str, Any]:
        """The console's request lists (devserver/console_reads.py)."""
        problem = self.database_down()
        if problem is not None or self._reads is None:
            raise Unavailable(problem or "no local database")
        return self._reads.snapshot()

    def _console_client(self) -> Any:
        import boto3
        from botocore.config import Config

        # Short timeouts and one retry: a page that waits on a stopped database would look hung.
        return boto3.client("dynamodb", endpoint_url=self.database_endpoint, region_name=self.local.region,
                            config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2}))

    def _queue_depth(self) -> Optional[int]:
        if self._sqs is None:
            return None
        try:
            # Looked up once, not on each of the status polls (the launcher's start-up, the console).
            self._queue_url = self._queue_url or self._sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url,
                                                        AttributeNames=["ApproximateNumberOfMessages"])
            return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        except Exception as exc:  # noqa: BLE001 - the status must answer even when SQS does not
            log.warning("failure queue depth unavailable: %s", exc)
            self._queue_url = None  # a database started again may have made the queue again
            return None

    # --- HTTP -----------------------------------------------------------------------------

    def wsgi(self, gateway: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """The gateway behind /_local/ (devserver/local_pages.py) and the database check."""
        pages = LocalPages(status=self.status, requests=self.requests)

        def application(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if is_local_path(environ.get("PATH_INFO", "")):
                return pages(environ, start_response)
            problem = self.database_down()
            if problem is not None:
                return json_answer(start_response, "503 Service Unavailable", {"message": (
                    f"the local database is not reachable at {self.database_endpoint}: {problem}. "
                    f"Restart chalice local to start it again (its log: {self.local.state_dir / 'logs' / 'db.log'}), "
                    "or start one with `python -m devserver db` and set STOREFIRST_DYNAMODB_ENDPOINT to it.")})
            return gateway(environ, start_response)
        return application

    # --- one app host per state directory ---------------------------------------------------

    def _lock_state_dir(self) -> None:
        self.local.state_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.local.state_dir / "app.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise StateDirBusy(f"another chalice local (pid {holder}) uses {self.local.state_dir}; stop it, or give "
                               "this one its own: STOREFIRST_STATE_DIR=<dir> chalice local") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock_file = lock


# Where clients point when there is no database: nothing listens there, so calls fail fast.
_UNREACHABLE = "http://127.0.0.1:9"

