"""pytest plugin (`pytest_plugins = ["devserver.testing.fixtures"]`): the local stack as a fixture.

`local_stack` is `chalice local` as users run it, with the database host and a fault proxy in front
of the database (no faults unless a test asks), once per test module and backend: moto and AWS's
DynamoDB Local. A module narrows or configures it:

    STACK_OPTIONS = StackOptions(business_logic="devserver.testing.logic:counting")  # optional
    pytestmark = pytest.mark.parametrize("local_stack", ["moto"], indirect=True)   # one backend
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import pytest

from devserver.launcher import LocalStack, StackOptions

BACKENDS = ("moto", "dynamodb-local")
FAULTS_OFF = {"throttle": 0.0, "throttle_operations": "*", "down": False, "down_mode": "503",
              "down_operations": "*", "reset_counters": True}


@pytest.fixture(scope="module", params=BACKENDS)
def local_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options: StackOptions = getattr(request.module, "STACK_OPTIONS", StackOptions())
    state = tmp_path_factory.mktemp(f"stack-{request.param}")
    with LocalStack(replace(options, backend=request.param, faults=True, fault_seed=1, state_dir=state)) as stack:
        yield stack


@pytest.fixture
def faults_off(local_stack: LocalStack) -> LocalStack:
    """The module's stack with every fault switched off and the proxy's counters reset."""
    local_stack.faults(**FAULTS_OFF)
    return local_stack
