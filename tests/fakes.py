"""Fakes injected in place of AWS clients."""
from __future__ import annotations

from typing import Any, Callable, Dict

from botocore.exceptions import ClientError


class FailingClient:
    """A DynamoDB client that fails one operation (when `when` accepts its arguments) with the
    given error code and passes everything else to the real client."""

    def __init__(self, client: Any, operation: str, code: str = "ProvisionedThroughputExceededException",
                 message: str = "slow down", when: Callable[[Dict[str, Any]], bool] = lambda kwargs: True) -> None:
        self._client = client
        self._operation = operation
        self._error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        self._when = when

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def failing(**kwargs: Any) -> Any:
            if self._when(kwargs):
                raise ClientError(self._error, name)
            return real(**kwargs)
        return failing
