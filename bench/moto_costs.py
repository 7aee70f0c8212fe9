"""What each call costs the moto server in CPU (the diagnosis behind issue item 5).

The local stack's end-to-end latency bends where the moto server runs out of its one core
(one process, one GIL): this measures the server's CPU per operation, with the requests the
stack really makes (the gateway's rendered PutItem, RequestStore's calls, the runner's
GetRecords, the TTL sweeper's scan), read from /proc around N calls of each.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict

from bench.common import REGION, TABLE, fake_aws_env, process_cpu_seconds, write_backs


def run(count: int = 100) -> Dict[str, Any]:
    import boto3
    import yaml

    from bench.intake_bench import gateway_put_item
    from chalicelib.store import RequestStore
    from devserver.db import TEMPLATE, TtlSweeper, client, ensure_table, free_port, start_moto, stop
    from devserver.stream.build import CLIENT_CONFIG

    fake_aws_env()
    body = gateway_put_item()
    with tempfile.TemporaryDirectory() as state:
        moto = start_moto(port=free_port(), log_path=Path(state) / "moto.log")
        try:
            dynamodb = client("dynamodb", moto.endpoint_url, REGION)
            stream_arn = ensure_table(dynamodb, yaml.safe_load(TEMPLATE.read_text()), TABLE)
            assert stream_arn is not None  # the template's table has a stream
            streams = boto3.client("dynamodbstreams", endpoint_url=moto.endpoint_url, region_name=REGION,
                                   config=CLIENT_CONFIG)
            store = RequestStore(dynamodb, TABLE)
            ids = [f"cost-{n}" for n in range(count)]

            def per_call(calls: int, action: Callable[[], Any]) -> float:
                before = process_cpu_seconds(moto.pid)
                action()
                return (process_cpu_seconds(moto.pid) - before) / calls * 1000

            costs: Dict[str, float] = {}
            def each(call: Callable[[str], Any]) -> Callable[[], None]:
                def all_ids() -> None:
                    for i in ids:
                        call(i)
                return all_ids

            costs["PutItem (gateway's)"] = per_call(count, each(
                lambda i: dynamodb.put_item(**json.loads(body.replace("__ID__", i)))))
            costs["BatchGetItem, per key (100 keys)"] = per_call(count, lambda: store.current_states(ids))
            costs["UpdateItem (write-back)"] = per_call(count, lambda: write_backs(store, ids))
            now = time.time()
            shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]

            def read_all() -> int:
                iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                read = 0
                while True:
                    page = streams.get_records(ShardIterator=iterator, Limit=100)
                    read += len(page["Records"])
                    iterator = page["NextShardIterator"]
                    if not page["Records"]:
                        return read
            costs["GetRecords, per record (INSERT+MODIFY)"] = per_call(2 * count, read_all)
            latest = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                                ShardIteratorType="LATEST")["ShardIterator"]
            costs["GetRecords, empty (idle poll)"] = per_call(20, lambda: [
                streams.get_records(ShardIterator=latest, Limit=1000) for _ in range(20)])
            sweeper = TtlSweeper(dynamodb, TABLE, "ttl", key_names=["id"])
            costs["TTL sweep scan, per item in table"] = per_call(count, lambda: sweeper.find_expired(int(now) - 10))
        finally:
            stop(moto)
    idle_poll_per_s = 4 * costs["GetRecords, empty (idle poll)"]
    lifecycle = (costs["PutItem (gateway's)"] + costs["UpdateItem (write-back)"]
                 + costs["BatchGetItem, per key (100 keys)"] + 2 * costs["GetRecords, per record (INSERT+MODIFY)"])
    return {"count": count, "ms_per_call": costs, "lifecycle_ms_per_request": lifecycle,
            "idle_poll_ms_per_second": idle_poll_per_s,
            # Requests/s one moto core could finish if it did nothing else.
            "moto_ceiling_rps": 1000 / lifecycle if lifecycle else 0.0}


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
