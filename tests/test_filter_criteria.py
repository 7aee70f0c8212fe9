"""infra/'s FilterCriteria admits exactly the records the processor must see (docs: ESM-12, ESM-13,
ESM-14): a request entering PENDING (new, retried, or re-driven once), never the processor's own
write-backs or TTL deletes. The processor's own check (records.new_request) must agree with the filters."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

import app as app_module
from chalicelib.records import new_request
from devserver.stream.filters import matches_any
from devserver.stream.settings import settings_from_template
from devserver.testing.events import StreamEvents, pending_item
from tests.conftest import TEMPLATE

PENDING = {**pending_item("r1", {"table": 1}), "listStatus": {"S": "PENDING"}, "redriven": {"BOOL": False}}
SUCCEEDED = {**PENDING, "status": {"S": "SUCCEEDED"}, "ttl": {"N": "1767225900"}, "attempts": {"N": "1"}}
FAILED = {**PENDING, "status": {"S": "FAILED"}, "listStatus": {"S": "FAILED"}, "attempts": {"N": "1"}}
COUNTED = {**PENDING, "attempts": {"N": "1"}}
REDRIVEN = {**PENDING, "redriven": {"BOOL": True}, "redrivenAt": {"N": "1767233000000"}}
RETRIED = {**PENDING, "errorHistory": {"L": [{"M": {"type": {"S": "RejectedRequest"}}}]}}
EVENTS = StreamEvents()

ADMITTED = {
    "a new request": EVENTS.insert(PENDING),
    "a retry of a failed request": EVENTS.modify(FAILED, RETRIED),
    "the reconciler's re-drive": EVENTS.modify(PENDING, REDRIVEN),
}
REFUSED = {
    "success write-back": EVENTS.modify(PENDING, SUCCEEDED),
    "failure write-back": EVENTS.modify(PENDING, FAILED),
    "transient attempt counted": EVENTS.modify(PENDING, COUNTED),
    "attempt counted after a re-drive": EVENTS.modify(REDRIVEN, {**REDRIVEN, "attempts": {"N": "2"}}),
    "success after a re-drive": EVENTS.modify(REDRIVEN, {**SUCCEEDED, "redriven": {"BOOL": True}}),
    "success after a retry": EVENTS.modify(RETRIED, {**SUCCEEDED, "errorHistory": RETRIED["errorHistory"]}),
    "TTL delete": EVENTS.remove(SUCCEEDED, by_ttl=True),
    "an item written in another state": EVENTS.insert(SUCCEEDED),
}


@pytest.fixture(scope="module")
def filters() -> Any:
    return settings_from_template(yaml.safe_load(TEMPLATE.read_text()), app_module.app).filters


@pytest.mark.parametrize("name", ADMITTED)
def test_requests_entering_pending_invoke_the_processor(filters, name):
    assert matches_any(filters, ADMITTED[name])
    assert new_request(ADMITTED[name]) is not None


@pytest.mark.parametrize("name", REFUSED)
def test_the_processors_own_writes_and_ttl_deletes_do_not(filters, name):
    assert not matches_any(filters, REFUSED[name])
    assert new_request(REFUSED[name]) is None
