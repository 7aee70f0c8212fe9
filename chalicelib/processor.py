"""The stream processor: runs the business logic for each new request and records the outcome.

For a batch of stream records it
1. keeps the records that bring a request into PENDING (records.new_request);
2. reads the current status of those items in one consistent BatchGetItem, so a redelivered
   record whose item already finished does not run the business logic again;
3. runs the business logic once per id, for the id's latest record, and writes the outcome
   back (conditional on PENDING) in a bounded thread pool;
4. answers Lambda with a partial batch response: the sequence numbers to retry from
   (Lambda checkpoints before the lowest one and redelivers everything after it, docs: ESM-6).
"""
from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint

from chalicelib import config, runtime
from chalicelib.errors import (
    ConditionFailed,
    ConfigurationError,
    ItemTooLarge,
    RejectedRequest,
    StoreUnavailable,
    TransientError,
)
from chalicelib.logs import logger
from chalicelib.metrics import emf_lines
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
        emit: Callable[[str], None] = print,
    ) -> None:
        self._emit = emit
        self._store = store
        self._logic = business_logic
        self._executor = executor
        self._ttl = success_ttl_seconds
        self._now = now

    def process_batch(self, records: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, str]]]:
        requests = [r for r in map(new_request, records) if r is not None]
        done = self._process(requests) if requests else []
        failures = [request.sequence_number for request, outcome in done if outcome.kind in _REDELIVER]
        counts = Counter(outcome.kind for _, outcome in done)
        logger.info(
            "batch processed",
            extra={"records": len(records), "requests": len(requests), "retry": len(failures), **counts},
        )
        if requests:
            self._emit_metrics(counts, [o.latency_ms for _, o in done if o.latency_ms is not None])
        return {"batchItemFailures": [{"itemIdentifier": s} for s in sorted(failures, key=int)]}

    def _emit_metrics(self, counts: Mapping[str, int], latencies_ms: List[int]) -> None:
        ran = counts[RAN_OK] + counts[RAN_FAILED] + counts[RETRY]
        totals = {"Processed": ran, "Succeeded": counts[RAN_OK], "Failed": counts[RAN_FAILED],
                  "TransientRetries": counts[RETRY]}
        for line in emf_lines(totals, latencies_ms, int(self._now() * 1000)):
            self._emit(line)

    def _process(self, requests: List[NewRequest]) -> List[Tuple[NewRequest, Outcome]]:
        try:
            states = self._store.current_states(r.request_id for r in requests)
        except StoreUnavailable as exc:
            logger.warning("status read failed; the whole batch will be retried", extra={"error": str(exc)})
            return [(r, Outcome(DEFERRED)) for r in requests]
        by_id: Dict[str, List[NewRequest]] = {}
        for request in requests:
            by_id.setdefault(request.request_id, []).append(request)
        futures = [self._executor.submit(self._run_once, group, states) for group in by_id.values()]
        return [pair for future in futures for pair in future.result()]

    def _run_once(self, group: List[NewRequest], states: Mapping[str, ItemState]) -> List[Tuple[NewRequest, Outcome]]:
        """One run per id per batch, by the id's latest record: the status read is the item's
        current state and the latest record carries its current image, so it acts for all of
        them. The earlier ones are skipped (running them too would repeat the side effects) or,
        when the run must be retried, deferred with it, so the id's records are redelivered
        together, in stream order."""
        *earlier, latest = group
        outcome = self._run_one(latest, states.get(latest.request_id))
        if outcome.kind in _REDELIVER:
            return [(request, Outcome(DEFERRED)) for request in earlier] + [(latest, outcome)]
        for request in earlier:
            logger.info("superseded by a later record of this id in the batch; not run",
                        extra={"request_id": request.request_id, "sequence_number": request.sequence_number})
        return [(request, Outcome(SKIPPED)) for request in earlier] + [(latest, outcome)]

    def _run_one(self, request: NewRequest, state: Optional[ItemState]) -> Outcome:
        log = {"request_id": request.request_id, "sequence_number": request.sequence_number}
        if state is None:
            logger.info("item no longer exists; skipped", extra=log)
            return Outcome(SKIPPED)
        if state.status != PENDING:
            logger.info("already finished; not run again", extra={**log, "status": state.status})
            return Outcome(SKIPPED)
        if None not in (state.created_at_ms, request.created_at_ms) and state.created_at_ms != request.created_at_ms:
            # A redelivered record of an earlier request whose item expired and whose id was
            # stored again: running it would finish the new request with the old one's result.
            logger.info("record of an earlier request with this id; skipped",
                        extra={**log, "created_at_ms": request.created_at_ms, "item_created_at_ms": state.created_at_ms})
            return Outcome(SKIPPED)
        now = self._now()
        now_ms = int(now * 1000)
        latency = None if request.created_at_ms is None else now_ms - request.created_at_ms
        try:
            decision = self._decide(request)
            if isinstance(decision, _Retry):
                self._store.record_attempt(request.request_id, decision.error, now_ms=now_ms)
                logger.warning("transient failure; will be retried", extra={**log, "error": decision.error})
                return Outcome(RETRY)
            if isinstance(decision, _Failed):
                return self._fail(request, decision.error, now_ms, latency, log)
            try:
                self._store.finish_succeeded(
                    request.request_id, decision, now_ms=now_ms, expires_at=int(now) + self._ttl
                )
            except ItemTooLarge:
                error = {"type": "ResultTooLarge", "message": "the result does not fit in the 400 KB item"}
                return self._fail(request, error, now_ms, latency, log)
            logger.info("request succeeded", extra={**log, "latency_ms": latency})
            return Outcome(RAN_OK, latency)
        except ConditionFailed:
            logger.info("finished by another delivery; left as it is", extra=log)
            return Outcome(SKIPPED)
        except StoreUnavailable as exc:
            logger.warning("write-back failed; will be retried", extra={**log, "error": str(exc)})
            return Outcome(RETRY)

    def _fail(self, request: NewRequest, error: Dict[str, str], now_ms: int, latency: Optional[int],
              log: Dict[str, Any]) -> Outcome:
        self._store.finish_failed(request.request_id, error, now_ms=now_ms)
        logger.info("request failed", extra={**log, "error": error})
        return Outcome(RAN_FAILED, latency)

    def _decide(self, request: NewRequest) -> Any:
        """The business logic's result, or a _Failed / _Retry outcome."""
        if request.body is None:
            return _Failed("RejectedRequest", "the item has no request attribute")
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return _Failed("RejectedRequest", f"the request is not valid JSON: {exc}")
        except RecursionError:
            # Valid JSON can nest deeper than Python's parser goes; failing the item keeps one
            # body from failing (and bisecting) its whole batch.
            return _Failed("RejectedRequest", "the request nests too deeply to parse")
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


# What happened to one request in a batch. RETRY ran and must run again; DEFERRED did not run
# because its id's run (by a later record of the id) must run again; both are redelivered by Lambda.
RAN_OK, RAN_FAILED, RETRY, DEFERRED, SKIPPED = "succeeded", "failed", "retry", "deferred", "skipped"
_REDELIVER = frozenset({RETRY, DEFERRED})


class Outcome(NamedTuple):
    kind: str
    latency_ms: Optional[int] = None


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


def current() -> StreamProcessor:
    global _processor
    if _processor is None:
        if _business_logic is None:
            raise ConfigurationError("no business logic: call processor.configure() in app.py")
        settings = runtime.settings()
        _processor = StreamProcessor(
            runtime.store(),
            _business_logic,
            executor=ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="request"),
            success_ttl_seconds=settings.success_ttl_seconds,
        )
    return _processor


@bp.on_dynamodb_record(
    stream_arn=config.stream_arn(),
    batch_size=100,
    # LATEST can miss records written while the mapping is created (docs: ESM-4).
    starting_position="TRIM_HORIZON",
)
def process(event: Any) -> Dict[str, List[Dict[str, str]]]:
    return current().process_batch(event.to_dict()["Records"])
