"""The stream processor on one batch: concurrency, CPU per record and scale (issue items 1, 7a; 11.3).

Each scenario seeds N PENDING items into moto (in-process), builds the Lambda-shaped INSERT
records (tests/streamevents.py) and processes them
- live: the real StreamProcessor (or the sequential baseline) against moto, 5 ms injected per
  call; every answer is recorded;
- replayed: the same again with moto's recorded answers served after the 5 ms (ddbhooks.Tape),
  so the wall time is the processor's and the network's, not moto's CPU.
The sequential baseline is a naive port: per record GetItem, business logic, UpdateItem. The
write-back baseline is the processor as it is with the write-back it had before: one UpdateItem per
record (bench/baseline_store.py).
"""
from __future__ import annotations

import json
import time
import tracemalloc
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

from bench.common import ORDER, TABLE, fake_aws_env, quiet_stdout, write_backs
from bench.ddbhooks import CallCounter, Tape, inject_latency

LATENCY_S = 0.005
Logic = Callable[[Mapping[str, Any]], Any]


@dataclass
class Pass:
    wall_s: float
    cpu_s: float
    calls: Dict[str, int]
    peak_bytes: int = 0


def _client() -> Any:
    """The processor's production client (chalicelib/aws.py), so its Config is what is measured."""
    from chalicelib.aws import dynamodb_client
    from chalicelib.config import Settings

    return dynamodb_client(Settings(table_name=TABLE))


def _items(ids: List[str]) -> List[Dict[str, Any]]:
    from devserver.testing.events import pending_item

    return [pending_item(i, ORDER) for i in ids]


def _records(items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    from devserver.testing.events import StreamEvents

    events = StreamEvents(TABLE)
    return [events.insert(item) for item in items]


_EXECUTORS: List[ThreadPoolExecutor] = []


def _store(client: Any, workers: int, updateitem: bool) -> Any:
    from bench.baseline_store import UpdateItemStore
    from chalicelib.store import RequestStore

    if not updateitem:
        return RequestStore(client, TABLE)
    writers = ThreadPoolExecutor(max_workers=workers)  # one UpdateItem per worker, as the processor ran them
    _EXECUTORS.append(writers)
    return UpdateItemStore(client, TABLE, executor=writers)


def processor(client: Any, logic: Logic, workers: int, *, updateitem: bool = False,
              executor: Optional[Executor] = None, metrics: bool = True) -> Any:
    """The real StreamProcessor on `client`; `updateitem`: with the write-back baseline's store;
    `metrics` False: no EMF lines at all (the profile's share of logging and metrics)."""
    from chalicelib.processor import StreamProcessor

    if executor is None:
        executor = ThreadPoolExecutor(max_workers=workers)
        _EXECUTORS.append(executor)  # shut down after the pass, outside the timed part
    # Logs and EMF lines go to stdout as on Lambda (quiet_stdout drops them after formatting).
    extra: Dict[str, Any] = {} if metrics else {"publish": lambda counts, latencies: None}
    return StreamProcessor(_store(client, workers, updateitem), logic, executor=executor, success_ttl_seconds=300,
                           **extra)


def sequential(client: Any, logic: Logic, records: List[Dict[str, Any]]) -> None:
    """The naive port: one record after another, read status, run logic, write back."""
    from chalicelib.records import new_request
    from chalicelib.store import RequestStore

    store = RequestStore(client, TABLE)
    for record in records:
        request = new_request(record)
        assert request is not None and request.body is not None
        item = store.get(request.request_id)
        if item is None or item.get("status") != "PENDING":
            continue
        now = time.time()
        result = logic(json.loads(request.body))
        store.finish_succeeded(request.request_id, result, now_ms=int(now * 1000), expires_at=int(now) + 300)


def _run(client: Any, body: Callable[[], Any], memory: bool = False) -> Pass:
    counter = CallCounter(client)
    if memory:
        tracemalloc.start()
    with quiet_stdout():
        cpu, began = time.process_time(), time.perf_counter()
        body()
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    peak = 0
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    shutdown_executors()
    return Pass(wall, cpu, counter.snapshot(), peak)


def shutdown_executors() -> None:
    """Stop the pools the passes made, outside what they timed."""
    while _EXECUTORS:
        _EXECUTORS.pop().shutdown(wait=True)


@dataclass
class Recorded:
    """A batch run once against moto, every answer kept for replays."""

    ids: List[str]
    records: List[Dict[str, Any]]
    tape: Tape
    live: Pass


def recorded(size: int, workers: Optional[int], *, logic: Logic, updateitem: bool = False,
             label: str = "") -> Recorded:
    """Seed `size` PENDING items into moto (in-process), process their INSERTs once live (5 ms per call;
    workers None: the sequential port) and keep moto's answers."""
    import yaml
    from moto import mock_aws

    from devserver import moto_partiql
    from devserver.db import TEMPLATE, ensure_table

    fake_aws_env()
    ids = [f"bench-{size}-{workers}{label}-{n}" for n in range(size)]
    items = _items(ids)
    records = _records(items)  # the INSERTs of exactly the items seeded below
    tape = Tape()
    moto_partiql.install()
    with mock_aws():
        live = _client()
        ensure_table(live, yaml.safe_load(TEMPLATE.read_text()), TABLE)
        for item in items:
            live.put_item(TableName=TABLE, Item=item)
        tape.record_from(live)
        inject_latency(live, LATENCY_S)
        live_pass = _run(live, _body(live, logic, records, workers, updateitem))
        # A pass that skipped records would look fast: each one must have been written back.
        finished = live.scan(TableName=TABLE, Select="COUNT", FilterExpression="#s <> :pending",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":pending": {"S": "PENDING"}})["Count"]
        assert finished == size, (finished, size, live_pass.calls)
    return Recorded(ids, records, tape, live_pass)


