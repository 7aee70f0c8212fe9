"""A fault-injecting HTTP proxy in front of the local DynamoDB endpoint (`python -m devserver faults`).

Every request goes to the upstream unchanged (method, path, headers, body) and its answer comes
back unchanged, except for the requests a fault is chosen for:

- throttling: a seeded fraction of the selected operations is answered by the proxy itself, as
  DynamoDB answers a throttled call (HTTP 400, `ThrottlingException` or
  `ProvisionedThroughputExceededException`, `x-amzn-RequestId`); the upstream never sees it;
- unavailability: while "down", selected operations get 503 `ServiceUnavailable` (mode 503), or
  the proxy stops listening altogether, so connections are refused (mode refuse).

Operations are named by the request's `X-Amz-Target`. A bare name (`PutItem`) means
`DynamoDB_20120810.PutItem`, `*` means every `DynamoDB_20120810.*` call, and a dotted name is a
full target or a `Prefix.*` pattern (`DynamoDBStreams_20120810.GetRecords`,
`DynamoDBStreams_20120810.*`, `AmazonSQS.*`). So DynamoDB Streams and SQS pass through unless they
are named explicitly.

Run-time control, without a restart (same keys in both):
- `POST /_faults` with a JSON object, answered with the new state; `GET /_faults` answers the state
  and the counters per operation (forwarded, throttled, unavailable = 503, refused, upstream_error);
- `--control-file PATH`: a JSON object, applied each time the file changes (polled every 0.1 s).
  While refusing connections the proxy cannot hear `POST /_faults`: end an indefinite refuse
  window through the control file, or use `down_for_seconds`, which ends by itself.

Keys: throttle (0..1), throttle_operations (list or comma string), throttle_error, down (bool),
down_for_seconds (> 0), down_mode ("503" | "refuse"), down_operations (503 mode only: refuse
is per socket), seed (reseeds the generator), reset_counters (bool).

Seeded, one random draw per selected request (others draw nothing), so a sequence of calls is
throttled the same way on every run.
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import random
import secrets
import signal
import socket
import socketserver
import string
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from devserver.processes import write_json_atomically

log = logging.getLogger(__name__)

CONTROL_PATH = "/_faults"
DYNAMODB_PREFIX = "DynamoDB_20120810"
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
CONTENT_TYPE = "application/x-amz-json-1.0"
THROTTLE_MESSAGES = {
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."),
}
UNAVAILABLE_MESSAGE = "The service is currently unavailable or busy."
DOWN_MODES = ("503", "refuse")
# Not forwarded: the hop-by-hop headers of RFC 9110 §7.6.1 (they belong to one connection), plus
# Content-Length and Expect, because the proxy reads the whole body first and sends it with a
# Content-Length of its own.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                        "upgrade", "expect", "content-length"})
COUNTER_NAMES = ("forwarded", "throttled", "unavailable", "refused", "upstream_error")
NO_TARGET = "(no X-Amz-Target)"
TICK_S = 0.02
CONTROL_FILE_EVERY_S = 0.1
UPSTREAM_TIMEOUT_S = 30.0


class ControlError(ValueError):
    """A control request (POST /_faults or the control file) that cannot be applied."""


# --- operation selection ---------------------------------------------------------------------------

def selectors(spec: str | Iterable[str]) -> Tuple[str, ...]:
    """Normalise `PutItem,UpdateItem` / `*` / full targets / `Prefix.*` into full targets and patterns."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: List[str] = []
    for raw in names:
        if not isinstance(raw, str):
            raise ControlError(f"an operation must be a string, not {raw!r}")
        name = raw.strip()
        if not name:
            continue
        if name == "*":
            name = f"{DYNAMODB_PREFIX}.*"
        elif "." not in name:
            name = f"{DYNAMODB_PREFIX}.{name}"
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def selected(target: str, chosen: Iterable[str]) -> bool:
    for name in chosen:
        if name.endswith(".*") and target.startswith(name[:-1]) or target == name:
            return True
    return False


