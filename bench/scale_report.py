"""Rows of issue 11 (keeping up with a hot partition): the processor's CPU profile and records/s per
shard with ParallelizationFactor in the local runner."""
from __future__ import annotations

from typing import Any, Dict, List

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
