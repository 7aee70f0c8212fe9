"""How long to wait before trying an API call again, and for how many attempts.

Exponential backoff with full jitter (a random wait up to base * 2^n, capped): concurrent workers
throttled at the same moment do not come back at the same moment. A `Retry-After` the API sends
(API Gateway and our routes do, on 429 and 503) is honoured as the least wait, plus a little
jitter; one asking for more than `max_wait` ends the attempts instead, so a run stays bounded.
Sleep, randomness and the clock are injected: tests never wait.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable, Optional

DEFAULT_ATTEMPTS = 5
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Backoff:
    attempts: int = DEFAULT_ATTEMPTS  # in all, the first included
    base: float = 0.25
    cap: float = 8.0
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def wait(self, attempt: int, retry_after: Optional[str] = None) -> Optional[float]:
        """Seconds to wait after failed attempt number `attempt` (1-based), or None to give up."""
        if attempt >= self.attempts:
            return None
        jitter = self.random() * min(self.cap, self.base * 2 ** (attempt - 1))
        asked = retry_after_seconds(retry_after, self.clock()) if retry_after else None
        if asked is None:
            return jitter
        if asked > self.max_wait:
            return None
        return asked + self.random() * self.base


def retry_after_seconds(value: str, now: float) -> Optional[float]:
    """A `Retry-After` header's wait in seconds: delay-seconds or an HTTP date; None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)
