"""Cross-owner attempts on a stack with `--auth iam`: what a producer can try against another
producer's requests, and the refusal each must get (README "Who can see what", chalicelib/ownership.py).
The owners scenario (reliability/scenarios/owners.py) makes them at scale; tests/test_hostile_input.py
tries the OWNER_ISH table case by case.

What the API promises:
- another owner's request named by its id is not found: GET and POST .../retry answer 404 with the
  message an id nobody used gets, whatever state the request is in (a 409 "only a FAILED request
  can be retried" would tell that it exists);
- an id shaped to reach another owner's item (OWNER_ISH: its owner in front, "/" raw or
  percent-encoded, "..") is refused as well: 400 (not an id), 404 (an id of the caller's own that
  does not exist) or, for a path no route has, API Gateway's 403; and each is answered exactly as
  the same shape naming an id nobody used, so no answer tells that the other's request exists;
- a caller's listing holds its own requests only, also from a cursor that names another's item;
- /admin/... is 403 for a producer;
- an unsigned or wrongly signed call is 403, and stores nothing.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from chalicelib.model import ID_RULE
from chalicelib.ownership import ANONYMOUS
from devserver.testing.api import Answer, Api, http

NOT_FOUND, BAD_ID, NO_ROUTE = "404", "400", "403 no route"
STATUS = {NOT_FOUND: 404, BAD_ID: 400, NO_ROUTE: 403}
BAD_ID_MESSAGE = f"a request id is {ID_RULE}"
# What chalice.local answers a signed request for a path no route has (API Gateway's answer then).
NO_ROUTE_MESSAGE = "Authorization header requires 'Credential' parameter."
SIGNATURE_MISMATCH = "The request signature we calculated does not match the signature you provided."
NOT_AN_OPERATOR = "is not authorized to perform: execute-api:Invoke on resource: "
ROUTES = ("GET", "retry")


def not_found(request_id: str) -> Dict[str, str]:
    return {"message": f"no request with id {request_id}"}


@dataclass(frozen=True)
class OwnerIshId:
    """An id a producer sends to reach another owner's request, and the refusal it gets."""

    name: str
    segment: Callable[[str, str], str]  # (the other's owner, the other's id) -> the path segment, as sent
    answer: str  # NOT_FOUND, BAD_ID or NO_ROUTE
    retry_answer: Optional[str] = None  # on POST /requests/{id}/retry, when it differs
    note: str = ""

    def expected(self, route: str) -> str:
        return (self.retry_answer or self.answer) if route == "retry" else self.answer


OWNER_ISH: Tuple[OwnerIshId, ...] = (
    OwnerIshId("the other's id", lambda owner, rid: rid, NOT_FOUND),
    OwnerIshId("the owner as the id", lambda owner, rid: owner, NOT_FOUND),
    OwnerIshId("owner/id, a raw slash", lambda owner, rid: f"{owner}/{rid}", NO_ROUTE,
          note="one more path segment: no route"),
    # An encoded slash stays in its segment (the gateway hands Chalice the path as sent, as AWS's
    # REST APIs keep it); decoded by the route, it is no id: 400.
    OwnerIshId("owner%2Fid", lambda owner, rid: f"{owner}%2F{rid}", BAD_ID),
    OwnerIshId("owner%2fid, lower-case escape", lambda owner, rid: f"{owner}%2f{rid}", BAD_ID),
    OwnerIshId("anonymous%2Fid", lambda owner, rid: f"{ANONYMOUS}%2F{rid}", BAD_ID),
    OwnerIshId("owner%252Fid, encoded twice", lambda owner, rid: f"{owner}%252F{rid}", BAD_ID),
    OwnerIshId("id%2F, a trailing slash", lambda owner, rid: f"{rid}%2F", BAD_ID),
    OwnerIshId("..%2Fowner%2Fid", lambda owner, rid: f"..%2F{owner}%2F{rid}", BAD_ID),
    OwnerIshId("%2e%2e%2Fowner%2Fid", lambda owner, rid: f"%2e%2e%2F{owner}%2F{rid}", BAD_ID),
    OwnerIshId("../../admin/requests/owner/id", lambda owner, rid: f"../../admin/requests/{owner}/{rid}", NO_ROUTE,
          note="not normalised: not an /admin path to the signature check, no route after it"),
    OwnerIshId("..%2F..%2Fadmin%2Frequests%2Fowner%2Fid",
          lambda owner, rid: f"..%2F..%2Fadmin%2Frequests%2F{owner}%2F{rid}", BAD_ID),
    OwnerIshId("owner:id", lambda owner, rid: f"{owner}:{rid}", NOT_FOUND,
          note="a valid id, of the caller's own, that nobody used"),
    OwnerIshId("owner%5Cid, a backslash", lambda owner, rid: f"{owner}%5C{rid}", BAD_ID),
    OwnerIshId("id%00", lambda owner, rid: f"{rid}%00", BAD_ID),
)


def path(route: str, segment: str) -> str:
    return f"/requests/{segment}" + ("/retry" if route == "retry" else "")


def call(api: Api, route: str, segment: str) -> Answer:
    return api.call("GET", path(route, segment)) if route == "GET" else api.call("POST", path(route, segment), b"")


