"""Example business logic: a restaurant order taker. Replace it with your own function.

Contract for any business logic: take the request (a JSON object as a dict), return a
JSON-compatible result (stored on the item), raise RejectedRequest when the request can never
succeed (the item becomes FAILED with your message) or TransientError when a retry may succeed.
Anything else raised counts as a permanent failure named after the exception's type.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from chalicelib.errors import RejectedRequest

MENU: Mapping[str, int] = {
    # dish -> minutes in the kitchen
    "margherita": 12,
    "marinara": 10,
    "quattro formaggi": 14,
    "insalata": 5,
    "tiramisu": 3,
    "panna cotta": 3,
}
TABLES = range(1, 501)
MAX_QTY = 50


def take_order(order: Mapping[str, Any]) -> Dict[str, Any]:
    table = order.get("table")
    if isinstance(table, bool) or not isinstance(table, int) or table not in TABLES:
        raise RejectedRequest(f"table must be a whole number from 1 to 500, got {table!r}")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        raise RejectedRequest("items must be a non-empty list of {dish, qty}")
    note = order.get("note")
    if note is not None and not isinstance(note, str):
        raise RejectedRequest("note must be text")
    portions: Dict[str, int] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise RejectedRequest(f"item {position} must be an object with dish and qty")
        dish, qty = item.get("dish"), item.get("qty")
        if dish not in MENU:
            raise RejectedRequest(f"unknown dish {dish!r}: not on the menu")
        assert isinstance(dish, str)  # for mypy: it equals a key of MENU, and JSON has no other type equal to a str
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
            raise RejectedRequest(f"qty of {dish} must be a whole number from 1 to {MAX_QTY}, got {qty!r}")
        portions[dish] = portions.get(dish, 0) + qty
    return {
        "table": table,
        "portions": portions,
        "totalPortions": sum(portions.values()),
        "readyInMinutes": max(MENU[dish] for dish in portions),
    }
