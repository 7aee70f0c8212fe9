"""A small HTTP client for the local API, for tests, bench and reliability."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from devserver.local_config import DEFAULT_REGION, DEFAULT_SECRET_KEY

Answer = Tuple[int, Any]


def _query(status: str, query: Mapping[str, str]) -> str:
    return urllib.parse.urlencode({"status": status, **query})


def http(method: str, url: str, body: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
         timeout: float = 10.0) -> Answer:
    """(status, parsed JSON body or None) for one request; an HTTP error status is an answer too."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.05)


def read_until(process: "subprocess.Popen[str]", marker: str, timeout: float = 30.0) -> List[str]:
    """The lines a child prints, up to and including the first that starts with `marker`. A read
    blocks until the child prints, so it runs in a thread: if the marker has not come within
    `timeout` s, the child is killed (which ends the read) and AssertionError names what it printed."""
    assert process.stdout is not None
    stdout, lines, found = process.stdout, [], threading.Event()

    def read() -> None:
        for line in stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(marker):
                found.set()
                return

    reader = threading.Thread(target=read, name="read-until", daemon=True)
    reader.start()
    reader.join(timeout)
    if not found.is_set():
        process.kill()
        reader.join(5)
        raise AssertionError(f"no line starting {marker!r} within {timeout} s; printed: {lines}")
    return lines


class Api:
    """The API as one caller uses it (paths are sent as given, hostile ones included): unsigned, or
    signed as `access_key` when the local stack runs with `--auth iam` (every local access key has
    the stack's one secret key)."""

    def __init__(self, url: str, access_key: Optional[str] = None, *, secret_key: str = DEFAULT_SECRET_KEY,
                 region: str = DEFAULT_REGION) -> None:
        self.url = url
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def headers(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """The headers to send `method path` with: Content-Type and `headers`, signed when this
        caller signs (the path as it goes on the wire: SigV4 signs its encoded form)."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.access_key is None:
            return all_headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signed = AWSRequest(method=method, url=f"{self.url}{path}", data=body or b"", headers=all_headers)
        SigV4Auth(Credentials(self.access_key, self.secret_key), "execute-api", self.region).add_auth(signed)
        return dict(signed.headers.items())

    def call(self, method: str, path: str, body: Optional[bytes] = None,
             headers: Optional[Mapping[str, str]] = None) -> Answer:
        return http(method, f"{self.url}{path}", body, self.headers(method, path, body, headers))

    def put(self, body: Any, headers: Optional[Mapping[str, str]] = None) -> Answer:
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        return self.call("PUT", "/requests", data, headers)

    def get(self, request_id: str) -> Answer:
        return self.call("GET", f"/requests/{request_id}")

    def retry(self, request_id: str) -> Answer:
        return self.call("POST", f"/requests/{request_id}/retry", b"")

    def list(self, status: str, **query: str) -> Answer:
        return self.call("GET", f"/requests?{_query(status, query)}")

    def operator_get(self, owner: str, request_id: str) -> Answer:
        return self.call("GET", f"/admin/requests/{owner}/{request_id}")

    def operator_retry(self, owner: str, request_id: str) -> Answer:
        return self.call("POST", f"/admin/requests/{owner}/{request_id}/retry", b"")

    def operator_list(self, status: str, **query: str) -> Answer:
        return self.call("GET", f"/admin/requests?{_query(status, query)}")

    def accepted(self, body: Any, headers: Optional[Mapping[str, str]] = None) -> str:
        """PUT and return the new request's id (AssertionError unless 202)."""
        status, answer = self.put(body, headers)
        assert status == 202, (status, answer)
        return str(answer["id"])

    def status_is(self, request_id: str, status: str, timeout: float = 30.0) -> Dict[str, Any]:
        def reached() -> Optional[Dict[str, Any]]:
            code, answer = self.get(request_id)
            return answer if code == 200 and answer.get("status") == status else None
        result: Dict[str, Any] = wait_for(reached, timeout, f"{request_id} {status}")
        return result

    def finished(self, request_id: str, timeout: float = 15.0) -> Dict[str, Any]:
        """The request once it is SUCCEEDED or FAILED."""
        def done() -> Optional[Dict[str, Any]]:
            code, answer = self.get(request_id)
            return answer if code == 200 and answer.get("status") != "PENDING" else None
        result: Dict[str, Any] = wait_for(done, timeout, f"{request_id} finished")
        return result
