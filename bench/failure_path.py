"""What resolving a batch Lambda gave up on costs: reading the range back from the stream (the
failure consumer before the S3 destination) against reading the records from the S3 object Lambda
writes (docs: ESM-7), and what each does when the stream range has been trimmed (docs: DDB-4).

    python -m bench.failure_path [--sizes 1,10,100,1000] [--after 2000] [--repeats 3]

One in-process moto server over HTTP. For each size N: N PENDING requests enter the stream, then
`--after` more (the shard goes on after the failed batch); the same failure is resolved both ways
on a fresh table, counting AWS calls and response bytes per operation and timing it end to end.
Prints a table and writes bench/results/failure_path.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from bench.common import ROOT
from chalicelib.failures import FailureConsumer
from chalicelib.logs import logger
from chalicelib.store import RequestStore
from devserver.db_schema import create_table_request
from devserver.infra import load_template
from devserver.stream.destinations import S3FailureDestination, failure_record
from devserver.stream.records import to_lambda_record

REGION = "us-east-1"
BUCKET = "failures"
CONFIG = Config(account_id_endpoint_mode="disabled", retries={"total_max_attempts": 1})
FAILURE_CONTEXT = {"requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11}}


class Meter:
    """Counts each client's calls and response bytes per operation (botocore's event hooks)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("after-call", self._after)
        return client

    def _after(self, http_response: Any, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        # The header, not the content: reading it here would drain a streamed body (GetObject).
        self.bytes[model.name] += int(http_response.headers.get("content-length") or 0)


def read_back(streams: Any, info: Mapping[str, Any]) -> Iterator[Dict[str, Any]]:
    """The previous consumer's way: the shard from startSequenceNumber, page by page, until past
    endSequenceNumber (GetRecords returns up to 1,000 records a page, docs: DDB-5)."""
    end = int(info["endSequenceNumber"])
    iterator = streams.get_shard_iterator(StreamArn=info["streamArn"], ShardId=info["shardId"],
                                          ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page.get("Records", []):
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return
            yield record
        iterator = page.get("NextShardIterator")


class Rig:
    def __init__(self, endpoint: str, size: int, after: int, run: int) -> None:
        session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name=REGION)
        self.meter = Meter()
        self.dynamodb = self.meter.attach(session.client("dynamodb", endpoint_url=endpoint, config=CONFIG))
        self.streams = self.meter.attach(session.client("dynamodbstreams", endpoint_url=endpoint, config=CONFIG))
        self.s3 = self.meter.attach(session.client("s3", endpoint_url=endpoint, config=CONFIG))
        self.table = f"requests-{size}-{run}"
        template = load_template(ROOT / "infra" / "template.yaml")
        self.dynamodb.create_table(**create_table_request(template, self.table))
        items = [{"id": {"S": f"r{i}"}, "status": {"S": "PENDING"}, "listStatus": {"S": "PENDING"},
                  "request": {"S": '{"table": 3}'}, "createdAt": {"N": "1"}, "attempts": {"N": "0"}}
                 for i in range(size + after)]
        for start in range(0, len(items), 25):  # in order: the first `size` are the failed batch
            self.dynamodb.batch_write_item(RequestItems={self.table: [
                {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        self.records, self.info = self._failed_batch(size)
        self.store = RequestStore(self.dynamodb, self.table)
        self.meter.calls.clear()
        self.meter.bytes.clear()

    def _failed_batch(self, size: int) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        raw = self.streams.get_records(ShardIterator=iterator, Limit=size)["Records"][:size]
        records = [to_lambda_record(r, stream_arn=arn, region=REGION) for r in raw]
        message = failure_record(records=records, shard_id=shard, stream_arn=arn, function_arn="arn:f",
                                 condition="RetryAttemptsExhausted", invoke_count=11, function_error="Unhandled",
                                 now=time.time())
        return records, message

    def failed(self) -> int:
        return sum(1 for r in self.records if self.dynamodb.get_item(
            TableName=self.table, Key=r["dynamodb"]["Keys"], ConsistentRead=True)["Item"]["status"]["S"] == "FAILED")


def resolve_by_stream(rig: Rig, trimmed: bool = False) -> None:
    streams = rig.streams if not trimmed else _Trimmed(rig.meter)
    try:
        records = list(read_back(streams, rig.info["DDBStreamBatchInfo"]))
    except ClientError:
        return  # the previous consumer logged it and left the range to the reconciler
    FailureConsumer(rig.store, None).fail_requests(FAILURE_CONTEXT, records)


def resolve_by_s3(rig: Rig, trimmed: bool = False) -> None:
    """What the S3 destination writes, then what the consumer does with S3's notification."""
    if BUCKET not in [b["Name"] for b in rig.s3.list_buckets()["Buckets"]]:
        rig.s3.create_bucket(Bucket=BUCKET)
    destination = S3FailureDestination(rig.s3, bucket=BUCKET, mapping_uuid="u", object_suffix=lambda: "one")
    key = destination.key(rig.info)
    destination.send(rig.info, rig.records)  # Lambda's PutObject: counted apart below
    rig.meter.calls["PutObject (Lambda)"] = rig.meter.calls.pop("PutObject")
    for setup in ("PutObject", "ListBuckets", "CreateBucket"):  # not the consumer's
        rig.meter.calls.pop(setup, None)
        rig.meter.bytes.pop(setup, None)
    notification = {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}
    response = FailureConsumer(rig.store, rig.s3).handle([{"messageId": "m", "body": json.dumps(notification)}])
    assert response == {"batchItemFailures": []}, response


class _Trimmed:
    """The stream once the range is older than 24 h: positions in it are refused (docs: DDB-4)."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        self._meter.calls["GetShardIterator (refused)"] += 1
        raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}}, "GetShardIterator")


def measure(endpoint: str, size: int, after: int, repeats: int, how: Callable[..., None],
            trimmed: bool = False) -> Dict[str, Any]:
    times, resolved = [], []
    calls: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for run in range(repeats):
        rig = Rig(endpoint, size, after, run + (1000 if how is resolve_by_s3 else 0) + (500 if trimmed else 0))
        started = time.perf_counter()
        how(rig, trimmed=trimmed)
        times.append(time.perf_counter() - started)
        calls, received = Counter(rig.meter.calls), Counter(rig.meter.bytes)
        resolved.append(rig.failed())
    return {"seconds_median": statistics.median(times), "resolved": resolved[-1], "of": size,
            "calls": dict(calls), "response_bytes": dict(received)}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failure_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--after", type=int, default=2000, help="records written after the failed batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    logger.setLevel(logging.WARNING)  # the consumer's line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    results: List[Dict[str, Any]] = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            for name, how, trimmed in (("stream read-back", resolve_by_stream, False),
                                       ("S3 object", resolve_by_s3, False),
                                       ("stream read-back, range trimmed", resolve_by_stream, True),
                                       ("S3 object, range trimmed", resolve_by_s3, True)):
                row = {"batch": size, "path": name, **measure(endpoint, size, args.after, args.repeats, how, trimmed)}
                results.append(row)
                print(f"N={size:>5} {name:<32} {row['seconds_median'] * 1000:9.1f} ms  resolved "
                      f"{row['resolved']}/{size}  calls {row['calls']}  bytes {row['response_bytes']}", flush=True)
    finally:
        server.stop()
    out = Path(__file__).resolve().parent / "results" / "failure_path.json"
    out.write_text(json.dumps({"after": args.after, "repeats": args.repeats, "rows": results}, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
