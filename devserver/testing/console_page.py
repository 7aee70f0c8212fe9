"""The local console (/_local/) as a browser shows it: what tests/test_console_browser.py and the
README's screenshot (devserver/console_screenshot.py) look for on the page and do with it.

The page re-renders its tables on every refresh, so what is read from it is read in one script
(one moment of the page), never element by element through WebDriver, where an element read a few
calls later may already have been replaced.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Dict, Optional

from devserver.testing.browser import page_shows

REFRESH_S = 0.5


class ConsolePage:
    def __init__(self, driver: Any, api_url: str, every_s: float = REFRESH_S) -> None:
        self.driver = driver
        self.url = f"{api_url}/_local/?every={every_s:g}"

    def open(self) -> "ConsolePage":
        self.driver.get(self.url)
        return self

    def row(self, status: str, request_id: str) -> Optional[str]:
        """The text of the request's row in the list of `status`, if it is there now."""
        return self.text(f'#list-{status} tr[data-request-id="{request_id}"]')

    def wait_row(self, status: str, request_id: str, timeout: float = 15.0) -> str:
        return str(page_shows(self.driver, lambda d: self.row(status, request_id), timeout,
                              what=f"{request_id} among the {status}"))

    def retry(self, request_id: str) -> None:
        """Click the request's Retry button. The page re-renders as it refreshes, so a button
        replaced between finding and clicking it is found again."""
        button = f'#list-FAILED button[data-retry="{request_id}"]'

        def clicked(driver: Any) -> bool:
            self._one(button).click()
            return True
        page_shows(self.driver, clicked, what=f"{button} clicked")

    def fields(self) -> Dict[str, str]:
        """Each value the page shows from /_local/status: its path there -> the text shown."""
        pairs = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-field]'), c => [c.dataset.field, c.innerText])")
        return {str(path): str(text).strip() for path, text in pairs}

    def text(self, selector: str) -> Optional[str]:
        """The text of the first element `selector` finds now, or None."""
        found = self.driver.execute_script(
            "const found = document.querySelector(arguments[0]); return found ? found.innerText : null", selector)
        return None if found is None else str(found).strip()

    def screenshot(self, path: Path) -> None:
        """The whole page, beyond the window's height (Chromium's DevTools protocol)."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _one(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)
