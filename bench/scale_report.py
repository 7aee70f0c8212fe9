"""Rows of issue 11 (keeping up with a hot partition): the processor's CPU profile, records/s per shard
with ParallelizationFactor in the local runner, and the capacity model's per-shard throughput."""
from __future__ import annotations

import math
from typing import Any, Dict, List

from bench.capacity import Measured, per_shard, template_factor, template_memory
from bench.common import Row, ratio


def profile_rows(prof: Dict[str, Any]) -> List[Row]:
    parts = prof["ms_per_record"]
    # The rest is the whole minus the parts measured alone; on a busy machine it can come out below 0.
    top = sorted(parts.items(), key=lambda kv: -kv[1])
    return [Row("11.3 processor: where the CPU per record goes", prof["whole_ms_per_record"], "ms", None,
                "-", None, "report", None,
                ", ".join("%s %.3f" % (name, ms) for name, ms in top) + " ms/record (batch of %d replayed at once, "
                "best of %s); %.3f ms without the logic" % (prof["size"], "the repeats",
                                                            prof["logic_excluded_ms_per_record"]),
                {"ms_per_record": parts, "bytes_logged": prof["bytes_logged"]})]


def lane_rows(lanes: Dict[str, Any]) -> List[Row]:
    points = lanes["points"]
    first = points[0]["records_per_s"]
    rows: List[Row] = []
    best = 0.0
    for point in points:
        rate = point["records_per_s"]
        cores = point["runner_cpu_cores"] + point["workers_cpu_cores"]
        flat = best and rate < best * 1.1
        why = "%d batch(es) in flight in %d worker processes; the runner and the workers use %.1f of the %d cores" % (
            point["factor"], point["instances"], cores, lanes["cpus"])
        if flat:
            why += ": this machine stops the curve here (no core left for another lane)"
        elif point["factor"] == 1:
            why += ": one batch at a time, its CPU and its 5 ms waits in a row"
        best = max(best, rate)
        rows.append(Row("11.5 local runner: records/s per shard, ParallelizationFactor %d" % point["factor"], rate,
                        "rec/s", first, "ParallelizationFactor 1", ratio(rate, first), "report", None, why,
                        {k: round(v, 3) if isinstance(v, float) else v for k, v in point.items()}))
    return rows


def capacity_rows(raw: Dict[str, Any]) -> List[Row]:
    measured = Measured.from_raw(raw, {})
    memory, factor = template_memory(), template_factor("prod")
    shard = per_shard(measured, memory, factor)
    needed = max(1, math.ceil(1000 / shard["lane_records_s"]))
    return [Row("11.4 model: records/s per shard at %d MB, ParallelizationFactor %d" % (memory, factor),
                shard["shard_records_s"], "rec/s", 1000.0, "a partition's 1,000 writes/s",
                shard["ratio_to_partition"], ">= 1x", shard["ratio_to_partition"] >= 1,
                "a lane: 100 records x %.3f ms / %.2f vCPU + 2 x 5 ms DynamoDB + 10 ms invoke = %.0f ms, so %.0f "
                "records/s; %d lane(s) needed for 1,000/s, the template's prod stage has %d" % (
                    measured.cpu_ms_per_record, shard["vcpu"], shard["batch_ms"], shard["lane_records_s"], needed,
                    factor),
                {**shard, "lanes_needed_for_1000": needed})]
