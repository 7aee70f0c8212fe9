"""What every scenario does after its load: wait for the requests to finish, then check them all."""
from __future__ import annotations

import re
import time
from typing import Callable, Dict, List, Set, Tuple

from chalicelib.ownership import public_id
from devserver.launcher import LocalStack
from reliability.load import Sent
from reliability.stack import runs_file
from reliability.stream_check import check_stream
from reliability.verify import Findings, Item, check, read_runs, wait_terminal


def settle_and_check(stack: LocalStack, sent: List[Sent], allowed: Set[int], deadline_s: float,
                     progress: Callable[[str], None] = print) -> Findings:
    """Waits (at most `deadline_s`) until no request is PENDING, then checks every request:
    the accepted ones and those that were refused. Each owner's requests are read under its own
    keys; a key may stand for one request only (two owners' plans use different prefixes)."""
    # Accepted ones first, in the order they were accepted: roughly the stream's order.
    ordered = sorted(sent, key=lambda s: (s.accepted_at is None, s.accepted_at or 0.0))
    by_owner: Dict[str, List[str]] = {}
    for s in ordered:
        by_owner.setdefault(s.planned.owner, []).append(s.planned.key)
    if sum(map(len, by_owner.values())) != len({s.planned.key for s in sent}):
        raise ValueError("a key is planned twice: the checks find requests by key")
    dynamodb = stack.client("dynamodb")  # the database itself, never through the fault proxy
    deadline = time.monotonic() + deadline_s
    items: Dict[str, Item] = {}
    for owner, keys in by_owner.items():
        items.update(wait_terminal(dynamodb, stack.table_name, keys, deadline, progress, owner=owner))
    found = check(sent, items, read_runs(runs_file(stack.state_dir)), allowed)
    stream = check_stream(dynamodb, stack.client("dynamodbstreams"), stack.table_name)
    found.stream_records, found.stream_out_of_order = stream.records, stream.out_of_order
    if stream.out_of_order:
        found.notes.append(f"the stream holds {stream.out_of_order} record(s) whose sequence number does not "
                           f"increase, {len(stream.skipped_inserts)} of them INSERTs the runner cannot deliver: "
                           + ", ".join(sorted(stream.skipped_inserts)[:5]))
    return found


# One log line per write-back the processor gave up on (Powertools JSON; fields in this order); its
# request_id is the item's key, "<owner>/<id>".
# Matched inside a line rather than parsed as one: the function instances and the app host share
# one stdout, and a `print` (the EMF metrics) can glue another line onto a log line.
WRITE_BACK_FAILED = re.compile(rb'"message":"write-back failed; will be retried"[^{}]*?"request_id":"([^"]+)"')


def write_back_failures(stack: LocalStack, findings: Findings) -> Tuple[Set[str], List[str]]:
    """Request ids whose write-back the processor gave up on (it logs each, then Lambda retries):
    the only way a storage fault can make the business logic run twice; and the duplicated
    requests that are not among them (unexplained)."""
    # The function instances log to the app host's stdout, which the launcher sends to app.log.
    app_log = stack.logs / "app.log"
    gave_up: Set[str] = set()
    if app_log.exists():
        with app_log.open("rb") as handle:
            gave_up = {public_id(match.group(1).decode())
                       for line in handle for match in WRITE_BACK_FAILED.finditer(line)}
    return gave_up, sorted(set(findings.duplicated) - gave_up)
