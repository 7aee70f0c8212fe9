"""Headless Chromium driven by Selenium, for the console's browser tests and its screenshot.

Debian's `chromium` and its matching `chromium-driver` (the Makefile installs both; Selenium is told
where they are, so it never looks for a browser or driver to download). The flags are what lets
Chromium run here: no display (--headless), as root (--no-sandbox), no GPU, and none of its
background traffic (updates, sync, QUIC probes), which hangs start-up on a machine without a network.
Each browser gets a fresh profile, deleted when it closes.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")
PAGE_LOAD_TIMEOUT_S = 30


def missing() -> Optional[str]:
    """What is not installed (None when both are): the reason a browser test cannot run."""
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    return f"{' and '.join(absent)} missing (make test installs Debian's chromium and chromium-driver)" \
        if absent else None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Selenium WebDriver for a new headless Chromium with a `width` x `height` window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_shows(driver: Any, condition: Callable[[Any], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Wait until `condition(driver)` is truthy (a stale element counts as not yet); its value."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"the page did not show {what} within {timeout} s") from None
