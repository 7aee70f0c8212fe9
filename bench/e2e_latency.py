"""End-to-end latency on the local stack: PUT accepted -> SUCCEEDED written, at a fixed rate.

Starts `python -m devserver` (moto backend) on free ports, sends `--count` PUTs paced at
`--rate` per second, waits until all are finished, and reports percentiles of
updatedAt - createdAt (both stamped by the stack: the API's request time and the processor's
write-back time) and of the client-observed PUT latency.

    .venv/bin/python bench/e2e_latency.py --rate 50 --count 300
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devserver.db import client  # noqa: E402
from devserver.db_process import free_port  # noqa: E402

ORDER = json.dumps({"table": 3, "items": [{"dish": "margherita", "qty": 1}]}).encode()


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def start_stack(backend: str, state: Path) -> tuple:
    api_port, db_port = free_port(), free_port()
    began = time.monotonic()
    stack = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--backend", backend, "--db-port", str(db_port),
         "--api-port", str(api_port), "--sqs-port", str(free_port()), "--state-dir", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert stack.stdout is not None
    for line in stack.stdout:
        if line.startswith("Ctrl-C stops everything"):
            break
    return stack, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{db_port}", time.monotonic() - began


def put(url: str) -> tuple:
    began = time.perf_counter()
    request = urllib.request.Request(f"{url}/requests", data=ORDER, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
        assert response.status == 202
    return body["id"], (time.perf_counter() - began) * 1000


def measure(url: str, endpoint: str, rate: float, count: int) -> Dict[str, float]:
    ids: List[str] = []
    put_ms: List[float] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        began = time.perf_counter()
        for n in range(count):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(put, url))
        for future in futures:
            request_id, ms = future.result()
            ids.append(request_id)
            put_ms.append(ms)
    dynamodb = client("dynamodb", endpoint, "us-east-1")
    deadline = time.monotonic() + 60
    latencies: Dict[str, float] = {}
    while len(latencies) < count and time.monotonic() < deadline:
        for start in range(0, len(ids), 100):
            chunk = [i for i in ids[start:start + 100] if i not in latencies]
            if not chunk:
                continue
            found = dynamodb.batch_get_item(RequestItems={"storefirst-requests": {
                "Keys": [{"id": {"S": i}} for i in chunk], "ConsistentRead": True}})
            for item in found["Responses"]["storefirst-requests"]:
                if item["status"]["S"] == "SUCCEEDED":
                    latencies[item["id"]["S"]] = int(item["updatedAt"]["N"]) - int(item["createdAt"]["N"])
        time.sleep(0.2)
    done = list(latencies.values())
    return {"finished": len(done), "p50_ms": percentile(done, 0.5), "p99_ms": percentile(done, 0.99),
            "max_ms": max(done), "mean_ms": statistics.mean(done),
            "put_p50_ms": percentile(put_ms, 0.5), "put_p99_ms": percentile(put_ms, 0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--backend", default="moto", choices=["moto", "dynamodb-local"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack, url, endpoint, startup = start_stack(args.backend, Path(state))
        try:
            result = measure(url, endpoint, args.rate, args.count)
        finally:
            stack.terminate()
            stack.wait(timeout=5)
    print(json.dumps({"backend": args.backend, "rate": args.rate, "count": args.count,
                      "startup_s": round(startup, 2), **{k: round(v, 1) for k, v in result.items()}}))
    return 0 if result["finished"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
