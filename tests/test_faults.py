"""The fault-injecting proxy (devserver/faults.py), in process, in front of a real moto server."""
from __future__ import annotations

import http.client
import json
import random
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from devserver.db import client
from devserver.db_process import REPO_ROOT, DbProcess, free_port, start_moto, stop
from devserver.faults import FaultProxy, Faults, selected, selectors, serve_faults
from devserver.testing.api import read_until
from tests.conftest import ctrl_c_reaches_it, listening

pytestmark = pytest.mark.stack  # serves the fault proxy over real sockets

REGION = "eu-central-1"
TABLE = "faults-table"
# total_max_attempts counts the first try; the dict's "max_attempts" would mean 1 *retry* (2 calls).
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
THROTTLE_BODY = (b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
                 b'"message":"Rate of requests exceeds the allowed throughput."}')


@pytest.fixture(scope="module")
def moto() -> Iterator[DbProcess]:
    server = start_moto("127.0.0.1", free_port())
    dynamodb = client("dynamodb", server.endpoint_url, REGION)
    dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST",
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    yield server
    stop(server)


@pytest.fixture
def proxy(moto: DbProcess) -> Iterator[FaultProxy]:
    with FaultProxy(moto.endpoint_url, faults=Faults(seed=7)) as running:
        yield running


def aws(service: Literal["dynamodb", "dynamodbstreams", "sqs"], endpoint: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def ddb(endpoint: str) -> Any:
    return aws("dynamodb", endpoint)


def put(dynamodb: Any, key: str) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": key}, "v": {"N": "1"}})


def stored(moto: DbProcess, prefix: str) -> set[str]:
    items = client("dynamodb", moto.endpoint_url, REGION).scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {item["id"]["S"] for item in items if item["id"]["S"].startswith(prefix)}


def raw(url: str, method: str, path: str, body: bytes = b"",
        headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    host, port = url.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def control(proxy: FaultProxy, **changes: Any) -> Dict[str, Any]:
    status, _, body = raw(proxy.url, "POST", "/_faults", json.dumps(changes).encode())
    assert status == 200, body
    return json.loads(body)


def counters(proxy: FaultProxy) -> Dict[str, Any]:
    status, _, body = raw(proxy.url, "GET", "/_faults")
    assert status == 200
    return json.loads(body)


def target(operation: str) -> str:
    return f"DynamoDB_20120810.{operation}"


# --- selection -----------------------------------------------------------------------------------

def test_operation_names_select_dynamodb_calls_and_streams_only_when_named():
    chosen = selectors("PutItem, UpdateItem,DynamoDBStreams_20120810.GetRecords")
    assert chosen == (target("PutItem"), target("UpdateItem"), "DynamoDBStreams_20120810.GetRecords")
    every = selectors("*")

    assert selected(target("PutItem"), chosen) and not selected(target("GetItem"), chosen)
    assert selected("DynamoDBStreams_20120810.GetRecords", chosen)
    assert selected(target("BatchGetItem"), every)
    assert not selected("DynamoDBStreams_20120810.GetShardIterator", every)
    assert not selected("AmazonSQS.SendMessage", every) and not selected("", every)
    assert selected("AmazonSQS.SendMessage", selectors(["AmazonSQS.*"]))


# --- pass-through --------------------------------------------------------------------------------

def test_a_put_and_a_get_pass_through_unchanged(proxy, moto):
    dynamodb = ddb(proxy.url)

    put(dynamodb, "pass-1")
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "pass-1"}}, ConsistentRead=True)["Item"]

    assert item == {"id": {"S": "pass-1"}, "v": {"N": "1"}}
    assert stored(moto, "pass-") == {"pass-1"}
    assert counters(proxy)["counters"] == {
        target("PutItem"): {"forwarded": 1, "throttled": 0, "unavailable": 0, "refused": 0, "upstream_error": 0},
        target("GetItem"): {"forwarded": 1, "throttled": 0, "unavailable": 0, "refused": 0, "upstream_error": 0},
    }


