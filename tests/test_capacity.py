"""The capacity and cost model (bench/capacity.py): its prices are docs/pricing.md's, its arithmetic
is what the model says, and `python -m bench capacity` prints every component from measurements."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Dict

import pytest

from bench import capacity_prices as prices
from bench.__main__ import main as bench_main
from bench.capacity import ASSUMED, MONTH_S, CapacityPlan, Measured, per_shard, template_factor
from tests.docs_facts import facts

MEASURED = Measured(cpu_ms_per_record=0.3, delivered_per_request=1.0, stream_records_per_request=3.0,
                    writes_per_request=2.0, reads_per_request=1.0, log_bytes_per_batch=1500.0,
                    log_bytes_per_record=40.0, source="made up")


def plan(rps: float, **changes: Any) -> CapacityPlan:
    values: Dict[str, Any] = dict(rps=rps, memory_mb=512, item_kb=0.5, batch_size=100, failed_share=0.0,
                                  measured=MEASURED)
    values.update(changes)
    return CapacityPlan(**values)


def test_every_price_is_the_one_its_fact_states() -> None:
    known = facts()
    for price in prices.ALL:
        assert isinstance(price, (prices.Price, prices.Tiered))
        stated = {float(amount) for amount in re.findall(r"\$(\d+(?:\.\d+)?)", known[price.fact][1])}
        amounts = [usd for _, usd in price.tiers] if isinstance(price, prices.Tiered) else [price.usd]
        for usd in amounts:
            assert usd == 0 or any(math.isclose(usd, value) for value in stated), (price, usd, stated)


def test_tiers_bill_each_slice_at_its_price() -> None:
    assert prices.API_REQUESTS.of(333e6) == pytest.approx(333 * 3.50)
    assert prices.API_REQUESTS.of(1e9) == pytest.approx(333 * 3.50 + 667 * 2.80)
    assert prices.LAMBDA_GB_SECONDS.of(7e9) == pytest.approx(6e9 * 0.0000166667 + 1e9 * 0.000015)


def test_a_lane_is_cpu_over_the_memorys_share_of_a_vcpu_plus_the_waits() -> None:
    p = plan(10)
    cpu_s = 100 * 0.3 / 1000 / (512 / 1769)
    assert p.cycle_s(100) == pytest.approx(cpu_s + 2 * ASSUMED["dynamodb_latency_s"][0]
                                           + ASSUMED["invoke_overhead_s"][0])
    assert p.lane_records_s == pytest.approx(100 / p.cycle_s(100))
    assert plan(10, memory_mb=4096).vcpu == 1.0  # one interpreter lock: more memory buys no second core


def test_shards_follow_the_partitions_write_limit_and_lanes_what_a_shard_must_finish() -> None:
    assert plan(10).shards == 1
    assert plan(1000).shards == 2  # 2 write units per request (docs: DDB-10)
    assert plan(10_000).shards == 20
    assert plan(1000, item_kb=1.5).write_units_per_request == 2 + 2
    p = plan(1000)
    assert p.hot_shard_s == 500  # a partition at 1,000 writes/s, 2 writes per request
    assert p.needed_factor == math.ceil(500 / p.lane_records_s)
    assert plan(10).hot_shard_s == 10
    # Lanes: what the busiest shard needs, and at least what finishes a partition's 1,000 writes/s.
    assert plan(10).lanes == p.lanes == max(p.needed_factor, math.ceil(1000 / p.lane_records_s))


def test_a_shard_beyond_ten_lanes_falls_behind_and_says_what_to_change() -> None:
    slow = plan(2000, measured=Measured(**{**vars(MEASURED), "cpu_ms_per_record": 20.0}))
    assert slow.needed_factor > 10 and slow.lanes == 10
    assert "falls behind" in slow.iterator_age()
    assert any("more memory" in note for note in slow.changes())


def test_costs_add_up_per_component() -> None:
    costs = {name: (quantity, usd) for name, quantity, _, usd in plan(100).costs()}
    requests = 100 * MONTH_S
    assert costs["API Gateway REST requests"][0] == requests
    assert costs["DynamoDB table writes (PutItem, write-back)"][1] == pytest.approx(requests * 2 / 1e6 * 0.625)
    assert costs["DynamoDB status index writes"][1] == pytest.approx(requests * 2 / 1e6 * 0.625)
    assert costs["DynamoDB Streams reads by Lambda"][1] == 0
    assert costs["CloudWatch alarms"][1] == pytest.approx(0.40)


def test_the_models_per_shard_row_uses_the_templates_factor() -> None:
    factor = template_factor("prod")
    shard = per_shard(MEASURED, 512, factor)
    assert shard["shard_records_s"] == pytest.approx(factor * plan(1).lane_records_s)


def test_the_command_prints_every_component_from_a_runs_measurements(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps({"meta": {"commit": "abc1234", "loadavg_at_start": [1.0]}, "raw": {
        "processor": {"size": 100, "batched": {"cpu_s": 0.03}},
        "profile": {"whole_ms_per_record": 0.2, "bytes_logged": {"100": 5500, "10": 1900}},
        "lifecycle": {"delivered_per_request": 1.0, "unfiltered_delivered_per_request": 3.0,
                      "writes_per_request": 2.0, "item_reads_per_request": 1.0}}}))

    assert bench_main(["capacity", "--rps", "1000", "--results", str(results)]) == 0

    out = capsys.readouterr().out
    for component in ("API Gateway REST requests", "DynamoDB status index writes", "Lambda duration",
                      "SQS", "S3 failure objects", "CloudWatch Logs ingestion", "X-Ray traces", "total"):
        assert component in out
    assert "commit abc1234" in out and "40 B/record" in out  # (5500 - 1900) / 90
    assert "0.300 ms CPU/record" in out  # the processor section's batch, not the profile's
    assert "status index takes 2,000 writes/s" in out  # what to change at 1,000 requests/s
