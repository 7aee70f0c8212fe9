"""An in-process fake of the storefirst HTTP API, for the operator CLI's tests (the standard library
and chalicelib's owner and id patterns only).

It holds requests by item key ("<owner>/<id>", chalicelib/ownership.py) and status, and answers the
operator routes as the Chalice routes do (chalicelib/requests_api.py): GET
/admin/requests/{owner}/{id} (the operator view, with "owner"), GET
/admin/requests?status=&limit=&cursor= (every owner's, oldest first, paged), POST
/admin/requests/{owner}/{id}/retry (202, 404, 409); 400 for an owner or id outside their
patterns, a status that cannot be listed or a limit out of range. Any other path gets API
Gateway's 403 "Missing Authentication Token", the callers' /requests routes included: the CLI must
not use them. A bare id given to `add` or `hold` is the anonymous owner's, as the CLI reads one.

A test can script answers to give first (`script`), make retries take time (`hold`) or wait for
each other (`gate`), and read what came in (`calls`, with each path as it was sent, the most
requests in flight at once, the order retries finished in).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from chalicelib.model import ID_RULE, is_valid_id
from chalicelib.ownership import ANONYMOUS, SEPARATOR, is_owner, item_key, split_key

GATE_TIMEOUT_S = 5.0  # a gate never holds a test longer than this
LISTABLE = ("PENDING", "FAILED")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Scripted:
    status: int
    body: Any = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: Mapping[str, str]


class FakeApi:
    def __init__(self) -> None:
        self.requests: Dict[str, str] = {}  # "<owner>/<id>" -> status, in creation order
        self.calls: List[Call] = []
        self.finished_retries: List[str] = []  # "<owner>/<id>", in the order their retries were answered
        self.max_in_flight = 0
        self.holds: Dict[str, float] = {}
        self._scripts: Dict[Tuple[str, str], Deque[Scripted]] = defaultdict(deque)
        self._gate, self._gated = 0, 0
        self._in_flight = 0
        self._changed = threading.Condition()
        self._server: Optional[_Server] = None

    # --- setting it up -------------------------------------------------------------------------
    def add(self, status: str, *names: str) -> None:
        """Requests of `status`, each "<owner>/<id>" or a bare id (the anonymous owner's)."""
        self.requests.update(dict.fromkeys(map(key_of, names), status))

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        """Answers to give, in order, to the next calls of `method` on `path` (no query string)."""
        self._scripts[(method, path)].extend(answers)

    def hold(self, name: str, seconds: float) -> None:
        """The retry of `name` ("<owner>/<id>" or a bare id) takes `seconds` before it is answered."""
        self.holds[key_of(name)] = seconds

    def gate(self, count: int) -> None:
        """The first `count` retries are answered only once `count` requests are in flight together."""
        self._gate = self._gated = count

    @property
    def url(self) -> str:
        assert self._server is not None, "use FakeApi as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> "FakeApi":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- answering -----------------------------------------------------------------------------
    def answer(self, method: str, target: str, headers: Mapping[str, str]) -> Scripted:
        parsed = urllib.parse.urlsplit(target)
        self.calls.append(Call(method, target, headers))
        with self._changed:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._changed.notify_all()
        try:
            scripted = self._scripts[(method, parsed.path)]
            if scripted:
                return scripted.popleft()
            return self._route(method, parsed.path, urllib.parse.parse_qs(parsed.query))
        finally:
            with self._changed:
                self._in_flight -= 1

    def _route(self, method: str, path: str, query: Dict[str, List[str]]) -> Scripted:
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        if parts[:2] != ["admin", "requests"]:
            return MISSING_AUTHENTICATION_TOKEN
        if method == "GET" and len(parts) == 2:
            return self._list({name: values[-1] for name, values in query.items()})
        if method == "GET" and len(parts) == 4:
            return self._answer_for(parts[2], parts[3], self._show)
        if method == "POST" and len(parts) == 5 and parts[4] == "retry":
            return self._answer_for(parts[2], parts[3], self._retry)
        return MISSING_AUTHENTICATION_TOKEN  # API Gateway's answer for a path no route has

    @staticmethod
    def _answer_for(owner: str, request_id: str, answer: Callable[[str], Scripted]) -> Scripted:
        """The routes' 400s for an owner or id outside their patterns, else `answer` for the item key."""
        if not is_owner(owner):
            return Scripted(400, {"message": f"{owner!r} is not an owner"})
        if not is_valid_id(request_id):
            return Scripted(400, {"message": f"a request id is {ID_RULE}"})
        return answer(item_key(owner, request_id))

    def _view(self, key: str) -> Dict[str, Any]:
        owner, request_id = split_key(key)
        order = list(self.requests).index(key)
        created = f"2026-12-01T19:{order // 60:02d}:{order % 60:02d}.000Z"
        view = {"id": request_id, "owner": owner, "status": self.requests[key], "createdAt": created,
                "updatedAt": created, "attempts": 1}
        if view["status"] == "FAILED":
            view["error"] = {"type": "RejectedRequest", "message": "unknown dish: durian"}
        return view

    def _list(self, query: Dict[str, str]) -> Scripted:
        status, limit = query.get("status"), query.get("limit", "25")
        if status not in LISTABLE:
            return Scripted(400, {"message": f"status must be one of {', '.join(LISTABLE)}"})
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            return Scripted(400, {"message": f"limit must be a whole number from 1 to {MAX_LIMIT}"})
        cursor = query.get("cursor", "0")  # the fake's cursors are offsets
        if not cursor.isdigit():
            return Scripted(400, {"message": "cursor is not valid: pass back the `next` value of the previous page "
                                             "unchanged"})
        keys = [key for key, now in self.requests.items() if now == status]
        start, end = int(cursor), int(cursor) + int(limit)
        return Scripted(200, {"items": [self._view(key) for key in keys[start:end]],
                              "next": str(end) if end < len(keys) else None})

    def _show(self, key: str) -> Scripted:
        if key not in self.requests:
            return not_found(key)
        return Scripted(200, self._view(key))

    def _retry(self, key: str) -> Scripted:
        with self._changed:
            if self._gated:
                self._gated -= 1
                self._changed.wait_for(lambda: self._in_flight >= self._gate, timeout=GATE_TIMEOUT_S)
        time.sleep(self.holds.get(key, 0.0))
        request_id = split_key(key)[1]
        with self._changed:
            self.finished_retries.append(key)
            status = self.requests.get(key)
            if status is None:
                return not_found(key)
            if status != "FAILED":
                return Scripted(409, {"id": request_id, "message": "only a FAILED request can be retried: "
                                                                   f"request {request_id} is {status}, not FAILED"})
            self.requests[key] = "PENDING"
        return Scripted(202, {"id": request_id, "status": "PENDING"})


MISSING_AUTHENTICATION_TOKEN = Scripted(403, {"message": "Missing Authentication Token"})


def key_of(name: str) -> str:
    """The item key of "<owner>/<id>", or of a bare id (the anonymous owner's)."""
    return name if SEPARATOR in name else item_key(ANONYMOUS, name)


def not_found(key: str) -> Scripted:
    # The route names the id its owner knows, never the key (chalicelib/requests_api.py).
    return Scripted(404, {"message": f"no request with id {split_key(key)[1]}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the CLI opens up to 64 connections at once: none may wait in SYN retries
    fake: FakeApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        assert isinstance(self.server, _Server)
        fake = self.server.fake
        answer = fake.answer(self.command, self.path, dict(self.headers.items()))
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in {"Content-Type": "application/json", **answer.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `calls`, not stderr
