"""The app host's own HTTP paths under /_local/, next to the API it serves (docs/local-stack.md):

    GET /_local/status     JSON: the stream mapping, the functions, the event sources, the failure queue
    GET /_local/           the console: a page and its script and style (devserver/console/), which
                           read the two JSON paths and refresh themselves; no build step
    GET /_local/requests   JSON: the latest requests of each status (devserver/console_reads.py)

The console's retry button calls the API's own retry route; nothing here writes.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

PREFIX = "/_local"
STATUS_PATH = "/_local/status"
CONSOLE_PATH = "/_local/"
REQUESTS_PATH = "/_local/requests"
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
# Path -> (file in CONSOLE_DIR, content type). Read on each request: they are small, and an edit
# shows on the next refresh of the page.
ASSETS: Mapping[str, Tuple[str, str]] = {
    CONSOLE_PATH: ("index.html", "text/html; charset=utf-8"),
    "/_local/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/_local/console.css": ("console.css", "text/css; charset=utf-8"),
}

StartResponse = Callable[..., Any]
Document = Callable[[], Dict[str, Any]]


class Unavailable(Exception):
    """A document cannot be produced now (the database is down): answered 503 with the reason."""


def is_local_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class LocalPages:
    """A WSGI application for the paths under /_local/; `status` and `requests` produce the two
    JSON documents when asked."""

    def __init__(self, status: Document, requests: Document) -> None:
        self._documents: Dict[str, Document] = {STATUS_PATH: status, REQUESTS_PATH: requests}

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            return json_answer(start_response, "405 Method Not Allowed", {"message": f"{path} is read-only"},
                               [("Allow", "GET")])
        if path == PREFIX:
            return _answer(start_response, "308 Permanent Redirect", b"", "text/plain", [("Location", CONSOLE_PATH)])
        if path in self._documents:
            return self._document(start_response, path)
        if path in ASSETS:
            name, content_type = ASSETS[path]
            return _answer(start_response, "200 OK", (CONSOLE_DIR / name).read_bytes(), content_type)
        return json_answer(start_response, "404 Not Found", {
            "message": f"nothing at {path}", "paths": [CONSOLE_PATH, STATUS_PATH, REQUESTS_PATH]})

    def _document(self, start_response: StartResponse, path: str) -> Iterable[bytes]:
        try:
            document = self._documents[path]()
        except (Unavailable, BotoCoreError, ClientError) as exc:
            # The console shows the reason where the lists would be, and keeps refreshing.
            log.warning("%s unavailable: %s", path, exc)
            return json_answer(start_response, "503 Service Unavailable", {"problem": str(exc)})
        return json_answer(start_response, "200 OK", document)


def json_answer(start_response: StartResponse, status: str, document: Any,
                headers: Iterable[Tuple[str, str]] = ()) -> List[bytes]:
    body = json.dumps(document, indent=1, sort_keys=True).encode("utf-8")
    return _answer(start_response, status, body, "application/json", headers)


def _answer(start_response: StartResponse, status: str, body: bytes, content_type: str,
            headers: Iterable[Tuple[str, str]] = ()) -> List[bytes]:
    # no-store: the console polls these, and a cached answer would show a pipeline that moved on.
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *headers])
    return [body]
