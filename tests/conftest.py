"""Shared fixtures: fake credentials for every test, and the requests table in moto."""
from __future__ import annotations

import functools
import json
import logging
import signal
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from chalicelib.logs import logger
from devserver import moto_partiql
from devserver.db_schema import create_table_request
from devserver.infra import load_template

pytest_plugins = ["devserver.testing.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
TABLE = "storefirst-requests"  # .chalice/config.json's TABLE_NAME, which Chalice's test client sets

# Every client a test builds (with boto3, or the app's runtime) would load and parse its service's
# JSON model again, ~50 ms each, more than most tests take: the test process shares one loader, whose
# cache keeps each model once. Models are read-only data, so nothing leaks between tests.
botocore.session.create_loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)




def listening(url: str) -> bool:
    """Whether something accepts connections at url's host and port (the fault proxy's refuse mode)."""
    host, port = url.split("//", 1)[1].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return True
    except (ConnectionRefusedError, ConnectionResetError):  # reset: caught as the listener closes
        return False


def png_size(path: Path) -> Tuple[int, int]:
    """(width, height) in pixels, from the PNG's header chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def ctrl_c_reaches_it() -> None:
    """preexec_fn for a child whose Ctrl-C handling is tested. A shell that starts the test run as
    a background job leaves SIGINT ignored, and an ignored signal stays ignored across exec, so the
    child would never see the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never reach AWS: fake credentials, a fixed region, no profile from the machine.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client with the requests table created as infra/ defines it."""
    moto_partiql.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(**create_table_request(load_template(TEMPLATE), TABLE))
        yield client


class JsonLines(logging.Handler):
    """Collects what the service logger emits, formatted by its own JSON formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: List[Dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    captured = JsonLines()
    logging.getLogger(logger.name).addHandler(captured)
    yield captured
    logging.getLogger(logger.name).removeHandler(captured)


@pytest.fixture(scope="session")
def project_package(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`make package STAGE=<stage>` of this project, built once per test session and shared (each
    build runs chalice package and the SAM translation: seconds). Callers only read it."""
    from tests.packaging import package_stage

    built: Dict[str, Dict[str, Any]] = {}

    def package(stage: str) -> Dict[str, Any]:
        if stage not in built:
            built[stage] = package_stage(tmp_path_factory.mktemp(f"package-{stage}"), stage)
        return built[stage]
    return package
