"""`chalice local` hook (issue 9): not built yet."""
from __future__ import annotations

from typing import Any


def install(app: Any, context: Any) -> None:
    """Nothing yet: `chalice local` behaves as Chalice alone."""
