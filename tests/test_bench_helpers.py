"""The benchmarks' helpers that need no process: request keys of the record/replay tape, percentiles,
the latency plot's layout."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from bench import report
from bench.common import percentile
from bench.ddbhooks import request_key
from tests.conftest import png_size


def test_request_keys_ignore_timestamps_and_name_the_ids() -> None:
    update = b'{"TableName": "t", "Key": {"id": {"S": "a"}}, "ExpressionAttributeValues": {":now": {"N": "1"}}}'
    later = update.replace(b'"1"', b'"2"')
    assert request_key("DynamoDB_20120810.UpdateItem", update) == request_key("DynamoDB_20120810.UpdateItem", later)
    batch = b'{"RequestItems": {"t": {"Keys": [{"id": {"S": "b"}}, {"id": {"S": "a"}}]}}}'
    assert request_key("DynamoDB_20120810.BatchGetItem", batch) == ("BatchGetItem", ("a", "b"))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5, 1, 3], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([], 0.5) == 0.0


def e2e(rates: List[float], latencies_ms: List[float]) -> Dict[str, Any]:
    """A made-up e2e section with what the plot reads."""
    def step(rate: float) -> Dict[str, Any]:
        return {"offered_rps": rate, "latencies_ms": latencies_ms, "p50_ms": percentile(latencies_ms, 0.5),
                "p99_ms": percentile(latencies_ms, 0.99), "throughput_rps": rate * 0.9}
    return {"baseline": step(4.0), "steps": [step(rate) for rate in rates]}


def test_the_latency_plot_keeps_its_size_whatever_the_numbers(tmp_path: Path) -> None:
    few = report.plot(tmp_path / "few.png", e2e([5], [30.0, 40.0]))
    many = report.plot(tmp_path / "many.png", e2e([10, 50, 200, 1000], [float(ms) for ms in range(20, 90_000, 37)]))

    assert png_size(few) == png_size(many) == (1000, 380)
