"""The API and the stream runner as processes of their own (`python -m devserver api|runner`).

Each takes the endpoints the database process printed. The runner publishes its counters to a
status file that the API serves at GET /_local/status, so either can be killed and restarted
alone without losing the other's state.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

from devserver.db import DEFAULT_QUEUE, DEFAULT_TABLE, REPO_ROOT, TEMPLATE, client

log = logging.getLogger(__name__)

STATE_DIR = REPO_ROOT / ".local"
STATUS_FILE = STATE_DIR / "runner-status.json"
STATUS_PATH = "/_local/status"


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dynamodb-endpoint", default="http://127.0.0.1:8001")
    parser.add_argument("--sqs-endpoint", default=None, help="defaults to the DynamoDB endpoint (moto serves both)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--table-name", default=DEFAULT_TABLE)
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE)
    parser.add_argument("--template", default=str(TEMPLATE))
    parser.add_argument("--status-file", default=str(STATUS_FILE))


def use_endpoints(args: argparse.Namespace) -> None:
    """Point this process's Chalice code (chalicelib.config) at the local table.

    Set once at start-up, before app.py is imported, in a process of its own."""
    os.environ["TABLE_NAME"] = args.table_name
    os.environ["DYNAMODB_ENDPOINT_URL"] = args.dynamodb_endpoint
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
    # The failure consumer reads the failure bucket on the moto that serves SQS (docs: ESM-7).
    os.environ["AWS_ENDPOINT_URL_S3"] = args.sqs_endpoint or args.dynamodb_endpoint
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")


# --- the API ---------------------------------------------------------------------------------

class WithLocalStatus:
    """WSGI: GET /_local/status answers the runner's counters and the failure queue's depth."""

    def __init__(self, api: Callable[..., Iterable[bytes]], status: Callable[[], Dict[str, Any]]) -> None:
        self._api = api
        self._status = status

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != STATUS_PATH:
            return self._api(environ, start_response)
        body = json.dumps(self._status(), indent=1, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def local_status(status_file: Path, queue_depth: Callable[[], Optional[int]],
                 now: Callable[[], float] = time.time) -> Dict[str, Any]:
    runner: Dict[str, Any]
    try:
        runner = json.loads(status_file.read_text())
        runner["secondsSinceUpdate"] = round(now() - runner.get("writtenAt", 0), 3)
        # The runner rewrites the file four times a second while it runs.
        runner["running"] = runner["secondsSinceUpdate"] < 2 and not runner.get("stopped", False)
    except (OSError, ValueError):
        runner = {"running": False, "message": f"no status at {status_file}: is the runner started?"}
    return {"runner": runner, "failureQueue": {"depth": queue_depth()}}


def sqs_queue_depth(sqs: Any, queue_name: str) -> Callable[[], Optional[int]]:
    def depth() -> Optional[int]:
        try:
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        except Exception as exc:  # noqa: BLE001 - the status page must answer even if SQS does not
            log.warning("failure queue depth unavailable: %s", exc)
            return None
    return depth


def serve_api(argv: Optional[list[str]] = None) -> int:
    """`python -m devserver api`: the PUT route from infra/ plus the Chalice routes, on :8000."""
    parser = argparse.ArgumentParser(prog="python -m devserver api", description=serve_api.__doc__)
    common_options(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    use_endpoints(args)
    from devserver.apigw import make_app, make_server

    gateway = make_app(args.template, args.table_name, args.dynamodb_endpoint, args.region)
    sqs = client("sqs", args.sqs_endpoint or args.dynamodb_endpoint, args.region)
    app = WithLocalStatus(gateway, lambda: local_status(Path(args.status_file),
                                                        sqs_queue_depth(sqs, args.queue_name)))
    # Ignored (arg-type): make_server is typed for LocalApiGateway; WithLocalStatus is another WSGI app.
    server = make_server(app, args.host, args.port)  # type: ignore[arg-type]
    stop_on_sigterm(server.shutdown)
    print(f"API_URL=http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# --- the stream runner ---------------------------------------------------------------------------

def write_status(path: Path, status: Dict[str, Any]) -> None:
    """Replace the status file atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".status-")
    with os.fdopen(fd, "w") as handle:
        json.dump({**status, "writtenAt": time.time()}, handle)
    os.replace(temporary, path)


def publish_status(status: Callable[[], Dict[str, Any]], path: Path, stopped: threading.Event,
                   every: float = 0.25) -> threading.Thread:
    def loop() -> None:
        while not stopped.wait(every):
            write_status(path, status())
    thread = threading.Thread(target=loop, name="status", daemon=True)
    thread.start()
    return thread


def serve_runner(argv: Optional[list[str]] = None) -> int:
    """`python -m devserver runner`: Lambda's event sources for the app: the stream mapping,
    the failure-queue consumer and the schedule."""
    parser = argparse.ArgumentParser(prog="python -m devserver runner", description=serve_runner.__doc__)
    common_options(parser)
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file (default .local/checkpoints-<table>.json)")
    parser.add_argument("--schedule-every", type=float, default=None,
                        help="seconds between scheduled runs (default: the app's declared rate)")
    # Lambda polls a shard about 4 times a second (esm §5); locally 20 times keeps the pipeline's
    # own latency out of the way of what is being debugged. Pass 0.25 for AWS's pace.
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between idle polls")
    parser.add_argument("--business-logic", default=None, metavar="MODULE:FUNCTION",
                        help="run this business logic instead of app.py's (fault tests)")
    args = parser.parse_args(argv)
    use_endpoints(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import app as app_module
    from chalicelib import processor
    from devserver.lambda_events import app_event_sources
    from devserver.stream import build_runner

    if args.business_logic:
        module, function = args.business_logic.split(":")
        processor.configure(getattr(importlib.import_module(module), function))
    sqs_endpoint = args.sqs_endpoint or args.dynamodb_endpoint
    checkpoint = Path(args.checkpoint or STATE_DIR / f"checkpoints-{args.table_name}.json")
    runner = build_runner(
        template_path=args.template, app=app_module.app, table_name=args.table_name, region=args.region,
        dynamodb_endpoint=args.dynamodb_endpoint, sqs_endpoint=sqs_endpoint,
        queue_name=args.queue_name, checkpoint_path=checkpoint,
        handler=app_module.app.handler_map["process"], idle_poll_s=args.poll_interval,
    )
    others = app_event_sources(app_module.app, sqs=client("sqs", sqs_endpoint, args.region), region=args.region,
                               schedule_every=args.schedule_every)
    stopped = threading.Event()
    publisher = publish_status(lambda: {**runner.status(), **{t.name: t.status() for t in others}},
                               Path(args.status_file), stopped)
    stop_on_sigterm(runner.stop)
    for thread in others:
        thread.start()
    print(f"RUNNER_CHECKPOINT={checkpoint}", flush=True)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()
    finally:
        stopped.set()
        for thread in others:
            thread.stop()
        # A periodic write still in progress must not replace the final one.
        publisher.join()
        write_status(Path(args.status_file), {**runner.status(), "stopped": True})
    return 0


def stop_on_sigterm(stop: Callable[[], Any]) -> None:
    """`kill <pid>` stops like Ctrl-C does: cleanly, with the checkpoint saved."""
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=stop, daemon=True).start())
