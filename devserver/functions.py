"""Lambda functions, run locally the way Lambda runs them.

Each invocation runs in a *function instance*: a process of its own that imported app.py once, as
a Lambda sandbox does at its cold start, and then serves one invocation at a time while it stays
warm. Concurrent invocations of a function get more instances, so they are not serialised on one
interpreter lock and each builds its own clients and processor (chalicelib.runtime), as on Lambda.

What Lambda reports for a failed invocation is what `FunctionPool.invoke` raises, as FunctionError:
- the handler raised: its exception type and message (an unhandled function error);
- the instance died mid-invocation (a crash, SIGKILL): `Runtime.ExitError`; the instance is gone and
  the next invocation starts a new one;
- no answer within the function's timeout: `Sandbox.Timedout`; the instance is killed;
- app.py failed to import: `Runtime.ImportModuleError`.
An event source that gets a FunctionError retries as Lambda would; nothing is lost with the instance.

Instances talk to the pool over a socket pair (length-prefixed JSON frames), not stdin/stdout:
they inherit the host's stdout and stderr for their logs, as Lambda sends them to CloudWatch.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import struct
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

log = logging.getLogger(__name__)

_FRAME = struct.Struct(">I")
# Lambda gives a function's initialisation 10 s before it counts as failed.
INIT_TIMEOUT_S = 10.0


class FunctionError(Exception):
    """A failed invocation, as Lambda reports it: errorType and errorMessage."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def send_frame(sock: socket.socket, payload: Any) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    sock.sendall(_FRAME.pack(len(data)) + data)


def recv_frame(sock: socket.socket) -> Optional[Any]:
    """The next frame, or None when the other side is gone."""
    header = _recv_exactly(sock, _FRAME.size)
    if header is None:
        return None
    body = _recv_exactly(sock, _FRAME.unpack(header)[0])
    return None if body is None else json.loads(body)


def _recv_exactly(sock: socket.socket, size: int) -> Optional[bytes]:
    chunks: List[bytes] = []
    while size:
        try:
            chunk = sock.recv(min(size, 1 << 20))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class FunctionConfig:
    """One Lambda function of the app: Chalice's handler name and what its sandbox gets."""

    name: str
    environment: Mapping[str, str]
    timeout_s: float = 60.0
    memory_mb: int = 128
    arn: str = ""


@dataclass
class _Counters:
    invocations: int = 0
    cold_starts: int = 0
    errors: int = 0
    crashes: int = 0
    timeouts: int = 0


