"""How the local API Gateway reaches DynamoDB for an `aws` integration.

A transport is `(action, body) -> (http_status, response_body)`: the rendered request template
goes out as-is, and DynamoDB's status and body come back untouched, because the integration
responses select on that status and map that body (docs: APIGW-17, APIGW-18). Failures to get any answer are
the only exceptions:

    IntegrationError
     +-- IntegrationFailure   no answer: connection refused/reset, unknown host
     +-- IntegrationTimeout   no answer within the integration timeout

`HttpTransport` talks HTTP to an endpoint (DynamoDB Local, a moto server), as API Gateway does.
`BotocoreTransport` goes through a botocore client, which is how moto's in-process `mock_aws`
is reached (it intercepts botocore, not sockets).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from botocore import xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.httpsession import URLLib3Session

__all__ = [
    "BotocoreTransport",
    "DynamoDBTransport",
    "HttpTransport",
    "IntegrationError",
    "IntegrationFailure",
    "IntegrationTimeout",
]

TARGET_PREFIX = "DynamoDB_20120810"
CONTENT_TYPE = "application/x-amz-json-1.0"
# Connections kept open for reuse. The gateway's server gives each client connection a thread of its
# own (werkzeug's threaded server, no cap) and each calls this transport; with botocore's default 10,
# 32 clients made urllib3 open and drop a connection per call beyond the 10th ("Connection pool is
# full, discarding connection" in app.log). A pool never blocks a call: 64 is twice the most
# concurrent clients the project drives (reliability's, the e2e bench's).
POOL_CONNECTIONS = 64


class IntegrationError(Exception):
    """The integration endpoint gave no HTTP answer."""


class IntegrationFailure(IntegrationError):
    """Raised when no connection could be made or it broke: API Gateway's INTEGRATION_FAILURE."""


class IntegrationTimeout(IntegrationError):
    """Raised when no answer came within the timeout: API Gateway's INTEGRATION_TIMEOUT."""


class DynamoDBTransport(Protocol):
    def __call__(self, action: str, body: bytes) -> tuple[int, bytes]: ...


class HttpTransport:
    """POSTs the body to a DynamoDB endpoint with X-Amz-Target, SigV4-signed, as API Gateway calls it.

    The credentials are fake but not arbitrary: DynamoDB Local keeps one database per access
    key (unless run with -sharedDb), so they must match what the Chalice side uses."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        access_key_id: str = "testing",
        secret_access_key: str = "testing",
        timeout_seconds: float = 29.0,
        pool_connections: int = POOL_CONNECTIONS,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._signer = SigV4Auth(Credentials(access_key_id, secret_access_key), "dynamodb", region)
        # URLLib3Session never retries, like API Gateway.
        # Ignored (arg-type): botocore-stubs say int; botocore passes it to urllib3's Timeout, which takes a float.
        self._session = URLLib3Session(timeout=timeout_seconds,  # type: ignore[arg-type]
                                       max_pool_connections=pool_connections)

    def __call__(self, action: str, body: bytes) -> tuple[int, bytes]:
        request = AWSRequest(
            method="POST",
            url=self._endpoint_url,
            data=body,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}.{action}"},
        )
        self._signer.add_auth(request)
        try:
            response = self._session.send(request.prepare())
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise IntegrationTimeout(f"{self._endpoint_url}: {exc}") from exc
        except (EndpointConnectionError, ConnectionClosedError) as exc:
            raise IntegrationFailure(f"{self._endpoint_url}: {exc}") from exc
        return response.status_code, response.content


class BotocoreTransport:
    """Sends the rendered request through a botocore DynamoDB client and returns the raw answer.

    The client should be built with retries off (`Config(retries={"total_max_attempts": 1})`):
    API Gateway does not retry. The JSON body becomes the operation's parameters, so what the
    client would reject before sending is answered here the way DynamoDB answers it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._last = threading.local()
        client.meta.events.register("response-received.dynamodb", self._remember)

    def _remember(self, response_dict: dict[str, Any] | None, **_: Any) -> None:
        if response_dict is not None:
            self._last.answer = (response_dict["status_code"], response_dict["body"])

    def __call__(self, action: str, body: bytes) -> tuple[int, bytes]:
        try:
            params = json.loads(body)
        except ValueError as exc:
            return _error(400, "com.amazon.coral.service#SerializationException", str(exc))
        if not isinstance(params, dict):
            return _error(400, "com.amazon.coral.service#SerializationException", "request body is not a JSON object")
        self._last.answer = None
        try:
            getattr(self._client, xform_name(action))(**params)
        except ClientError:
            pass  # the raw error answer was captured like any other
        except ParamValidationError as exc:
            return _error(400, "com.amazon.coral.validate#ValidationException", str(exc))
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise IntegrationTimeout(str(exc)) from exc
        except (EndpointConnectionError, ConnectionClosedError) as exc:
            raise IntegrationFailure(str(exc)) from exc
        answer: tuple[int, bytes] | None = self._last.answer
        if answer is None:
            raise IntegrationFailure(f"botocore returned no HTTP response for {action}")
        return answer


def _error(status: int, error_type: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"__type": error_type, "message": message}).encode("utf-8")
