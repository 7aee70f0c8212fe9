"""One function instance (`python -m devserver.function_instance --fd N --function NAME`), started by
devserver/functions.py: imports app.py as a Lambda sandbox does at its cold start, then answers
invocations of one function over the socket it was given, one at a time, until the pool closes the
socket or its parent process is gone."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from devserver.functions import recv_frame, send_frame
from devserver.local_config import BUSINESS_LOGIC


def main(argv: Optional[List[str]] = None) -> int:
    # Ctrl-C stops the instance with the rest of the group, even when launched with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(prog="python -m devserver.function_instance")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--function", required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    _exit_with_parent()
    started = time.monotonic()
    try:
        handler = load_handler(args.function)
    except Exception as exc:  # noqa: BLE001 - reported to the pool as Lambda reports an init failure
        traceback.print_exc()
        send_frame(sock, {"initError": {"errorType": "Runtime.ImportModuleError",
                                        "errorMessage": f"{type(exc).__name__}: {exc}"}})
        return 1
    send_frame(sock, {"ready": True, "initMs": int((time.monotonic() - started) * 1000), "pid": os.getpid()})
    try:
        serve(sock, handler)
    except KeyboardInterrupt:
        pass
    return 0


def load_handler(function: str) -> Callable[[Any, Any], Any]:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    from devserver import aws_guard

    aws_guard.install()
    app = importlib.import_module("app").app
    override = os.environ.get(BUSINESS_LOGIC)
    if override:
        from chalicelib import processor

        module, name = override.split(":")
        processor.configure(getattr(importlib.import_module(module), name))
    handler: Callable[[Any, Any], Any] = app.handler_map[function]
    return handler


def serve(sock: socket.socket, handler: Callable[[Any, Any], Any]) -> None:
    from devserver.stream.invoke import FunctionContext

    while True:
        request = recv_frame(sock)
        if request is None:
            return
        info: Dict[str, Any] = request["context"]
        context = FunctionContext(
            function_name=info["function_name"], invoked_function_arn=info["invoked_function_arn"],
            aws_request_id=info["aws_request_id"], memory_limit_in_mb=info["memory_limit_in_mb"],
            timeout_s=info["timeout_s"])
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - an unhandled function error, as Lambda reports it
            traceback.print_exc()
            send_frame(sock, {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}})
            continue
        try:
            send_frame(sock, {"result": result})
        except (TypeError, ValueError) as exc:
            send_frame(sock, {"error": {"errorType": "Runtime.MarshalError",
                                        "errorMessage": f"Unable to marshal response: {exc}"}})


def _exit_with_parent() -> None:
    """Leave when the process that started us is gone (SIGKILLed host, SIGTERM to chalice local):
    a busy instance would otherwise only notice at its next read."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
