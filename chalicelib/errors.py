"""Every error storefirst raises, and what each means for a request.

    StorefirstError
    ├── ConfigurationError       settings are missing or invalid: a deployment bug, fail loudly
    ├── ProcessingError          raised by business logic about one request
    │   ├── RejectedRequest      permanent: the request can never succeed -> FAILED, kept
    │   └── TransientError       try again later -> reported to Lambda, retried from the stream
    ├── StoreError               a DynamoDB call failed (botocore errors are mapped in store.py)
    │   ├── StoreUnavailable     throttled, 5xx or unreachable: transient
    │   ├── ConditionFailed      a conditional write found the item in another state
    │   ├── ItemTooLarge         the write would exceed DynamoDB's 400 KB item limit
    │   └── StoreMisconfigured   access denied, table missing, invalid call: a deployment bug
    └── CallerError              a route's caller sent something wrong; carries its HTTP status
        ├── InvalidRequestId     400
        ├── InvalidQuery         400
        ├── RequestNotFound      404
        └── RequestConflict      409  (the request is not in a state that allows the action)
"""
from __future__ import annotations


class StorefirstError(Exception):
    pass


class ConfigurationError(StorefirstError):
    pass


class ProcessingError(StorefirstError):
    pass


class RejectedRequest(ProcessingError):
    """Raised by business logic for a request that can never succeed as sent."""


class TransientError(ProcessingError):
    """Raised by business logic when a retry later may succeed (a dependency is down)."""


class StoreError(StorefirstError):
    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(StoreError):
    pass


class ConditionFailed(StoreError):
    pass


class ItemTooLarge(StoreError):
    pass


class StoreMisconfigured(StoreError):
    pass


class CallerError(StorefirstError):
    STATUS_CODE = 400

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        # Extra fields for the JSON answer, e.g. the id a 409 is about.
        self.details = details


class InvalidRequestId(CallerError):
    STATUS_CODE = 400


class RequestNotFound(CallerError):
    STATUS_CODE = 404


class InvalidQuery(CallerError):
    STATUS_CODE = 400


class RequestConflict(CallerError):
    STATUS_CODE = 409