# --- the fault state ---------------------------------------------------------------------------------

@dataclass
class Faults:
    """What to inject; changed at run time by `FaultProxy.control`."""

    throttle: float = 0.0
    throttle_operations: Tuple[str, ...] = (f"{DYNAMODB_PREFIX}.*",)
    throttle_error: str = "ThrottlingException"
    down_mode: str = "503"
    down_operations: Tuple[str, ...] = (f"{DYNAMODB_PREFIX}.*",)
    down_until: float = 0.0  # time.monotonic(); math.inf while down until told otherwise
    seed: Optional[int] = None
    counters: Dict[str, Dict[str, int]] = field(default_factory=dict)
    refused_connections: int = 0

    def down(self, now: float) -> bool:
        return now < self.down_until

    def count(self, target: str, what: str) -> None:
        self.counters.setdefault(target, dict.fromkeys(COUNTER_NAMES, 0))[what] += 1


Decision = str  # "forward" | "throttle" | "unavailable" | "refuse"


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: bytes


def dynamodb_error(status: int, error_type: str, message: str, request_ids: Callable[[], str]) -> Answer:
    """An error answer shaped like DynamoDB's own: JSON 1.0 body, request id and CRC32 headers."""
    body = json.dumps({"__type": ERROR_PREFIX + error_type, "message": message}, separators=(",", ":")).encode()
    headers = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_ids()),
               ("x-amz-crc32", str(zlib.crc32(body)))]
    return Answer(status, http.client.responses.get(status, ""), headers, body)