def refusal_problem(answer: str, got: Answer, request_id: Optional[str] = None) -> Optional[str]:
    """None when `got` is the refusal `answer` names (with `request_id`: exactly the not-found an
    unknown id gets); otherwise what was answered instead."""
    status, body = got
    message = body.get("message") if isinstance(body, dict) else None
    if status == STATUS[answer] and isinstance(message, str) and set(body) == {"message"}:
        if answer == NOT_FOUND and (body == not_found(request_id) if request_id else
                                    message.startswith("no request with id ")):
            return None
        if (answer == BAD_ID and message == BAD_ID_MESSAGE) or (answer == NO_ROUTE and
                                                                message.startswith(NO_ROUTE_MESSAGE)):
            return None
    return f"{status} {_short(body)} (expected {answer})"


def same_answer(victim: Answer, unused: Answer, victim_id: str, unused_id: str) -> bool:
    """The answer to a shape naming the other's request is the one naming an unused id (the
    signature a 403 echoes aside)."""
    def normal(answer: Answer, request_id: str) -> Tuple[int, str]:
        status, body = answer
        text = json.dumps(body, sort_keys=True).split(" Authorization=")[0]
        return status, text.replace(request_id, "<id>")
    return normal(victim, victim_id) == normal(unused, unused_id)


def try_owner_ish(attacker: Api, shape: OwnerIshId, route: str, owner: str,
                  request_id: str) -> Tuple[int, Optional[str]]:
    """One shape on one route, naming `owner`'s request `request_id`, then an id nobody used: the
    first answer's status, and None when both are refused as promised and alike, else what is wrong."""
    unused_id = f"{request_id}-unused"
    got = call(attacker, route, shape.segment(owner, request_id))
    problem = refusal_problem(shape.expected(route), got)
    if problem:
        return got[0], f"{shape.name} on {route}: {problem}"
    unused = call(attacker, route, shape.segment(owner, unused_id))
    if not same_answer(got, unused, request_id, unused_id):
        return got[0], (f"{shape.name} on {route}: {got[0]} {_short(got[1])}, but {unused[0]} {_short(unused[1])} "
                        f"for an unused id")
    return got[0], None


def list_pages(api: Api, status: str, *, limit: int, cursor: Optional[str] = None, operator: bool = False,
               max_pages: int = 10_000) -> Tuple[List[Dict[str, Any]], List[int], List[str]]:
    """Every item of a listing, page by page from `cursor`: (items, each page's status, problems), a
    problem being an answer other than 200 (it ends the walk) or an item that shows an owner to a
    producer (or none to an operator)."""
    items: List[Dict[str, Any]] = []
    statuses: List[int] = []
    problems: List[str] = []
    lister = api.operator_list if operator else api.list
    while len(statuses) < max_pages:
        code, page = lister(status, limit=str(limit), **({"cursor": cursor} if cursor else {}))
        statuses.append(code)
        if code != 200 or not isinstance(page, dict):
            return items, statuses, problems + [f"listing {status}: {code} {_short(page)}"]
        for item in page["items"]:
            if ("owner" in item) != operator:
                problems.append(f"listing {status}: {'no' if operator else 'an'} owner in {_short(item)}")
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items, statuses, problems
    return items, statuses, problems + [f"listing {status}: still a next page after {max_pages}"]


@dataclass(frozen=True)
class Impostor:
    """Someone calling as a producer without its signature."""

    name: str
    api: Callable[[str, str], Api]  # (the API's URL, the producer's access key id) -> the impostor's client
    message: str  # how its 403's message starts


IMPOSTORS: Tuple[Impostor, ...] = (
    Impostor("unsigned", lambda url, key: Api(url), "Missing Authentication Token"),
    Impostor("wrong secret", lambda url, key: Api(url, key, secret_key="not-the-secret"), SIGNATURE_MISMATCH),
    Impostor("wrong region", lambda url, key: Api(url, key, region="eu-west-1"),
             "Credential should be scoped to a valid region"),
)


def replayed(attacker: Api, signed_path: str, sent_path: str) -> Answer:
    """A GET of `sent_path` carrying the attacker's valid signature of a GET of `signed_path`."""
    return http("GET", f"{attacker.url}{sent_path}", None, attacker.headers("GET", signed_path))


def forbidden_problem(got: Answer, message: str) -> Optional[str]:
    status, body = got
    text = body.get("message", "") if isinstance(body, dict) else ""
    return None if status == 403 and (text.startswith(message) or message in text) else \
        f"{status} {_short(body)} (expected 403 {message})"


@dataclass
class Tally:
    """Answers per kind of attempt, and each attempt not refused as promised."""

    answers: Dict[str, Counter[int]] = field(default_factory=dict)
    violations: List[str] = field(default_factory=list)

    def add(self, kind: str, status: Optional[int], problem: Optional[str] = None) -> None:
        """One call's answer (`status` None: a problem found across calls, counted as no call)."""
        if status is not None:
            self.answers.setdefault(kind, Counter())[status] += 1
        if problem:
            self.violations.append(f"{kind}: {problem}")

    def total(self, *kinds: str) -> int:
        return sum(sum(self.answers.get(kind, Counter()).values()) for kind in kinds or self.answers)

    def describe(self, kind: str) -> str:
        answers = self.answers.get(kind, Counter())
        return f"{sum(answers.values())} ({', '.join(f'{s}: {n}' for s, n in sorted(answers.items())) or 'none'})"


def foreign(items: List[Dict[str, Any]], own: Set[str]) -> List[str]:
    """The listed ids that are not among the caller's own."""
    return sorted({str(item.get("id")) for item in items} - own)


def _short(value: Any) -> str:
    return json.dumps(value)[:160]
