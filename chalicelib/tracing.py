"""X-Ray subsegments for the functions' AWS calls, per stage.

Lambda's active tracing (infra/template.yaml, `Tracing: Active`) records each sampled invocation on
its own; the DynamoDB and S3 calls inside it appear only when an X-Ray SDK instruments botocore
(docs: LAMBDA-4). Powertools' Tracer does that with aws-xray-sdk, which the Powertools layer ships.
Importing the SDK and patching botocore costs a cold start far more than the app itself (make bench,
"6 cold start: X-Ray SDK"), so a stage turns it on with POWERTOOLS_TRACE_DISABLED=false in
.chalice/config.json (prod) and leaves it off with true (dev). Outside Lambda it is always off.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from chalicelib import config


def sdk_enabled(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether this process should instrument botocore: in Lambda, and not turned off for the stage."""
    environ = os.environ if environ is None else environ
    disabled = environ.get(config.TRACE_DISABLED, "true").strip().lower() != "false"
    # chalice local's function instances look like Lambda but have no X-Ray daemon to send to.
    local = bool(environ.get(config.CHALICE_CLI_MODE))
    return bool(environ.get(config.LAMBDA_TASK_ROOT)) and not disabled and not local


def instrument(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Patch botocore for X-Ray subsegments when sdk_enabled(); True if it did. Call it once per
    container, before the first call is made (chalicelib.runtime does)."""
    if not sdk_enabled(environ):
        return False
    from aws_lambda_powertools import Tracer  # imports aws-xray-sdk: only where it is used

    Tracer(service=config.SERVICE, patch_modules=("botocore",))
    return True
