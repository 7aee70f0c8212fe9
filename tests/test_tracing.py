"""chalicelib/tracing.py: the X-Ray SDK instruments botocore only in Lambda, only where the stage
turns it on, and costs nothing where it does not (it is not even imported)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from chalice.config import Config

from chalicelib import tracing
from tests.conftest import ROOT

IN_LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.mark.parametrize("environ, enabled", [
    ({}, False),
    ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),  # not in Lambda
    (IN_LAMBDA, False),  # a stage that says nothing gets no SDK
    ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
    ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
    ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "False "}, True),
    ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false", "AWS_CHALICE_CLI_MODE": "true"}, False),  # chalice local
])
def test_the_sdk_is_on_only_in_lambda_where_the_stage_turns_it_on(environ, enabled):
    assert tracing.sdk_enabled(environ) is enabled


def test_prod_traces_aws_calls_and_dev_does_not():
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]

    flags = {name: stage["environment_variables"]["POWERTOOLS_TRACE_DISABLED"] for name, stage in stages.items()}
    assert flags == {"dev": "true", "prod": "false"}


def test_a_stage_that_says_nothing_gets_no_x_ray_sdk():
    # Chalice resolves a stage's variables over the top-level ones: a new stage inherits these.
    disk = json.loads((ROOT / ".chalice" / "config.json").read_text())
    staging = Config(chalice_stage="staging", config_from_disk={**disk, "stages": {"staging": {}}})

    assert staging.environment_variables["POWERTOOLS_TRACE_DISABLED"] == "true"


def instrumented(environ: dict) -> dict:
    """What instrument() does in a fresh interpreter (it patches botocore for the whole process; aws-xray-sdk
    wraps the call with wrapt)."""
    probe = ("import json, sys, botocore.client; from chalicelib import tracing; done = tracing.instrument(); "
             "print(json.dumps({'done': done, 'sdk_imported': 'aws_xray_sdk' in sys.modules, "
             "'patched': 'Wrapper' in type(botocore.client.BaseClient._make_api_call).__name__}))")
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED",
                                                             "AWS_CHALICE_CLI_MODE")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**env, **environ}, capture_output=True,
                         text=True, check=True, timeout=60)
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_where_it_is_off_the_sdk_is_not_even_imported():
    assert instrumented({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}) == {
        "done": False, "sdk_imported": False, "patched": False}


def test_where_it_is_on_botocore_is_patched():
    assert instrumented({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}) == {
        "done": True, "sdk_imported": True, "patched": True}
