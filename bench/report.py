"""Rows from the benchmarks' raw numbers; the table, bench/results/latest.json and the plot
(bench/figures.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from bench import figures
from bench.common import Row, ratio


def _met(value: Optional[float], limit: float, above: bool = False) -> Optional[bool]:
    if value is None:
        return None
    return value >= limit if above else value <= limit


def processor_rows(p: Dict[str, Any]) -> List[Row]:
    n, seq, bat = p["size"], p["sequential"], p["batched"]
    speedup = ratio(seq["wall_s"], bat["wall_s"])
    cpu_record_ms = (bat["cpu_s"] - p["logic_cpu_s"]) / n * 1000
    seq_cpu_ms = (seq["cpu_s"] - p["logic_cpu_s"]) / n * 1000
    before = p.get("updateitem_writebacks")
    before_ms = (before["cpu_s"] - p["logic_cpu_s"]) / n * 1000 if before else None
    sdk_ms = p["store_only"]["cpu_s"] / n * 1000
    live = p["live_moto"]
    scale = p["scale"]
    small, large = scale[min(scale)], scale[max(scale)]
    return [
        Row("1 processor: batch of %d, speedup vs sequential" % n, bat["wall_s"] * 1000, "ms",
            seq["wall_s"] * 1000, "naive sequential port", speedup, ">= 8x", _met(speedup, 8, above=True),
            "the client's CPU (%.2f ms/record, one GIL), not the %d-way overlap of the 5 ms waits" % (
                bat["cpu_s"] / n * 1000, p["workers"]),
            {"workers": p["workers"], "calls": bat["calls"], "sequential_calls": seq["calls"]}),
        Row("11.3 processor: batch of %d vs ideal" % n, bat["wall_s"] * 1000, "ms", p["ideal_s"] * 1000,
            "(1 read + 1 write) x 5 ms", ratio(bat["wall_s"], p["ideal_s"]), "<= 4x of ideal",
            _met(ratio(bat["wall_s"], p["ideal_s"]), 4),
            "CPU, under one interpreter lock: %d records x %.2f ms = %.0f ms besides the read's and the last "
            "write's 5 ms; on this shared 2-core machine also whatever else runs (best of the replays)" % (
                n, bat["cpu_s"] / n * 1000, bat["cpu_s"] * 1000),
            {"workers_curve_ms": {w: round(s * 1000, 1) for w, s in p["workers_curve_s"].items()},
             "unbounded_workers_ms": p["unbounded"]["wall_s"] * 1000}),
        Row("11.3 processor: CPU per record, logic excluded", cpu_record_ms, "ms",
            before_ms if before_ms is not None else seq_cpu_ms,
            "one UpdateItem per write-back (before)" if before_ms is not None else "sequential port",
            ratio(cpu_record_ms, before_ms if before_ms is not None else seq_cpu_ms), "<= 0.4 ms",
            _met(cpu_record_ms, 0.4),
            "botocore's work per call: the 25 write-backs of one BatchExecuteStatement take %.2f ms/record "
            "through the SDK alone; the profile row says where the rest goes" % sdk_ms,
            {"sdk_write_back_ms": sdk_ms, "noop_logic_cpu_ms_per_record": p["noop_logic"]["cpu_s"] / n * 1000,
             "logic_ms_per_record": p["logic_cpu_s"] / n * 1000, "sequential_port_ms": seq_cpu_ms}),
        Row("1 (context) same batch against live moto", live["batched"]["wall_s"] * 1000, "ms",
            live["sequential"]["wall_s"] * 1000, "sequential, live moto",
            ratio(live["sequential"]["wall_s"], live["batched"]["wall_s"]), "context", None,
            "moto's own CPU per UpdateItem, serialised by one GIL: it measures moto, hence the replayed figures"),
        Row("7 processor scale: records/s at %d vs %d" % (max(scale), min(scale)), large["records_per_s"], "rec/s",
            small["records_per_s"], "records/s at batch %d" % min(scale),
            ratio(large["records_per_s"], small["records_per_s"]), "report", None,
            "CPU-bound at ~%.2f ms/record; status reads of >100 ids run one after another" % large["cpu_ms_per_record"],
            {str(k): {kk: round(vv, 3) for kk, vv in v.items()} for k, v in scale.items()}),
        Row("7 processor scale: peak memory per record at %d vs %d" % (max(scale), min(scale)),
            large["peak_kb_per_record"], "KB", small["peak_kb_per_record"], "KB/record at batch %d" % min(scale),
            ratio(large["peak_kb_per_record"], small["peak_kb_per_record"]), "report", None,
            "the event, the parsed requests and one response per in-flight call: linear in the batch"),
    ]


def lifecycle_rows(life: Dict[str, Any], p: Optional[Dict[str, Any]]) -> List[Row]:
    per = life["delivered_per_request"]
    base = life["unfiltered_delivered_per_request"]
    calls = life["dynamodb_calls_per_request"]
    allowed = 2 + life["invocations_per_request"]
    naive = 1 + (sum(p["sequential"]["calls"].values()) / p["size"] if p else 2)
    lost = 3 * life["accepted"] - life["unfiltered"]["records_read"]
    return [
        Row("2 records delivered to the handler per request", per, "rec", base, "unfiltered (seed design)",
            ratio(per, base), "1", per == 1.0,
            "FilterCriteria admit only the INSERT; %.2f Lambda invocations per request at batch size 100%s" % (
                life["invocations_per_request"],
                "; moto lost %d of the stream's MODIFY records (duplicate sequence numbers)" % lost if lost else ""),
            {"filtered": life["filtered"], "unfiltered": life["unfiltered"]}),
        Row("3 DynamoDB requests per accepted request", calls, "req", naive, "naive port (Put + Get + Update)",
            ratio(calls, naive), "<= 2 writes + 1 read/batch (%.2f)" % allowed,
            life["writes_per_request"] <= 2 and life["batch_reads_per_invocation"] <= 1,
            "one PutItem and one write-back statement are the floor (the write-backs go 25 to a "
            "BatchExecuteStatement); the status read is one BatchGetItem per batch",
            {"breakdown": life["dynamodb_calls"], "writes_per_request": life["writes_per_request"]}),
    ]


def intake_rows(i: Dict[str, Any]) -> List[Row]:
    g, r = i["gateway"], i["raw"]
    return [
        Row("4 intake: PUT throughput vs raw PutItem (%d conns)" % i["connections"], g["rps"], "req/s", r["rps"],
            "raw PutItem, same moto, same wrk", i["ratio"], ">= 0.8", _met(i["ratio"], 0.8, above=True),
            "the gateway's %.1f ms of CPU per PUT (werkzeug, validation, VTL, a new TCP connection to moto per "
            "call) shares 2 cores with moto's %.1f ms" % (g["api_cpu_ms_per_request"], g["moto_cpu_ms_per_request"]),
            {"gateway": g, "raw": r}),
        Row("4 intake: PUT latency p50 (p99)", g["p50_ms"], "ms", r["p50_ms"], "raw PutItem p50",
            ratio(g["p50_ms"], r["p50_ms"]), "report", None,
            "p99 %.0f ms vs raw %.0f ms: queueing in the two GIL-bound servers" % (g["p99_ms"], r["p99_ms"])),
    ]


def e2e_rows(e: Dict[str, Any], costs: Optional[Dict[str, Any]]) -> List[Row]:
    base = e["baseline"]
    rows: List[Row] = []
    for rate, s in sorted(e["at"].items()):
        moto, moto_ms = s["cpu_share"].get("moto", 0.0), s["cpu_ms_per_request"].get("moto", 0.0)
        if s["saturated"]:
            why = "moto's one core (%.0f%% busy, %.1f ms CPU per request) finishes %.0f of the %.0f req/s sent; " \
                  "the rest queue" % (moto * 100, moto_ms, s["throughput_rps"], s["sent_rps"])
        elif s["p50_ms"] > 1.5 * base["p50_ms"]:
            why = "queueing in moto (%.0f%% busy, %.1f ms CPU per request): even the PUT waits (p50 %.0f ms)" % (
                moto * 100, moto_ms, s["put_p50_ms"])
        else:
            why = "the stream mapping's 50 ms idle poll, then one invocation: the batch's status read and " \
                  "write-backs in a function instance"
        lost = s["count"] - s["finished"]
        if lost:
            why += "; %d request(s) never finished (moto's stream lost the INSERT)" % lost
        for name, limit in (("p50", 50.0), ("p99", 250.0)):
            value = s[f"{name}_ms"]
            rows.append(Row(f"5 e2e PUT->SUCCEEDED {name} at {rate} req/s", value, "ms", base[f"{name}_ms"],
                            "single requests on the idle stack", ratio(value, base[f"{name}_ms"]),
                            f"<= {limit:.0f} ms", _met(value, limit), why,
                            {"throughput_rps": s["throughput_rps"], "finished": s["finished"], "count": s["count"]}))
    ceiling = costs["moto_ceiling_rps"] if costs else None
    best = e["max_throughput_rps"]
    rows.append(Row("7 e2e: highest finished throughput", best, "req/s", ceiling,
                    "moto ceiling (1 core / its CPU per request)", ratio(best, ceiling or 0), "report", None,
                    "bends (finishes < 80%% of what is sent) at %s req/s offered, where moto's one core runs out; "
                    "p99 is over 250 ms from %s req/s on (at low rates: the runner's 50 ms idle poll)" % (
                        e["first_saturated_rps"], e["first_breach_rps"]),
                    {"steps": [{k: v for k, v in s.items() if k != "latencies_ms"} for s in e["steps"]]}))
    return rows


def coldstart_rows(c: Dict[str, Any]) -> List[Row]:
    app = c["app_after_boto3_ms"]
    return [
        Row("6 cold start: import app beyond boto3", app, "ms", c["import_boto3_ms"], "import boto3 alone",
            ratio(app, c["import_boto3_ms"]), "<= 40 ms", _met(app, 40),
            "Powertools' Logger and our modules' top-level code (%.0f ms without the bytecode "
            "make package ships: Lambda cannot cache it)" % c["app_after_boto3_sources_only_ms"]),
        Row("6 cold start: X-Ray SDK on (stage prod)", c["xray_sdk_ms"], "ms", app, "import app beyond boto3",
            ratio(c["xray_sdk_ms"], app), "report (off in dev)", None,
            "Powertools Tracer importing aws-xray-sdk and patching botocore before the first call "
            "(%.0f ms of CPU); dev keeps it off, Lambda's own trace of each invocation stays" % c["xray_sdk_cpu_ms"]),
        Row("6 deployment zip", c["zip_bytes"] / 1024, "KB", c["zip_with_powertools_bytes"] / 1024,
            "same zip with Powertools vendored", ratio(c["zip_bytes"], c["zip_with_powertools_bytes"]),
            "nothing the runtime/layer provides", not c["vendored_runtime_files"],
            "%d files: our code and Chalice's runtime module only" % c["zip_files"]),
    ]


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def table(rows: List[Row]) -> str:
    head = ("metric", "value", "baseline", "ratio", "target", "met?")
    lines = [(r.metric, f"{_fmt(r.value)} {r.unit}", f"{_fmt(r.baseline)} ({r.baseline_label})",
              "-" if r.ratio is None else f"{r.ratio:.2f}x", r.target,
              "-" if r.met is None else ("yes" if r.met else "NO")) for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(len(head))]
    out = [" | ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def write_json(path: Path, rows: List[Row], raw: Dict[str, Any], meta: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for section in raw.values():  # per-request latency lists belong in the plot, not the JSON
        if isinstance(section, dict):
            for s in [section.get("baseline"), *section.get("steps", [])]:
                if isinstance(s, dict):
                    s.pop("latencies_ms", None)
            section.pop("at", None)
    document = {"meta": meta, "rows": [r.as_dict() for r in rows], "raw": raw}
    path.write_text(json.dumps(document, indent=1, sort_keys=False, default=str) + "\n")


def plot(path: Path, e2e: Dict[str, Any]) -> Path:
    """The e2e latency picture: its distribution per offered rate, and p50, p99 and finished
    throughput against the offered rate (docs/images/bench-latency.png in the README)."""
    drawn, (cdf, load) = figures.figure(1000, 380, columns=2, margins=(0.06, 0.94, 0.13, 0.91), wspace=0.32)
    for label, s in [("idle (single requests)", e2e["baseline"])] + [
            (f"{s['offered_rps']:g} req/s offered", s) for s in e2e["steps"]]:
        values = s.get("latencies_ms") or []
        if values:
            cdf.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
    for limit in (50, 250):
        cdf.axvline(limit, color="grey", linestyle=":", linewidth=1)
    cdf.set_xscale("log")
    cdf.set(xlabel="PUT -> SUCCEEDED (ms, updatedAt - createdAt)", ylabel="share of requests",
            title="end-to-end latency, local stack (moto)")
    cdf.legend(loc="lower right")
    rates = [s["offered_rps"] for s in e2e["steps"]]
    load.plot(rates, [s["p50_ms"] for s in e2e["steps"]], "o-", label="p50")
    load.plot(rates, [s["p99_ms"] for s in e2e["steps"]], "s-", label="p99")
    load.axhline(250, color="grey", linestyle=":", linewidth=1)
    load.set(xscale="log", yscale="log", xlabel="offered load (req/s)", ylabel="latency (ms)",
             title="latency and finished throughput vs offered load")
    twin = load.twinx()
    twin.plot(rates, [s["throughput_rps"] for s in e2e["steps"]], "^--", color="green", label="finished req/s")
    twin.set_ylabel("finished req/s")
    load.legend(loc="upper left")
    twin.legend(loc="lower right")
    return figures.save(drawn, path)
