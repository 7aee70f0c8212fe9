"""`chalice local`, serving the whole pipeline (docs/local-stack.md).

Chalice has no hook for event sources or for non-Lambda routes in `chalice local` (its issues #899,
#1118 and #1705). Its `local` command imports app.py and then builds the server with
`factory.create_local_server(app, config, host, port)` (docs: CHALICE-201); app.py calls `install`
during that import (infra/chalice_cli.py), and `install` replaces that one method of the command's
factory object. The server Chalice then starts, in its worker process, is ours: the local API
Gateway in front of Chalice's own routes, with the app host (devserver/apphost.py) behind it.
tests/test_chalice_local.py is the canary that fails when a Chalice release changes this path.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn, Optional

from chalicelib.config import auth_mode
from devserver.apigw_auth import LocalAuth, local_auth
from devserver.apphost import AppHost
from devserver.local_config import LocalConfig, LocalConfigError
from devserver.processes import StartError


def install(app: Any) -> None:
    """Make this `chalice local` run the app host (called while Chalice imports app.py). The
    factory class is patched, not an instance: Chalice builds the server in another thread than the
    one whose click context holds the factory, and this process has no other factory."""
    from chalice.cli.factory import CLIFactory

    def create_local_server(factory: Any, app_obj: Any, config: Any, host: str, port: int) -> "LocalServer":
        return build_server(app_obj, config, host, port, stage=config.chalice_stage)

    # Replacing the method on the class is the point (it returns our server, not a LocalDevServer).
    setattr(CLIFactory, "create_local_server", create_local_server)  # noqa: B010


class LocalServer:
    """What Chalice's worker thread runs and shuts down on a reload: `serve_forever` and `shutdown`."""

    def __init__(self, host: AppHost, server: Any) -> None:
        self.host = host
        self.server = server

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self.host.stop()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.host.stop()


def build_server(app: Any, config: Any, host: str, port: int, *, stage: str) -> LocalServer:
    from devserver.apigw import make_app, make_server

    started = time.monotonic()
    try:
        local = LocalConfig.from_env()
    except LocalConfigError as exc:
        _fail(str(exc))
    # Under the reloader the worker's parent is `chalice local` itself: the stack lives as long as it.
    worker = os.environ.get("CHALICE_WORKER") is not None
    owner = os.getppid() if worker else os.getpid()
    _no_bytecode_in_project()
    auth = local_auth(local, auth_mode(config.environment_variables))
    apphost = AppHost(app, config, stage=stage, local=local, project_dir=Path(config.project_dir), owner_pid=owner)
    try:
        apphost.start()
        gateway = make_app(apphost.template, apphost.table_name, apphost.database_endpoint, local.region,
                           chalice_app=app, chalice_stage=stage, project_dir=apphost.project_dir, auth=auth)
        server = make_server(apphost.wsgi(gateway), host, port)
    except (StartError, OSError) as exc:
        apphost.stop()
        _fail(f"chalice local cannot start: {exc}")
    atexit.register(apphost.stop)
    if worker:
        _stop_with_parent(apphost)
    elif threading.current_thread() is threading.main_thread():
        # `kill <pid>` stops like Ctrl-C: the function instances and the event sources are stopped.
        signal.signal(signal.SIGTERM, _interrupt)
    print(banner(apphost, auth, host, server.server_port, time.monotonic() - started), flush=True)
    return LocalServer(apphost, server)


def banner(apphost: AppHost, auth: LocalAuth, host: str, port: int, seconds: float) -> str:
    url = f"http://{host}:{port}"
    local = apphost.local
    database = apphost.database
    if database is None:
        where = f"NOT RUNNING ({apphost.database_problem}); requests get 503"
    elif database.pid == 0:
        where = f"{database.dynamodb_endpoint} (given: STOREFIRST_DYNAMODB_ENDPOINT)"
    else:
        where = f"{database.backend} at {database.dynamodb_endpoint} (pid {database.pid})"
    if apphost.reused_database:
        return (f"storefirst: reloaded in {seconds:.1f} s on {url}; database kept ({where}), "
                "the stream resumes from its checkpoint")
    runner = apphost.runner
    lines = [
        f"storefirst: the whole pipeline under chalice local, stage {apphost.stage}, up in {seconds:.1f} s",
        f"  API        {url}  PUT /requests, GET /requests/{{id}}, GET /requests?status=, POST /requests/{{id}}/retry",
        f"  operators  {url}/admin/requests, /admin/requests/{{owner}}/{{id}}[/retry]",
        f"  auth       {describe_auth(auth)}",
        f"  local      {url}/_local/ (the console), {url}/_local/status",
        f"  database   {where}, table {apphost.table_name}",
        f"  functions  {', '.join(apphost.functions.names()) if apphost.functions else '-'}: "
        "a process per concurrent invocation, restarted with the code",
    ]
    if runner is not None:
        lines.append(f"  stream     {describe(runner.settings)}")
    lines += [f"  state      {local.state_dir} (checkpoints, logs, database files)",
              "Ctrl-C stops everything."]
    return "\n".join(lines)


def describe_auth(auth: LocalAuth) -> str:
    if auth.mode == "none":
        return "none: every caller is one anonymous owner, and may call /admin/... (--auth iam to sign)"
    operators = ", ".join(sorted(auth.operators)) or "none (--operators KEY_ID,...)"
    return (f"iam: SigV4 for execute-api in {auth.region}, any access key id with secret key "
            f"{auth.secret_key!r}; operators: {operators}")


def describe(settings: Any) -> str:
    return (f"batch size {settings.batch_size}, window {settings.batching_window_s} s, {settings.starting_position}, "
            f"{settings.parallelization_factor} concurrent batch(es) per shard, "
            f"report item failures {settings.report_batch_item_failures}, bisect {settings.bisect_on_error}, "
            f"max retries {settings.max_retry_attempts}, max record age {settings.max_record_age_s} s, "
            f"{len(settings.filters)} filter(s), on failure -> {settings.on_failure}")


def _no_bytecode_in_project() -> None:
    """Chalice's watcher restarts on any new file in the project, bytecode included: what this
    worker imports from now on, and every process it starts (they inherit the variable), writes none."""
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True


def _stop_with_parent(apphost: AppHost) -> None:
    """SIGTERM to `chalice local` kills Chalice's parent process alone and orphans this worker
    (Chalice stops its worker only on Ctrl-C): leave as soon as the parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        apphost.stop()
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _interrupt(signum: int, frame: Optional[object]) -> None:
    raise KeyboardInterrupt


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    # Not sys.exit: this runs in Chalice's server thread, and the worker must end, not just the thread.
    os._exit(1)
