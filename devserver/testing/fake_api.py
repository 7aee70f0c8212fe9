"""An in-process fake of the storefirst HTTP API, for the operator CLI's tests (standard library only).

It holds requests by id and status and answers the operator's routes as the Chalice routes do:
GET /requests/{id}, GET /requests?status=&limit=&cursor= (oldest first, paged), POST
/requests/{id}/retry (202, 404, 409). A test can script answers to give first (`script`), make
retries take time (`hold`) or wait for each other (`gate`), and read what came in (`calls`, the
most requests in flight at once, the order retries finished in).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

GATE_TIMEOUT_S = 5.0  # a gate never holds a test longer than this


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
        self.requests: Dict[str, str] = {}  # id -> status, in creation order
        self.calls: List[Call] = []
        self.finished_retries: List[str] = []  # ids, in the order their retries were answered
        self.max_in_flight = 0
        self.holds: Dict[str, float] = {}
        self._scripts: Dict[Tuple[str, str], Deque[Scripted]] = defaultdict(deque)
        self._gate, self._gated = 0, 0
        self._in_flight = 0
        self._changed = threading.Condition()
        self._server: Optional[_Server] = None

    # --- setting it up -------------------------------------------------------------------------
    def add(self, status: str, *ids: str) -> None:
        self.requests.update(dict.fromkeys(ids, status))

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        """Answers to give, in order, to the next calls of `method` on `path` (no query string)."""
        self._scripts[(method, path)].extend(answers)

    def hold(self, request_id: str, seconds: float) -> None:
        """The retry of `request_id` takes `seconds` before it is answered."""
        self.holds[request_id] = seconds

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
        if method == "GET" and parts == ["requests"]:
            return self._list(query["status"][0], int(query["limit"][0]), int(query.get("cursor", ["0"])[0]))
        if method == "GET" and len(parts) == 2 and parts[0] == "requests":
            return self._show(parts[1])
        if method == "POST" and len(parts) == 3 and parts[0] == "requests" and parts[2] == "retry":
            return self._retry(parts[1])
        return Scripted(404, {"message": "Not Found"})

    def _view(self, request_id: str) -> Dict[str, Any]:
        order = list(self.requests).index(request_id)
        view = {"id": request_id, "status": self.requests[request_id],
                "createdAt": f"2026-12-01T19:{order // 60:02d}:{order % 60:02d}.000Z", "attempts": 1}
        if view["status"] == "FAILED":
            view["error"] = {"type": "RejectedRequest", "message": "unknown dish: durian"}
        return view

    def _list(self, status: str, limit: int, start: int) -> Scripted:
        ids = [request_id for request_id, now in self.requests.items() if now == status]
        page = ids[start:start + limit]
        more = start + limit < len(ids)
        return Scripted(200, {"items": [self._view(i) for i in page], "next": str(start + limit) if more else None})

    def _show(self, request_id: str) -> Scripted:
        if request_id not in self.requests:
            return Scripted(404, {"message": f"no request with id {request_id}"})
        return Scripted(200, self._view(request_id))

    def _retry(self, request_id: str) -> Scripted:
        with self._changed:
            if self._gated:
                self._gated -= 1
                self._changed.wait_for(lambda: self._in_flight >= self._gate, timeout=GATE_TIMEOUT_S)
        time.sleep(self.holds.get(request_id, 0.0))
        with self._changed:
            self.finished_retries.append(request_id)
            status = self.requests.get(request_id)
            if status is None:
                return Scripted(404, {"message": f"no request with id {request_id}"})
            if status != "FAILED":
                return Scripted(409, {"id": request_id, "message": "only a FAILED request can be retried: "
                                                                   f"request {request_id} is {status}, not FAILED"})
            self.requests[request_id] = "PENDING"
        return Scripted(202, {"id": request_id, "status": "PENDING"})


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
