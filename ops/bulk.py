"""Retrying many requests at once: at most `concurrency` in flight, outcomes in the order given.

An error about one request (RequestFailed: 400, 404, 409) is that request's outcome and the
others go on. Any other error (unreachable, access denied, still throttled) would fail every
request after it the same way, after its own backoff: the run stops starting new ones, and
those are reported as not attempted rather than tried for minutes in vain.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from ops.client import Api, RequestName
from ops.errors import OpsError, RequestFailed


@dataclass(frozen=True)
class Outcome:
    name: RequestName
    error: Optional[OpsError] = None  # None and attempted: retried
    attempted: bool = True

    @property
    def retried(self) -> bool:
        return self.attempted and self.error is None


def retry_each(api: Api, names: Sequence[RequestName], concurrency: int,
               on_done: Callable[[Outcome], None] = lambda outcome: None) -> List[Outcome]:
    """One Outcome per request, in the order of `names`; `on_done` is called (in this thread) as each finishes."""
    stop = threading.Event()

    def retry_one(name: RequestName) -> Outcome:
        if stop.is_set():
            return Outcome(name, attempted=False)
        try:
            api.retry(name)
        except RequestFailed as exc:
            return Outcome(name, exc)
        except OpsError as exc:
            stop.set()
            return Outcome(name, exc)
        return Outcome(name)

    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="retry")
    try:
        futures: List[Future[Outcome]] = [executor.submit(retry_one, name) for name in names]
        for future in as_completed(futures):
            on_done(future.result())
    except BaseException:
        # Ctrl-C (or a bug): start nothing more, let the calls in flight end, then stop.
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return [future.result() for future in futures]
