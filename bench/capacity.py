"""`python -m bench capacity --rps N [--memory MB] [--item-kb K]`: what a sustained rate of accepted
requests needs on AWS and what it costs a month, from what `make bench` measured (issue item 11.4).

Measured (bench/results/latest.json, or --results): the processor's CPU per record with the example
logic (bench/processor_bench.py), records delivered and written to the stream and DynamoDB items
read and written per accepted request (bench/lifecycle_bench.py), bytes the processor logs per batch
(bench/processor_profile.py).
Planned with: a partition's 1,000 writes/s (docs: DDB-10), CPU per memory (docs: LAMBDA-5), one
batch in flight per lane and ParallelizationFactor lanes per shard (docs: ESM-17), polling 4 times a
second (docs: ESM-10). Assumed where AWS publishes nothing: ASSUMED below, each printed with its reason.

A lane's batch of b records takes T(b) = invoke overhead + status read + b x CPU per record / vCPU share
+ the last write-back's round trip; a lane finishes B / T(B) records/s when records wait (B = BatchSize).
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bench import capacity_prices as prices
from bench.common import ROOT

RESULTS = ROOT / "bench" / "results" / "latest.json"
MONTH_S = 730 * 3600  # AWS's pricing month: 730 hours
VCPU_MB = 1769  # memory that buys one vCPU (docs: LAMBDA-5)
PARTITION_WRITES_S = 1000  # (docs: DDB-10)
PARTITION_READS_S = 3000  # (docs: DDB-10)
POLL_S = 0.25  # Lambda polls a shard about 4 times a second (docs: ESM-10)
MAX_FACTOR = 10  # (docs: ESM-3)
READ_UNIT_KB, WRITE_UNIT_KB = 4, 1  # strongly consistent read, write (docs: PRICE-2)
EMF_METRICS = 5  # Processed, Succeeded, Failed, TransientRetries, ProcessingLatency (chalicelib/metrics.py)
ALARMS = 4  # infra/template.yaml's CloudWatch alarms
INDEX_WRITES = 2  # a request enters the sparse status index at PUT and leaves it on success (README, cost)

# ASSUMED: AWS publishes none of these; each is printed with the model's output.
ASSUMED = {
    "dynamodb_latency_s": (0.005, "one DynamoDB round trip from Lambda in the region (as the bench replays)"),
    "invoke_overhead_s": (0.010, "the mapping's synchronous invoke around each batch, not billed"),
    "platform_log_bytes": (1000, "Lambda's JSON platform lines (start, report) per invocation"),
    "result_kb": (0.2, "the business logic's result written back on the item (the example's is ~0.1 KB)"),
    "ttl_lag_s": (2 * 86400, "TTL deletes 'within a few days' (docs: DDB-7): items kept this long past their TTL"),
    "sqs_idle_polls_s": (0.25, "the failure queue mapping's long polls while the queue is empty (5 per 20 s)"),
}


@dataclass(frozen=True)
class Measured:
    cpu_ms_per_record: float  # the processor with the example logic, this machine's CPU
    delivered_per_request: float
    stream_records_per_request: float  # INSERT, the write-back's MODIFY, the TTL REMOVE
    writes_per_request: float  # table writes: PutItem and the write-back statement
    reads_per_request: float  # status reads: one key of a BatchGetItem
    log_bytes_per_batch: float
    log_bytes_per_record: float
    source: str

    @staticmethod
    def load(path: Path = RESULTS) -> "Measured":
        document = json.loads(path.read_text())
        if "profile" not in document["raw"] or "lifecycle" not in document["raw"]:
            raise SystemExit(f"{path} has no profile and lifecycle sections: run `make bench` (or python -m bench "
                             f"--only profile lifecycle) first")
        return Measured.from_raw(document["raw"], document["meta"], path.name)

    @staticmethod
    def from_raw(raw: Dict[str, Any], meta: Dict[str, Any], name: str = "this run") -> "Measured":
        profile, life = raw["profile"], raw["lifecycle"]
        sizes = sorted((int(n), b) for n, b in profile["bytes_logged"].items())
        (small, small_bytes), (large, large_bytes) = sizes[0], sizes[-1]
        per_record = (large_bytes - small_bytes) / (large - small) if large > small else large_bytes / large
        # The processor section's batch, run with its 5 ms waits as on AWS (threads wake after each), is
        # the CPU per record; the profile's (replayed without waits) only when that section is missing.
        batch = raw.get("processor")
        cpu = batch["batched"]["cpu_s"] / batch["size"] * 1000 if batch else profile["whole_ms_per_record"]
        return Measured(
            cpu_ms_per_record=cpu,
            delivered_per_request=life["delivered_per_request"],
            stream_records_per_request=life["unfiltered_delivered_per_request"],
            writes_per_request=life["writes_per_request"], reads_per_request=life["item_reads_per_request"],
            log_bytes_per_batch=max(0.0, large_bytes - per_record * large), log_bytes_per_record=per_record,
            source=f"{name}: commit {meta.get('commit')}, load {meta.get('loadavg_at_start')}")


@dataclass(frozen=True)
class CapacityPlan:
    rps: float
    memory_mb: int
    item_kb: float
    batch_size: int
    failed_share: float
    measured: Measured
    factor: Optional[int] = None  # ParallelizationFactor; None: the smallest that keeps up

    def assumed(self, name: str) -> float:
        return float(ASSUMED[name][0])

    @property
    def vcpu(self) -> float:
        return min(1.0, self.memory_mb / VCPU_MB)  # one interpreter lock: at most one vCPU (docs: LAMBDA-5)

    def batch_s(self, records: float) -> float:
        """Billed duration of one invocation of `records` records: the status read, the CPU, the last write."""
        cpu = records * self.measured.cpu_ms_per_record / 1000 / self.vcpu
        return cpu + 2 * self.assumed("dynamodb_latency_s")

    def cycle_s(self, records: float) -> float:
        return self.batch_s(records) + self.assumed("invoke_overhead_s")

    @property
    def lane_records_s(self) -> float:
        return self.batch_size / self.cycle_s(self.batch_size)

    @property
    def write_units_per_request(self) -> float:
        """The PutItem writes the request; each further write (the write-back) the item with its result."""
        put = math.ceil(self.item_kb / WRITE_UNIT_KB)
        writeback = math.ceil((self.item_kb + self.assumed("result_kb")) / WRITE_UNIT_KB)
        return put + (self.measured.writes_per_request - 1) * writeback

    @property
    def read_units_per_request(self) -> float:
        return math.ceil(self.item_kb / READ_UNIT_KB) * self.measured.reads_per_request

    @property
    def shards(self) -> int:
        """Partitions (so stream shards) the throughput needs at least; DynamoDB may split into more."""
        return max(1, math.ceil(self.rps * self.write_units_per_request / PARTITION_WRITES_S),
                   math.ceil(self.rps * self.read_units_per_request / PARTITION_READS_S))

    @property
    def delivered_per_shard_s(self) -> float:
        return self.rps * self.measured.delivered_per_request / self.shards

    @property
    def hot_shard_s(self) -> float:
        """Records/s the busiest shard may have to finish: all the traffic, up to what its partition
        writes (keys are not always spread evenly: one partition can take up to its limit)."""
        limit = PARTITION_WRITES_S / self.write_units_per_request * self.measured.delivered_per_request
        return min(self.rps * self.measured.delivered_per_request, max(limit, self.delivered_per_shard_s))

    @property
    def needed_factor(self) -> int:
        return max(1, math.ceil(self.hot_shard_s / self.lane_records_s))

    @property
    def headroom_factor(self) -> int:
        """Lanes for a shard to finish 1,000 records/s, its partition's writes: the template's rule, so
        that a backlog drains at twice a hot shard's rate or more, and heavier logic still fits."""
        return max(1, math.ceil(PARTITION_WRITES_S / self.lane_records_s))

    @property
    def lanes(self) -> int:
        if self.factor is not None:
            return self.factor
        return min(MAX_FACTOR, max(self.needed_factor, self.headroom_factor))

    def batch_records(self) -> float:
        """Records in an average batch: what reaches a lane while its previous batch runs, or between
        two polls when it is idle (window 0: a batch starts as soon as records exist)."""
        arrival = self.delivered_per_shard_s / self.lanes
        records = 1.0
        for _ in range(50):  # a fixed point: the batch's own time is what the next one waits
            records = min(float(self.batch_size), max(1.0, arrival * max(POLL_S, self.cycle_s(records))))
        return records

    @property
    def utilisation(self) -> float:
        return self.delivered_per_shard_s / (self.lanes * self.lane_records_s)

    def iterator_age(self) -> str:
        if self.utilisation >= 1:
            return f"grows {1 - 1 / self.utilisation:.2f} s every second (falls behind)"
        return f"~{0.5 * max(POLL_S, self.cycle_s(self.batch_records())):.2f} s"

    def invocations_s(self) -> float:
        return self.rps * self.measured.delivered_per_request / self.batch_records()

    def costs(self) -> List[Tuple[str, float, Any, float]]:
        """(component, quantity a month, price, USD a month)."""
        requests = self.rps * MONTH_S
        invocations = self.invocations_s() * MONTH_S
        records = self.batch_records()
        failed = requests * self.failed_share  # a poison record is bisected down to a batch of its own
        stored_gb = self.rps * (self._success_ttl_s() + self.assumed("ttl_lag_s")) * (
            self.item_kb + self.assumed("result_kb")) / 1024 / 1024
        log_gb = invocations * (self.measured.log_bytes_per_batch + self.measured.log_bytes_per_record * records
                                + self.assumed("platform_log_bytes")) / 1024 ** 3
        traces = (min(self.rps, 1.0) + 0.05 * max(self.rps - 1, 0.0)) * MONTH_S  # default sampling (docs: PRICE-9)
        rows: List[Tuple[str, float, Any]] = [
            ("API Gateway REST requests", requests, prices.API_REQUESTS),
            ("DynamoDB table writes (PutItem, write-back)", requests * self.write_units_per_request,
             prices.DDB_WRITE_UNITS),
            ("DynamoDB status index writes", requests * INDEX_WRITES, prices.DDB_WRITE_UNITS),
            ("DynamoDB status reads (consistent)", requests * self.read_units_per_request, prices.DDB_READ_UNITS),
            ("DynamoDB Streams reads by Lambda", self.shards * MONTH_S / POLL_S, prices.DDB_STREAM_READS_BY_LAMBDA),
            ("DynamoDB storage (until TTL + its lag)", stored_gb, prices.DDB_STORAGE),
            ("DynamoDB point-in-time recovery", stored_gb, prices.DDB_PITR),
            ("Lambda requests (processor batches)", invocations, prices.LAMBDA_REQUESTS),
            ("Lambda duration (processor)", invocations * self.batch_s(records) * self.memory_mb / 1024,
             prices.LAMBDA_GB_SECONDS),
            ("SQS (failure notices, idle polls)", failed * 3 + self.assumed("sqs_idle_polls_s") * MONTH_S,
             prices.SQS_REQUESTS),
            ("S3 failure objects (PUT by Lambda)", failed, prices.S3_PUTS),
            ("S3 failure objects (GET by the consumer)", failed, prices.S3_GETS),
            ("CloudWatch Logs ingestion", log_gb, prices.LOG_INGESTION),
            ("CloudWatch Logs storage (30 days kept)", log_gb, prices.LOG_STORAGE),
            ("CloudWatch metrics (EMF)", EMF_METRICS, prices.CUSTOM_METRICS),
            ("CloudWatch alarms", ALARMS, prices.ALARMS),
            ("X-Ray traces (the API's tracing)", traces, prices.XRAY_TRACES),
        ]
        return [(name, quantity, price, price.of(quantity)) for name, quantity, price in rows]

    def _success_ttl_s(self) -> float:
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        return float(config["stages"]["prod"]["environment_variables"]["SUCCESS_TTL_SECONDS"])

    def changes(self) -> List[str]:
        """What to change at this rate, beyond what the model sets itself."""
        notes = []
        if max(self.needed_factor, self.headroom_factor) > MAX_FACTOR:
            notes.append(f"a shard needs {self.needed_factor} lanes, more than ParallelizationFactor's 10: give the "
                         f"processor more memory (CPU, docs: LAMBDA-5) or make it cheaper per record")
        index_writes = self.rps * INDEX_WRITES
        if index_writes > PARTITION_WRITES_S:
            notes.append(f"the status index takes {index_writes:,.0f} writes/s on one key value (listStatus "
                         f"PENDING) against {PARTITION_WRITES_S:,} (docs: DDB-10): its throttling throttles the table; "
                         f"spread the key over {math.ceil(index_writes / PARTITION_WRITES_S)}+ values (PENDING#0..n) "
                         f"and query each")
        if self.shards > 1:
            notes.append(f"{self.shards} partitions at least: a new on-demand table splits as load grows (throttling "
                         f"while it does); pre-warm it (warm throughput) before launch")
        if self.rps >= 100:
            notes.append("the API's X-Ray tracing records 1 request/s + 5% of the rest by default: a sampling rule "
                         "with a lower rate (or tracing off) saves most of that line")
        return notes


