"""`python -m devserver.console_screenshot [PATH]` (`make screenshots`): the README's picture of the
local console, docs/images/console.png by default, taken in headless Chromium (devserver/testing/
browser.py) on a local stack (moto) holding requests in every state: orders that succeeded, an
unknown dish (FAILED: rejected), a poisoned order out of retries (FAILED: RetriesExhausted) and
another still being retried (PENDING, with its last error). The ids are fixed, so two runs differ
in times, ports and counters only. About 30 s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from chalicelib.ownership import ANONYMOUS
from devserver.launcher import LocalStack, StackOptions
from devserver.local_config import PROJECT_DIR
from devserver.testing import browser
from devserver.testing.api import Api, wait_for
from devserver.testing.console_page import ConsolePage

DEFAULT = PROJECT_DIR / "docs" / "images" / "console.png"
WIDTH = 1440
ORDERS = [("table-12-order-1", [("margherita", 2), ("tiramisu", 1)]), ("table-3-order-1", [("marinara", 1)]),
          ("table-8-order-1", [("insalata", 2), ("panna cotta", 2)]), ("table-12-order-2", [("tiramisu", 2)])]
UNKNOWN = ("table-5-order-1", [("durian pizza", 1)])
POISONED = ["table-7-order-1", "table-9-order-1"]  # the first runs out of retries, the second is caught retrying


def take(path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="console-screenshot-") as state:
        flag = Path(state) / "poison-on"
        flag.touch()
        options = StackOptions(state_dir=Path(state) / "stack",
                               business_logic="devserver.testing.logic:poison_while_flagged",
                               function_env={"POISON_FLAG": str(flag)})
        with LocalStack(options) as stack, browser.chromium(WIDTH, 800) as driver:
            api = Api(stack.api_url)

            def put(key: str, dishes: List[tuple[str, int]], **extra: str) -> str:
                order = {"table": int(key.split("-")[1]), "items": [{"dish": d, "qty": q} for d, q in dishes], **extra}
                return api.accepted(order, {"Idempotency-Key": key})
            # The healthy ones first: a poisoned record holds its shard while it is retried.
            for key, dishes in [*ORDERS, UNKNOWN]:
                api.finished(put(key, dishes))
            out_of_retries = put(POISONED[0], [("quattro formaggi", 1)], note="poison")
            api.status_is(out_of_retries, "FAILED", timeout=60)
            retrying = put(POISONED[1], [("margherita", 1)], note="poison")
            wait_for(lambda: api.get(retrying)[1].get("attempts", 0) >= 2, 15, f"{retrying} retried")
            page = ConsolePage(driver, stack.api_url).open()
            page.wait_row("PENDING", f"{ANONYMOUS}/{retrying}")
            page.wait_row("FAILED", f"{ANONYMOUS}/{out_of_retries}")
            page.wait_row("SUCCEEDED", f"{ANONYMOUS}/{ORDERS[-1][0]}")
            page.screenshot(path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.console_screenshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)
    problem = browser.missing()
    if problem:
        parser.error(problem)
    take(args.path)
    print(args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
