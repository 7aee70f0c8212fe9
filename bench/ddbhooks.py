"""botocore event hooks on one DynamoDB client: count calls, add latency, record and replay.

All of them hang off `client.meta.events`, i.e. they apply to exactly the client handed to
RequestStore / the gateway transport and to nothing else (no mock.patch, no global state).

Why record and replay: moto spends 5-12 ms of CPU on one UpdateItem (in-process or as a server),
serialised by one GIL, so 100 write-backs against live moto measure moto, not the processor's
concurrency. Real DynamoDB does that work on its side, in parallel. So each scenario runs once
against moto (recording every HTTP answer), then again with botocore's `before-send` answering
each request with moto's recorded bytes after the injected latency: the client still builds,
signs and parses every call (its CPU is real), only the server's service time is replaced.
"""
from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterator, Optional, Tuple

from botocore.awsrequest import AWSResponse

Key = Tuple[str, Tuple[str, ...]]


class CallCounter:
    """Counts API calls by operation name (`before-call` fires once per call, not per retry), and the
    items they carry: a BatchGetItem's keys, a BatchExecuteStatement's statements, one otherwise
    (what DynamoDB bills: each key read and each statement written is its own request unit)."""

    def __init__(self, *clients: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, params: Dict[str, Any], **_: Any) -> None:
        document = json.loads(params.get("body") or b"{}")
        items = len(document.get("Statements", [])) or sum(
            len(table.get("Keys", [])) for table in (document.get("RequestItems") or {}).values()) or 1
        with self._lock:
            self.calls[model.name] += 1
            self.items[model.name] += items

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def item_snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self.items)


def inject_latency(client: Any, seconds: float) -> None:
    """Every call waits `seconds` before it is sent, like a round trip to a remote DynamoDB.
    time.sleep releases the GIL, so concurrent calls overlap as network waits do."""
    def wait(**_: Any) -> None:
        time.sleep(seconds)
    client.meta.events.register("before-call.dynamodb.*", wait)


def request_key(target: str, body: bytes) -> Key:
    """(operation, ids it touches): what identifies a call across the record and replay passes
    (timestamps in the body differ between them)."""
    operation = target.rsplit(".", 1)[-1]
    document = json.loads(body or b"{}")
    ids: list = []
    if "Key" in document:
        ids.append(document["Key"]["id"]["S"])
    if "Item" in document:
        ids.append(document["Item"]["id"]["S"])
    for table in (document.get("RequestItems") or {}).values():
        ids.extend(key["id"]["S"] for key in table.get("Keys", []))
    ids.extend(statement_id(s) for s in document.get("Statements", []))
    return operation, tuple(sorted(ids))


def statement_id(statement: Dict[str, Any]) -> str:
    """The id a write-back statement (chalicelib/store.py) updates: the parameter of `WHERE "id" = ?`."""
    text = statement["Statement"]
    return str(statement["Parameters"][text.split(" WHERE ")[0].count("?")]["S"])


class _Raw(io.BytesIO):
    """The raw body AWSResponse reads through .stream(), as urllib3's response offers it."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Tape:
    """Recorded HTTP answers by request key, shared by the record and replay passes. Write-back
    statements and status reads are kept item by item: which requests share a BatchExecuteStatement
    call depends on the order the business logic finished in, and which share a batch (so a
    BatchGetItem) on how the stream mapping cut the stream; both differ between the passes."""

    def __init__(self) -> None:
        self.answers: Dict[Key, Tuple[int, Dict[str, str], bytes]] = {}
        self.statements: Dict[str, Dict[str, Any]] = {}
        self.items: Dict[str, Dict[str, Any]] = {}  # BatchGetItem's answer for each id
        self._lock = threading.Lock()

    def __getstate__(self) -> Dict[str, Any]:  # handed to worker processes (bench/parallel_bench.py)
        return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    def record_from(self, client: Any) -> None:
        """Keep every answer `client` receives (from moto, in-process or a server)."""
        def before(params: Dict[str, Any], context: Dict[str, Any], **_: Any) -> None:
            context["bench_key"] = request_key(params["headers"]["X-Amz-Target"], params["body"])
            context["bench_statements"] = json.loads(params["body"] or b"{}").get("Statements", [])

        def after(http_response: Any, context: Dict[str, Any], **_: Any) -> None:
            key = context.get("bench_key")
            if key is not None:
                with self._lock:
                    self.answers[key] = (http_response.status_code, dict(http_response.headers),
                                         http_response.content)
                    answers = json.loads(http_response.content or b"{}").get("Responses", [])
                    if key[0] == "BatchGetItem":
                        for found in (answers or {}).values():
                            self.items.update({item["id"]["S"]: item for item in found})
                        return
                    for statement, answer in zip(context["bench_statements"], answers, strict=False):
                        self.statements[statement_id(statement)] = answer
        client.meta.events.register("before-call.dynamodb.*", before)
        client.meta.events.register("after-call.dynamodb.*", after)

    def replay_to(self, client: Any, latency_s: float) -> None:
        """Answer every request of `client` from the tape after `latency_s`; nothing is sent."""
        def send(request: Any, **_: Any) -> Optional[AWSResponse]:
            target = request.headers["X-Amz-Target"]
            target = target.decode() if isinstance(target, bytes) else target
            time.sleep(latency_s)
            if target.endswith(".BatchExecuteStatement"):
                statements = json.loads(request.body)["Statements"]
                body = json.dumps({"Responses": [self.statements[statement_id(s)] for s in statements]}).encode()
                status, headers = 200, {"Content-Type": "application/x-amz-json-1.0"}
            elif target.endswith(".BatchGetItem"):
                [(table, wanted)] = json.loads(request.body)["RequestItems"].items()
                found = [self.items[k["id"]["S"]] for k in wanted["Keys"] if k["id"]["S"] in self.items]
                body = json.dumps({"Responses": {table: found}, "UnprocessedKeys": {}}).encode()
                status, headers = 200, {"Content-Type": "application/x-amz-json-1.0"}
            else:
                status, headers, body = self.answers[request_key(target, request.body)]
            # Ignored (arg-type): botocore-stubs want HTTPHeaders; AWSResponse wraps any mapping in a HeadersDict.
            return AWSResponse(request.url, status, headers, _Raw(body))  # type: ignore[arg-type]
        client.meta.events.register("before-send.dynamodb.*", send)
