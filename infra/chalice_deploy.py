"""`chalice deploy` hook (issue 10): not built yet."""
from __future__ import annotations

from typing import Any


def install(app: Any, context: Any) -> None:
    """Nothing yet: `chalice deploy` behaves as Chalice alone."""
