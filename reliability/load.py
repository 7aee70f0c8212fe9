"""The workload and the clients that send it.

A plan is a seeded list of requests, each knowing what its end state must be: a valid order ends
SUCCEEDED with the result the example logic computes, an order with an unknown dish ends FAILED
(RejectedRequest), a poison order ends FAILED (RetriesExhausted). Every request carries its own
Idempotency-Key (= its id) and the same value as `ref` in the body, so the checks can find its
item and its business-logic runs by id.

The clients are threads with one keep-alive connection each. A client retries 429, 503 and 504
with the same Idempotency-Key, as the API's messages tell clients to (a scenario may add a failed
connection: the crash scenario kills the API with the app host); every attempt and its answer is
kept.
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional
from urllib.parse import urlsplit

from chalicelib.errors import RejectedRequest
from chalicelib.orders import MENU, take_order
from chalicelib.ownership import ANONYMOUS
from devserver.testing.api import Api

UNKNOWN_DISH = "durian"
# Retried with the same Idempotency-Key: 429/503 say "not stored", 504 "may be stored" (a 409 on
# the retry then means it was).
RETRYABLE = frozenset({429, 503, 504})
NO_ANSWER = 0  # the connection failed or timed out: nothing is known about the request


@dataclass(frozen=True)
class Planned:
    key: str
    body: bytes
    expect: str  # SUCCEEDED | FAILED
    error_type: Optional[str] = None
    result: Optional[Dict[str, Any]] = None
    poison: bool = False
    owner: str = ANONYMOUS  # who sends it (its item is "<owner>/<key>")


def plan(prefix: str, count: int, seed: int, *, unknown_share: float = 0.1, poison_share: float = 0.0,
         owner: str = ANONYMOUS) -> List[Planned]:
    """`count` requests of `owner`; exactly round(count * share) unknown-dish and poison ones, at
    seeded places."""
    rng = random.Random(seed)
    places = list(range(count))
    rng.shuffle(places)
    poison = set(places[:round(count * poison_share)])
    unknown = set(places[len(poison):len(poison) + round(count * unknown_share)])
    dishes = sorted(MENU)
    planned = []
    for index in range(count):
        key = f"{prefix}-{index:06d}"
        order: Dict[str, Any] = {"ref": key, "table": rng.randint(1, 500),
                                 "items": [{"dish": rng.choice(dishes), "qty": rng.randint(1, 5)}
                                           for _ in range(rng.randint(1, 3))]}
        if index in unknown:
            order["items"].append({"dish": UNKNOWN_DISH, "qty": 1})
        if index in poison:
            order["poison"] = True
            planned.append(Planned(key, _encode(order), "FAILED", "RetriesExhausted", poison=True, owner=owner))
            continue
        try:
            planned.append(Planned(key, _encode(order), "SUCCEEDED", result=take_order(order), owner=owner))
        except RejectedRequest:
            planned.append(Planned(key, _encode(order), "FAILED", "RejectedRequest", owner=owner))
    return planned


def _encode(order: Dict[str, Any]) -> bytes:
    return json.dumps(order, separators=(",", ":")).encode()


@dataclass
class Attempt:
    status: int  # NO_ANSWER when the connection failed
    sent_at: float  # time.time()
    elapsed_ms: float
    detail: str = ""  # the answer's message, or the connection error


@dataclass
class Sent:
    planned: Planned
    attempts: List[Attempt] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return any(a.status == 202 for a in self.attempts)

    @property
    def accepted_at(self) -> Optional[float]:
        return next((a.sent_at for a in self.attempts if a.status == 202), None)


@dataclass(frozen=True)
class Retry:
    """Client retries of the `on` answers (429/503/504) with the same key: exponential backoff with
    seeded jitter."""
    max_attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 3.0
    on: FrozenSet[int] = RETRYABLE


class Sender:
    """Sends a plan from `clients` threads, paced at `rate` requests/s if given (else as fast as
    the clients go). `between` is called every 50 ms from the calling thread with the seconds
    since the load started, so a scenario can inject faults "in the middle of the load". A request
    whose owner is in `callers` is signed as that caller (a stack with `--auth iam`)."""

    def __init__(self, api_url: str, planned: List[Planned], *, clients: int = 32, rate: Optional[float] = None,
                 retry: Optional[Retry] = None, seed: int = 0, timeout_s: float = 30.0,
                 callers: Optional[Mapping[str, Api]] = None) -> None:
        parts = urlsplit(api_url)
        self._callers = dict(callers or {})
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sent = [Sent(p) for p in planned]
        self._clients = clients
        self._rate = rate
        self._retry = retry
        self._seed = seed
        self._timeout = timeout_s
        self._next = 0
        self._lock = threading.Lock()
        self.started_at = 0.0
        self.finished_at = 0.0

    def run(self, deadline_s: float, between: Optional[Callable[[float], None]] = None) -> List[Sent]:
        """Send everything (or until `deadline_s` passes: the rest stays unsent and is reported)."""
        self.started_at = time.monotonic()
        stop_at = self.started_at + deadline_s
        threads = [threading.Thread(target=self._client, args=(stop_at,), name=f"client-{i}", daemon=True)
                   for i in range(self._clients)]
        for thread in threads:
            thread.start()
        while between is not None and any(t.is_alive() for t in threads) and time.monotonic() < stop_at:
            between(time.monotonic() - self.started_at)
            time.sleep(0.05)
        for thread in threads:
            thread.join(max(0.0, stop_at - time.monotonic()) + self._timeout * 2)
        self.finished_at = time.monotonic()
        return self.sent

    def _take(self) -> Optional[int]:
        with self._lock:
            if self._next >= len(self.sent):
                return None
            self._next += 1
            return self._next - 1

    def _client(self, stop_at: float) -> None:
        connection: Optional[http.client.HTTPConnection] = None
        while time.monotonic() < stop_at:
            index = self._take()
            if index is None:
                break
            if self._rate:
                time.sleep(max(0.0, self.started_at + index / self._rate - time.monotonic()))
            item = self.sent[index]
            jitter = random.Random(f"{self._seed}:{item.planned.key}")
            attempts = self._retry.max_attempts if self._retry else 1
            for attempt in range(attempts):
                connection, answer = self._put(connection, item.planned)
                item.attempts.append(answer)
                if self._retry is None or answer.status not in self._retry.on or attempt + 1 == attempts \
                        or time.monotonic() >= stop_at:
                    break
                delay = min(self._retry.cap_s, self._retry.base_s * 2 ** attempt)
                time.sleep(delay / 2 + jitter.random() * delay / 2)
        if connection is not None:
            connection.close()

    def _put(self, connection: Optional[http.client.HTTPConnection],
             planned: Planned) -> "tuple[Optional[http.client.HTTPConnection], Attempt]":
        sent_at, began = time.time(), time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            headers = {"Content-Type": "application/json", "Idempotency-Key": planned.key}
            caller = self._callers.get(planned.owner)
            if caller is not None:
                headers = caller.headers("PUT", "/requests", planned.body, headers)
            connection.request("PUT", "/requests", body=planned.body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as exc:
            if connection is not None:
                connection.close()
            return None, Attempt(NO_ANSWER, sent_at, (time.perf_counter() - began) * 1000, repr(exc))
        elapsed = (time.perf_counter() - began) * 1000
        try:
            answer = json.loads(raw or b"null")
        except ValueError:
            answer = raw[:200].decode("utf-8", "replace")
        detail = ""
        if status == 202 and answer != {"id": planned.key}:
            detail = f"202 with an unexpected body: {answer!r}"
        elif status != 202 and isinstance(answer, dict):
            detail = str(answer.get("message", ""))[:200]
        return connection, Attempt(status, sent_at, elapsed, detail)