def test_the_upstreams_answer_comes_back_byte_for_byte(proxy, moto):
    request = (b'{"TableName": "faults-table", "Key": {"id": {"S": "missing"}}}', {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target("GetItem"),
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-central-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    answers = [raw(url, "POST", "/", *request) for url in (moto.endpoint_url, proxy.url)]
    bad_table = [raw(url, "POST", "/", b'{"TableName": "nope", "Key": {"id": {"S": "x"}}}', request[1])
                 for url in (moto.endpoint_url, proxy.url)]

    for direct, proxied in (answers, bad_table):
        assert proxied[0] == direct[0] and proxied[2] == direct[2]
        ignore = {"date", "connection", "transfer-encoding", "keep-alive", "x-amzn-requestid"}
        assert {k: v for k, v in proxied[1].items() if k not in ignore} == \
               {k: v for k, v in direct[1].items() if k not in ignore}
    assert bad_table[1][0] == 400


def test_streams_and_sqs_pass_even_when_every_dynamodb_call_is_throttled(proxy):
    control(proxy, throttle=1.0, throttle_operations="*")
    streams = aws("dynamodbstreams", proxy.url)
    sqs = aws("sqs", proxy.url)

    assert streams.list_streams(TableName=TABLE)["Streams"]
    sqs.create_queue(QueueName="faults-queue")
    assert any(url.endswith("faults-queue") for url in sqs.list_queues()["QueueUrls"])
    with pytest.raises(ClientError, match="ThrottlingException"):
        ddb(proxy.url).describe_table(TableName=TABLE)

    control(proxy, throttle_operations="DynamoDBStreams_20120810.ListStreams")
    with pytest.raises(ClientError, match="ThrottlingException"):
        aws("dynamodbstreams", proxy.url).list_streams(TableName=TABLE)
    totals = counters(proxy)["counters"]
    assert totals["DynamoDBStreams_20120810.ListStreams"] == {
        "forwarded": 1, "throttled": 1, "unavailable": 0, "refused": 0, "upstream_error": 0}


# --- throttling ----------------------------------------------------------------------------------

def test_a_seeded_fraction_of_puts_is_throttled_and_never_written(proxy, moto):
    control(proxy, throttle=0.3, throttle_operations=["PutItem"], seed=11)
    dynamodb = ddb(proxy.url)
    throttled: List[str] = []

    for i in range(120):
        dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "x"}})  # not selected: draws nothing
        try:
            put(dynamodb, f"seeded-{i}")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ThrottlingException"
            throttled.append(f"seeded-{i}")

    draws = random.Random(11)
    expected = [f"seeded-{i}" for i in range(120) if draws.random() < 0.3]
    assert throttled == expected  # the same calls on every run
    assert 0.2 < len(throttled) / 120 < 0.4
    assert stored(moto, "seeded-") == {f"seeded-{i}" for i in range(120)} - set(throttled)
    state = counters(proxy)
    assert state["counters"][target("PutItem")]["throttled"] == len(throttled)
    assert state["counters"][target("PutItem")]["forwarded"] == 120 - len(throttled)
    assert state["counters"][target("GetItem")]["forwarded"] == 120


def test_botocore_sees_dynamodbs_own_throttling_answer(proxy, moto):
    control(proxy, throttle=1.0, throttle_operations="PutItem")

    with pytest.raises(ClientError) as caught:
        put(ddb(proxy.url), "botocore-1")

    response = caught.value.response
    assert response["Error"] == {"Code": "ThrottlingException",
                                 "Message": "Rate of requests exceeds the allowed throughput."}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(response["ResponseMetadata"]["RequestId"]) == 52
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert stored(moto, "botocore-") == set()

    control(proxy, throttle_error="ProvisionedThroughputExceededException")
    with pytest.raises(ddb(proxy.url).exceptions.ProvisionedThroughputExceededException):
        put(ddb(proxy.url), "botocore-2")


