"""The stream processor: runs the business logic for each new request and records the outcome.

For a batch of stream records it
1. keeps the records that bring a request into PENDING (records.new_request);
2. reads the current status of those items in one consistent BatchGetItem, so a redelivered
   record whose item already finished does not run the business logic again;
3. runs the business logic once per id, for the id's latest record, in a bounded thread pool;
4. writes the outcomes back as they come, 25 conditional updates per call (store.write);
5. answers Lambda with a partial batch response: the sequence numbers to retry from (Lambda
   checkpoints before the lowest one and redelivers everything after it, docs: ESM-6).
"""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from chalice import Blueprint

from chalicelib import config, runtime
from chalicelib.errors import (
    ConditionFailed,
    ConfigurationError,
    ItemTooLarge,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
)
from chalicelib.logs import logger
from chalicelib.metrics import publish_batch
from chalicelib.model import PENDING
from chalicelib.outcomes import (
    BatchResponse,
    BusinessLogic,
    Decision,
    Outcome,
    Reject,
    Retry,
    Succeed,
    batch_response,
    decide,
    error_of,
)
from chalicelib.records import NewRequest, new_request
from chalicelib.store import MAX_STATEMENTS, ItemState, RequestStore, WriteBack

_RESULT_TOO_LARGE = error_of("ResultTooLarge", "the result does not fit in the 400 KB item")


@dataclass(frozen=True)
class _Run:
    """One request whose logic ran: what it decided, and the write-back that records it."""

    request: NewRequest
    decision: Decision
    writeback: WriteBack
    now_ms: int


class StreamProcessor:
    def __init__(
        self,
        store: RequestStore,
        business_logic: BusinessLogic,
        *,
        executor: Executor,
        success_ttl_seconds: int,
        now: Callable[[], float] = time.time,
        publish: Callable[[Mapping[str, int], Sequence[int]], None] = publish_batch,
    ) -> None:
        self._publish = publish
        self._store = store
        self._logic = business_logic
        self._executor = executor
        self._ttl = success_ttl_seconds
        self._now = now

    def process_batch(self, records: Sequence[Mapping[str, Any]]) -> BatchResponse:
        requests = [r for r in map(new_request, records) if r is not None]
        done = self._process(requests) if requests else []
        retry = [request.sequence_number for request, outcome, _ in done if outcome.redelivered]
        counts = Counter(outcome for _, outcome, _ in done)
        # Successes are listed here rather than logged one line each (that is DEBUG): one JSON line
        # per request cost a fifth of the processor's CPU per record, and CloudWatch bills by size.
        logger.info("batch processed", extra={
            "records": len(records), "requests": len(requests), "retry": len(retry),
            **{outcome.value: n for outcome, n in counts.items()},
            "request_ids": [r.request_id for r, outcome, _ in done if outcome is Outcome.SUCCEEDED]})
        if requests:
            self._emit_metrics(counts, [latency for _, _, latency in done if latency is not None])
        return batch_response(retry)

    def _emit_metrics(self, counts: Mapping[Outcome, int], latencies_ms: List[int]) -> None:
        """One flush per batch (chalicelib/metrics.py)."""
        succeeded, failed, retried = counts[Outcome.SUCCEEDED], counts[Outcome.FAILED], counts[Outcome.RETRY]
        self._publish({"Processed": succeeded + failed + retried, "Succeeded": succeeded, "Failed": failed,
                       "TransientRetries": retried}, latencies_ms)

    def _process(self, requests: List[NewRequest]) -> List[Tuple[NewRequest, Outcome, Optional[int]]]:
        try:
            states = self._store.current_states(r.request_id for r in requests)
        except StoreUnavailable as exc:
            logger.warning("status read failed; the whole batch will be retried", extra={"error": str(exc)})
            return [(r, Outcome.DEFERRED, None) for r in requests]
        by_id: Dict[str, List[NewRequest]] = {}
        for request in requests:
            by_id.setdefault(request.request_id, []).append(request)
        outcomes = self._run_and_write({group[-1]: states.get(group[-1].request_id) for group in by_id.values()})
        done: List[Tuple[NewRequest, Outcome, Optional[int]]] = []
        for group in by_id.values():
            *earlier, latest = group
            outcome, latency = outcomes[latest]
            # One run per id per batch, by the id's latest record: the status read is the item's
            # current state and the latest record carries its current image, so it acts for all of
            # them. The earlier ones are skipped (running them too would repeat the side effects) or,
            # when the run must be retried, deferred with it, so the id's records are redelivered
            # together, in stream order.
            for request in earlier:
                if not outcome.redelivered:
                    logger.info("superseded by a later record of this id in the batch; not run",
                                extra={"request_id": request.request_id, "sequence_number": request.sequence_number})
                done.append((request, Outcome.DEFERRED if outcome.redelivered else Outcome.SKIPPED, None))
            done.append((latest, outcome, latency))
        return done

    def _run_and_write(self, latest: Mapping[NewRequest, Optional[ItemState]]
                       ) -> Dict[NewRequest, Tuple[Outcome, Optional[int]]]:
        """Run the logic for each request in the pool and write the outcomes back as they come in,
        MAX_STATEMENTS per call; the outcome (and latency from createdAt) of each request."""
        outcomes: Dict[NewRequest, Tuple[Outcome, Optional[int]]] = {}
        runs = [self._executor.submit(self._run, request, state) for request, state in latest.items()]
        pending: List[_Run] = []
        writes: List[Tuple[List[_Run], Future[List[Optional[StoreError]]]]] = []

        def flush() -> None:
            chunk = pending[:]
            pending.clear()
            writes.append((chunk, self._executor.submit(self._store.write, [r.writeback for r in chunk])))

        for future in as_completed(runs):
            run = future.result()
            if run is not None:
                pending.append(run)
                if len(pending) == MAX_STATEMENTS:
                    flush()
        if pending:
            flush()
        too_large: List[_Run] = []
        misconfigured: Optional[StoreError] = None
        for chunk, written in writes:
            for run, error in zip(chunk, written.result(), strict=True):
                if isinstance(error, ItemTooLarge) and isinstance(run.decision, Succeed):
                    too_large.append(run)
                    continue
                if isinstance(error, StoreMisconfigured):
                    misconfigured = misconfigured or error
                outcomes[run.request] = self._recorded(run, error)
        if too_large:
            failed = [_Run(r.request, Reject(_RESULT_TOO_LARGE),
                           self._store.failed(r.request.request_id, _RESULT_TOO_LARGE, now_ms=r.now_ms), r.now_ms)
                      for r in too_large]
            for run, error in zip(failed, self._store.write([r.writeback for r in failed]), strict=True):
                outcomes[run.request] = self._recorded(run, error)
        if misconfigured is not None:
            raise misconfigured  # a deployment problem: the whole batch fails and is retried
        for request in latest:
            outcomes.setdefault(request, (Outcome.SKIPPED, None))
        return outcomes

    def _run(self, request: NewRequest, state: Optional[ItemState]) -> Optional[_Run]:
        """The logic's decision for a request that is still PENDING, with its write-back; None to skip it."""
        log = {"request_id": request.request_id, "sequence_number": request.sequence_number}
        if state is None:
            logger.info("item no longer exists; skipped", extra=log)
            return None
        if state.status != PENDING:
            logger.info("already finished; not run again", extra={**log, "status": state.status})
            return None
        if None not in (state.created_at_ms, request.created_at_ms) and state.created_at_ms != request.created_at_ms:
            # A redelivered record of an earlier request whose item expired and whose id was
            # stored again: running it would finish the new request with the old one's result.
            logger.info("record of an earlier request with this id; skipped",
                        extra={**log, "created_at_ms": request.created_at_ms,
                               "item_created_at_ms": state.created_at_ms})
            return None
        decision = decide(self._logic, request.body, request.request_id)
        now = self._now()
        now_ms = int(now * 1000)
        if isinstance(decision, Succeed):
            writeback = self._store.succeeded(request.request_id, decision.result, now_ms=now_ms,
                                              expires_at=int(now) + self._ttl)
        elif isinstance(decision, Reject):
            writeback = self._store.failed(request.request_id, decision.error, now_ms=now_ms)
        else:
            writeback = self._store.attempted(request.request_id, decision.error, now_ms=now_ms)
        return _Run(request, decision, writeback, now_ms)

    def _recorded(self, run: _Run, error: Optional[StoreError]) -> Tuple[Outcome, Optional[int]]:
        request, decision = run.request, run.decision
        log = {"request_id": request.request_id, "sequence_number": request.sequence_number}
        if isinstance(error, ConditionFailed):
            logger.info("finished by another delivery; left as it is", extra=log)
            return Outcome.SKIPPED, None
        if error is not None:
            logger.warning("write-back failed; will be retried", extra={**log, "error": str(error)})
            return Outcome.RETRY, None
        latency = None if request.created_at_ms is None else run.now_ms - request.created_at_ms
        if isinstance(decision, Retry):
            logger.warning("transient failure; will be retried", extra={**log, "error": decision.error})
            return Outcome.RETRY, None
        if isinstance(decision, Reject):
            logger.info("request failed", extra={**log, "error": decision.error})
            return Outcome.FAILED, latency
        logger.debug("request succeeded", extra={**log, "latency_ms": latency})
        return Outcome.SUCCEEDED, latency


