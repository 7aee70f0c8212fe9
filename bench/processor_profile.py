"""Where the processor's CPU per record goes (issue item 11.3), on one batch of 100 replayed records.

Each part is measured on its own, with the same inputs the processor gives it, against moto's
recorded answers served at once (no latency: CPU only), and the whole batch is measured as the
processor runs it. Parts that only exist inside the whole are differences of two whole runs:
- logging and metrics: the whole batch minus the same with the logger silenced and EMF dropped;
- thread hand-offs: the silenced batch on the processor's pool minus the same on an inline executor.
Whatever the parts do not add up to is shown as the rest. The minimum of several repeats counts
(the run least disturbed by the rest of this shared machine).
"""
from __future__ import annotations

import json
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

from bench.common import quiet_stdout
from bench.processor_bench import processor, recorded, replayed, shutdown_executors

SMALL = 10  # records in the smaller batch whose log bytes are measured too
PARTS = ("parsing records", "status read", "business logic", "building write-backs",
         "BatchExecuteStatement calls", "logging and metrics", "thread hand-offs", "the rest")


def _cpu_s(body: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with quiet_stdout():
            began = time.process_time()
            body()
            best = min(best, time.process_time() - began)
        shutdown_executors()
    return best


def run(size: int = 100, workers: int = 16, repeat: int = 5) -> Dict[str, Any]:
    """CPU ms per record of each part of one batch, and of the whole."""
    from chalicelib.logs import logger
    from chalicelib.orders import take_order
    from chalicelib.outcomes import Succeed, decide
    from chalicelib.records import new_request
    from chalicelib.store import MAX_STATEMENTS, RequestStore
    from devserver.stream.invoke import InlineExecutor

    taped = recorded(size, workers, logic=take_order, label="p")
    client = replayed(taped.tape, 0.0)
    store = RequestStore(client, "storefirst-requests")
    requests = [r for r in map(new_request, taped.records) if r is not None]
    decisions = [decide(take_order, r.body, r.request_id) for r in requests]
    now = time.time()

    def build() -> List[Any]:
        return [store.succeeded(r.request_id, d.result, now_ms=int(now * 1000), expires_at=int(now) + 300)
                for r, d in zip(requests, decisions, strict=True) if isinstance(d, Succeed)]
    writebacks = build()

    def write() -> None:
        for start in range(0, len(writebacks), MAX_STATEMENTS):
            store.write(writebacks[start:start + MAX_STATEMENTS])

    def whole(inline: bool = False, records: Optional[List[Dict[str, Any]]] = None) -> Callable[[], Any]:
        def run() -> None:
            batch = processor(client, take_order, workers, executor=InlineExecutor() if inline else None)
            assert not batch.process_batch(taped.records if records is None else records)["batchItemFailures"]
        return run

    def silenced(body: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> None:
            level = logger.log_level
            logger.setLevel("CRITICAL")
            try:
                body()
            finally:
                logger.setLevel(level)
        return run

    def quiet_whole(inline: bool = False) -> Callable[[], Any]:
        def run() -> None:
            batch = processor(client, take_order, workers, executor=InlineExecutor() if inline else None,
                              metrics=False)
            assert not batch.process_batch(taped.records)["batchItemFailures"]
        return silenced(run)

    seconds: Dict[str, float] = {
        "parsing records": _cpu_s(lambda: [new_request(r) for r in taped.records], repeat),
        "status read": _cpu_s(lambda: store.current_states(r.request_id for r in requests), repeat),
        "business logic": _cpu_s(lambda: [decide(take_order, r.body, r.request_id) for r in requests], repeat),
        "building write-backs": _cpu_s(build, repeat),
        "BatchExecuteStatement calls": _cpu_s(write, repeat),
    }
    total = _cpu_s(whole(), repeat)
    quiet = _cpu_s(quiet_whole(), repeat)
    quiet_inline = _cpu_s(quiet_whole(inline=True), repeat)
    seconds["logging and metrics"] = max(0.0, total - quiet)
    seconds["thread hand-offs"] = max(0.0, quiet - quiet_inline)
    seconds["the rest"] = total - sum(seconds.values())
    per_record = {part: seconds[part] / size * 1000 for part in PARTS}
    return {"size": size, "workers": workers, "ms_per_record": per_record, "whole_ms_per_record": total / size * 1000,
            "logic_excluded_ms_per_record": (total - seconds["business logic"]) / size * 1000,
            # Two sizes, so that the model can tell what a batch logs once from what it logs per record.
            "bytes_logged": {size: _bytes_logged(whole()), SMALL: _bytes_logged(whole(records=taped.records[:SMALL]))}}


def _bytes_logged(body: Callable[[], Any]) -> int:
    """What one batch writes to stdout (the function's log lines and EMF lines): what CloudWatch ingests."""
    with tempfile.TemporaryFile() as sink:
        with quiet_stdout(sink.fileno()):
            body()
        shutdown_executors()
        return sink.seek(0, 2)


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