def aws_request_id() -> str:
    """52 characters of A-Z0-9 like DynamoDB's request ids (not from the seeded generator)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(52))


_ID_ALPHABET = string.ascii_uppercase + string.digits


# --- the proxy ---------------------------------------------------------------------------------------

class FaultProxy:
    """The proxy: `start()`, then `url`; `control({...})` changes the faults; `stop()` within ~0.2 s."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, faults: Optional[Faults] = None,
                 control_file: Optional[Path] = None, upstream_timeout_s: float = UPSTREAM_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        self.upstream = upstream
        self._upstream = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self._upstream_timeout = upstream_timeout_s
        self._host, self._port = host, port
        self._faults = faults or Faults()
        self._random = random.Random(self._faults.seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._control_file = control_file
        self._control_seen: Optional[Tuple[int, int]] = None
        self._server: Optional[ThreadingHTTPServer] = None
        self._connections: set[socket.socket] = set()
        self._answering_control: set[socket.socket] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._watcher: Optional[threading.Thread] = None

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> "FaultProxy":
        self._read_control_file()
        self._listen()  # at once, whatever the faults: the port is chosen and the caller may print it
        self._watcher = threading.Thread(target=self._watch, name="faults-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._watcher is not None:
            self._watcher.join(1.0)
        self._close_listener()
        self._drop_connections()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        server = _Server((self._host, self._port), _Handler)
        server.proxy = self
        self._port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"faults-{self._port}", daemon=True)
        thread.start()
        self._server = server

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _drop_connections(self) -> int:
        with self._lock:
            # A control request that switched refuse on still gets its answer.
            connections = [c for c in self._connections if c not in self._answering_control]
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(connections)

    def _watch(self) -> None:
        """Open or close the listening socket as the refuse window demands; read the control file."""
        next_file_check = 0.0
        while not self._stopping.is_set():
            now = self._clock()
            if self._control_file is not None and now >= next_file_check:
                next_file_check = now + CONTROL_FILE_EVERY_S
                self._read_control_file()
            with self._lock:
                refusing = self._faults.down_mode == "refuse" and self._faults.down(now)
            if refusing and self._server is not None:
                self._close_listener()
                dropped = self._drop_connections()
                with self._lock:
                    self._faults.refused_connections += dropped
                log.info("down (refuse): not listening on %s", self.url)
            elif not refusing and self._server is None:
                try:
                    self._listen()
                    log.info("up: listening on %s again", self.url)
                except OSError as exc:  # someone took the port meanwhile: keep trying
                    log.warning("cannot listen on %s again: %s", self.url, exc)
            self._wake.wait(TICK_S)
            self._wake.clear()

    # --- control -------------------------------------------------------------------------------------

    def control(self, changes: Mapping[str, Any]) -> Dict[str, Any]:
        """Apply a control request (the keys of POST /_faults); returns the new state."""
        if not isinstance(changes, Mapping):
            raise ControlError("the control request must be a JSON object")
        unknown = set(changes) - set(_CONTROLS)
        if unknown:
            raise ControlError(f"unknown keys {sorted(unknown)}; known: {sorted(_CONTROLS)}")
        with self._lock:
            # All or nothing: a request with one bad value leaves every setting as it was.
            before, random_before = replace(self._faults), self._random
            try:
                for key, apply in _CONTROLS.items():
                    if key in changes:
                        apply(self, changes[key])
            except ControlError:
                for name in (f.name for f in fields(Faults)):
                    setattr(self._faults, name, getattr(before, name))
                self._random = random_before
                raise
        self._wake.set()
        return self.state()

    def _set_throttle(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ControlError(f"throttle must be a number from 0 to 1, not {value!r}")
        self._faults.throttle = float(value)

    def _set_throttle_operations(self, value: Any) -> None:
        self._faults.throttle_operations = selectors(_names(value, "throttle_operations"))

    def _set_throttle_error(self, value: Any) -> None:
        if value not in THROTTLE_MESSAGES:
            raise ControlError(f"throttle_error must be one of {sorted(THROTTLE_MESSAGES)}, not {value!r}")
        self._faults.throttle_error = value

    def _set_down_mode(self, value: Any) -> None:
        if value not in DOWN_MODES:
            raise ControlError(f"down_mode must be one of {list(DOWN_MODES)}, not {value!r}")
        self._faults.down_mode = value

    def _set_down_operations(self, value: Any) -> None:
        self._faults.down_operations = selectors(_names(value, "down_operations"))

    def _set_down(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ControlError(f"down must be true or false, not {value!r}")
        self._faults.down_until = math.inf if value else 0.0

    def _set_down_for(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ControlError(f"down_for_seconds must be a positive number, not {value!r}")
        self._faults.down_until = self._clock() + float(value)

    def _set_seed(self, value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ControlError(f"seed must be an integer or null, not {value!r}")
        self._faults.seed = value
        self._random = random.Random(value)

    def _reset_counters(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ControlError(f"reset_counters must be true or false, not {value!r}")
        if value:
            self._faults.counters = {}
            self._faults.refused_connections = 0

    def state(self) -> Dict[str, Any]:
        now = self._clock()
        with self._lock:
            faults = self._faults
            down = faults.down(now)
            totals = dict.fromkeys(COUNTER_NAMES, 0)
            for counts in faults.counters.values():
                for name, value in counts.items():
                    totals[name] += value
            return {
                "upstream": self.upstream,
                "throttle": faults.throttle,
                "throttle_operations": list(faults.throttle_operations),
                "throttle_error": faults.throttle_error,
                "down": down,
                "down_remaining_seconds": (None if not down or faults.down_until == math.inf
                                           else round(faults.down_until - now, 3)),
                "down_mode": faults.down_mode,
                "down_operations": list(faults.down_operations),
                "seed": faults.seed,
                "counters": {target: dict(counts) for target, counts in sorted(faults.counters.items())},
                "totals": totals,
                "refused_connections": faults.refused_connections,
            }

    def _read_control_file(self) -> None:
        if self._control_file is None:
            return
        try:
            stat = self._control_file.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._control_seen:
                return
            self._control_seen = seen
            changes = json.loads(self._control_file.read_text() or "{}")
            self.control(changes)
            log.info("applied %s: %s", self._control_file, changes)
        except FileNotFoundError:
            self._control_seen = None
        except (OSError, ValueError) as exc:  # ControlError is a ValueError
            log.warning("ignored control file %s: %s", self._control_file, exc)

    # --- per request ---------------------------------------------------------------------------------

    def decide(self, target: str) -> Decision:
        """What to do with one request; counts it."""
        label = target or NO_TARGET
        with self._lock:
            faults = self._faults
            if faults.down(self._clock()):
                if faults.down_mode == "refuse":
                    faults.count(label, "refused")
                    return "refuse"
                if selected(target, faults.down_operations):
                    faults.count(label, "unavailable")
                    return "unavailable"
            if selected(target, faults.throttle_operations) and self._random.random() < faults.throttle:
                faults.count(label, "throttled")
                return "throttle"
            return "forward"

    def throttled(self) -> Answer:
        with self._lock:
            error = self._faults.throttle_error
        return dynamodb_error(400, error, THROTTLE_MESSAGES[error], aws_request_id)

    def unavailable(self) -> Answer:
        return dynamodb_error(503, "ServiceUnavailable", UNAVAILABLE_MESSAGE, aws_request_id)

    def forward(self, method: str, path: str, headers: List[Tuple[str, str]], body: bytes, target: str) -> Answer:
        scheme, host, port = self._upstream
        connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        # One connection per request: no stale pooled connection, so nothing is ever sent twice.
        connection = connection_class(host, port, timeout=self._upstream_timeout)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            content = response.read()
            answer_headers = [(name, value) for name, value in response.getheaders()
                              if name.lower() not in HOP_BY_HOP
                              or (method == "HEAD" and name.lower() == "content-length")]
            answer = Answer(response.status, response.reason, answer_headers, content)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("upstream %s failed for %s: %s", self.upstream, target or path, exc)
            with self._lock:
                self._faults.count(target or NO_TARGET, "upstream_error")
            text = json.dumps({"message": f"fault proxy: upstream {self.upstream} failed: {exc}"}).encode()
            return Answer(502, "Bad Gateway", [("Content-Type", "application/json")], text)
        finally:
            connection.close()
        with self._lock:
            self._faults.count(target or NO_TARGET, "forwarded")
        return answer

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(connection)


def _names(value: Any, key: str) -> str | List[str]:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise ControlError(f"{key} must be a list of operation names or a comma-separated string, not {value!r}")


_CONTROLS: Dict[str, Callable[[FaultProxy, Any], None]] = {
    "throttle": FaultProxy._set_throttle,
    "throttle_operations": FaultProxy._set_throttle_operations,
    "throttle_error": FaultProxy._set_throttle_error,
    "down_mode": FaultProxy._set_down_mode,
    "down_operations": FaultProxy._set_down_operations,
    "down": FaultProxy._set_down,
    "down_for_seconds": FaultProxy._set_down_for,
    "seed": FaultProxy._set_seed,
    "reset_counters": FaultProxy._reset_counters,
}
# Applied in this order: the mode before the window; a window given with `down` too wins.


# --- HTTP ------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler blocked on a slow upstream never delays the stop
    proxy: FaultProxy

    def server_bind(self) -> None:
        # HTTPServer's own looks the host name up (getfqdn), which can take seconds: not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pooled connections expect
    # Headers and body go out in two writes: with Nagle on, the body would wait ~40 ms for the
    # client's delayed ACK of the headers.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.proxy.track(self.connection, True)

    def finish(self) -> None:
        self.server.proxy.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _any(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self._send(Answer(400, "Bad Request", [("Content-Type", "application/json")],
                              json.dumps({"message": f"fault proxy: {exc}"}).encode()))
            return
        proxy = self.server.proxy
        if self.path.split("?", 1)[0] == CONTROL_PATH:
            self._control(proxy, body)
            return
        target = self.headers.get("X-Amz-Target", "")
        decision = proxy.decide(target)
        if decision == "refuse":
            self._abort()
        elif decision == "throttle":
            self._send(proxy.throttled())
        elif decision == "unavailable":
            self._send(proxy.unavailable())
        else:
            self._send(proxy.forward(self.command, self.path, list(self.headers.items()), body, target))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any

    def _control(self, proxy: FaultProxy, body: bytes) -> None:
        with proxy._lock:
            proxy._answering_control.add(self.connection)
        try:
            self._answer_control(proxy, body)
        finally:
            with proxy._lock:
                proxy._answering_control.discard(self.connection)

    def _answer_control(self, proxy: FaultProxy, body: bytes) -> None:
        status = 200
        if self.command == "GET":
            answer: Dict[str, Any] = proxy.state()
        elif self.command == "POST":
            try:
                answer = proxy.control(json.loads(body or b"{}"))
            except ValueError as exc:  # bad JSON or a ControlError
                status, answer = 400, {"message": str(exc)}
        else:
            status, answer = 405, {"message": f"{CONTROL_PATH} answers GET and POST"}
        self._send(Answer(status, http.client.responses[status], [("Content-Type", "application/json")],
                          json.dumps(answer, indent=1).encode()))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            raise ValueError(f"bad Content-Length {length!r}")
        return self.rfile.read(int(length))

    def _send(self, answer: Answer) -> None:
        self.send_response_only(answer.status, answer.reason)
        names = {name.lower() for name, _ in answer.headers}
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        for name, value in answer.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _abort(self) -> None:
        """Drop the connection without an answer (RST), as a process that went away would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --- the CLI -----------------------------------------------------------------------------------------

def serve_faults(argv: Optional[List[str]] = None) -> int:
    """`python -m devserver faults`: a fault-injecting proxy in front of the DynamoDB endpoint."""
    parser = argparse.ArgumentParser(prog="python -m devserver faults", description=serve_faults.__doc__,
                                     epilog=f"Run-time control: GET/POST {CONTROL_PATH} (see devserver/faults.py).")
    parser.add_argument("--upstream", default="http://127.0.0.1:8001", help="the DynamoDB endpoint to forward to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003, help="0 picks a free port")
    parser.add_argument("--throttle", type=float, default=0.0, help="fraction of selected calls throttled (0..1)")
    parser.add_argument("--throttle-operations", default="*",
                        help="comma-separated: PutItem,UpdateItem (DynamoDB), * (all DynamoDB), full targets "
                             "or Prefix.* (DynamoDBStreams_20120810.GetRecords, AmazonSQS.*); default *")
    parser.add_argument("--throttle-error", choices=sorted(THROTTLE_MESSAGES), default="ThrottlingException")
    parser.add_argument("--down-mode", choices=DOWN_MODES, default="503")
    parser.add_argument("--down-operations", default="*", help="503 mode: which calls get 503 (default *)")
    parser.add_argument("--down-for-seconds", type=float, default=None, help="start down for this long")
    parser.add_argument("--seed", type=int, default=None, help="seed for the throttle draws (deterministic)")
    parser.add_argument("--control-file", type=Path, default=None,
                        help="JSON object with the keys of POST /_faults, applied whenever the file changes")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write {FAULTS_URL, FAULTS_UPSTREAM} as JSON here once listening (for the launcher)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    proxy = FaultProxy(args.upstream, host=args.host, port=args.port, control_file=args.control_file)
    # The options go through the same checks as a control request.
    settings = {"throttle": args.throttle, "throttle_operations": args.throttle_operations,
                "throttle_error": args.throttle_error, "down_mode": args.down_mode,
                "down_operations": args.down_operations, "seed": args.seed}
    if args.down_for_seconds is not None:
        settings["down_for_seconds"] = args.down_for_seconds
    try:
        proxy.control(settings)
    except ControlError as exc:
        parser.error(str(exc))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:
        proxy.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", flush=True)
        return 1
    print(f"FAULTS_UPSTREAM={args.upstream}")
    print(f"FAULTS_URL={proxy.url}", flush=True)
    if args.ready_file is not None:
        write_json_atomically(args.ready_file, {"FAULTS_URL": proxy.url, "FAULTS_UPSTREAM": args.upstream})
    try:
        while not stopped.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0
