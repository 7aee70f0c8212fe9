"""What the business logic decided about a request, what became of it, and what Lambda is told.

    Decision                 the logic's verdict, before anything is written
    ├── Succeed(result)      write SUCCEEDED with the result
    ├── Reject(error)        write FAILED with the error: kept, never retried by itself
    └── Retry(error)         count the attempt and have Lambda deliver the record again
    Outcome                  what happened to one stream record in the batch (an enum)
    BatchResponse            the partial batch response Lambda reads (docs: ESM-6)
"""
from __future__ import annotations

import enum
import json
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, TypedDict, Union

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import RejectedRequest, StoreUnavailable, TransientError
from chalicelib.logs import logger
from chalicelib.store import map_error

BusinessLogic = Callable[[Mapping[str, Any]], Any]
_MAX_MESSAGE = 1000


def error_of(kind: str, message: str) -> Dict[str, str]:
    return {"type": kind, "message": message[:_MAX_MESSAGE]}


@dataclass(frozen=True)
class Succeed:
    result: Any


@dataclass(frozen=True)
class Reject:
    error: Dict[str, str]


@dataclass(frozen=True)
class Retry:
    error: Dict[str, str]


Decision = Union[Succeed, Reject, Retry]


class Outcome(enum.Enum):
    """What became of one stream record of a batch. RETRY ran and must run again; DEFERRED did not
    run because its id's latest record must run again; Lambda delivers both again."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"
    DEFERRED = "deferred"
    SKIPPED = "skipped"

    @property
    def redelivered(self) -> bool:
        return self in (Outcome.RETRY, Outcome.DEFERRED)


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: List[BatchItemFailure]


def batch_response(sequence_numbers: List[str]) -> BatchResponse:
    # Lambda retries from the lowest reported sequence number (docs: ESM-6); ascending is clearest.
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sorted(sequence_numbers, key=int)]}


def decide(logic: BusinessLogic, body: Optional[str], request_id: str) -> Decision:
    """Run the business logic on a stored body and classify what it did."""
    if body is None:
        return Reject(error_of("RejectedRequest", "the item has no request attribute"))
    try:
        request = json.loads(body)
    except ValueError as exc:
        return Reject(error_of("RejectedRequest", f"the request is not valid JSON: {exc}"))
    except RecursionError:
        # Valid JSON can nest deeper than Python's parser goes; failing the item keeps one body
        # from failing (and bisecting) its whole batch.
        return Reject(error_of("RejectedRequest", "the request nests too deeply to parse"))
    if not isinstance(request, dict):
        return Reject(error_of("RejectedRequest", "the request is not a JSON object"))
    try:
        result = logic(request)
        json.dumps(result)
        return Succeed(result)
    except TransientError as exc:
        return Retry(error_of(type(exc).__name__, str(exc)))
    except RejectedRequest as exc:
        return Reject(error_of(type(exc).__name__, str(exc)))
    except (ClientError, BotoCoreError) as exc:
        # A downstream AWS call that was throttled or unreachable may work next time.
        kind = Retry if isinstance(map_error(exc), StoreUnavailable) else Reject
        return kind(error_of(type(exc).__name__, str(exc)))
    except Exception as exc:  # noqa: BLE001 - anything unexpected is a permanent failure, kept
        logger.error("business logic raised unexpectedly",
                     extra={"request_id": request_id, "traceback": traceback.format_exc(limit=5)})
        return Reject(error_of(type(exc).__name__, str(exc) or type(exc).__name__))
