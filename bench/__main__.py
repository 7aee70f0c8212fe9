"""`make bench` / `python -m bench`: every benchmark, one table, bench/results/latest.json and
docs/images/bench-latency.png (the README shows it). `--quick` runs each on a tiny size (what
tests/test_bench.py does) and draws its plot beside its JSON instead.

Sections run in this order; each is independent and can be chosen with --only.

`python -m bench capacity --rps N [--memory MB] [--item-kb K]`: the capacity and cost model on the
measurements of the latest run (bench/capacity.py).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from bench import figures, report, scale_report
from bench.common import ROOT, Row, machine

RESULTS = ROOT / "bench" / "results"
SECTIONS = ("processor", "profile", "lanes", "lifecycle", "intake", "moto_costs", "e2e", "coldstart")
MODULES = {"profile": "bench.processor_profile", "lanes": "bench.parallel_bench", "moto_costs": "bench.moto_costs"}

FULL: Dict[str, Dict[str, Any]] = {
    "processor": {"size": 100, "scale": (10, 100, 1000), "replays": 5},
    "profile": {"size": 100, "repeat": 7},
    "lanes": {"records": 1000, "rounds": 3, "factors": (1, 2, 4, 10)},
    "lifecycle": {"count": 100},
    "intake": {"seconds": 4.0, "connections": 8, "threads": 2, "rounds": 2},
    "moto_costs": {"count": 100},
    "e2e": {"rates": (50, 200), "sweep": (10, 25, 50, 100, 200), "seconds": 4.0},
    "coldstart": {"repeat": 10},
}
QUICK: Dict[str, Dict[str, Any]] = {
    "processor": {"size": 10, "scale": (5,), "replays": 1, "curve": ()},
    "profile": {"size": 20, "repeat": 1},
    "lanes": {"records": 40, "rounds": 1, "factors": (1, 2), "repeats": 1},
    "lifecycle": {"count": 5},
    "intake": {"seconds": 1.0, "connections": 2, "threads": 1, "rounds": 1, "warmup": False},
    "moto_costs": {"count": 10},
    "e2e": {"rates": (5,), "sweep": (5,), "seconds": 1.0, "baseline_count": 2, "min_count": 3},
    "coldstart": {"repeat": 1},
}


def runner(name: str) -> Callable[..., Dict[str, Any]]:
    module = __import__(MODULES.get(name, f"bench.{name}_bench"), fromlist=["run"])
    return module.run


def main(argv: List[str]) -> int:
    if argv[:1] == ["capacity"]:
        from bench import capacity

        return capacity.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code runs, measures nothing")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.json")
    parser.add_argument("--plots", type=Path, default=None,
                        help=f"directory for the plots (default: {figures.IMAGES.relative_to(ROOT)}, where the "
                             "README shows them; with --quick, the --out directory: a tiny run pictures nothing)")
    args = parser.parse_args(argv)
    plots = args.plots or (args.out if args.quick else figures.IMAGES)
    sizes = QUICK if args.quick else FULL
    meta: Dict[str, Any] = {**machine(), "quick": args.quick, "sizes": {k: sizes[k] for k in args.only}}
    raw: Dict[str, Any] = {}
    began = time.monotonic()
    for name in args.only:
        if name == "intake" and shutil.which("wrk") is None:
            print("intake: skipped, wrk is not installed (make bench installs it)", file=sys.stderr)
            continue
        started = time.monotonic()
        print(f"{name}...", file=sys.stderr, flush=True)
        raw[name] = runner(name)(**sizes[name])
        meta.setdefault("section_seconds", {})[name] = round(time.monotonic() - started, 1)
    rows: List[Row] = []
    drawn: List[Path] = []
    if "processor" in raw:
        rows += report.processor_rows(raw["processor"])
    if "profile" in raw:
        rows += scale_report.profile_rows(raw["profile"])
    if "lanes" in raw:
        rows += scale_report.lane_rows(raw["lanes"])
    if "lifecycle" in raw:
        rows += report.lifecycle_rows(raw["lifecycle"], raw.get("processor"))
    if "intake" in raw:
        rows += report.intake_rows(raw["intake"])
    if "e2e" in raw:
        rows += report.e2e_rows(raw["e2e"], raw.get("moto_costs"))
        drawn.append(report.plot(plots / "bench-latency.png", raw["e2e"]))
    if "coldstart" in raw:
        rows += report.coldstart_rows(raw["coldstart"])
    if "profile" in raw and "lifecycle" in raw:
        rows += scale_report.capacity_rows(raw)
    meta["total_seconds"] = round(time.monotonic() - began, 1)
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.write_json(args.out / "latest.json", rows, raw, meta)
    print(report.table(rows))
    print("\nwhat limits each row:")
    for row in rows:
        print(f"- {row.metric}: {row.limit}")
    written = [args.out / "latest.json", *drawn]
    print(f"\n{len(rows)} rows in {meta['total_seconds']} s; " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
