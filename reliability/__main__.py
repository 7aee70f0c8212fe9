"""python -m reliability <scenario|all> [--backend moto|dynamodb-local|both] [--size N] [--seed S]

Runs scenarios against the local stack (each on a fresh stack of its own), prints what each did
and found, then the README's Reliability table rows, and draws each run's timeline
(reliability/timeline.py): into docs/images/, where the README shows them, when the scenarios run
at full size, else beside the run's logs. Exits 1 if any scenario lost, stuck or wrongly finished a
request, or broke another of its checks; 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

from bench import figures
from devserver.local_config import default_state_dir
from reliability import timeline
from reliability.report import TABLE_HEADER, Result, describe, table_row
from reliability.scenarios import crashes, load, outage, owners, poison, throttle

SCENARIOS: Dict[str, ModuleType] = {m.NAME: m for m in (load, crashes, throttle, outage, poison, owners)}
BACKENDS = ("moto", "dynamodb-local")
BACKEND_NAMES = {"moto": "moto", "dynamodb-local": "DynamoDB Local"}
# Outside the project, beside the local stack's own state: an auto-reloading `chalice local` started
# from this project restarts on every file written inside it, and a run writes thousands.
STATE = default_state_dir() / "reliability"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="moto")
    parser.add_argument("--size", type=int, default=None,
                        help="requests per scenario (default: each scenario's full size: "
                             + ", ".join(f"{n} {m.FULL_SIZE}" for n, m in SCENARIOS.items()) + ")")
    parser.add_argument("--seed", type=int, default=1, help="seeds the workload, the kills and the faults")
    parser.add_argument("--state-dir", type=Path, default=STATE,
                        help=f"logs and runs files go under it (default {STATE})")
    parser.add_argument("--plots", type=Path, default=None,
                        help="directory for the timelines (default: docs/images at full size, else the run's "
                             "directory under --state-dir)")
    args = parser.parse_args(argv)
    if args.size is not None and args.size < 100:
        parser.error("--size must be at least 100")
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    began = time.monotonic()
    results: List[Result] = []
    run_dir = args.state_dir / time.strftime("%Y%m%d-%H%M%S")
    plots = args.plots or (figures.IMAGES if args.size is None else run_dir)
    for backend in backends:
        for name in names:
            module = SCENARIOS[name]
            size = args.size or module.FULL_SIZE
            print(f"-- {name} on {backend}, {size:,} requests, seed {args.seed}", flush=True)
            result = module.run(backend, size, args.seed, run_dir / f"{name}-{backend}")
            results.append(result)
            print(describe(result), flush=True)
            if result.timeline is not None:
                title = (f"{name} on {BACKEND_NAMES[backend]}: {size:,} requests, seed {args.seed} "
                         f"({'pass' if result.ok else 'FAIL'})")
                drawn = timeline.draw(result.timeline, title, plots / f"reliability-{name}-{backend}.png")
                print(f"  timeline {drawn}")
    total = time.monotonic() - began
    print(f"\n{len(results)} scenario run(s) in {total / 60:.1f} min; "
          f"{sum(not r.ok for r in results)} failed\n")
    print(TABLE_HEADER)
    for result in results:
        print(table_row(result))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
