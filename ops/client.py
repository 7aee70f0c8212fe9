"""The storefirst HTTP API as an operator uses it: show, list, retry. Every API call of the CLI is here.

It talks to the API rather than to DynamoDB, so it works the same against `make run` and a
real stage, with the same validation and least privilege the routes already have. It calls the
operator routes, /admin/requests/..., which see every owner's requests (chalicelib/ownership.py):
on a stage with auth they take IAM alone, so the caller needs `--sigv4` and execute-api:Invoke on
the API's /admin/* routes. With a `signer` (ops/sigv4.py) requests are signed for that.

A request is named "OWNER/ID", as the listings print it (RequestName); a bare "ID" is the
anonymous owner's, which is what a stage without auth (`make run`) stores.

Every call is tried again on 429, 503 and on no answer at all (refused, reset, timed out), as
`backoff` says (ops/backoff.py); any other answer is final. Failures become the errors of
ops/errors.py here and nowhere else.
"""
from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any, Dict, Iterator, List, Optional, Tuple

from chalicelib.model import ID_RULE, is_valid_id
from chalicelib.ownership import ANONYMOUS, SEPARATOR, is_owner, item_key
from ops.backoff import Backoff
from ops.errors import ApiError, Unreachable, error_for
from ops.sigv4 import Signer

# The operator's routes, in one place: moving them is a change here only.
REQUEST_PATH = "/admin/requests/{owner}/{id}"
RETRY_PATH = "/admin/requests/{owner}/{id}/retry"
LIST_PATH = "/admin/requests"
PAGE_SIZE = 100  # the most GET /admin/requests answers per page

RETRIED_STATUSES = (429, 503)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes
    reason: str = ""


@dataclass(frozen=True)
class RequestName:
    """A request as operators name it: its owner and the id its owner knows it by."""

    owner: str
    id: str

    def __str__(self) -> str:
        return item_key(self.owner, self.id)

    @classmethod
    def parse(cls, text: str) -> "RequestName":
        """Reads "OWNER/ID", or a bare "ID" (the anonymous owner's). Raises ValueError saying what is wrong."""
        owner, separator, request_id = text.partition(SEPARATOR)
        if not separator:
            owner, request_id = ANONYMOUS, text
        if not is_owner(owner):
            raise ValueError(f"{text!r}: {owner!r} is not an owner: name a request OWNER/ID as `failed` and "
                             "`pending` print it, OWNER being anonymous, iam-<principal id> or key-<API key id> "
                             "(a bare ID is the anonymous owner's)")
        if not is_valid_id(request_id):
            raise ValueError(f"{text!r}: {request_id!r} is not a request id: {ID_RULE}")
        return cls(owner, request_id)

    @classmethod
    def of(cls, item: Dict[str, Any]) -> "RequestName":
        """The name of a request as the operator routes answer it (with "owner" and "id")."""
        return cls(str(item["owner"]), str(item["id"]))

    def path(self, template: str) -> str:
        return template.format(owner=_quoted(self.owner), id=_quoted(self.id))


class Api:
    def __init__(self, base_url: str, *, signer: Optional[Signer] = None, backoff: Optional[Backoff] = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.backoff = backoff or Backoff()
        self.timeout = timeout

    def show(self, name: RequestName) -> Dict[str, Any]:
        """The operator's view of one request (with its "owner"). Raises RequestNotFound (404)."""
        return self._call("GET", name.path(REQUEST_PATH), what=str(name))

    def retry(self, name: RequestName) -> Dict[str, Any]:
        """FAILED -> PENDING (202). Raises NotRetryable (409) for any other status."""
        return self._call("POST", name.path(RETRY_PATH), what=str(name))

    def page(self, status: str, limit: int, cursor: Optional[str] = None) -> Tuple[List[Dict[str, Any]],
                                                                                    Optional[str]]:
        query = {"status": status, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        body = self._call("GET", f"{LIST_PATH}?{urllib.parse.urlencode(query)}", what=f"listing {status} requests")
        return body["items"], body["next"]

    def all(self, status: str, page_size: int = PAGE_SIZE) -> Iterator[Dict[str, Any]]:
        """Every owner's requests of `status`, oldest first, a page at a time as they are consumed."""
        cursor: Optional[str] = None
        while True:
            items, cursor = self.page(status, page_size, cursor)
            yield from items
            if cursor is None:
                return

    def _call(self, method: str, path: str, what: str) -> Dict[str, Any]:
        url = self.base_url + path
        # Chalice routes accept application/json only: a bodiless POST still names it.
        data = b"{}" if method == "POST" else None
        # Whether an earlier attempt may have run without us learning so: a later 409 is then maybe our own.
        maybe_ran = False
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept": "application/json", "Content-Type": "application/json"}
            if self.signer is not None:
                headers.update(self.signer.headers(method, url, data))
            try:
                answer = _send(urllib.request.Request(url, method=method, headers=headers, data=data), self.timeout)
            except (OSError, http.client.HTTPException) as exc:
                wait = self.backoff.wait(attempt)
                if wait is None:
                    raise Unreachable(self.base_url, _reason(exc), attempt) from None
                maybe_ran = maybe_ran or not _never_sent(exc)
            else:
                if 200 <= answer.status < 300:
                    return _json(answer, what)
                wait = (self.backoff.wait(attempt, answer.headers.get("Retry-After"))
                        if answer.status in RETRIED_STATUSES else None)
                if wait is None:
                    note = ("an earlier attempt (unanswered, or answered 503) may have retried it already"
                            if maybe_ran and answer.status == 409 else "")
                    raise error_for(what, answer.status, _message(answer), note)
                maybe_ran = maybe_ran or answer.status == 503
            self.backoff.sleep(wait)


def _send(request: urllib.request.Request, timeout: float) -> Answer:
    """One HTTP exchange; an HTTP error status is an answer too. Raises OSError or HTTPException
    when there is no answer."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read(), response.reason)
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read(), str(error.reason))


def _quoted(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _json(answer: Answer, what: str) -> Dict[str, Any]:
    try:
        body: Dict[str, Any] = json.loads(answer.body or b"{}")
    except ValueError:
        raise ApiError(what, answer.status, "an answer that is not JSON: is --api-url the storefirst API?") from None
    return body


def _message(answer: Answer) -> str:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return answer.reason
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else answer.reason


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return str(reason) or type(reason).__name__


def _never_sent(exc: BaseException) -> bool:
    """A refused connection or an unknown host: the request cannot have reached the API."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))
