"""Scenario 5, owners: two producers share the API (`--auth iam`), each tries to reach the other's
requests, and an operator sees everyone's.

ALICE and BOB (access key ids, so owners iam-ALICE and iam-BOB) PUT N signed requests between them
from 16 clients, 30% of them unknown dishes (FAILED: the ones a retry could change). Then, with
seeded choices, in two waves, one while the pipeline works through the load (requests PENDING)
and one once every request is finished:
- each producer GETs and retries a fifth of the other's requests by id: 404 "no request with id
  <id>", as for an id nobody used, never 200, 202 or 409;
- it lists its PENDING and FAILED requests page by page (seeded page sizes), in the second wave also
  from a cursor naming one of the other's items: only its own, and in the second wave all of its
  FAILED ones;
- it calls every /admin route: 403;
- in the first wave, unsigned, wrongly signed (another secret, another region) calls as the other
  producer PUT, GET, retry and list: 403, and nothing is stored; a valid signature of one path sent
  to another: 403; and each producer stores a request under 3 of the other's keys: its own, 202;
- in the second wave, every owner-ish id of reliability/cross_owner.py's OWNER_ISH (the other's id
  with its owner in front, "/" raw or encoded, "..", ...) on both routes, for 2 of the other's
  requests: the refusal listed there, the same as for an id nobody used.
No attempt may change an item: the table is read before and after the second wave and must be
the same; the first wave's would show as a 202 or a second run. The load itself is checked as in
the load scenario (every request stored, finished as dictated, run once). Last, the operator
lists every FAILED request of both owners, reads some of each, and retries 3 of each (202; they
end FAILED again, the other producer still gets 404).
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from chalicelib.attributes import from_attribute
from chalicelib.orders import MENU, take_order
from chalicelib.ownership import item_key, owner_of, public_id, split_key
from chalicelib.requests_api import encode_cursor
from devserver.launcher import LocalStack
from devserver.testing.api import Api, wait_for
from reliability.common import settle_and_check
from reliability.cross_owner import (
    IMPOSTORS,
    NOT_AN_OPERATOR,
    NOT_FOUND,
    OWNER_ISH,
    ROUTES,
    SIGNATURE_MISMATCH,
    OwnerIshId,
    Tally,
    forbidden_problem,
    foreign,
    list_pages,
    not_found,
    refusal_problem,
    replayed,
    try_owner_ish,
)
from reliability.load import Planned, Sender, plan
from reliability.report import Result
from reliability.stack import dead_parts, runs_file, scenario_stack
from reliability.verify import read_runs

NAME = "owners"
FULL_SIZE = 1_000
CLIENTS = 16
PRODUCERS = ("ALICE", "BOB")  # access key ids: each is a principal of its own on the local stack
OPERATOR = "OPS"
UNKNOWN_SHARE = 0.3
PROBED_SHARE = 0.2  # of each producer's requests, the other reads and retries in each wave
TWINS = 3  # per producer: keys of its requests the other stores a request of its own under
HOSTILE_VICTIMS = 2  # per producer: requests every OWNER_ISH shape names
OPERATOR_READS, OPERATOR_RETRIES = 5, 3  # per producer
WORKERS = 8  # attempts in flight at once
Item = Dict[str, Any]
Answers = List[Tuple[str, Optional[int], Optional[str]]]  # (kind, status, problem): Tally.add's arguments
Attempt = Callable[[], Answers]


def run(backend: str, size: int, seed: int, state: Path) -> Result:
    began = time.monotonic()
    rng = random.Random(seed)
    owners = {key: owner_of({"user": key}) for key in PRODUCERS}
    plans = {owner: plan(f"owners-{seed}-{key.lower()}", size // 2 + (size % 2 if i else 0), seed + i,
                         unknown_share=UNKNOWN_SHARE, owner=owner)
             for i, (key, owner) in enumerate(owners.items())}
    planned = [p for ps in plans.values() for p in ps]
    rng.shuffle(planned)
    other = {owners[PRODUCERS[0]]: owners[PRODUCERS[1]], owners[PRODUCERS[1]]: owners[PRODUCERS[0]]}
    twins = {owner: rng.sample(ps, TWINS) for owner, ps in plans.items()}  # the other stores under their keys
    twin_keys = {p.key for ps in twins.values() for p in ps}
    probed = {owner: rng.sample([p for p in ps if p.key not in twin_keys], max(1, round(len(ps) * PROBED_SHARE)))
              for owner, ps in plans.items()}
    tally = Tally()
    refused_keys: Set[str] = set()
    with scenario_stack(backend, state, auth="iam", operators=frozenset({OPERATOR})) as stack:
        apis = {owner: Api(stack.api_url, key) for key, owner in owners.items()}
        sent = Sender(stack.api_url, planned, clients=CLIENTS, seed=seed, callers=apis).run(deadline_s=60 + size / 5)
        # Wave 1, while the pipeline works: nothing was read back yet.
        attempts = [*_reads_and_retries(apis, other, probed),
                    *_listings(apis, rng, plans, twins, other, before=None),
                    *_admin(apis, other, probed),
                    *_impostors(stack.api_url, apis, other, probed, seed, refused_keys),
                    *_twin_puts(apis, other, twins)]
        _attempt(attempts, tally)
        findings = settle_and_check(stack, sent, allowed=set(), deadline_s=60 + size / 5)
        twin_problems = _twins_finished(apis, other, twins)
        before = _snapshot(stack)
        # Wave 2, every request finished: the table must not change.
        victims = {owner: rng.sample(probed[owner], HOSTILE_VICTIMS) for owner in plans}
        _attempt([*_reads_and_retries(apis, other, probed),
                  *_listings(apis, rng, plans, twins, other, before=before),
                  *_admin(apis, other, probed),
                  *_owner_ish(apis, other, victims)], tally)
        after = _snapshot(stack)
        operator = _operator(Api(stack.api_url, OPERATOR), apis, other, rng, after, twin_keys)
        errors = dead_parts(stack)
    changed = sorted(key for key in before if after.get(key) != before[key])
    stored = sorted(key for key in after if public_id(key) in refused_keys)
    runs = read_runs(runs_file(state))
    ran = sorted(key for key in refused_keys if runs.get(key))
    findings.cross_owner += tally.violations + twin_problems + operator.problems \
        + [f"{k}: changed by the attempts of wave 2" for k in changed] \
        + [f"{k}: stored by a refused PUT" for k in stored] + [f"{k}: ran after a refused PUT" for k in ran]
    calls = tally.total()
    return Result(
        NAME, backend, size,
        load=f"{size:,} signed PUTs from {len(PRODUCERS)} producers ({', '.join(owners.values())}), {CLIENTS} clients",
        faults=f"{calls:,} cross-owner, owner-ish-id and unsigned attempts (seed {seed})",
        findings=findings, runtime_s=time.monotonic() - began, state=state, errors=errors,
        facts={
            "reads": f"GET of the other's id {tally.describe('cross-owner GET')}, retry "
                     f"{tally.describe('cross-owner retry')}: each 404 as for an unknown id",
            "ids": f"{len(OWNER_ISH)} owner-ish id shapes x {len(ROUTES)} routes x {HOSTILE_VICTIMS * len(owners)} "
                   f"requests {tally.describe('owner-ish id')}, each answered as the shape naming an unused id",
            "lists": f"{tally.describe('listing page')} listing pages, {tally.total('cursor listing page')} from a "
                     f"cursor naming the other's item: no foreign id, every own FAILED listed",
            "auth": f"producers at /admin {tally.describe('producer at /admin')}; "
                    + "; ".join(f"{i.name} {tally.describe(i.name)}" for i in IMPOSTORS)
                    + f"; replayed signature {tally.describe('replayed signature')}; "
                      f"{len(refused_keys)} refused PUTs, {len(stored)} stored",
            "twins": f"{tally.describe('twin PUT')} PUTs under the other's key, each its own request",
            "items": f"{len(before):,} items, {len(changed)} changed by wave 2's attempts",
            "operator": operator.summary,
        },
        table_notes=[f"{calls:,} attempts on the other owner's requests or unsigned, "
                     f"{len(tally.violations)} not refused as promised; {len(changed)} items changed",
                     operator.summary])


# --- the attempts ----------------------------------------------------------------------------------

def _attempt(attempts: List[Attempt], tally: Tally) -> None:
    """Makes them from WORKERS threads; their answers are tallied in the order they were planned."""
    def make(attempt: Attempt) -> Answers:
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 - no answer, or one that is not JSON: reported, not raised
            return [("attempt without an answer", None, repr(exc)[:300])]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for answers in pool.map(make, attempts):
            for kind, status, problem in answers:
                tally.add(kind, status, problem)


def _reads_and_retries(apis: Dict[str, Api], other: Dict[str, str], probed: Dict[str, List[Planned]]) -> List[Attempt]:
    def attempt(attacker: Api, request_id: str, route: str) -> Attempt:
        def go() -> Answers:
            got = attacker.get(request_id) if route == "GET" else attacker.retry(request_id)
            problem = refusal_problem(NOT_FOUND, got, request_id)
            return [(f"cross-owner {route}", got[0], problem and f"{request_id}: {problem}")]
        return go
    return [attempt(apis[other[victim]], p.key, route)
            for victim, ps in probed.items() for p in ps for route in ROUTES]


def _listings(apis: Dict[str, Api], rng: random.Random, plans: Dict[str, List[Planned]],
              twins: Dict[str, List[Planned]], other: Dict[str, str],
              before: Optional[Dict[str, Item]]) -> List[Attempt]:
    """Each producer lists its PENDING and FAILED ones. Once `before` (every item, all finished) is
    known: its FAILED listing must be complete, each listed item its own item (an id both owners
    use is listed with the caller's createdAt), and it also lists from a cursor naming one of the
    other's FAILED items."""
    attempts: List[Attempt] = []
    for owner, api in apis.items():
        # Its own ids: what it planned and the twins it stored under the other's keys.
        own = {p.key for p in plans[owner]} | {p.key for p in twins[other[owner]]}
        mine = {k: v for k, v in (before or {}).items() if split_key(k)[0] == owner}
        failed = {public_id(k) for k, v in mine.items() if v.get("status") == "FAILED"} if before else None
        attempts += [_listing(api, owner, "PENDING", rng.randint(1, 100), own, mine),
                     _listing(api, owner, "FAILED", rng.randint(1, 100), own, mine, complete=failed)]
        theirs = sorted(k for k, v in (before or {}).items()
                        if split_key(k)[0] == other[owner] and v.get("status") == "FAILED")
        if before and theirs:
            victim = before[rng.choice(theirs)]
            cursor = encode_cursor({"id": {"S": victim["id"]}, "listStatus": {"S": "FAILED"},
                                    "createdAt": {"N": str(victim["createdAt"])}})
            attempts.append(_listing(api, owner, "FAILED", rng.randint(1, 100), own, mine, cursor=cursor))
    return attempts


def _listing(api: Api, owner: str, status: str, limit: int, own: Set[str], mine: Dict[str, Item], *,
             complete: Optional[Set[str]] = None, cursor: Optional[str] = None) -> Attempt:
    def go() -> Answers:
        items, statuses, problems = list_pages(api, status, limit=limit, cursor=cursor)
        alien = foreign(items, own)
        if alien:
            problems.append(f"listing {status} holds another's ids: {', '.join(alien[:5])}")
        for item in items:
            stored = mine.get(item_key(owner, str(item.get("id"))))
            if stored is not None and stored.get("createdAt") != _epoch_ms(item.get("createdAt")):
                problems.append(f"listing {status}: {item.get('id')} is not the caller's item (createdAt)")
        missing = sorted((complete or set()) - {str(item.get("id")) for item in items})
        if missing:
            problems.append(f"listing {status} misses own ids: {', '.join(missing[:5])}")
        kind = "cursor listing page" if cursor else "listing page"
        return [(kind, code, None) for code in statuses] + [(kind, None, p) for p in problems]
    return go


def _admin(apis: Dict[str, Api], other: Dict[str, str], probed: Dict[str, List[Planned]]) -> List[Attempt]:
    def attempt(api: Api, victim: str, request_id: str) -> Attempt:
        def go() -> Answers:
            answers = (api.operator_list("FAILED"), api.operator_get(victim, request_id),
                       api.operator_retry(victim, request_id))
            return [("producer at /admin", got[0], forbidden_problem(got, NOT_AN_OPERATOR)) for got in answers]
        return go
    return [attempt(api, other[owner], probed[other[owner]][0].key) for owner, api in apis.items()]


def _impostors(url: str, apis: Dict[str, Api], other: Dict[str, str], probed: Dict[str, List[Planned]], seed: int,
               refused_keys: Set[str]) -> List[Attempt]:
    """Calls as a producer without its signature (a PUT with a fresh key, a GET, a retry, a listing),
    and the other producer's valid signature of another path."""
    def impostor(fake: Api, name: str, message: str, key: str, victim: str) -> Attempt:
        def go() -> Answers:
            answers = (fake.put({"ref": key, "table": 1, "items": [{"dish": "margherita", "qty": 1}]},
                                {"Idempotency-Key": key}),
                       fake.get(victim), fake.retry(victim), fake.list("FAILED"))
            return [(name, got[0], forbidden_problem(got, message)) for got in answers]
        return go

    def replay(attacker: Api, own: str, victim: str) -> Attempt:
        def go() -> Answers:
            got = replayed(attacker, f"/requests/{own}", f"/requests/{victim}")
            return [("replayed signature", got[0], forbidden_problem(got, SIGNATURE_MISMATCH))]
        return go

    attempts: List[Attempt] = []
    for owner, api in apis.items():
        victim = probed[owner][0].key
        for i in IMPOSTORS:
            key = f"owners-{seed}-refused-{i.name.replace(' ', '-')}-{api.access_key}".lower()
            refused_keys.add(key)
            attempts.append(impostor(i.api(url, str(api.access_key)), i.name, i.message, key, victim))
        attempts.append(replay(apis[other[owner]], probed[other[owner]][0].key, victim))
    return attempts


def _twin_order(index: int) -> Dict[str, Any]:
    """A valid order without a `ref` (the counting logic records it as "?"); a plan's quantities are 1 to
    5, so its result is unlike any planned request's."""
    return {"table": 1 + index, "items": [{"dish": sorted(MENU)[index % len(MENU)], "qty": 40}]}


def _twin_puts(apis: Dict[str, Api], other: Dict[str, str], twins: Dict[str, List[Planned]]) -> List[Attempt]:
    def attempt(api: Api, key: str, index: int) -> Attempt:
        def go() -> Answers:
            got = api.put(_twin_order(index), {"Idempotency-Key": key})
            return [("twin PUT", got[0], None if got == (202, {"id": key}) else f"{key}: {got[0]} {got[1]}")]
        return go
    return [attempt(apis[other[victim]], p.key, i) for victim, ps in twins.items() for i, p in enumerate(ps)]


def _twins_finished(apis: Dict[str, Api], other: Dict[str, str], twins: Dict[str, List[Planned]]) -> List[str]:
    """Under each twin key, each owner reads its own request: the victim's as planned, the other's
    as its own order dictates."""
    problems = []
    for victim, ps in twins.items():
        for index, p in enumerate(ps):
            for owner, expected in ((victim, (p.expect, p.result)),
                                    (other[victim], ("SUCCEEDED", take_order(_twin_order(index))))):
                try:
                    seen = apis[owner].finished(p.key, timeout=30)
                except AssertionError as exc:
                    problems.append(f"{owner}'s {p.key}: {exc}")
                    continue
                if (seen.get("status"), seen.get("result")) != expected:
                    problems.append(f"{owner}'s {p.key}: {seen.get('status')} {seen.get('result')}, not its own "
                                    f"{expected}")
    return problems


def _owner_ish(apis: Dict[str, Api], other: Dict[str, str], victims: Dict[str, List[Planned]]) -> List[Attempt]:
    def attempt(attacker: Api, shape: OwnerIshId, route: str, owner: str, key: str) -> Attempt:
        def go() -> Answers:
            status, problem = try_owner_ish(attacker, shape, route, owner, key)
            return [("owner-ish id", status, problem and f"{key}: {problem}")]
        return go
    return [attempt(apis[other[victim]], shape, route, victim, p.key)
            for victim, ps in victims.items() for p in ps for shape in OWNER_ISH for route in ROUTES]


# --- what operators see ---------------------------------------------------------------------------

class OperatorView:
    def __init__(self) -> None:
        self.problems: List[str] = []
        self.summary = ""


def _operator(operator: Api, apis: Dict[str, Api], other: Dict[str, str], rng: random.Random,
              items: Dict[str, Item], twin_keys: Set[str]) -> OperatorView:
    """The operator lists every FAILED request, reads some of each owner's and retries some (not
    under a twin key: the other producer has its own request there)."""
    view = OperatorView()
    failed = {k for k, v in items.items() if v.get("status") == "FAILED"}
    listed, pages, view.problems = list_pages(operator, "FAILED", limit=100, operator=True)
    view.problems += [f"operator listing page: {code}" for code in pages if code != 200]
    seen = {item_key(str(i.get("owner")), str(i.get("id"))) for i in listed}
    if seen != failed:
        view.problems.append(f"operator listing: {len(failed - seen)} FAILED missing, {len(seen - failed)} extra")
    reads = retries = 0
    for owner in apis:
        keys = sorted(k for k in items if split_key(k)[0] == owner)
        for key in rng.sample(keys, min(OPERATOR_READS, len(keys))):
            code, answer = operator.operator_get(*split_key(key))
            reads += 1
            if code != 200 or (answer.get("owner"), answer.get("id"), answer.get("status")) != (
                    *split_key(key), items[key].get("status")):
                view.problems.append(f"operator GET {key}: {code} {answer}")
        theirs = sorted(k for k in failed if split_key(k)[0] == owner and public_id(k) not in twin_keys)
        for key in rng.sample(theirs, min(OPERATOR_RETRIES, len(theirs))):
            request_id = public_id(key)
            got = operator.operator_retry(owner, request_id)
            retries += 1
            if got != (202, {"id": request_id, "status": "PENDING"}):
                view.problems.append(f"operator retry {key}: {got}")
            refused = apis[other[owner]].get(request_id)
            if refused != (404, not_found(request_id)):
                view.problems.append(f"{other[owner]} GET of {key} after the operator's retry: {refused}")
            view.problems += _failed_again(apis[owner], request_id)
    for bad_owner, expected in (("nobody", 400), ("iam-CAROL", 404)):
        code, _ = operator.operator_get(bad_owner, "x")
        if code != expected:
            view.problems.append(f"operator GET /admin/requests/{bad_owner}/x: {code}, not {expected}")
    view.summary = (f"listed {len(seen & failed)} of {len(failed)} FAILED of both owners in {len(pages)} pages, "
                    f"read {reads}, retried {retries} (each FAILED again after a second attempt)")
    return view


def _failed_again(api: Api, request_id: str) -> List[str]:
    def again() -> Optional[Dict[str, Any]]:
        code, answer = api.get(request_id)
        return answer if code == 200 and answer.get("status") == "FAILED" and answer.get("attempts") == 2 else None
    try:
        wait_for(again, timeout=60, what=f"{request_id} FAILED after its retry")
    except AssertionError as exc:
        return [str(exc)]
    return []


# --- the table --------------------------------------------------------------------------------------

def _snapshot(stack: LocalStack) -> Dict[str, Item]:
    """Every item, by key (consistent reads)."""
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.table_name, ConsistentRead=True)
    return {raw["id"]["S"]: {k: from_attribute(v) for k, v in raw.items()} for page in pages for raw in page["Items"]}


def _epoch_ms(iso: Any) -> Optional[int]:
    if not isinstance(iso, str):
        return None
    return int(round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000))
