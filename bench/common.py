"""What every benchmark shares: the result row, percentiles, process CPU, quiet output.

Every figure the benchmarks report is a ratio against a baseline measured in the same run on
the same machine, because absolute times on a shared 2-core box move by 2x between runs while
ratios of two measurements taken seconds apart mostly do not.
"""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TABLE = "storefirst-requests"
REGION = "us-east-1"
ORDER: Dict[str, Any] = {"table": 3, "items": [{"dish": "margherita", "qty": 1}]}


def write_backs(store: Any, ids: Sequence[str]) -> None:
    """The processor's success write-backs for the ids (a chalicelib RequestStore), as it sends them
    (25 per call), with nothing around them."""
    result = {"table": 3, "portions": {"margherita": 1}, "totalPortions": 1, "readyInMinutes": 12}
    now = time.time()
    store.write([store.succeeded(i, result, now_ms=int(now * 1000), expires_at=int(now) + 300) for i in ids])


@dataclass
class Row:
    """One line of the table. `ratio` is value / baseline unless the benchmark says otherwise
    (for speedups it is baseline / value, so that bigger is better): `ratio_note` tells which."""

    metric: str
    value: float
    unit: str
    baseline: Optional[float]
    baseline_label: str
    ratio: Optional[float]
    target: str
    met: Optional[bool]
    limit: str = ""  # one sentence: what bounds this number
    details: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def ratio(numerator: float, denominator: float) -> Optional[float]:
    return None if not denominator else numerator / denominator


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; 0.0 for no values (the caller reports how many there were)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))])


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a whole process (all threads, exited ones included) from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> List[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    children = [int(p) for p in out.split()]
    return children + [d for c in children for d in descendants(c)]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def quiet_stdout(sink: Optional[int] = None) -> Iterator[None]:
    """Send file descriptor 1 to /dev/null (or to the open file descriptor `sink`): the processor's
    Powertools logger and EMF lines keep a reference to the original sys.stdout, so only an fd-level
    redirect silences them, and they still pay their full formatting cost (which Lambda pays too)."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.open(os.devnull, os.O_WRONLY) if sink is None else sink
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        if sink is None:
            os.close(target)


def fake_aws_env() -> None:
    """Fake credentials and one region for every client: moto keys its data by region."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "TABLE_NAME": TABLE}.items():
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("DYNAMODB_ENDPOINT_URL", None)
    # The processor logs one JSON line per request; INFO is what the deployed stage uses.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")


def machine() -> Dict[str, Any]:
    """Enough to tell two latest.json apart: the code, the box and how busy it was."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty_files": len(git("status", "--porcelain").splitlines()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
