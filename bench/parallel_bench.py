"""Records/s through one shard of the local stream mapping with ParallelizationFactor 1, 2, 4 and 10
(issue item 11.5).

The real StreamRunner reads an in-memory stream (FakeStreams) of INSERT records with the template's
settings but for the factor, and submits each batch to a pool of worker processes, one per
concurrent batch as function instances are. Each worker runs the real StreamProcessor on a
production client answered from moto's recorded answers after 5 ms (bench/ddbhooks.py's Tape), as
processor_bench.py does, so the time is the runner's, the processor's and the 5 ms waits, not moto's.
The same ids are streamed `rounds` times (the replayed answers are the same each time).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any, Dict, List, Tuple

from bench.common import ORDER, process_cpu_seconds, quiet_stdout
from bench.ddbhooks import Tape
from bench.processor_bench import LATENCY_S, processor, recorded, replayed

_INSTANCE: Dict[str, Any] = {}  # in each worker process: its processor, built once (its cold start)


def _cold_start(tape: Tape, latency_s: float) -> None:
    from chalicelib.orders import take_order

    _INSTANCE["processor"] = processor(replayed(tape, latency_s), take_order, workers=16)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # its log and EMF lines are formatted, then dropped


def handle(event: Dict[str, Any], context: Any) -> Any:
    """The Lambda entry in a worker process."""
    return _INSTANCE["processor"].process_batch(event["Records"])


def _warm(seconds: float) -> int:
    time.sleep(seconds)  # held, so that every worker of the pool starts (and builds its processor) now
    return os.getpid()


def one_factor(factor: int, tape: Tape, ids: List[str], rounds: int) -> Dict[str, Any]:
    import app as app_module
    from devserver.db import TEMPLATE
    from devserver.infra import load_template
    from devserver.stream import MemoryCheckpointStore, RunnerConfig, StreamRunner
    from devserver.stream.settings import for_stage, settings_from_template
    from devserver.testing.events import pending_item
    from devserver.testing.streams import FakeStreams

    settings = settings_from_template(for_stage(load_template(TEMPLATE), "dev"), app_module.app)
    streams = FakeStreams(time.time)
    shard = streams.add_shard()
    for _ in range(rounds):
        for request_id in ids:
            streams.put({"id": {"S": request_id}}, new=pending_item(request_id, ORDER))
    last = streams.sequence_numbers()[-1]
    checkpoints = MemoryCheckpointStore()
    with ProcessPoolExecutor(max_workers=factor, initializer=_cold_start, initargs=(tape, LATENCY_S)) as pool:
        pids = set(pool.map(_warm, [0.3] * factor))
        runner = StreamRunner(RunnerConfig(
            settings=replace(settings, parallelization_factor=factor), streams=streams, handler=handle,
            stream_arn=streams.stream_arn, checkpoints=checkpoints, executor=pool, idle_poll_s=0.005))
        workers_cpu = sum(process_cpu_seconds(pid) for pid in pids)
        began, cpu = time.perf_counter(), time.process_time()
        runner.start()
        deadline = began + 120
        while checkpoints.get(streams.stream_arn, shard) != last and time.perf_counter() < deadline:
            time.sleep(0.005)
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        workers_cpu = sum(process_cpu_seconds(pid) for pid in pids) - workers_cpu
        runner.stop()
    counters = runner.status()["counters"]
    assert checkpoints.get(streams.stream_arn, shard) == last, "not caught up within 120 s"
    assert counters["records_delivered"] == len(ids) * rounds and counters["function_errors"] == 0, counters
    return {"factor": factor, "records": len(ids) * rounds, "wall_s": wall, "records_per_s": len(ids) * rounds / wall,
            "invocations": counters["invocations"], "runner_cpu_cores": cpu / wall,
            "workers_cpu_cores": workers_cpu / wall, "instances": len(pids)}


def run(records: int = 1000, rounds: int = 3, factors: Tuple[int, ...] = (1, 2, 4, 10),
        repeats: int = 3) -> Dict[str, Any]:
    """Each factor `repeats` times, interleaved, the fastest counting (the least disturbed by the
    rest of this shared machine, as the processor's replays)."""
    from chalicelib.orders import take_order

    taped = recorded(records, 16, logic=take_order, label="lanes")
    runs: Dict[int, List[Dict[str, Any]]] = {factor: [] for factor in factors}
    with quiet_stdout():
        for _ in range(repeats):
            for factor in factors:
                runs[factor].append(one_factor(factor, taped.tape, taped.ids, rounds))
    points = [max(runs[factor], key=lambda point: point["records_per_s"]) for factor in factors]
    for point in points:
        point["all_records_per_s"] = [round(r["records_per_s"]) for r in runs[point["factor"]]]
    return {"latency_ms": LATENCY_S * 1000, "cpus": os.cpu_count(), "repeats": repeats, "points": points,
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


if __name__ == "__main__":
    import json

    print(json.dumps(run(records=200, rounds=2), indent=1))
