"""The stream processor: runs the business logic for each new request and records the outcome.

For a batch of stream records it
1. keeps the records that bring a request into PENDING (records.new_request);
2. reads the current status of those items in one consistent BatchGetItem, so a redelivered
   record whose item already finished does not run the business logic again;
3. runs the business logic and writes the outcome back (conditional on PENDING) in a bounded
   thread pool, records of the same id one after another in stream order;
4. answers Lambda with a partial batch response: the sequence numbers to retry from
   (esm §3: Lambda checkpoints before the lowest one and redelivers everything after it).
"""
from __future__ import annotations

import json
import time
import traceback
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint

from chalicelib import config
from chalicelib.errors import (
    ConditionFailed,
    ConfigurationError,
    ItemTooLarge,
    RejectedRequest,
    StoreUnavailable,
    TransientError,
)
from chalicelib.logs import logger
from chalicelib.model import PENDING
from chalicelib.records import NewRequest, new_request
from chalicelib.store import ItemState, RequestStore, map_error

BusinessLogic = Callable[[Mapping[str, Any]], Any]


class StreamProcessor:
    def __init__(
        self,
        store: RequestStore,
        business_logic: BusinessLogic,
        *,
        executor: Executor,
        success_ttl_seconds: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._logic = business_logic
        self._executor = executor
        self._ttl = success_ttl_seconds
        self._now = now

    def process_batch(self, records: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, str]]]:
        requests = [r for r in map(new_request, records) if r is not None]
        failures: List[str] = []
        if requests:
            failures = self._process(requests)
        logger.info(
            "batch processed",
            extra={"records": len(records), "requests": len(requests), "retry": len(failures)},
        )
        return {"batchItemFailures": [{"itemIdentifier": s} for s in sorted(failures, key=int)]}

    def _process(self, requests: List[NewRequest]) -> List[str]:
        try:
            states = self._store.current_states(r.request_id for r in requests)
        except StoreUnavailable as exc:
            logger.warning("status read failed; the whole batch will be retried", extra={"error": str(exc)})
            return [r.sequence_number for r in requests]
        by_id: Dict[str, List[NewRequest]] = {}
        for request in requests:
            by_id.setdefault(request.request_id, []).append(request)
        futures = [self._executor.submit(self._run_in_order, group, states) for group in by_id.values()]
        return [sequence for future in futures for sequence in future.result()]

    def _run_in_order(self, group: List[NewRequest], states: Mapping[str, ItemState]) -> List[str]:
        """Sequence numbers to retry. After one record of an id must be retried, the later
        records of that id are retried too, unprocessed, so they keep their stream order."""
        for position, request in enumerate(group):
            if self._run_one(request, states.get(request.request_id)):
                return [r.sequence_number for r in group[position:]]
        return []

    def _run_one(self, request: NewRequest, state: Optional[ItemState]) -> bool:
        """Process one request; True when Lambda must deliver it again."""
        log = {"request_id": request.request_id, "sequence_number": request.sequence_number}
        if state is None:
            logger.info("item no longer exists; skipped", extra=log)
            return False
        if state.status != PENDING:
            logger.info("already finished; not run again", extra={**log, "status": state.status})
            return False
        now = self._now()
        now_ms = int(now * 1000)
        try:
            outcome = self._decide(request)
            if isinstance(outcome, _Retry):
                self._store.record_attempt(request.request_id, outcome.error, now_ms=now_ms)
                logger.warning("transient failure; will be retried", extra={**log, "error": outcome.error})
                return True
            if isinstance(outcome, _Failed):
                self._store.finish_failed(request.request_id, outcome.error, now_ms=now_ms)
                logger.info("request failed", extra={**log, "error": outcome.error})
                return False
            self._finish_succeeded(request, outcome, now, log)
            return False
        except ConditionFailed:
            logger.info("finished by another delivery; left as it is", extra=log)
            return False
        except StoreUnavailable as exc:
            logger.warning("write-back failed; will be retried", extra={**log, "error": str(exc)})
            return True

    def _finish_succeeded(self, request: NewRequest, result: Any, now: float, log: Dict[str, Any]) -> None:
        now_ms = int(now * 1000)
        try:
            self._store.finish_succeeded(
                request.request_id, result, now_ms=now_ms, expires_at=int(now) + self._ttl
            )
        except ItemTooLarge:
            error = {"type": "ResultTooLarge", "message": "the result does not fit in the 400 KB item"}
            self._store.finish_failed(request.request_id, error, now_ms=now_ms)
            logger.info("request failed", extra={**log, "error": error})
            return
        latency = None if request.created_at_ms is None else now_ms - request.created_at_ms
        logger.info("request succeeded", extra={**log, "latency_ms": latency})

    def _decide(self, request: NewRequest) -> Any:
        """The business logic's result, or a _Failed / _Retry outcome."""
        if request.body is None:
            return _Failed("RejectedRequest", "the item has no request attribute")
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return _Failed("RejectedRequest", f"the request is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return _Failed("RejectedRequest", "the request is not a JSON object")
        try:
            result = self._logic(body)
            json.dumps(result)
            return result
        except TransientError as exc:
            return _Retry(type(exc).__name__, str(exc))
        except RejectedRequest as exc:
            return _Failed(type(exc).__name__, str(exc))
        except (ClientError, BotoCoreError) as exc:
            # A downstream AWS call that was throttled or unreachable may work next time.
            mapped = map_error(exc)
            if isinstance(mapped, StoreUnavailable):
                return _Retry(type(exc).__name__, str(exc))
            return _Failed(type(exc).__name__, str(exc))
        except Exception as exc:  # noqa: BLE001 - anything unexpected is a permanent failure, kept
            logger.error(
                "business logic raised unexpectedly",
                extra={"request_id": request.request_id, "traceback": traceback.format_exc(limit=5)},
            )
            return _Failed(type(exc).__name__, str(exc) or type(exc).__name__)


class _Failed:
    def __init__(self, kind: str, message: str) -> None:
        self.error = {"type": kind, "message": message[:1000]}


class _Retry(_Failed):
    pass


# --- Lambda wiring -------------------------------------------------------------------------
# Built on the first invocation, not at import, so a cold start pays only for imports.

bp = Blueprint(__name__)
_business_logic: Optional[BusinessLogic] = None
_processor: Optional[StreamProcessor] = None


def configure(business_logic: BusinessLogic) -> None:
    """Choose the business logic (app.py does, once). Drops a processor built earlier."""
    global _business_logic, _processor
    _business_logic = business_logic
    _processor = None


def use_processor(processor: Optional[StreamProcessor]) -> None:
    """Install a processor built elsewhere (tests, the local stack); None rebuilds from env."""
    global _processor
    _processor = processor


def build(settings: config.Settings, business_logic: BusinessLogic) -> StreamProcessor:
    from chalicelib.aws import dynamodb_client

    return StreamProcessor(
        RequestStore(dynamodb_client(settings), settings.table_name),
        business_logic,
        executor=ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="request"),
        success_ttl_seconds=settings.success_ttl_seconds,
    )


def current() -> StreamProcessor:
    global _processor
    if _processor is None:
        if _business_logic is None:
            raise ConfigurationError("no business logic: call processor.configure() in app.py")
        _processor = build(config.Settings.from_env(), _business_logic)
    return _processor


@bp.on_dynamodb_record(
    stream_arn=config.stream_arn(),
    batch_size=100,
    # LATEST can miss records written while the mapping is created (esm §2).
    starting_position="TRIM_HORIZON",
)
def process(event: Any) -> Dict[str, List[Dict[str, str]]]:
    return current().process_batch(event.to_dict()["Records"])
