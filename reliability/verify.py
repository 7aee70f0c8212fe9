"""The checks: what each client was told, against what the table and the runs file hold.

Items are read from the database directly (never through the fault proxy), by their key (the
owner's "<owner>/<id>", chalicelib/ownership.py), with consistent reads; the checks go by the id
the client was answered with. The business logic's runs come from the runs file
devserver/testing/logic.py's `counting` appends to.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

from chalicelib.attributes import from_attribute
from chalicelib.ownership import ANONYMOUS, item_key, public_id
from reliability.load import NO_ANSWER, Attempt, Sent

TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
# Answers after which the request may or may not be stored: no answer at all, and every answer
# whose message says so (API Gateway's INTEGRATION_TIMEOUT 504 and INTEGRATION_FAILURE 503: the
# connection to DynamoDB broke, possibly after the put landed). The checks accept either outcome
# for those; every other refusal must have left no item.
UNKNOWN_OUTCOME = frozenset({NO_ANSWER, 504})
MAY_BE_STORED = "may or may not be stored"
_BATCH = 100


def outcome_unknown(attempt: Attempt) -> bool:
    return attempt.status in UNKNOWN_OUTCOME or (attempt.status != 202 and MAY_BE_STORED in attempt.detail)


@dataclass(frozen=True)
class Item:
    status: str
    error_type: Optional[str]
    result: Any
    created_ms: int
    updated_ms: int
    redriven: bool = False  # the reconciler re-drove it through the stream


def read_items(dynamodb: Any, table: str, keys: Iterable[str], owner: str = ANONYMOUS) -> Dict[str, Item]:
    """`owner`'s requests of these ids, by id: consistent BatchGetItem, 100 a call; unprocessed keys
    are asked again (bounded)."""
    found: Dict[str, Item] = {}
    ordered = list(keys)
    for start in range(0, len(ordered), _BATCH):
        wanted = [{"id": {"S": item_key(owner, k)}} for k in ordered[start:start + _BATCH]]
        for _ in range(20):
            if not wanted:
                break
            answer = dynamodb.batch_get_item(RequestItems={table: {
                "Keys": wanted, "ConsistentRead": True,
                "ProjectionExpression": "id, #s, #e, #r, createdAt, updatedAt, redriven",
                "ExpressionAttributeNames": {"#s": "status", "#e": "error", "#r": "result"}}})
            for raw in answer["Responses"].get(table, []):
                item = {k: from_attribute(v) for k, v in raw.items()}
                found[public_id(item["id"])] = Item(item.get("status", ""), (item.get("error") or {}).get("type"),
                                         item.get("result"), int(item.get("createdAt", 0)),
                                         int(item.get("updatedAt", 0)), bool(item.get("redriven")))
            wanted = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if wanted:
            raise RuntimeError(f"{len(wanted)} keys stayed unprocessed after 20 BatchGetItem calls")
    return found


def wait_terminal(dynamodb: Any, table: str, keys: List[str], deadline: float,
                  progress: Callable[[str], None] = print, every_s: float = 0.5,
                  stall_s: float = 60.0, owner: str = ANONYMOUS) -> Dict[str, Item]:
    """Waits until every existing item of `keys` is terminal; gives up at `deadline`
    (time.monotonic()) or when nothing has finished for `stall_s`. Then reads them all. A missing
    item is not waited for: it cannot appear later.

    Each pass reads the unfinished ids in `keys` order (the order they were accepted, which is
    roughly the stream's) 100 at a time, and stops at the first 100 of which none has finished:
    the ones after it are most likely unfinished too, so a backlog costs a few reads per pass,
    not one per request. (Not the status index: an index is what is under test, the table is
    not; and moto 5.2.5 failed such Queries with HTTP 500 under concurrent write-backs until
    devserver/moto_server.py serialised its calls.)"""
    remaining = list(keys)
    last_report = moved = time.monotonic()
    while remaining and time.monotonic() < deadline and time.monotonic() - moved < stall_s:
        still: List[str] = []
        for start in range(0, len(remaining), _BATCH):
            chunk = remaining[start:start + _BATCH]
            items = read_items(dynamodb, table, chunk, owner)
            unfinished = [k for k in chunk if k in items and items[k].status not in TERMINAL]
            still += unfinished
            if len(unfinished) == len(chunk):
                still += remaining[start + _BATCH:]
                break
        if len(still) < len(remaining):
            moved = time.monotonic()
        remaining = still
        if time.monotonic() - last_report >= 15:
            progress(f"    waiting: {len(remaining)} request(s) not finished yet")
            last_report = time.monotonic()
        if remaining:
            time.sleep(every_s)
    return read_items(dynamodb, table, keys, owner)


def read_runs(path: Path) -> Counter[str]:
    """Business-logic runs per request id (lines starting with # are the harness's markers)."""
    runs: Counter[str] = Counter()
    with path.open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n") and not line.startswith(b"#"):
                runs[line[:-1].decode()] += 1
    return runs


@dataclass
class Findings:
    """Each list holds request ids; `ok()` is what decides the exit code."""

    sent: int = 0
    accepted: int = 0
    answers: Counter[int] = field(default_factory=Counter)  # every attempt's HTTP status
    lost: List[str] = field(default_factory=list)  # 202 and no item
    stuck: List[str] = field(default_factory=list)  # 202 and not terminal by the deadline
    wrong_outcome: List[str] = field(default_factory=list)  # terminal, but not as its content dictates
    stored_without_2xx: List[str] = field(default_factory=list)  # refused, yet an item exists
    stored_unconfirmed: List[str] = field(default_factory=list)  # stored after a "may or may not" answer
    ran_without_2xx: List[str] = field(default_factory=list)  # refused, yet the business logic ran
    never_ran: List[str] = field(default_factory=list)  # finished by the logic, no run recorded
    unsent: int = 0
    bad_answers: List[str] = field(default_factory=list)  # answers the scenario does not allow
    extra_runs: int = 0  # runs beyond one per non-poison request
    duplicated: List[str] = field(default_factory=list)  # the requests those extra runs belong to
    latencies_ms: List[int] = field(default_factory=list)  # createdAt -> updatedAt, non-poison
    poison_latencies_ms: List[int] = field(default_factory=list)
    poison_runs: List[int] = field(default_factory=list)
    redriven: List[str] = field(default_factory=list)  # finished only after the reconciler re-drove them
    finished_ms: List[int] = field(default_factory=list)  # updatedAt of each stored request that finished
    stream_records: int = 0  # records in the table's stream, all read back after the scenario
    stream_out_of_order: int = 0  # of those, numbered so that a resuming reader skips them
    # Attempts on another owner's requests (or unsigned ones) that were not refused as the API
    # promises, or that changed an item (the owners scenario); each says what was tried and got.
    cross_owner: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def ok(self, duplicates_allowed: bool) -> bool:
        violations = [self.lost, self.stuck, self.wrong_outcome, self.stored_without_2xx, self.ran_without_2xx,
                      self.never_ran, self.bad_answers, self.cross_owner]
        return (not any(violations) and not self.unsent and not self.stream_out_of_order
                and (duplicates_allowed or not self.extra_runs))


def check(sent: List[Sent], items: Dict[str, Item], runs: Counter[str], allowed: Set[int]) -> Findings:
    """Everything the scenarios assert about each request; `allowed` = the HTTP answers the
    scenario permits besides 202 (e.g. 429/503 under storage faults). After an answer that
    leaves the outcome open (`outcome_unknown`), a 409 on a retry with the same key means
    "stored", and the request is checked like an accepted one."""
    found = Findings(sent=len(sent))
    for s in sent:
        key, planned = s.planned.key, s.planned
        if not s.attempts:
            found.unsent += 1
            continue
        open_outcome = confirmed = False
        for attempt in s.attempts:
            found.answers[attempt.status] += 1
            confirmed = confirmed or attempt.status == 202 or (attempt.status == 409 and open_outcome)
            expected = attempt.status in allowed or attempt.status == 202 or (attempt.status == 409 and open_outcome)
            if not expected or attempt.detail.startswith("202 with"):
                found.bad_answers.append(f"{key}: {attempt.status} {attempt.detail}")
            open_outcome = open_outcome or outcome_unknown(attempt)
        item = items.get(key)
        if not confirmed:
            if not open_outcome:
                if item is not None:
                    found.stored_without_2xx.append(key)
                if runs.get(key):
                    found.ran_without_2xx.append(key)
                continue
            if item is None:
                continue
            # Stored after an answer that said it might be: the client was not told, but the
            # request must still finish like any other (nothing stored is ever stranded).
            found.stored_unconfirmed.append(key)
        else:
            found.accepted += 1
        if item is None:
            found.lost.append(key)
            continue
        if item.status not in TERMINAL:
            found.stuck.append(key)
            continue
        found.finished_ms.append(item.updated_ms)
        if (item.status, item.error_type) != (planned.expect, planned.error_type) or \
                (planned.result is not None and item.result != planned.result):
            found.wrong_outcome.append(f"{key}: expected {planned.expect}/{planned.error_type}, "
                                       f"got {item.status}/{item.error_type}")
        if item.redriven:
            found.redriven.append(key)
        ran = runs.get(key, 0)
        if ran == 0:
            found.never_ran.append(key)
        latency = item.updated_ms - item.created_ms
        if planned.poison:
            found.poison_runs.append(ran)
            found.poison_latencies_ms.append(latency)
        else:
            found.latencies_ms.append(latency)
            if ran > 1:
                found.extra_runs += ran - 1
                found.duplicated.append(key)
    return found