def test_the_throttled_answer_on_the_wire(proxy):
    control(proxy, throttle=1.0)

    status, headers, body = raw(proxy.url, "POST", "/", b"{}", {"X-Amz-Target": target("UpdateItem"),
                                                                "Content-Type": "application/x-amz-json-1.0"})

    assert (status, body) == (400, THROTTLE_BODY)
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amzn-requestid"].isalnum() and headers["x-amzn-requestid"].isupper()
    assert headers["content-length"] == str(len(THROTTLE_BODY))


# --- unavailability ------------------------------------------------------------------------------

def test_down_for_a_window_answers_503_then_recovers(proxy, moto):
    dynamodb = ddb(proxy.url)
    streams = aws("dynamodbstreams", proxy.url)
    began = time.monotonic()
    state = control(proxy, down_for_seconds=1.0)
    assert state["down"] is True and 0 < state["down_remaining_seconds"] <= 1.0

    with pytest.raises(ClientError) as caught:
        put(dynamodb, "window-1")
    assert streams.list_streams(TableName=TABLE)["Streams"]  # 503 mode: only DynamoDB calls by default
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert time.monotonic() - began < 1.0, "too slow to check inside the window"
    time.sleep(max(0.0, 1.05 - (time.monotonic() - began)))
    put(dynamodb, "window-2")

    assert stored(moto, "window-") == {"window-2"}
    assert counters(proxy)["counters"][target("PutItem")] == {
        "forwarded": 1, "throttled": 0, "unavailable": 1, "refused": 0, "upstream_error": 0}
    assert counters(proxy)["down"] is False


def test_down_in_refuse_mode_refuses_connections_for_the_window(proxy, moto):
    pooled, fresh = ddb(proxy.url), ddb(proxy.url)  # clients are slow to build: before the window
    put(pooled, "refuse-1")  # a pooled keep-alive connection is open now
    began = time.monotonic()

    control(proxy, down_mode="refuse", down_for_seconds=2.0)
    # A connection cut mid-answer surfaces as IncompleteRead when it happens while the body is read.
    with pytest.raises((EndpointConnectionError, ConnectionClosedError, http.client.IncompleteRead)):
        put(pooled, "refuse-2")  # the pooled connection was dropped
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        put(fresh, "refuse-3")  # a new one
    assert not listening(proxy.url)
    assert time.monotonic() - began < 2.0, "too slow to check inside the window"
    deadline = time.monotonic() + 4
    while not listening(proxy.url):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert 1.95 < time.monotonic() - began < 4

    put(pooled, "refuse-4")
    assert stored(moto, "refuse-") == {"refuse-1", "refuse-4"}
    state = counters(proxy)  # refused: aborted after reading (per operation) or dropped while idle
    assert state["totals"]["refused"] + state["refused_connections"] >= 1


def test_down_until_told_otherwise_and_the_control_file(moto, tmp_path):
    control_file = tmp_path / "faults.json"
    with FaultProxy(moto.endpoint_url, control_file=control_file) as proxy:
        dynamodb = ddb(proxy.url)
        control_file.write_text(json.dumps({"down": True}))
        deadline = time.monotonic() + 2
        while not counters(proxy)["down"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(ClientError, match="ServiceUnavailable"):
            put(dynamodb, "file-1")
        assert counters(proxy)["down_remaining_seconds"] is None

        control_file.write_text(json.dumps({"down_mode": "refuse"}))  # down stays; now refusing
        deadline = time.monotonic() + 2
        while listening(proxy.url):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        control_file.write_text(json.dumps({"down": False, "down_mode": "503", "throttle": 1.0}))
        deadline = time.monotonic() + 2
        while not listening(proxy.url):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(ClientError, match="ThrottlingException"):
            put(dynamodb, "file-2")
        assert proxy.state()["throttle"] == 1.0 and proxy.state()["down"] is False
    assert stored(moto, "file-") == set()


# --- control and counters ------------------------------------------------------------------------

def test_counters_add_up_and_reset(proxy):
    control(proxy, throttle=0.5, throttle_operations="PutItem", seed=3)
    dynamodb = ddb(proxy.url)
    for i in range(20):
        try:
            put(dynamodb, f"count-{i}")
        except ClientError:
            pass
    control(proxy, down=True)
    for _ in range(3):
        with pytest.raises(ClientError):
            dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "count-0"}})

    state = counters(proxy)
    puts = state["counters"][target("PutItem")]
    assert puts["forwarded"] + puts["throttled"] == 20 and puts["throttled"] > 0
    assert state["counters"][target("GetItem")]["unavailable"] == 3
    assert state["totals"]["unavailable"] == 3 and state["totals"]["throttled"] == puts["throttled"]
    assert control(proxy, down=False, reset_counters=True)["counters"] == {}


