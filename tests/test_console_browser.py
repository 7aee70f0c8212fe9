"""The local console in a real browser (headless Chromium through Selenium and Debian's chromedriver)
against a real `chalice local` (devserver's launcher, moto): the page shows the numbers
/_local/status has and a FAILED request with its error, and its retry button takes a FAILED request
back to PENDING and on to its next outcome. test_console.py covers the server side alone."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

from devserver.launcher import LocalStack, StackOptions
from devserver.testing import browser
from devserver.testing.api import Api
from devserver.testing.browser import page_shows
from devserver.testing.console_page import ConsolePage

pytestmark = [pytest.mark.browser, pytest.mark.stack]

ORDER = {"table": 4, "items": [{"dish": "margherita", "qty": 1}]}
# An unknown dish fails for good; its name, echoed in the error, must show as text, not as markup.
UNKNOWN = {"table": 4, "items": [{"dish": "<b>durian</b>", "qty": 1}]}
POISON = {"table": 6, "items": [{"dish": "tiramisu", "qty": 1}], "note": "poison"}


@dataclass
class Local:
    stack: LocalStack
    api: Api
    poison_flag: Path  # while it exists, POISON fails transiently (devserver/testing/logic.py)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state = tmp_path_factory.mktemp("console")
    flag = state / "poison-on"
    options = StackOptions(state_dir=state, business_logic="devserver.testing.logic:poison_while_flagged",
                           function_env={"POISON_FLAG": str(flag)})
    with LocalStack(options) as stack:
        yield Local(stack, Api(stack.api_url), flag)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    problem = browser.missing()
    if problem:
        pytest.fail(problem)
    with browser.chromium() as driver:
        yield driver


@pytest.fixture
def page(local: Local, chromium: Any) -> ConsolePage:
    return ConsolePage(chromium, local.stack.api_url)


def as_shown(value: Any) -> str:
    """How console.js shows a value of the status document."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def field(document: Any, path: str) -> Any:
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


def test_the_console_shows_the_numbers_of_local_status_and_a_failed_request_with_its_error(local, page):
    succeeded = local.api.accepted(ORDER)
    failed = local.api.accepted(UNKNOWN)
    local.api.status_is(succeeded, "SUCCEEDED", timeout=15)
    local.api.status_is(failed, "FAILED", timeout=15)

    page.open()

    failed_row = page.wait_row("FAILED", f"anonymous/{failed}")
    assert "RejectedRequest unknown dish '<b>durian</b>': not on the menu" in failed_row
    assert "Retry" in failed_row
    page.wait_row("SUCCEEDED", f"anonymous/{succeeded}")

    differences: Dict[str, Any] = {}

    def same_as_status() -> Optional[Dict[str, str]]:
        # The pipeline is idle, so the page converges on what /_local/status says now.
        shown = page.fields()
        status = local.stack.status()
        differences.clear()
        differences.update({path: (text, as_shown(field(status, path))) for path, text in shown.items()
                            if text != as_shown(field(status, path))})
        return None if differences else shown
    try:
        shown = page_shows(page.driver, lambda d: same_as_status(), what="the numbers of /_local/status")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (shown, in the status) still differ: {differences}") from None

    assert {"runner.counters.records_delivered", "runner.counters.retries", "failureQueue.depth",
            "functions.process.invocations", "eventSources.sqs-handle_failures.deleted"} <= set(shown)
    assert int(shown["runner.counters.records_delivered"]) >= 2
    assert any(path.startswith("runner.shards.") for path in shown), "no shard is shown"
    assert (page.text("#shards td.age") or "").endswith(("ms", " s"))  # its iterator age


def test_retry_takes_a_failed_request_back_to_pending_and_on_to_its_next_outcome(local, page):
    local.poison_flag.touch()
    poison = local.api.accepted(POISON)
    assert local.api.status_is(poison, "FAILED", timeout=60)["error"]["type"] == "RetriesExhausted"
    name = f"anonymous/{poison}"  # how operators name it: the console shows every owner's requests
    page.open().wait_row("FAILED", name)

    page.retry(name)

    # Still poisoned: it stays PENDING while the stream mapping retries it, until the fix is deployed.
    page.wait_row("PENDING", name)
    assert local.api.get(poison)[1]["status"] == "PENDING"
    assert page.text("#notice") == f"{name}: retried, PENDING again"
    assert page.row("FAILED", name) is None
    local.poison_flag.unlink()

    page.wait_row("SUCCEEDED", name, timeout=30)
    done = local.api.get(poison)[1]
    assert done["status"] == "SUCCEEDED" and done["errorHistory"][0]["type"] == "RetriesExhausted"
    assert page.row("PENDING", name) is None