def table(plan: CapacityPlan) -> str:
    m = plan.measured
    lines = [f"sustained {plan.rps:,.0f} accepted requests/s, processor {plan.memory_mb} MB ({plan.vcpu:.2f} vCPU), "
             f"items {plan.item_kb:g} KB, BatchSize {plan.batch_size}",
             f"measured ({m.source}): {m.cpu_ms_per_record:.3f} ms CPU/record, {m.delivered_per_request:g} "
             f"record(s) delivered and {m.stream_records_per_request:g} in the stream per request, "
             f"{m.writes_per_request:g} writes + {m.reads_per_request:g} reads per request, "
             f"{m.log_bytes_per_batch:.0f} B + {m.log_bytes_per_record:.0f} B/record logged per batch",
             "",
             f"  stream shards (partitions)   {plan.shards:>10}  at {plan.write_units_per_request:g} write units and "
             f"{m.stream_records_per_request:g} stream records per request, {PARTITION_WRITES_S:,} writes/s each",
             f"  one lane finishes            {plan.lane_records_s:>10,.0f}  records/s (batch of {plan.batch_size} in "
             f"{plan.cycle_s(plan.batch_size) * 1000:.0f} ms)",
             f"  ParallelizationFactor        {plan.lanes:>10}  -> {plan.lanes * plan.lane_records_s:,.0f} records/s "
             f"per shard; the busiest shard needs {plan.needed_factor} lane(s) for {plan.hot_shard_s:,.0f}/s, "
             f"{plan.headroom_factor} finish {PARTITION_WRITES_S:,}/s (headroom)",
             f"  Lambda concurrency           {plan.shards * plan.lanes:>10}  at most; "
             f"{plan.invocations_s() * plan.cycle_s(plan.batch_records()):.1f} on average "
             f"({plan.batch_records():.0f} records/batch)",
             f"  expected iterator age        {plan.iterator_age():>10}",
             "", f"  {'monthly cost':<46}{'quantity':>16}  {'price':<52}{'USD':>12}"]
    total = 0.0
    for name, quantity, price, usd in plan.costs():
        total += usd
        rate = _price_text(price)
        amount = f"{quantity:,.0f}" if quantity >= 100 else f"{quantity:.2f}"
        lines.append(f"  {name:<46}{amount:>16}  {rate:<52}{usd:>12,.2f}")
    lines.append(f"  {'total':<46}{'':>16}  {'':<52}{total:>12,.2f}")
    lines += ["", "assumed: " + "; ".join(f"{k} = {v[0]:g} ({v[1]})" for k, v in ASSUMED.items())]
    changes = plan.changes()
    if changes:
        lines += ["", "to change at this rate:"] + [f"  - {note}" for note in changes]
    return "\n".join(lines)