class Instance:
    """One function instance: a process serving invocations of one function."""

    def __init__(self, config: FunctionConfig, *, project_dir: Path, python: str = sys.executable) -> None:
        self.config = config
        ours, theirs = socket.socketpair()
        self._sock = ours
        try:
            self.process = subprocess.Popen(
                [python, "-m", "devserver.function_instance", "--fd", str(theirs.fileno()),
                 "--function", config.name],
                cwd=project_dir, env=dict(config.environment), pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._ready: Optional[Dict[str, Any]] = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        """Block until app.py is imported (the cold start), or raise FunctionError."""
        if self._ready is not None:
            return
        self._sock.settimeout(INIT_TIMEOUT_S)
        try:
            hello = recv_frame(self._sock)
        except socket.timeout:
            self.kill()
            raise FunctionError("Runtime.InitError", f"{self.config.name}: init did not finish "
                                                     f"within {INIT_TIMEOUT_S:.0f} s") from None
        if hello is None:
            raise FunctionError("Runtime.ExitError", f"{self.config.name}: the instance exited during init "
                                                     f"(status {self.process.wait()})")
        if "initError" in hello:
            self.kill()
            error = hello["initError"]
            raise FunctionError(error.get("errorType", "Runtime.ImportModuleError"), error.get("errorMessage", ""))
        self._ready = hello

    def invoke(self, event: Any, context: Mapping[str, Any]) -> Any:
        self.wait_ready()
        timeout = self.config.timeout_s
        self._sock.settimeout(timeout)
        try:
            send_frame(self._sock, {"event": event, "context": dict(context)})
            answer = recv_frame(self._sock)
        except socket.timeout:
            self.kill()
            raise FunctionError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds") from None
        except (BrokenPipeError, ConnectionResetError):
            answer = None
        if answer is None:
            status = self.process.wait()
            raise FunctionError("Runtime.ExitError", f"RequestId: {context.get('aws_request_id')} Error: "
                                                     f"Runtime exited {_exit_text(status)}")
        if "error" in answer:
            error = answer["error"]
            raise FunctionError(error.get("errorType", "Exception"), error.get("errorMessage", ""))
        return answer.get("result")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._sock.close()


# Instances of one function at once: ParallelizationFactor's maximum (docs: ESM-17).
MAX_INSTANCES = 10


class FunctionPool:
    """The app's Lambda functions: warm instances reused, new ones started for concurrency."""

    def __init__(self, functions: Mapping[str, FunctionConfig], *, project_dir: Path,
                 python: str = sys.executable, max_instances: int = MAX_INSTANCES,
                 new_instance: Optional[Callable[[FunctionConfig], Instance]] = None) -> None:
        self._functions = dict(functions)
        self._project_dir = project_dir
        self._max = max_instances
        self._new = new_instance or (lambda config: Instance(config, project_dir=project_dir, python=python))
        self._lock = threading.Condition()
        self._idle: Dict[str, List[Instance]] = {name: [] for name in self._functions}
        self._busy: Dict[str, List[Instance]] = {name: [] for name in self._functions}
        self._counters: Dict[str, _Counters] = {name: _Counters() for name in self._functions}
        self._closed = False

    def names(self) -> List[str]:
        return list(self._functions)

    def handler(self, name: str) -> Callable[[Any, Any], Any]:
        """A Lambda-style `handler(event, context)` that invokes `name` in an instance."""
        if name not in self._functions:
            raise KeyError(f"no function {name!r}; the app declares {', '.join(self._functions)}")

        def handler(event: Any, context: Any = None) -> Any:
            return self.invoke(name, event)
        return handler

    def invoke(self, name: str, event: Any) -> Any:
        """Invoke `name` with `event` synchronously, as Lambda's RequestResponse invocation does."""
        config = self._functions[name]
        instance = self._acquire(name)
        counters = self._counters[name]
        request_id = str(uuid.uuid4())
        context = {"function_name": config.name, "invoked_function_arn": config.arn, "aws_request_id": request_id,
                   "memory_limit_in_mb": config.memory_mb, "timeout_s": config.timeout_s}
        try:
            result = instance.invoke(event, context)
        except FunctionError as exc:
            with self._lock:
                counters.errors += 1
                if exc.error_type in ("Runtime.ExitError", "Sandbox.Timedout", "Runtime.InitError",
                                      "Runtime.ImportModuleError"):
                    counters.crashes += exc.error_type == "Runtime.ExitError"
                    counters.timeouts += exc.error_type == "Sandbox.Timedout"
                    self._discard(name, instance)
                else:
                    self._release(name, instance)
            raise
        except BaseException:
            with self._lock:
                self._discard(name, instance)
            raise
        with self._lock:
            self._release(name, instance)
        return result

    def warm(self, name: str) -> None:
        """Start one instance of `name` now (its cold start runs while nothing waits for it), so
        the first invocation finds it idle; that invocation waits for the end of its init if need be."""
        with self._lock:
            if self._closed or self._idle[name] or self._busy[name]:
                return
            self._idle[name].append(self._new(self._functions[name]))
            self._counters[name].cold_starts += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            instances = [i for group in (*self._idle.values(), *self._busy.values()) for i in group]
            for group in (*self._idle.values(), *self._busy.values()):
                group.clear()
            self._lock.notify_all()
        for instance in instances:
            instance.kill()

    def status(self) -> Dict[str, Any]:
        with self._lock:
            return {name: {"instances": len(self._idle[name]) + len(self._busy[name]), "busy": len(self._busy[name]),
                           "pids": [i.pid for i in (*self._idle[name], *self._busy[name])],
                           "busyPids": [i.pid for i in self._busy[name]], **vars(self._counters[name])}
                    for name in self._functions}

    def _acquire(self, name: str) -> Instance:
        with self._lock:
            while True:
                if self._closed:
                    raise FunctionError("Runtime.ExitError", "the local stack is stopping")
                idle = self._idle[name]
                while idle and not idle[-1].alive():
                    idle.pop().kill()
                if idle:
                    instance = idle.pop()
                    break
                if len(self._busy[name]) < self._max:
                    instance = self._new(self._functions[name])
                    self._counters[name].cold_starts += 1
                    break
                self._lock.wait(0.5)
            self._busy[name].append(instance)
            self._counters[name].invocations += 1
            return instance

    def _release(self, name: str, instance: Instance) -> None:
        if instance in self._busy[name]:  # close() empties the lists (and kills) while a batch still runs
            self._busy[name].remove(instance)
        if self._closed:
            instance.kill()
        else:
            self._idle[name].append(instance)
        self._lock.notify_all()

    def _discard(self, name: str, instance: Instance) -> None:
        if instance in self._busy[name]:
            self._busy[name].remove(instance)
        instance.kill()
        self._lock.notify_all()


def _exit_text(status: int) -> str:
    if status < 0:
        return f"with signal {signal.Signals(-status).name}"
    return f"with status {status}"


__all__ = ["FunctionConfig", "FunctionError", "FunctionPool", "Instance", "recv_frame", "send_frame"]
