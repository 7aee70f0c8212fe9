"""What the functions need from the SDK their Lambda runtime bundles (docs: LAMBDA-1, LAMBDA-3).

Runs on the lock's SDK with the rest of the suite and on requirements-sdk-floor.txt's in
`make sdk-floor`: every call shape and client setting chalicelib uses must exist in both."""
from __future__ import annotations

import re
from typing import Any, Tuple

import botocore
from botocore.config import Config
from botocore.session import get_session

from chalicelib.aws import _config
from chalicelib.store import MAX_STATEMENTS
from tests.conftest import ROOT

# The first botocore with each feature chalicelib uses (docs: LAMBDA-3).
CODE_FLOOR = (1, 19, 24)  # DynamoDB BatchExecuteStatement


def as_version(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def test_the_floor_tested_is_at_or_above_what_the_code_needs():
    pinned = re.search(r"^botocore==(\S+)$", (ROOT / "requirements-sdk-floor.txt").read_text(), re.M)

    assert pinned is not None and as_version(pinned.group(1)) >= CODE_FLOOR


def test_this_sdk_has_the_batched_partiql_write_backs():
    operation = get_session().get_service_model("dynamodb").operation_model("BatchExecuteStatement")
    shapes: Any = operation  # botocore's stubs type a shape's members loosely

    request = shapes.input_shape.members["Statements"].member
    assert {"Statement", "Parameters"} <= set(request.members)
    assert shapes.output_shape.members["Responses"].member.members["Error"].members["Code"].enum
    assert MAX_STATEMENTS == 25  # the call's limit (docs: DDB-202)


def test_this_sdk_takes_the_clients_settings():
    config: Any = _config(max_pool_connections=4, parameter_validation=False)  # options are set as attributes

    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.parameter_validation is False
    assert isinstance(config, Config)


def test_the_sdk_is_at_least_the_floor():
    assert as_version(botocore.__version__) >= CODE_FLOOR
