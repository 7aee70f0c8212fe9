"""`make bench` code runs end to end on tiny sizes. These are not benchmarks: nothing here
judges a number, only that every section produces its rows, latest.json and the plot (beside the
JSON: a quick run never replaces the README's pictures). The intake and e2e sections start local
stacks (devserver's launcher). test_bench_helpers.py tests the pieces that need no process."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.stack


def test_every_section_runs_on_a_tiny_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)  # conftest's fake token is not what Lambda sees
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "latest.json").read_text())
    metrics = [row["metric"] for row in document["rows"]]
    expected = ["1 processor", "2 records delivered", "3 DynamoDB requests", "5 e2e", "6 cold start",
                "6 deployment zip", "7 processor scale", "7 e2e"]
    if shutil.which("wrk"):
        expected.append("4 intake")
    for prefix in expected:
        assert any(m.startswith(prefix) for m in metrics), (prefix, metrics)
    for row in document["rows"]:
        assert math.isfinite(row["value"]) and row["limit"], row
    lifecycle = document["raw"]["lifecycle"]
    assert lifecycle["accepted"] == 5 and lifecycle["delivered_per_request"] == 1.0
    assert lifecycle["dynamodb_calls"]["PutItem"] == 5
    assert (tmp_path / "bench-latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # --quick: beside its JSON
    table = capsys.readouterr().out
    assert all(metric in table for metric in metrics)  # every measured row is printed