@pytest.mark.parametrize("changes, message", [
    ({"throttle": 2}, "throttle must be"),
    ({"throttle": "0.5"}, "throttle must be"),
    ({"down_mode": "maybe"}, "down_mode must be"),
    ({"down_for_seconds": 0}, "down_for_seconds must be"),
    ({"throttle_error": "Nope"}, "throttle_error must be"),
    ({"throttl": 0.5}, "unknown keys"),
    ({"throttle": 0.5, "throttle_error": "Nope"}, "throttle_error must be"),  # the good key is not applied
    ({"seed": 3, "reset_counters": "yes"}, "reset_counters must be"),
])
def test_a_bad_control_request_is_400_and_changes_nothing(proxy, changes, message):
    before = proxy.state()

    status, _, body = raw(proxy.url, "POST", "/_faults", json.dumps(changes).encode())

    assert status == 400 and message in json.loads(body)["message"]
    assert proxy.state() == before


def test_an_unreachable_upstream_is_502_and_counted():
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        status, _, _ = raw(proxy.url, "POST", "/", b"{}", {"X-Amz-Target": target("GetItem")})
        assert status == 502
        assert proxy.state()["counters"][target("GetItem")]["upstream_error"] == 1


# --- stopping ------------------------------------------------------------------------------------

def test_stop_is_prompt_with_a_keep_alive_connection_open(moto):
    proxy = FaultProxy(moto.endpoint_url).start()
    put(ddb(proxy.url), "stop-1")  # leaves an idle pooled connection on a handler thread

    began = time.monotonic()
    proxy.stop()

    assert time.monotonic() - began < 0.5
    assert not listening(proxy.url)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_prints_its_url_and_stops_on_a_signal_within_2_s(moto, sig):
    process = subprocess.Popen(
        [sys.executable, "-m", "devserver", "faults", "--upstream", moto.endpoint_url, "--port", "0",
         "--throttle", "1.0", "--throttle-operations", "PutItem", "--seed", "1"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=ctrl_c_reaches_it)
    try:
        lines = read_until(process, "FAULTS_URL=", timeout=20)
        assert lines[0] == f"FAULTS_UPSTREAM={moto.endpoint_url}"
        url = lines[1].strip().split("=", 1)[1]
        assert lines[1].startswith("FAULTS_URL=http://127.0.0.1:")
        with pytest.raises(ClientError, match="ThrottlingException"):
            put(ddb(url), "cli-1")
        assert counters_at(url)["throttle_operations"] == [target("PutItem")]

        began = time.monotonic()
        process.send_signal(sig)
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - began < 2.0
    finally:
        if process.poll() is None:
            process.kill()


def counters_at(url: str) -> Dict[str, Any]:
    return json.loads(raw(url, "GET", "/_faults")[2])


@pytest.mark.parametrize("argv, message", [
    (["--down-for-seconds", "-1"], "down_for_seconds must be a positive number"),
    (["--throttle", "1.5"], "throttle must be a number from 0 to 1"),
])
def test_the_cli_refuses_what_a_control_request_would(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        serve_faults(["--upstream", "http://127.0.0.1:1", "--port", "0", *argv])

    assert exited.value.code == 2 and message in capsys.readouterr().err
