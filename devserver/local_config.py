"""What the local stack is told through the environment, in one place.

`chalice local` takes no options of ours, so the app host (its worker, devserver/chalice_local.py)
reads its configuration from STOREFIRST_* variables; `python -m devserver` (make run) and the
launcher (tests, bench, reliability) set them. A user typing plain `chalice local` gets the defaults.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, FrozenSet, List, Mapping, Optional

PROJECT_DIR = Path(__file__).resolve().parent.parent
BACKENDS = ("moto", "dynamodb-local", "url")
AUTH_MODES = ("none", "iam")  # the local API's (devserver/apigw_auth.py)
DEFAULT_SECRET_KEY = "testing"  # every local access key's secret: what botocore's tests and moto use
DEFAULT_REGION = "us-east-1"  # moto stamps us-east-1 on every stream record: the whole stack uses it

STATE_DIR = "STOREFIRST_STATE_DIR"
BACKEND = "STOREFIRST_BACKEND"
ENDPOINT_URL = "STOREFIRST_ENDPOINT_URL"
RESET = "STOREFIRST_RESET"
REGION = "STOREFIRST_REGION"
DYNAMODB_ENDPOINT = "STOREFIRST_DYNAMODB_ENDPOINT"
SQS_ENDPOINT = "STOREFIRST_SQS_ENDPOINT"
FUNCTION_ENV = "STOREFIRST_FUNCTION_ENV"
POLL_INTERVAL = "STOREFIRST_POLL_INTERVAL"
SCHEDULE_EVERY = "STOREFIRST_SCHEDULE_EVERY"
AUTH = "STOREFIRST_AUTH"
SECRET_KEY = "STOREFIRST_SECRET_KEY"
OPERATORS = "STOREFIRST_OPERATORS"
# Read by each function instance (devserver/function_instance.py), passed through the function env:
# the launcher sets it for fault and reliability tests, to run that business logic instead of app.py's.
BUSINESS_LOGIC = "STOREFIRST_BUSINESS_LOGIC"


def default_state_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """Outside the project: Chalice's file watcher restarts the server on any file written inside it."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha1(str(project_dir.resolve()).encode("utf-8")).hexdigest()[:8]
    return base / "storefirst" / f"{project_dir.name}-{digest}"


def parse_operators(text: str) -> FrozenSet[str]:
    """The access key ids of a comma-separated list (spaces and empty entries ignored)."""
    return frozenset(key.strip() for key in text.split(",") if key.strip())


def chalice_local_argv(project_dir: Path, *, host: str, port: int, stage: str, autoreload: bool) -> List[str]:
    """`chalice local` as a user types it, from this interpreter's environment."""
    command = [str(Path(sys.executable).with_name("chalice")), "--project-dir", str(project_dir), "local",
               "--host", host, "--port", str(port), "--stage", stage]
    return command if autoreload else [*command, "--no-autoreload"]


class LocalConfigError(ValueError):
    """A STOREFIRST_* variable has a value the local stack cannot use."""


@dataclass(frozen=True)
class LocalConfig:
    state_dir: Path = field(default_factory=default_state_dir)
    backend: str = "moto"
    endpoint_url: Optional[str] = None  # the backend `url`: LocalStack or any DynamoDB endpoint
    reset: bool = False  # DynamoDB Local: start from an empty data directory
    region: str = DEFAULT_REGION
    # A database that is already running (the launcher's, or a fault proxy in front of it).
    dynamodb_endpoint: Optional[str] = None
    sqs_endpoint: Optional[str] = None
    # Added to every function's environment (tests: SUCCESS_TTL_SECONDS, a business logic module).
    function_env: Mapping[str, str] = field(default_factory=dict)
    # Seconds between idle polls of a shard. Lambda polls about 4 times a second (docs: ESM-10);
    # locally 20 times keeps the pipeline's own latency out of what is being debugged.
    poll_interval: float = 0.05
    # Seconds between runs of each scheduled function; None: the rate the app declares.
    schedule_every: Optional[float] = None
    # The local API's auth (devserver/apigw_auth.py); None: the stage's AUTH_MODE if it is iam, else none.
    auth: Optional[str] = None
    secret_key: str = DEFAULT_SECRET_KEY
    operators: FrozenSet[str] = frozenset()  # access key ids that may call /admin/...

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise LocalConfigError(f"{BACKEND} must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "url" and not self.endpoint_url and not self.dynamodb_endpoint:
            raise LocalConfigError(f"{BACKEND}=url needs {ENDPOINT_URL} (LocalStack: http://localhost:4566)")
        if self.poll_interval <= 0 or (self.schedule_every is not None and self.schedule_every <= 0):
            raise LocalConfigError(f"{POLL_INTERVAL} and {SCHEDULE_EVERY} must be positive numbers of seconds")
        if self.auth is not None and self.auth not in AUTH_MODES:
            raise LocalConfigError(f"{AUTH} must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if self.operators and self.auth == "none":
            raise LocalConfigError(f"{OPERATORS} names callers by their signature: it needs {AUTH}=iam")
        if not self.secret_key:
            raise LocalConfigError(f"{SECRET_KEY} must not be empty")

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "LocalConfig":
        environ = os.environ if environ is None else environ
        try:
            function_env = json.loads(environ.get(FUNCTION_ENV) or "{}")
            poll = float(environ.get(POLL_INTERVAL) or cls.poll_interval)
            schedule_every = float(environ[SCHEDULE_EVERY]) if environ.get(SCHEDULE_EVERY) else None
        except ValueError as exc:
            raise LocalConfigError(f"{FUNCTION_ENV} must be a JSON object, {POLL_INTERVAL} and {SCHEDULE_EVERY} "
                                   f"numbers: {exc}") from None
        if not isinstance(function_env, dict) or not all(isinstance(v, str) for v in function_env.values()):
            raise LocalConfigError(f"{FUNCTION_ENV} must be a JSON object of strings")
        return cls(
            state_dir=Path(environ[STATE_DIR]) if environ.get(STATE_DIR) else default_state_dir(),
            backend=environ.get(BACKEND) or cls.backend,
            endpoint_url=environ.get(ENDPOINT_URL) or None,
            reset=environ.get(RESET, "") in ("1", "true"),
            region=environ.get(REGION) or cls.region,
            dynamodb_endpoint=environ.get(DYNAMODB_ENDPOINT) or None,
            sqs_endpoint=environ.get(SQS_ENDPOINT) or None,
            function_env=function_env,
            poll_interval=poll,
            schedule_every=schedule_every,
            auth=environ.get(AUTH) or None,
            secret_key=environ.get(SECRET_KEY) or cls.secret_key,
            operators=parse_operators(environ.get(OPERATORS) or ""),
        )

    def to_env(self) -> Dict[str, str]:
        values = {
            STATE_DIR: str(self.state_dir), BACKEND: self.backend, ENDPOINT_URL: self.endpoint_url or "",
            RESET: "1" if self.reset else "", REGION: self.region, DYNAMODB_ENDPOINT: self.dynamodb_endpoint or "",
            SQS_ENDPOINT: self.sqs_endpoint or "", FUNCTION_ENV: json.dumps(dict(self.function_env)),
            POLL_INTERVAL: str(self.poll_interval),
            SCHEDULE_EVERY: "" if self.schedule_every is None else str(self.schedule_every),
            AUTH: self.auth or "", SECRET_KEY: self.secret_key, OPERATORS: ",".join(sorted(self.operators)),
        }
        return {name: value for name, value in values.items() if value}
