"""`make run`: the database, the API and the stream runner, each in a process of its own.

The database starts first and prints its endpoints as KEY=value lines; the API and the runner
are started with them. Ctrl-C (or SIGTERM) stops all three within 2 s, the runner first so its
checkpoint is saved before anything it reads goes away.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, TextIO

import yaml

from devserver.db import REPO_ROOT, TEMPLATE
from devserver.serve import STATE_DIR

STOP_WITHIN_SECONDS = 2.0


@dataclass
class Child:
    name: str
    process: "subprocess.Popen[str]"
    log: TextIO


def start(name: str, argv: List[str], log_dir: Path, env: Optional[Dict[str, str]] = None) -> Child:
    """A `python -m devserver <part>` child logging to .local/logs/<part>.log; `env` adds variables."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "a", buffering=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "devserver", *argv], cwd=REPO_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=log, env={**os.environ, **(env or {})},
    )
    return Child(name, process, log)


def drain(child: Child) -> threading.Thread:
    """After start-up, copy what the child prints (the processor's JSON logs) into its log file,
    so a full pipe never blocks it. Join the thread to know the log is complete after an exit."""
    def copy() -> None:
        assert child.process.stdout is not None
        for line in child.process.stdout:
            child.log.write(line)
    thread = threading.Thread(target=copy, name=f"drain-{child.name}", daemon=True)
    thread.start()
    return thread


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def read_values(child: Child, until_prefix: str, timeout: float = 60.0) -> Dict[str, str]:
    """KEY=value lines a child prints on start, up to the line starting with `until_prefix`."""
    values: Dict[str, str] = {}
    deadline = time.monotonic() + timeout
    assert child.process.stdout is not None
    while time.monotonic() < deadline:
        line = child.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{child.name} exited with {child.process.wait()} before it was ready; "
                               f"see .local/logs/{child.name}.log")
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
        if line.startswith(until_prefix):
            return values
    raise RuntimeError(f"{child.name} was not ready within {timeout:.0f} s")


def stop(children: List[Child]) -> None:
    # Runner first: its checkpoint is written before the database it reads from stops.
    deadline = time.monotonic() + STOP_WITHIN_SECONDS
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def settings_in_force(template_path: Path) -> str:
    import app as app_module
    from devserver.stream.settings import settings_from_template

    settings = settings_from_template(yaml.safe_load(template_path.read_text()), app_module.app)
    return (f"batch size {settings.batch_size}, window {settings.batching_window_s} s, "
            f"{settings.starting_position}, report item failures {settings.report_batch_item_failures}, "
            f"bisect {settings.bisect_on_error}, max retries {settings.max_retry_attempts}, "
            f"max record age {settings.max_record_age_s} s, {len(settings.filters)} filter(s), "
            f"on failure -> {settings.on_failure}")


def run_stack(argv: Optional[List[str]] = None) -> int:
    """`python -m devserver`: database, API and stream runner; Ctrl-C stops them all."""
    parser = argparse.ArgumentParser(prog="python -m devserver", description=run_stack.__doc__)
    parser.add_argument("--backend", choices=["moto", "dynamodb-local", "url"], default="moto")
    parser.add_argument("--reset", action="store_true", help="DynamoDB Local: start from an empty data directory")
    parser.add_argument("--endpoint-url", help="with --backend url: LocalStack or a real endpoint")
    parser.add_argument("--db-port", type=int, default=8001)
    parser.add_argument("--sqs-port", type=int, default=8002, help="moto for SQS beside DynamoDB Local")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--state-dir", default=str(STATE_DIR))
    args = parser.parse_args(argv)
    started = time.monotonic()
    state = Path(args.state_dir)
    logs = state / "logs"
    db_argv = ["db", "--backend", args.backend, "--port", str(args.db_port), "--log-dir", str(logs),
               "--data-dir", str(state / "dynamodb")]
    if args.backend == "dynamodb-local":
        db_argv += ["--sqs-port", str(args.sqs_port)]
    if args.reset:
        db_argv.append("--reset")
    if args.endpoint_url:
        db_argv += ["--endpoint-url", args.endpoint_url]
    previous = signal.signal(signal.SIGTERM, _interrupt)
    children: List[Child] = []
    try:
        db = start("db", db_argv, logs)
        children.append(db)
        found = read_values(db, "#")
        endpoints = ["--dynamodb-endpoint", found["DYNAMODB_ENDPOINT_URL"],
                     "--sqs-endpoint", found.get("SQS_ENDPOINT_URL") or found["DYNAMODB_ENDPOINT_URL"],
                     "--region", found["AWS_REGION"], "--table-name", found["TABLE_NAME"],
                     "--status-file", str(state / "runner-status.json")]
        runner = start("runner", ["runner", *endpoints,
                                  "--checkpoint", str(state / f"checkpoints-{args.backend}.json")], logs)
        api = start("api", ["api", *endpoints, "--port", str(args.api_port)], logs)
        children[:0] = [runner, api]
        read_values(runner, "RUNNER_CHECKPOINT")
        api_url = read_values(api, "API_URL")["API_URL"]
        for child in children:
            drain(child)
        print(f"storefirst local stack ready in {time.monotonic() - started:.1f} s")
        print(f"  API          {api_url}  (PUT /requests, GET /requests/{{id}}, GET /_local/status)")
        print(f"  DynamoDB     {found['DYNAMODB_ENDPOINT_URL']}  ({args.backend}), table {found['TABLE_NAME']}")
        print(f"  stream       {found.get('STREAM_ARN', '')}")
        print(f"  failures     {found.get('QUEUE_URL', '')}")
        print(f"  event source {settings_in_force(TEMPLATE)}")
        print(f"  logs         {logs}/ (db.log, api.log, runner.log)")
        print("Ctrl-C stops everything.", flush=True)
        while all(child.process.poll() is None for child in children):
            time.sleep(0.2)
        dead = [child.name for child in children if child.process.poll() is not None]
        print(f"{', '.join(dead)} exited; stopping; see {logs}/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop(children)
        print("stopped.", flush=True)
