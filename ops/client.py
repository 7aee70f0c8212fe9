"""The storefirst HTTP API as an operator uses it: show, list failed, retry.

It talks to the API rather than to DynamoDB, so it works the same against `make run` and a
real stage, with the same validation and least privilege the routes already have. With
`sigv4=True` requests are signed for API Gateway IAM auth from the usual AWS credentials.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Api:
    base_url: str
    sigv4: bool = False
    region: Optional[str] = None
    timeout: float = 10.0

    def show(self, request_id: str) -> Dict[str, Any]:
        return self._call("GET", f"/requests/{urllib.parse.quote(request_id, safe='')}")

    def retry(self, request_id: str) -> Dict[str, Any]:
        return self._call("POST", f"/requests/{urllib.parse.quote(request_id, safe='')}/retry")

    def page(self, status: str, limit: int, cursor: Optional[str] = None) -> Tuple[list, Optional[str]]:
        query = {"status": status, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        body = self._call("GET", "/requests?" + urllib.parse.urlencode(query))
        return body["items"], body["next"]

    def all(self, status: str, page_size: int = 100) -> Iterator[Dict[str, Any]]:
        cursor: Optional[str] = None
        while True:
            items, cursor = self.page(status, page_size, cursor)
            yield from items
            if cursor is None:
                return

    def _call(self, method: str, path: str) -> Dict[str, Any]:
        url = self.base_url.rstrip("/") + path
        # Chalice routes accept application/json only: a bodiless POST still names it.
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        data = b"{}" if method == "POST" else None
        if self.sigv4:
            headers.update(_signed_headers(method, url, self.region, data))
        request = urllib.request.Request(url, method=method, headers=headers, data=data)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("message", error.reason)
            except ValueError:
                message = str(error.reason)
            raise ApiError(error.code, message) from None


def _signed_headers(method: str, url: str, region: Optional[str], data: Optional[bytes]) -> Dict[str, str]:
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ApiError(0, "no AWS credentials found for --sigv4")
    request = AWSRequest(method=method, url=url, data=data or b"")
    SigV4Auth(credentials, "execute-api", region or session.get_config_variable("region") or "us-east-1") \
        .add_auth(request)
    return dict(request.headers.items())
