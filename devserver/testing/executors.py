"""An executor for the stream runner whose calls run only when the test says, in the order it says;
and a meter of how many calls run at once.

The runner submits each invocation to its executor and settles it when the future is done
(devserver/stream/runner.py). With ManualExecutor nothing runs at submit: the test decides when
each batch's handler runs and so in which order concurrent batches finish, deterministically.
"""
from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple


@dataclass
class Call:
    future: "Future[Any]"
    fn: Callable[..., Any]
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]


class ManualExecutor(Executor):
    """Keeps submitted calls pending; `run(i)` runs the i-th of them and completes its future."""

    def __init__(self) -> None:
        self.pending: List[Call] = []
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        call = Call(Future(), fn, args, kwargs)
        self.pending.append(call)
        self.submitted += 1
        return call.future

    def run(self, index: int = 0) -> Call:
        call = self.pending.pop(index)
        try:
            call.future.set_result(call.fn(*call.args, **call.kwargs))
        except Exception as exc:  # the future carries it, as a pool's would
            call.future.set_exception(exc)
        return call

    def run_all(self) -> None:
        while self.pending:
            self.run(0)


class PeakConcurrency:
    """How many callers are inside at once, and the most there ever were: `with meter: <work>`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def __enter__(self) -> "PeakConcurrency":
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        return self

    def __exit__(self, *_: Any) -> None:
        with self._lock:
            self.inside -= 1
