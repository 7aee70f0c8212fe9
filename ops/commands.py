"""What each subcommand does, given an Api and the streams to write to. Each returns its exit code
(0 done, 1 something failed); errors that end a command early are raised as ops.errors' OpsError."""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List, Sequence, TextIO

from ops.bulk import Outcome, retry_each
from ops.client import PAGE_SIZE, Api, RequestName
from ops.errors import ApiError
from ops.progress import progress_bar


def show(api: Api, name: RequestName, out: TextIO) -> int:
    out.write(json.dumps(api.show(name), indent=2) + "\n")
    return 0


def list_requests(api: Api, status: str, limit: int, out: TextIO) -> int:
    print_items(api.all(status, page_size=min(limit, PAGE_SIZE)), limit, out)
    return 0


def print_items(items: Iterable[Dict[str, Any]], limit: int, out: TextIO) -> None:
    for count, item in enumerate(items):
        if count >= limit:
            break
        error = item.get("error", {}).get("message", "")
        fields = (RequestName.of(item), item["status"], item["createdAt"], f"attempts={item['attempts']}", error)
        out.write("\t".join(map(str, fields)) + "\n")


def retry(api: Api, names: Sequence[RequestName], concurrency: int, out: TextIO, err: TextIO) -> int:
    with progress_bar(err, len(names), "retrying") as advance:
        outcomes = retry_each(api, names, concurrency, advance)
    return report(outcomes, out, err)


def retry_failed(api: Api, concurrency: int, confirm: Callable[[int], bool], out: TextIO, err: TextIO) -> int:
    names = [RequestName.of(item) for item in api.all("FAILED")]
    if not names:
        out.write("no FAILED requests\n")
        return 0
    if not confirm(len(names)):
        err.write("nothing retried\n")
        return 1
    return retry(api, names, concurrency, out, err)


def report(outcomes: List[Outcome], out: TextIO, err: TextIO) -> int:
    """Each failure on its own line (stderr), then the summary (stdout); 1 unless all were retried."""
    for outcome in outcomes:
        if outcome.error is not None:
            # An ApiError's text starts with the request's name already; the others are about the API.
            prefix = "" if isinstance(outcome.error, ApiError) else f"{outcome.name}: "
            err.write(f"{prefix}{outcome.error}\n")
    retried = sum(outcome.retried for outcome in outcomes)
    failed = sum(outcome.error is not None for outcome in outcomes)
    skipped = sum(not outcome.attempted for outcome in outcomes)
    out.write(f"retried {retried} of {len(outcomes)}" + (f"; {failed} failed" if failed else "")
              + (f"; {skipped} not attempted (the run stopped after the error above)" if skipped else "") + "\n")
    return 0 if retried == len(outcomes) else 1


def ask(question: str, stdin: TextIO, err: TextIO) -> bool:
    """A y/N question on a terminal; anything but y or yes (end of input included) is no."""
    err.write(f"{question} [y/N] ")
    err.flush()
    return stdin.readline().strip().lower() in ("y", "yes")
