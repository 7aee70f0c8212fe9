"""Environment variable names and the settings read from them, in one place.

Precedence (highest first), as Chalice and CloudFormation apply it:
1. the packaged template's `Environment` from infra/template.yaml (TABLE_NAME = the created table);
2. the stage's `environment_variables` in .chalice/config.json;
3. the top-level `environment_variables` in .chalice/config.json;
4. the defaults below.
Locally the devserver and the tests set the variables themselves.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from chalicelib.errors import ConfigurationError

TABLE_NAME = "TABLE_NAME"
SUCCESS_TTL_SECONDS = "SUCCESS_TTL_SECONDS"
MAX_CONCURRENCY = "MAX_CONCURRENCY"
# Only for local runs: the moto server, DynamoDB Local or LocalStack endpoint.
DYNAMODB_ENDPOINT_URL = "DYNAMODB_ENDPOINT_URL"
RECONCILE_AFTER_SECONDS = "RECONCILE_AFTER_SECONDS"
GIVE_UP_AFTER_SECONDS = "GIVE_UP_AFTER_SECONDS"
# Who may call the API: none | iam | api_key. Chalice imports app.py with the stage's variables
# (.chalice/config.json) when it packages, so the routes are guarded per stage; infra/merge_stage.py
# applies the same stage value to the PUT route. Unset (the local stack, tests) means none.
AUTH_MODE = "AUTH_MODE"
AUTH_MODES = ("none", "iam", "api_key")
# X-Ray SDK instrumentation (chalicelib/tracing.py): "false" turns it on, per stage. The signals
# Powertools' Tracer reads itself: its switch, Lambda's task root (set in every function) and Chalice's.
TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
CHALICE_CLI_MODE = "AWS_CHALICE_CLI_MODE"  # set by every chalice command, never by Lambda (docs: CHALICE-202)
SERVICE = "storefirst"  # Powertools' service name (logs, metrics, traces)
# Read by `chalice package/deploy` when it imports the app; the merge template replaces them.
STREAM_ARN = "STREAM_ARN"
FAILURE_QUEUE_ARN = "FAILURE_QUEUE_ARN"

PLACEHOLDER_FAILURE_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:storefirst-processor-failures"
PLACEHOLDER_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/storefirst-requests/stream/1970-01-01T00:00:00.000"
)


@dataclass(frozen=True)
class Settings:
    table_name: str
    success_ttl_seconds: int = 300
    max_concurrency: int = 16
    dynamodb_endpoint_url: Optional[str] = None
    # Longer than the stream mapping's MaximumRecordAgeInSeconds (3600): by then Lambda has
    # either processed a request or sent it to the failure queue.
    reconcile_after_seconds: int = 7200
    # Long enough for a re-driven record to go through the stream's own retries too.
    give_up_after_seconds: int = 3900

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        # os.environ is looked up per call: Chalice's test client replaces the object itself.
        environ = os.environ if environ is None else environ
        table_name = environ.get(TABLE_NAME, "").strip()
        if not table_name:
            raise ConfigurationError(f"{TABLE_NAME} is not set")
        return cls(
            table_name=table_name,
            success_ttl_seconds=_positive_int(environ, SUCCESS_TTL_SECONDS, cls.success_ttl_seconds),
            max_concurrency=_positive_int(environ, MAX_CONCURRENCY, cls.max_concurrency),
            dynamodb_endpoint_url=environ.get(DYNAMODB_ENDPOINT_URL) or None,
            reconcile_after_seconds=_positive_int(environ, RECONCILE_AFTER_SECONDS, cls.reconcile_after_seconds),
            give_up_after_seconds=_positive_int(environ, GIVE_UP_AFTER_SECONDS, cls.give_up_after_seconds),
        )


def auth_mode(environ: Optional[Mapping[str, str]] = None) -> str:
    environ = os.environ if environ is None else environ
    mode = environ.get(AUTH_MODE) or "none"
    if mode not in AUTH_MODES:
        raise ConfigurationError(f"{AUTH_MODE} must be one of {', '.join(AUTH_MODES)}, got {mode!r}")
    return mode


def stream_arn() -> str:
    return os.environ.get(STREAM_ARN) or PLACEHOLDER_STREAM_ARN


def failure_queue_arn() -> str:
    # An ARN, not a name: the merge template can then replace it whole (a name becomes an
    # Fn::Sub, which a merge could only add keys to).
    return os.environ.get(FAILURE_QUEUE_ARN) or PLACEHOLDER_FAILURE_QUEUE_ARN


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got {value}")
    return value
