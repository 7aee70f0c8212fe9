"""A request's whole life in one process (issue items 2 and 3): PUT through the local API
Gateway, the stream runner invoking the app's handler, the write-back, the TTL delete.

Everything runs on moto in-process, driven step by step (no background threads but the
processor's own pool), so the counts are exact and repeatable:
- invocations per request: records the runner delivers to the handler, with the template's
  FilterCriteria, against a second runner on the same stream without filters (the seed's
  design, whose handler saw every INSERT, MODIFY and REMOVE);
- DynamoDB requests per accepted request: a botocore `before-call` counter on the gateway
  transport's client and on the processor's client, by operation, with the items each call
  carries (the writes and reads DynamoDB bills).
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict

from bench.common import ORDER, REGION, TABLE, fake_aws_env, quiet_stdout
from bench.ddbhooks import CallCounter

SUCCESS_TTL_S = 1  # so the TTL delete happens within the benchmark


def _drain(*runners: Any) -> None:
    """Poll until a full pass over every runner does nothing (the runner's own loop would
    sleep then)."""
    idle = 0
    while idle < 2:
        idle = 0 if any([runner.poll_once() for runner in runners]) else idle + 1


def run(count: int = 100) -> Dict[str, Any]:
    import boto3
    import yaml
    from botocore.config import Config
    from moto import mock_aws
    from werkzeug.test import Client

    import app as app_module
    from chalicelib import processor
    from chalicelib.aws import dynamodb_client
    from chalicelib.config import Settings
    from chalicelib.orders import take_order
    from chalicelib.store import RequestStore
    from devserver import moto_partiql
    from devserver.apigw import make_app
    from devserver.apigw_transport import BotocoreTransport
    from devserver.db import TEMPLATE, TtlSweeper, ensure_table
    from devserver.db_schema import ttl_attribute
    from devserver.stream import StreamRunner, build_runner
    from devserver.testing.streams import RecordingHandler

    fake_aws_env()
    moto_partiql.install()  # the write-backs' PartiQL UPDATE, as DynamoDB runs it
    template = yaml.safe_load(TEMPLATE.read_text())
    with mock_aws(), tempfile.TemporaryDirectory() as state, quiet_stdout():
        admin = boto3.client("dynamodb", region_name=REGION)
        ensure_table(admin, template, TABLE)
        # API Gateway does not retry its integration call; the processor's client is production's.
        gateway_client = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        processor_client = dynamodb_client(Settings(table_name=TABLE))
        put_calls, processor_calls = CallCounter(gateway_client), CallCounter(processor_client)
        gateway = Client(make_app(TEMPLATE, TABLE, "http://unused", REGION,
                                  transport=BotocoreTransport(gateway_client)))
        pool = ThreadPoolExecutor(max_workers=Settings(table_name=TABLE).max_concurrency)
        processor.use_processor(processor.StreamProcessor(
            RequestStore(processor_client, TABLE), take_order, executor=pool, success_ttl_seconds=SUCCESS_TTL_S))

        def runner(name: str, handler: Any) -> Any:
            return build_runner(template_path=TEMPLATE, app=app_module.app, table_name=TABLE, region=REGION,
                                dynamodb_endpoint=None, sqs_endpoint=None, queue_name=None,
                                checkpoint_path=Path(state) / f"{name}.json", handler=handler)
        filtered = runner("filtered", app_module.app.handler_map["process"])
        built = runner("unfiltered", RecordingHandler()).config
        seed = StreamRunner(dataclasses.replace(built, settings=dataclasses.replace(built.settings, filters=())))
        try:
            accepted = 0
            for _ in range(count):
                answer = gateway.put("/requests", data=json.dumps(ORDER), headers={"Content-Type": "application/json"})
                accepted += answer.status_code == 202
            _drain(filtered, seed)
            sweeper = TtlSweeper(admin, TABLE, ttl_attribute(template) or "ttl", key_names=["id"])
            deadline = time.monotonic() + 10 + SUCCESS_TTL_S
            left = accepted
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                sweeper.sweep_once()
                left = admin.scan(TableName=TABLE, Select="COUNT")["Count"]
            _drain(filtered, seed)
        finally:
            processor.use_processor(None)
            pool.shutdown(wait=True)
    with_filter, without = filtered.status()["counters"], seed.status()["counters"]
    calls = {**put_calls.snapshot(), **processor_calls.snapshot()}
    items = {**put_calls.item_snapshot(), **processor_calls.item_snapshot()}
    # Each statement of a BatchExecuteStatement is a write of its own (docs: DDB-202, PRICE-2).
    writes = sum(n for op, n in items.items() if op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                                                        "TransactWriteItems", "BatchExecuteStatement"))
    return {
        "requests": count, "accepted": accepted, "items_left_after_ttl": left,
        "filtered": with_filter, "unfiltered": without,
        "delivered_per_request": with_filter["records_delivered"] / max(accepted, 1),
        "unfiltered_delivered_per_request": without["records_delivered"] / max(accepted, 1),
        "invocations_per_request": with_filter["invocations"] / max(accepted, 1),
        "dynamodb_calls": calls,
        "dynamodb_calls_per_request": sum(calls.values()) / max(accepted, 1),
        "writes_per_request": writes / max(accepted, 1),
        "item_reads_per_request": items.get("BatchGetItem", 0) / max(accepted, 1),
        "dynamodb_items": items,
        "batch_reads_per_invocation": calls.get("BatchGetItem", 0) / max(with_filter["invocations"], 1),
    }
