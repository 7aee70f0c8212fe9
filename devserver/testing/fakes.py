"""Fakes injected in place of AWS clients."""
from __future__ import annotations

from typing import Any, Callable, Dict

from botocore.exceptions import ClientError


def client_error(code: str, operation: str, *, message: str = "m", status: int = 400) -> ClientError:
    """What botocore raises for an AWS error answer, with the keys our code reads. (botocore-stubs type the
    response with every ResponseMetadata key, RequestId, HostId..., which a fake has no use for.)"""
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


class FailingClient:
    """A DynamoDB client that fails one operation (when `when` accepts its arguments) with the
    given error code and passes everything else to the real client."""

    def __init__(self, client: Any, operation: str, code: str = "ProvisionedThroughputExceededException",
                 message: str = "slow down", when: Callable[[Dict[str, Any]], bool] = lambda kwargs: True) -> None:
        self._client = client
        self._operation = operation
        self._code, self._message = code, message
        self._when = when

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def failing(**kwargs: Any) -> Any:
            if self._when(kwargs):
                raise client_error(self._code, name, message=self._message)
            return real(**kwargs)
        return failing