def _price_text(price: Any) -> str:
    per = {1e6: "per million ", 1e3: "per 1,000 ", 1.0: "per "}[price.per]
    prefix = "from " if isinstance(price, prices.Tiered) else ""
    digits = f"{price.usd:.10f}".rstrip("0")
    digits += "0" * max(0, 2 - len(digits.split(".")[1]))  # $3.50, $0.625, $0.0000166667
    return f"{prefix}${digits} {per}{price.unit} ({price.fact})"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rps", type=float, required=True, help="sustained accepted requests per second")
    parser.add_argument("--memory", type=int, default=template_memory(), help="processor memory, MB (default: "
                        "the stage's lambda_memory_size)")
    # The example's stored order is ~0.3 KB (request body and the PUT template's attributes).
    parser.add_argument("--item-kb", type=float, default=0.5, help="stored request item size, KB (default 0.5)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--failed-share", type=float, default=0.001,
                        help="share of requests that end in the failure destination (default 0.001)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the bench run to take measurements from")
    args = parser.parse_args(argv)
    plan = CapacityPlan(args.rps, args.memory, args.item_kb, args.batch_size, args.failed_share,
                        Measured.load(args.results))
    print(table(plan))
    return 0


def template_memory() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["lambda_functions"]["process"]["lambda_memory_size"])


def template_factor(stage: str = "prod") -> int:
    """The stage's ParallelizationFactor, as infra/merge_stage.py writes it into the mapping."""
    from devserver.infra import load_template
    from devserver.stream.settings import for_stage

    template = for_stage(load_template(ROOT / "infra" / "template.yaml"), stage)
    events = template["Resources"]["Process"]["Properties"]["Events"]
    return int(events["ProcessDynamodbEventSource"]["Properties"].get("ParallelizationFactor", 1))


def per_shard(measured: Measured, memory_mb: int, factor: int, batch_size: int = 100) -> Dict[str, float]:
    """The bench row's numbers: records/s one shard's lanes finish at this memory, against a partition's writes."""
    plan = CapacityPlan(1.0, memory_mb, 0.5, batch_size, 0.0, measured, factor=factor)
    return {"lane_records_s": plan.lane_records_s, "shard_records_s": factor * plan.lane_records_s,
            "batch_ms": plan.cycle_s(batch_size) * 1000, "vcpu": plan.vcpu,
            "ratio_to_partition": factor * plan.lane_records_s / PARTITION_WRITES_S}
