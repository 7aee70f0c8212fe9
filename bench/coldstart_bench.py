"""Cold start and package size (issue item 6).

Import time is measured in fresh interpreters over the code exactly as Lambda gets it: the
zip that `make package` builds (`chalice package`, plus the bytecode infra/precompile.py adds),
unpacked, first on sys.path (so its small `chalice` runtime shadows the full one installed for
development), with boto3 and Powertools from the venv standing in for the Lambda runtime and the
Powertools layer. Lambda's init pays `import app`; the figure is that minus `import boto3`
(imported first, in the same interpreter), taken at the median.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

from bench.common import REGION, ROOT, median

# Provided by the Lambda Python runtime (boto3, botocore...) or AWS's Powertools layer: none of
# these may be in the zip (requirements.txt is empty on purpose).
PROVIDED = ("boto3/", "botocore/", "s3transfer/", "jmespath/", "dateutil/", "urllib3/",
            "aws_lambda_powertools/", "typing_extensions")
# boto3 first, then the app: the second figure is what our code adds to an init that imports
# the SDK anyway (the processor builds its client on the first invocation).
_TIMER = ("import sys, time\nsys.path.insert(0, {path!r})\nbegan = time.perf_counter()\nimport boto3\n"
          "middle = time.perf_counter()\nimport app\nprint(middle - began, time.perf_counter() - middle)\n")
# What a stage with the X-Ray SDK on adds before its first AWS call (chalicelib/tracing.py): CPU time
# as well as wall time, the CPU figure being the one a loaded machine disturbs least.
_TRACER_TIMER = ("import sys, time\nsys.path.insert(0, {path!r})\nimport boto3, app\nfrom chalicelib import tracing\n"
                 "wall, cpu = time.perf_counter(), time.process_time()\nassert tracing.instrument()\n"
                 "print(time.perf_counter() - wall, time.process_time() - cpu)\n")
# Lambda's signals that tracing.instrument() reads, as in a stage that turns the SDK on (prod).
_TRACED = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}


def package(out: Path) -> Path:
    """`make package`'s zip for the dev stage (the zip does not depend on the merge template)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", REGION)}
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "package", "--stage", "dev", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "infra" / "precompile.py"), str(out / "deployment.zip"),
                    str(out / "sam.json")], cwd=ROOT, check=True, capture_output=True)
    return out / "deployment.zip"


def import_seconds(path: Path, env: Dict[str, str]) -> Tuple[float, float]:
    """(import boto3, then import app) in one fresh interpreter."""
    code = _TIMER.format(path=str(path))
    out = subprocess.run([sys.executable, "-c", code], cwd=path, env=env, capture_output=True, text=True, check=True)
    boto3_s, app_s = out.stdout.strip().splitlines()[-1].split()
    return float(boto3_s), float(app_s)


def tracer_seconds(path: Path, env: Dict[str, str]) -> Tuple[float, float]:
    """(wall, CPU) seconds of turning the X-Ray SDK on, after import app, in one fresh interpreter."""
    code = _TRACER_TIMER.format(path=str(path))
    out = subprocess.run([sys.executable, "-c", code], cwd=path, env={**env, **_TRACED}, capture_output=True,
                         text=True, check=True)
    wall_s, cpu_s = out.stdout.strip().splitlines()[-1].split()
    return float(wall_s), float(cpu_s)


def _timings(path: Path, env: Dict[str, str], repeat: int) -> Tuple[List[float], List[float]]:
    pairs = [import_seconds(path, env) for _ in range(repeat)]
    return [b for b, _ in pairs], [a for _, a in pairs]


def zipped_size(directory: Path) -> int:
    """Bytes of `directory` deflated into a zip, as `chalice package` would vendor it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(directory.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                archive.write(file, file.relative_to(directory.parent))
    return buffer.tell()


def run(repeat: int = 10) -> Dict[str, Any]:
    import aws_lambda_powertools

    with tempfile.TemporaryDirectory() as work:
        deployment = package(Path(work) / "package")
        names: List[str] = zipfile.ZipFile(deployment).namelist()
        unpacked = Path(work) / "task"
        zipfile.ZipFile(deployment).extractall(unpacked)
        # No STREAM_ARN or TABLE_NAME: the app must import without them (they are read lazily).
        # Lambda cannot write __pycache__ into /var/task; neither may these interpreters, or the
        # sources-only figure would be measured on bytecode cached by its first run.
        env = {k: v for k, v in os.environ.items() if k not in ("STREAM_ARN", "TABLE_NAME", "PYTHONPATH")}
        env.update(AWS_DEFAULT_REGION=REGION, PYTHONDONTWRITEBYTECODE="1")
        boto3_s, app_s = _timings(unpacked, env, repeat)
        tracer = [tracer_seconds(unpacked, env) for _ in range(repeat)]
        # For context: the same tree as `chalice package` alone ships it, without bytecode.
        for cache in list(unpacked.rglob("__pycache__")):
            shutil.rmtree(cache)
        _, sources_s = _timings(unpacked, env, repeat)
        zip_bytes = deployment.stat().st_size
    vendored = [n for n in names if n.startswith(PROVIDED)]
    powertools_zip = zipped_size(Path(aws_lambda_powertools.__file__).parent)
    return {
        "repeat": repeat, "import_boto3_ms": median(boto3_s) * 1000,
        # Lambda init minus boto3: import app in an interpreter that has imported boto3.
        "app_after_boto3_ms": median(app_s) * 1000,
        "app_after_boto3_all_ms": [round(s * 1000, 1) for s in app_s],
        "app_after_boto3_sources_only_ms": median(sources_s) * 1000,
        # Stage prod: Powertools Tracer imports aws-xray-sdk and patches botocore (dev does neither).
        "xray_sdk_ms": median([w for w, _ in tracer]) * 1000,
        "xray_sdk_cpu_ms": median([c for _, c in tracer]) * 1000,
        "zip_bytes": zip_bytes, "zip_files": len(names), "vendored_runtime_files": vendored,
        # What the zip would weigh if Powertools were vendored instead of taken from its layer.
        "zip_with_powertools_bytes": zip_bytes + powertools_zip,
    }
