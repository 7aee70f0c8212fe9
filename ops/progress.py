"""Progress of a bulk retry: a live bar with rate and ETA on a terminal, nothing otherwise.

Only a terminal gets the bar (it redraws itself with control characters, which a log file or
a pipe would keep as garbage); elsewhere the caller's summary and failure lines are the output.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ops.bulk import Outcome


class RateColumn(ProgressColumn):
    """Requests per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


@contextmanager
def progress_bar(err: TextIO, total: int, label: str) -> Iterator[Callable[[Outcome], None]]:
    """Yields the callback that counts each outcome; draws on `err` only if it is a terminal."""
    if not err.isatty():
        yield lambda outcome: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[failed]} failed"), RateColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=err), transient=False) as bar:
        task = bar.add_task(label, total=total, failed=0)
        failed = 0

        def advance(outcome: Outcome) -> None:
            nonlocal failed
            failed += 0 if outcome.retried else 1
            bar.update(task, advance=1, failed=failed)

        yield advance
