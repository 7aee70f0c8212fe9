"""Intake (issue item 4): PUT throughput of the local API Gateway against the raw PutItem
throughput of the same moto server, both driven by wrk with the same connections and threads.

The raw baseline sends exactly the PutItem the gateway would send (its rendered request
template, captured in-process), with a unique id per request, so the ratio is the price of the
gateway (HTTP server, validation, VTL, its own HTTP call to moto) and nothing else.

The gateway is `chalice local`'s, on a stack started by devserver's launcher, so the stream mapping
runs behind it and would process every item both runs write (at moto's expense, far slower than
wrk writes them): its `process` instance is frozen (SIGSTOP) for the measurement, which holds the
shard at the batch it was given. What still runs beside the two servers: the database host's TTL
sweeper (one Scan a second) and the app host's idle event sources.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from bench.common import ORDER, REGION, TABLE, fake_aws_env, median, process_cpu_seconds
from bench.local_stack import pids_of, warm_up
from devserver.launcher import LocalStack, StackOptions

LUA = Path(__file__).resolve().parent / "wrk" / "put.lua"
# moto does not verify signatures, but reads the region and access key from the credential scope.
RAW_HEADERS = [
    "X-Amz-Target=DynamoDB_20120810.PutItem",
    "X-Amz-Date=20260101T000000Z",
    "Authorization=AWS4-HMAC-SHA256 Credential=testing/20260101/%s/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00" % REGION,
]


def gateway_put_item() -> str:
    """The PutItem body the PUT route renders for ORDER, with its id replaced by __ID__."""
    from werkzeug.test import Client

    from devserver.apigw import make_app
    from devserver.db import TEMPLATE

    seen: List[bytes] = []

    def capture(action: str, body: bytes) -> Tuple[int, bytes]:
        assert action == "PutItem", action
        seen.append(body)
        return 200, b"{}"
    gateway = Client(make_app(TEMPLATE, TABLE, "http://unused", REGION, transport=capture))
    answer = gateway.put("/requests", data=json.dumps(ORDER), headers={"Content-Type": "application/json"})
    assert answer.status_code == 202 and seen, answer.status_code
    body = seen[0].decode()
    return body.replace(json.loads(body)["Item"]["id"]["S"], "__ID__")


def wrk(url: str, body_file: Path, method: str, content_type: str, headers: List[str], *,
        seconds: float, connections: int, threads: int) -> Dict[str, Any]:
    # A fresh id prefix per run: a repeated id would fail its conditional put (and count as an error).
    prefix = f"wrk{time.monotonic_ns()}"
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(LUA), url, "--", str(body_file), method, content_type, prefix, *headers]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("{"))
    result: Dict[str, Any] = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


@contextlib.contextmanager
def stream_frozen(stack: LocalStack) -> Iterator[None]:
    """The stream mapping stopped at its next batch: the warm `process` instance is frozen once its
    cold start is done (frozen during it, it would time out of its init and be replaced); the
    mapping then waits on it for up to the function's timeout (120 s)."""
    warm_up(stack)
    frozen = [int(pid) for pid in stack.status()["functions"]["process"]["pids"]]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def run(seconds: float = 5.0, connections: int = 8, threads: int = 2, rounds: int = 2,
        warmup: bool = True) -> Dict[str, Any]:
    """Raw and gateway runs alternate (`rounds` each, after a 1 s warm-up of each), so drift
    in the machine's load or the table's size hits both alike."""
    fake_aws_env()
    with LocalStack(StackOptions(backend="moto")) as stack, stream_frozen(stack), \
            tempfile.TemporaryDirectory() as state:
        assert stack.database is not None
        moto_url = stack.database.dynamodb_endpoint
        moto_pid, api_pid = pids_of(stack, "moto")[0], pids_of(stack, "app host")[0]
        raw_body, put_body = Path(state) / "raw.json", Path(state) / "put.json"
        raw_body.write_text(gateway_put_item())
        put_body.write_text(json.dumps(ORDER))
        runs = {
            "raw": lambda s: wrk(moto_url, raw_body, "POST", "application/x-amz-json-1.0",
                                 RAW_HEADERS, seconds=s, connections=connections, threads=threads),
            "gateway": lambda s: wrk(f"{stack.api_url}/requests", put_body, "PUT", "application/json", [],
                                     seconds=s, connections=connections, threads=threads),
        }
        for warm in runs.values() if warmup else ():
            warm(1)
        results: Dict[str, List[Dict[str, Any]]] = {"raw": [], "gateway": []}
        cpu: Dict[str, float] = {"raw_moto": 0.0, "gateway_moto": 0.0, "gateway_api": 0.0}
        for _ in range(rounds):
            for name, go in runs.items():
                before = process_cpu_seconds(moto_pid), process_cpu_seconds(api_pid)
                results[name].append(go(seconds))
                cpu[f"{name}_moto"] += process_cpu_seconds(moto_pid) - before[0]
                if name == "gateway":
                    # The app host's whole process: the gateway, plus its idle event sources.
                    cpu["gateway_api"] += process_cpu_seconds(api_pid) - before[1]
    summary: Dict[str, Any] = {"connections": connections, "threads": threads, "seconds": seconds, "rounds": rounds}
    for name, runs_of in results.items():
        total = sum(r["requests"] for r in runs_of)
        summary[name] = {
            "rps": total / sum(r["duration_us"] / 1e6 for r in runs_of),
            "p50_ms": median([r["p50_us"] for r in runs_of]) / 1000,
            "p99_ms": max(r["p99_us"] for r in runs_of) / 1000,
            "requests": total, "errors": sum(r["errors"] for r in runs_of),
            "moto_cpu_ms_per_request": cpu[f"{name}_moto"] / max(total, 1) * 1000,
        }
    summary["gateway"]["api_cpu_ms_per_request"] = cpu["gateway_api"] / max(summary["gateway"]["requests"], 1) * 1000
    summary["ratio"] = summary["gateway"]["rps"] / summary["raw"]["rps"]
    return summary


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
