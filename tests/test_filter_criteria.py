"""infra/'s FilterCriteria admits exactly the records the processor must see (esm §4):
a request entering PENDING, never the processor's own write-backs or TTL deletes."""
from __future__ import annotations

from typing import Any, Dict

import pytest
import yaml

import app as app_module
from devserver.stream.filters import matches_any
from devserver.stream.settings import settings_from_template
from tests.conftest import TEMPLATE
from tests.streamevents import StreamEvents, pending_item

PENDING = pending_item("r1", {"table": 1})
SUCCEEDED = {**PENDING, "status": {"S": "SUCCEEDED"}, "ttl": {"N": "1767225900"}, "attempts": {"N": "1"}}
FAILED = {**PENDING, "status": {"S": "FAILED"}, "attempts": {"N": "1"}}
COUNTED = {**PENDING, "attempts": {"N": "1"}}


@pytest.fixture(scope="module")
def filters() -> Any:
    return settings_from_template(yaml.safe_load(TEMPLATE.read_text()), app_module.app).filters


def admitted(filters: Any, record: Dict[str, Any]) -> bool:
    return matches_any(filters, record)


def test_a_new_request_invokes_the_processor(filters):
    assert admitted(filters, StreamEvents().insert(PENDING))


@pytest.mark.parametrize("old, new", [(PENDING, SUCCEEDED), (PENDING, FAILED), (PENDING, COUNTED)])
def test_the_processors_own_write_backs_do_not(filters, old, new):
    assert not admitted(filters, StreamEvents().modify(old, new))


def test_ttl_deletes_do_not(filters):
    assert not admitted(filters, StreamEvents().remove(SUCCEEDED, by_ttl=True))


def test_an_item_written_in_another_state_does_not(filters):
    assert not admitted(filters, StreamEvents().insert(SUCCEEDED))
