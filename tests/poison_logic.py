"""Business logic for fault tests, run by the local runner (--business-logic tests.poison_logic:handle).

An order whose note is "poison" fails transiently for as long as the file named by POISON_FLAG
exists: deleting the file is "deploying the fix"."""
import os
from pathlib import Path
from typing import Any, Mapping

from chalicelib.errors import TransientError
from chalicelib.orders import take_order


def handle(order: Mapping[str, Any]) -> Any:
    if order.get("note") == "poison" and Path(os.environ["POISON_FLAG"]).exists():
        raise TransientError("the kitchen printer is jammed")
    return take_order(order)