# --- Lambda wiring -------------------------------------------------------------------------
# The processor is built on the first invocation, not at import (a cold start pays only for
# imports), and kept with the container's other clients in chalicelib.runtime.

bp = Blueprint(__name__)
_business_logic: Optional[BusinessLogic] = None


def configure(business_logic: BusinessLogic) -> None:
    """Choose the business logic (app.py does, once). Drops a processor built earlier."""
    global _business_logic
    _business_logic = business_logic
    runtime.use("processor", None)


def configured_logic() -> Optional[BusinessLogic]:
    """The business logic configure() installed (the local stack's test pipeline puts it back)."""
    return _business_logic


def use_processor(processor: Optional[StreamProcessor]) -> None:
    """Install a processor built elsewhere (tests); None rebuilds it from the environment."""
    runtime.use("processor", processor)


def current() -> StreamProcessor:
    processor: StreamProcessor = runtime.built("processor", _build)
    return processor


def _build() -> StreamProcessor:
    if _business_logic is None:
        raise ConfigurationError("no business logic: call processor.configure() in app.py")
    settings = runtime.settings()
    return StreamProcessor(
        runtime.store(),
        _business_logic,
        executor=ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="request"),
        success_ttl_seconds=settings.success_ttl_seconds,
    )


@bp.on_dynamodb_record(
    stream_arn=config.stream_arn(),
    batch_size=100,
    # LATEST can miss records written while the mapping is created (docs: ESM-4).
    starting_position="TRIM_HORIZON",
)
def process(event: Any) -> BatchResponse:
    return current().process_batch(event.to_dict()["Records"])
