"""Invoke the handler like Lambda does and classify what came back (docs: ESM-1, ESM-6)."""
from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

log = logging.getLogger(__name__)

Handler = Callable[[Dict[str, Any], Any], Any]
T = TypeVar("T")

SUCCESS = "success"
FUNCTION_ERROR = "function_error"  # exception or unserialisable result: functionError "Unhandled"
BAD_RESPONSE = "bad_response"  # malformed partial-batch response: whole batch failed, functionError null
PARTIAL = "partial"  # valid batchItemFailures: retry from the lowest reported sequence number


@dataclass(frozen=True)
class Outcome:
    kind: str
    failed_from: Optional[str] = None  # PARTIAL only: the lowest reported sequence number
    detail: str = ""


@dataclass
class FunctionContext:
    """The attributes of Lambda's Python context object that handlers commonly read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_s: float = 120.0
    clock: Callable[[], float] = time.time
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = self.clock()
        if not self.log_group_name:
            self.log_group_name = "/aws/lambda/%s" % self.function_name

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (self.clock() - self._started)) * 1000))


def invoke(
    handler: Handler, records: Sequence[Dict[str, Any]], *, function_name: str, function_arn: str,
    report_batch_item_failures: bool, clock: Callable[[], float] = time.time,
) -> Outcome:
    """Call the handler synchronously with `{"Records": [...]}` and classify the result."""
    # A JSON round trip hands the handler its own copy, with exactly the types Lambda would deliver.
    event = json.loads(json.dumps({"Records": list(records)}))
    context = FunctionContext(function_name=function_name, invoked_function_arn=function_arn,
                            aws_request_id=str(uuid.uuid4()), clock=clock)
    try:
        result = handler(event, context)
        # Lambda serialises the result; one that cannot be is a function error (Runtime.MarshalError).
        response = json.loads(json.dumps(result))
    except Exception as exc:  # any handler error is a function error, like an unhandled exception on AWS
        log.warning("handler raised %s: %s", type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return Outcome(FUNCTION_ERROR, detail="%s: %s" % (type(exc).__name__, exc))
    if not report_batch_item_failures:
        return Outcome(SUCCESS)  # without ReportBatchItemFailures the response is ignored (docs: ESM-6)
    return parse_batch_response(response, [r["dynamodb"]["SequenceNumber"] for r in records])


def parse_batch_response(response: Any, delivered: Sequence[str]) -> Outcome:
    """Partial batch response rules (docs: ESM-6).

    Success: null, {}, [], "", a missing/null/empty `batchItemFailures`.
    Whole-batch failure: a non-list `batchItemFailures`, a non-object entry, a missing, null or
    empty itemIdentifier, or one that is not a sequence number of this batch.
    Otherwise the lowest reported sequence number (compared as integers) is where the retry starts.
    """
    if not response:
        return Outcome(SUCCESS)
    if not isinstance(response, dict):
        return Outcome(BAD_RESPONSE, detail="response is not an object: %s" % _short(response))
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(SUCCESS)
    if not isinstance(failures, list):
        return Outcome(BAD_RESPONSE, detail="batchItemFailures is not a list: %s" % _short(failures))
    in_batch = set(delivered)
    ids: List[str] = []
    for entry in failures:
        if not isinstance(entry, dict) or "itemIdentifier" not in entry:
            return Outcome(BAD_RESPONSE, detail="entry without itemIdentifier: %s" % _short(entry))
        ident = entry["itemIdentifier"]
        if not isinstance(ident, str) or not ident:
            return Outcome(BAD_RESPONSE, detail="empty or null itemIdentifier: %s" % _short(entry))
        if ident not in in_batch:
            return Outcome(BAD_RESPONSE, detail="itemIdentifier %s is not in the batch" % _short(ident))
        ids.append(ident)
    # Sequence numbers vary in length (21-40 digits): compare as integers, never as text.
    return Outcome(PARTIAL, failed_from=min(ids, key=int))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


class InlineExecutor(Executor):
    """Runs each call at submit, in the caller's thread: the runner's invocations one after another,
    in a deterministic order (step-by-step tests, the in-process pipeline). The returned future is done."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> "Future[T]":
        future: "Future[T]" = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to whoever reads the future, as a pool would
            future.set_exception(exc)
        return future