def replayed(tape: Tape, latency_s: float = LATENCY_S) -> Any:
    """A production client answered from `tape` after `latency_s`; nothing is sent."""
    client = _client()
    tape.replay_to(client, latency_s)
    return client


def scenario(size: int, workers: Optional[int], *, logic: Optional[Logic] = None, memory: bool = False,
             replays: int = 1, updateitem: bool = False) -> Dict[str, Pass]:
    """Live and replayed passes for one batch size; workers None = the sequential baseline;
    `updateitem`: the processor with the write-back baseline's store.
    Several replays: the fastest counts (the least disturbed by whatever else runs)."""
    from chalicelib.orders import take_order
    from chalicelib.store import RequestStore

    logic = logic or take_order
    taped = recorded(size, workers, logic=logic, updateitem=updateitem, label="u" if updateitem else "")
    ids, records, tape = taped.ids, taped.records, taped.tape
    passes = []
    for _ in range(replays):
        replay = replayed(tape)
        passes.append(_run(replay, _body(replay, logic, records, workers, updateitem), memory=memory))
    result = {"live": taped.live, "replay": min(passes, key=lambda p: p.wall_s)}
    if workers is not None and not updateitem:
        # The SDK's share: the same write-backs straight through RequestStore, one thread, no
        # latency, no processor around them.
        bare = _client()
        tape.replay_to(bare, 0.0)
        result["store_only"] = min((_run(bare, lambda: write_backs(RequestStore(bare, TABLE), ids))
                                    for _ in range(3)), key=lambda p: p.cpu_s)
    return result


def _body(client: Any, logic: Logic, records: List[Dict[str, Any]], workers: Optional[int],
          updateitem: bool = False) -> Callable[[], Any]:
    if workers is None:
        return lambda: sequential(client, logic, records)
    batch = processor(client, logic, workers, updateitem=updateitem)

    def run() -> None:
        answer = batch.process_batch(records)
        assert not answer["batchItemFailures"], answer
    return run


def logic_cpu_s(size: int, repeat: int = 20) -> float:
    """CPU of the business logic alone (parse + take_order) on `size` bodies, per batch."""
    from chalicelib.orders import take_order

    body = json.dumps(ORDER)
    began = time.process_time()
    for _ in range(repeat):
        for _ in range(size):
            json.dumps(take_order(json.loads(body)))  # what the processor does around the logic
    return (time.process_time() - began) / repeat


def noop(request: Mapping[str, Any]) -> Any:
    return {"ok": True}


def run(size: int = 100, scale: tuple = (10, 100, 1000), replays: int = 3,
        curve: tuple = (8, 32, 64)) -> Dict[str, Any]:
    """Everything items 1 and 7a need, as plain numbers."""
    from chalicelib.config import Settings

    workers = Settings(table_name=TABLE).max_concurrency  # the deployed default
    seq = scenario(size, None, replays=replays)
    batched = scenario(size, workers, replays=replays)
    updateitem = scenario(size, workers, replays=replays, updateitem=True)
    unbounded = scenario(size, size, replays=replays)
    noop_pass = scenario(size, workers, logic=noop, replays=replays)["replay"]
    logic_s = logic_cpu_s(size)
    walls = {w: scenario(size, w, replays=replays)["replay"].wall_s for w in curve}
    walls[workers] = batched["replay"].wall_s
    walls[size] = unbounded["replay"].wall_s
    scaling = {}
    for n in scale:
        timing = scenario(n, workers, replays=1)["replay"]
        memory = scenario(n, workers, memory=True, replays=1)["replay"]
        scaling[n] = {"wall_s": timing.wall_s, "records_per_s": n / timing.wall_s,
                      "cpu_ms_per_record": timing.cpu_s / n * 1000, "tracemalloc_peak_kb": memory.peak_bytes / 1024,
                      "peak_kb_per_record": memory.peak_bytes / 1024 / n}
    return {
        "size": size, "workers": workers, "latency_ms": LATENCY_S * 1000,
        "sequential": vars(seq["replay"]), "batched": vars(batched["replay"]),
        "updateitem_writebacks": vars(updateitem["replay"]),
        "unbounded": vars(unbounded["replay"]), "noop_logic": vars(noop_pass),
        "live_moto": {"sequential": vars(seq["live"]), "batched": vars(batched["live"])},
        "store_only": vars(batched["store_only"]), "logic_cpu_s": logic_s,
        "workers_curve_s": dict(sorted(walls.items())), "scale": scaling,
        "ideal_s": 2 * LATENCY_S,  # one BatchGetItem + one UpdateItem round trip, all writes at once
    }
