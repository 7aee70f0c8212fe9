"""The local console in a real browser (headless Chromium through Selenium and Debian's chromedriver)
against a real `chalice local` (devserver's launcher, moto): the page shows the numbers
/_local/status has and a FAILED request with its error, and its retry button takes a FAILED request
back to PENDING and on to its next outcome. test_console.py covers the server side alone."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
from selenium.webdriver.common.by import By

from devserver.launcher import LocalStack, StackOptions
from devserver.testing import browser
from devserver.testing.api import Api
from devserver.testing.browser import page_shows

pytestmark = [pytest.mark.browser, pytest.mark.stack]

ORDER = {"table": 4, "items": [{"dish": "margherita", "qty": 1}]}
# An unknown dish fails for good; its name, echoed in the error, must show as text, not as markup.
UNKNOWN = {"table": 4, "items": [{"dish": "<b>durian</b>", "qty": 1}]}
POISON = {"table": 6, "items": [{"dish": "tiramisu", "qty": 1}], "note": "poison"}
REFRESH_S = 0.5


@dataclass
class Local:
    stack: LocalStack
    api: Api
    poison_flag: Path  # while it exists, POISON fails transiently (devserver/testing/logic.py)

    @property
    def console(self) -> str:
        return f"{self.stack.api_url}/_local/?every={REFRESH_S}"


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


def row(driver: Any, status: str, request_id: str) -> Optional[Any]:
    """The request's row in the page's list of `status`, if it is there."""
    found = driver.find_elements(By.CSS_SELECTOR, f'#list-{status} tr[data-request-id="{request_id}"]')
    return found[0] if found else None


def as_shown(value: Any) -> str:
    """How console.js shows a value of the status document."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def field(document: Any, path: str) -> Any:
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


def test_the_console_shows_the_numbers_of_local_status_and_a_failed_request_with_its_error(local, chromium):
    succeeded = local.api.accepted(ORDER)
    failed = local.api.accepted(UNKNOWN)
    local.api.status_is(succeeded, "SUCCEEDED", timeout=15)
    local.api.status_is(failed, "FAILED", timeout=15)

    chromium.get(local.console)

    failed_row = page_shows(chromium, lambda d: row(d, "FAILED", failed), what=f"{failed} among the FAILED")
    assert "RejectedRequest unknown dish '<b>durian</b>': not on the menu" in failed_row.text
    assert failed_row.find_element(By.CSS_SELECTOR, "button[data-retry]").text == "Retry"
    page_shows(chromium, lambda d: row(d, "SUCCEEDED", succeeded), what=f"{succeeded} among the SUCCEEDED")

    def same_as_status() -> Optional[Dict[str, str]]:
        # The pipeline is idle, so the page converges on what /_local/status says now.
        shown = {cell.get_attribute("data-field"): cell.text
                 for cell in chromium.find_elements(By.CSS_SELECTOR, "[data-field]")}
        status = local.stack.status()
        return shown if shown == {path: as_shown(field(status, path)) for path in shown} else None
    shown = page_shows(chromium, lambda d: same_as_status(), what="the numbers of /_local/status")

    assert {"runner.counters.records_delivered", "runner.counters.retries", "failureQueue.depth",
            "functions.process.invocations", "eventSources.sqs-handle_failures.deleted"} <= set(shown)
    assert int(shown["runner.counters.records_delivered"]) >= 2
    shard_cells = [path for path in shown if path.startswith("runner.shards.")]
    assert shard_cells, "no shard is shown"
    ages = chromium.find_elements(By.CSS_SELECTOR, "#shards tbody td:nth-child(3)")
    assert ages and all(age.text.endswith(" s") or age.text.endswith(" ms") for age in ages)


def click_retry(driver: Any, request_id: str) -> None:
    """Click the request's Retry button; the page re-renders twice a second, so a button found just
    before a refresh is found again."""
    button = f'#list-FAILED button[data-retry="{request_id}"]'

    def clicked(d: Any) -> bool:
        d.find_element(By.CSS_SELECTOR, button).click()
        return True
    page_shows(driver, clicked, what=f"{button} clicked")


def test_retry_takes_a_failed_request_back_to_pending_and_on_to_its_next_outcome(local, chromium):
    local.poison_flag.touch()
    poison = local.api.accepted(POISON)
    assert local.api.status_is(poison, "FAILED", timeout=60)["error"]["type"] == "RetriesExhausted"
    chromium.get(local.console)

    page_shows(chromium, lambda d: row(d, "FAILED", poison), what=f"{poison} among the FAILED")
    click_retry(chromium, poison)

    # Still poisoned: it stays PENDING while the stream mapping retries it, until the fix is deployed.
    pending = page_shows(chromium, lambda d: row(d, "PENDING", poison), what=f"{poison} among the PENDING")
    assert local.api.get(poison)[1]["status"] == "PENDING"
    assert f"{poison}: retried, PENDING again" in chromium.find_element(By.ID, "notice").text
    assert row(chromium, "FAILED", poison) is None and pending is not None
    local.poison_flag.unlink()

    page_shows(chromium, lambda d: row(d, "SUCCEEDED", poison), timeout=30, what=f"{poison} among the SUCCEEDED")
    done = local.api.get(poison)[1]
    assert done["status"] == "SUCCEEDED" and done["errorHistory"][0]["type"] == "RetriesExhausted"
    assert row(chromium, "PENDING", poison) is None
