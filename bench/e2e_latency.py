"""End-to-end latency on the local stack: PUT accepted -> SUCCEEDED written, at a fixed rate.

Starts the local stack with devserver's launcher (the database host and `chalice local`, on free
ports), sends `--count` PUTs paced at `--rate` per second, waits until all are finished (or none
finishes for STALL_S), and reports percentiles of updatedAt - createdAt (both stamped by the stack:
the API's request time and the processor's write-back time, in a function instance) and of the
client-observed PUT latency.

    .venv/bin/python bench/e2e_latency.py --rate 50 --count 300

bench/e2e_bench.py reuses start_stack / measure for the rates and the load sweep of `make bench`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import ORDER as ORDER_BODY, TABLE, percentile  # noqa: E402
from bench.local_stack import warm_up  # noqa: E402
from chalicelib.ownership import ANONYMOUS, item_key, public_id  # noqa: E402
from devserver.db import client  # noqa: E402
from devserver.launcher import LocalStack, StackOptions  # noqa: E402

ORDER = json.dumps(ORDER_BODY).encode()
STALL_S = 5.0


@contextlib.contextmanager
def start_stack(backend: str) -> Iterator[Tuple[LocalStack, float]]:
    """The stack, once its stream mapping reads and `process` is warm (no measured request pays
    the stack's start-up or a function's cold start), and the seconds that took; stopped on exit."""
    began = time.monotonic()
    with LocalStack(StackOptions(backend=backend)) as stack:
        warm_up(stack)
        yield stack, time.monotonic() - began


def database_endpoint(stack: LocalStack) -> str:
    assert stack.database is not None
    return stack.database.dynamodb_endpoint


def put(url: str) -> Tuple[str, float]:
    began = time.perf_counter()
    request = urllib.request.Request(f"{url}/requests", data=ORDER, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
        assert response.status == 202
    return body["id"], (time.perf_counter() - began) * 1000


def send(url: str, rate: float, count: int, jitter: bool = False) -> Tuple[List[str], List[float], float]:
    """PUT `count` requests paced at `rate`/s: fixed gaps, or with `jitter` exponential ones (a
    Poisson-like arrival, so no request lands at the same phase of the runner's poll).
    Returns ids, client PUT latencies (ms) and the seconds the sending took."""
    ids: List[str] = []
    put_ms: List[float] = []
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = []
        began = time.perf_counter()
        due = began
        for _ in range(count):
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(put, url))
            due += random.expovariate(rate) if jitter else 1 / rate
        sent_s = time.perf_counter() - began
        for future in futures:
            request_id, ms = future.result()
            ids.append(request_id)
            put_ms.append(ms)
    return ids, put_ms, sent_s


def delivered(url: str) -> int:
    """Records the stream mapping has handed to the function so far (GET /_local/status: counters of
    the app host plus the failure queue's depth, two SQS calls, so waiting loads the database far
    less than polling the items would)."""
    with urllib.request.urlopen(f"{url}/_local/status", timeout=10) as response:
        return int(json.loads(response.read())["runner"].get("counters", {}).get("records_delivered", 0))


def wait_finished(url: str, endpoint: str, ids: List[str], deadline_s: float,
                  delivered_before: int) -> Dict[str, Tuple[int, int]]:
    """(createdAt, updatedAt) of each id that is SUCCEEDED once the runner has delivered them all
    (or the deadline passed); the items (the anonymous owner's: the stack's dev stage has no auth)
    are read once at the end, 100 per BatchGetItem."""
    deadline = time.monotonic() + deadline_s
    seen, moved = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_delivered = delivered(url)
        if now_delivered >= delivered_before + len(ids):
            break
        if now_delivered != seen:
            seen, moved = now_delivered, time.monotonic()
        elif time.monotonic() - moved > STALL_S:
            break  # nothing delivered for a while: a record is lost (bench/README.md), not late
        time.sleep(0.25)
    dynamodb = client("dynamodb", endpoint, "us-east-1")
    stamps: Dict[str, Tuple[int, int]] = {}
    for _attempt in range(3):  # a write-back may land just after the counter moved
        for start in range(0, len(ids), 100):
            chunk = [i for i in ids[start:start + 100] if i not in stamps]
            if not chunk:
                continue
            found = dynamodb.batch_get_item(RequestItems={TABLE: {
                "Keys": [{"id": {"S": item_key(ANONYMOUS, i)}} for i in chunk], "ConsistentRead": True,
                "ProjectionExpression": "id, #s, createdAt, updatedAt", "ExpressionAttributeNames": {"#s": "status"}}})
            for item in found["Responses"][TABLE]:
                if item["status"]["S"] == "SUCCEEDED":
                    stamps[public_id(item["id"]["S"])] = (int(item["createdAt"]["N"]), int(item["updatedAt"]["N"]))
        if len(stamps) == len(ids):
            break
        time.sleep(0.5)
    return stamps


def measure(url: str, endpoint: str, rate: float, count: int, *, deadline_s: float = 60,
            jitter: bool = False) -> Dict[str, Any]:
    before = delivered(url)
    ids, put_ms, sent_s = send(url, rate, count, jitter)
    stamps = wait_finished(url, endpoint, ids, deadline_s, before)
    done = [updated - created for created, updated in stamps.values()]
    first = min((c for c, _ in stamps.values()), default=0)
    last = max((u for _, u in stamps.values()), default=0)
    return {"finished": len(done), "count": count, "offered_rps": rate, "sent_rps": count / sent_s if sent_s else 0,
            # Requests finished per second of the stack's own clock, first PUT to last write-back.
            "throughput_rps": len(done) / ((last - first) / 1000) if last > first else 0.0,
            "p50_ms": percentile(done, 0.5), "p99_ms": percentile(done, 0.99),
            "max_ms": max(done, default=0), "mean_ms": statistics.mean(done) if done else 0.0,
            "put_p50_ms": percentile(put_ms, 0.5), "put_p99_ms": percentile(put_ms, 0.99),
            "latencies_ms": sorted(done)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--backend", default="moto", choices=["moto", "dynamodb-local"])
    args = parser.parse_args()
    with start_stack(args.backend) as (stack, startup):
        result = measure(stack.api_url, database_endpoint(stack), args.rate, args.count)
    result.pop("latencies_ms")
    print(json.dumps({"backend": args.backend, "rate": args.rate, "count": args.count,
                      "startup_s": round(startup, 2), **{k: round(v, 1) for k, v in result.items()}}))
    return 0 if result["finished"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
