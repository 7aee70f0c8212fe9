"""The local event source mapping: polls a DynamoDB stream and invokes the handler like Lambda does.

One polling thread, round-robin over shards; parents finish before children (docs: DDB-5). Each shard's
records go to ParallelizationFactor lanes by their item's key (docs: ESM-17); a lane is read in
sequence order, has at most one batch in flight and is blocked while its head batch is retried
(docs: ESM-5), so the records of one item are never in two concurrent batches and are handled in
stream order. Invocations run on the configured executor: inline by default, a thread pool in the
app host (each batch in its own function instance). Only the polling thread changes the shards'
state: a finished invocation is settled there, at the next poll, which it wakes.

Everything external is injected through RunnerConfig: the streams client (boto3 `dynamodbstreams`
or a fake), the handler, the failure destination, the checkpoint store, the clock and the sleep.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any, Dict, Optional

from . import destinations as dest
from .batching import Batch, Lane, ShardState
from .invoke import BAD_RESPONSE, FUNCTION_ERROR, PARTIAL, SUCCESS, InlineExecutor, Outcome, invoke
from .reader import ShardReader
from .runner_config import Counters, RunnerConfig

log = logging.getLogger(__name__)

STREAM_RETENTION_S = 24 * 3600  # records older than this are trimmed from the stream (docs: DDB-4)
READ_AHEAD_BATCHES = 2  # per lane: how far reading may run ahead of a lane blocked by retries (docs: ESM-18)


class StreamRunner:
    """Lambda's ESM for one DynamoDB stream and one handler, run locally.

    Choices where AWS documents no exact behaviour (docs: ESM-15, ESM-18):
    - a function error with bisect on halves the batch (first half rounded up) down to single
      records; halves run at once and keep the lineage's attempt and invocation counts;
    - a malformed partial response is a whole-batch failure, counted, never bisected;
    - the retry after a partial failure carries only the remainder (not refilled up to BatchSize);
    - approximateInvokeCount counts every invocation that carried the given-up records;
    - with MaximumRecordAgeInSeconds -1, the 24 h stream retention is the age limit;
    - a lane is the unit of blocking: a retried batch holds back its lane (and the checkpoint),
      not the shard's other lanes.
    """

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self.settings = config.settings
        self._executor = config.executor or InlineExecutor()
        self._function_name = config.function_name or config.settings.function_name  # the deployed Lambda's name
        self._function_arn = config.function_arn
        self._clock = config.clock
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by every finished invocation
        self._sleep = config.sleep or self._wake.wait
        self._lock = threading.Lock()
        self._counters = Counters()
        self._shard_status: Dict[str, Dict[str, Any]] = {}
        self._reader = ShardReader(config, self._counters, self._stop, on_stream_gone=self._forget_shards)
        self._thread: Optional[threading.Thread] = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def stream_arn(self) -> Optional[str]:
        return self._reader.arn

    def run(self) -> None:
        """Poll until stop(). Commits are saved as they happen, so leaving needs no flush; a batch
        still in flight is abandoned uncommitted, and delivered again after a restart (as after a crash)."""
        log.info("stream runner started for %s", self.settings.function_name)
        if not self.settings.enabled:
            log.warning("the event source mapping is disabled (Enabled: false); not polling")
        while not self._stop.is_set():
            try:
                progressed = self.poll_once()
            except Exception:  # never let one bad poll end local processing; the next one retries
                log.exception("stream runner poll failed")
                progressed = False
            if not progressed and not self._stop.is_set():
                self._sleep(self.config.idle_wait_s)
        log.info("stream runner stopped; checkpoints: %s",
                 {s: v["checkpoint"] for s, v in self.status()["shards"].items()})

    def start(self) -> threading.Thread:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="stream-runner", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the loop to leave; True if it did within `timeout` (an inline handler mid-call is waited for)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def status(self) -> Dict[str, Any]:
        """JSON-serialisable counters and per-shard positions; safe to call from any thread."""
        now = self._clock()
        with self._lock:
            shards = {}
            for sid, info in self._shard_status.items():
                info = dict(info)
                created = info.pop("last_read_created")
                caught_up = info.pop("caught_up")
                # Caught up with nothing in flight: 0 behind, as Lambda's IteratorAge is for an idle shard.
                behind = created is not None and not (caught_up and info["uncommitted"] == 0)
                info["iterator_age_ms"] = int(max(0.0, now - created) * 1000) if behind else 0
                shards[sid] = info
            return {"stream_arn": self._reader.arn, "function": self.settings.function_name,
                    "running": self._thread is not None and self._thread.is_alive(),
                    "ready": self._reader.ready, "counters": self._counters.snapshot(), "shards": shards}

    # --- one pass over the shards -------------------------------------------------------------

    def poll_once(self) -> bool:
        """One step for every runnable shard; True if anything happened (read records, invoked, settled...)."""
        self._wake.clear()  # a batch finishing from here on wakes the idle wait that may follow
        if not self.settings.enabled or not self._reader.ensure_ready():
            return False
        progressed = False
        for shard in list(self._reader.shards.values()):
            if self._stop.is_set() or not self._reader.ready:
                break
            if not shard.done and self._reader.parent_done(shard):
                progressed = self._step(shard) or progressed
            self._publish(shard)
        return progressed

    def _step(self, shard: ShardState) -> bool:
        """Settle the shard's finished batches, start what is due in its free lanes; else read or finish."""
        settled = False
        for lane in shard.lanes:
            if lane.in_flight is not None and lane.in_flight.done():
                self._settle(shard, lane)
                settled = True
        now = self._clock()
        s = self.settings
        started = False
        for lane in shard.lanes:
            if lane.in_flight is not None:
                continue
            if not lane.batches and lane.batch_due(now, s.batch_size, s.batching_window_s,
                                                   self.config.max_payload_bytes, shard.end_of_shard):
                lane.take_batch(s.batch_size, self.config.max_payload_bytes)
            if lane.batches and lane.batches[0].not_before <= now:
                self._work(shard, lane, lane.batches[0])
                started = True
        if started:
            return True
        if shard.end_of_shard and not shard.uncommitted:
            self._reader.finish(shard)
            return True
        limit = READ_AHEAD_BATCHES * len(shard.lanes) * s.batch_size
        if shard.end_of_shard or shard.not_before > now or not shard.may_read_ahead(limit):
            return settled
        return self._reader.read(shard) or settled

    # --- invoking and retrying (docs: ESM-5, ESM-6) -------------------------------------------

    def _work(self, shard: ShardState, lane: Lane, batch: Batch) -> None:
        if batch.give_up:
            self._give_up(shard, lane, batch, batch.give_up)  # the failure record could not be sent last time
            return
        now = self._clock()
        limit = self._age_limit()
        expired = 0
        for e in batch.entries:
            if e.created is None or now - e.created <= limit:
                break
            expired += 1
        if expired:
            aged = batch.child(batch.entries[:expired])
            batch.entries = batch.entries[expired:]
            if not batch.entries:
                lane.batches.popleft()
            lane.batches.appendleft(aged)
            self._count("records_age_exceeded", len(aged.entries))
            self._give_up(shard, lane, aged, dest.RECORD_AGE_EXCEEDED)
            return
        records = batch.records
        batch.invocations += 1
        self._count("invocations")
        self._count("records_delivered", len(records))
        try:
            lane.in_flight = self._executor.submit(
                invoke, self.config.handler, records, function_name=self._function_name,
                function_arn=self._fn_arn(), report_batch_item_failures=self.settings.report_batch_item_failures,
                clock=self._clock)
        except RuntimeError as exc:  # the executor is shut down: the local stack is stopping
            lane.in_flight = _failed_future(exc)
        if lane.in_flight.done():
            self._settle(shard, lane)  # an inline invocation: settled in this step, as Lambda's one stream would
        else:
            lane.in_flight.add_done_callback(lambda _: self._wake.set())

    def _settle(self, shard: ShardState, lane: Lane) -> None:
        """Apply the outcome of the lane's finished invocation to its head batch."""
        future, lane.in_flight = lane.in_flight, None
        assert future is not None
        batch = lane.batches[0]
        try:
            outcome: Outcome = future.result()
        except Exception as exc:  # the invocation could not even be made: a function error, retried
            outcome = Outcome(FUNCTION_ERROR, detail="%s: %s" % (type(exc).__name__, exc))
        if outcome.kind == SUCCESS:
            for e in batch.entries:
                e.done = True
            lane.batches.popleft()
            self._reader.commit(shard)
        elif outcome.kind == PARTIAL:
            # Everything before the lowest reported record is committed; retry from it, including
            # records after it that had succeeded; this counts as an attempt (docs: ESM-6).
            self._count("partial_failures")
            cut = next(i for i, e in enumerate(batch.entries) if e.seq == outcome.failed_from)
            for e in batch.entries[:cut]:
                e.done = True
            batch.entries = batch.entries[cut:]
            batch.function_error = None
            self._reader.commit(shard)
            self._failed(shard, lane, batch, outcome.detail or "partial failure from %s" % outcome.failed_from)
        elif outcome.kind == FUNCTION_ERROR:
            self._count("function_errors")
            batch.function_error = "Unhandled"
            if self.settings.bisect_on_error and len(batch.entries) > 1:
                # Halves are new batches, run at once; splitting does not consume retries (docs: ESM-6).
                mid = (len(batch.entries) + 1) // 2
                lane.batches.popleft()
                lane.batches.appendleft(batch.child(batch.entries[mid:]))
                lane.batches.appendleft(batch.child(batch.entries[:mid]))
                self._count("bisects")
                log.info("shard %s: function error, bisecting %d records", shard.shard_id, len(batch.entries))
            else:
                self._failed(shard, lane, batch, outcome.detail)
        else:
            assert outcome.kind == BAD_RESPONSE
            self._count("bad_responses")
            batch.function_error = None  # a malformed response is not a function error (AWS-observed)
            log.warning("shard %s: invalid batch response (%s); the whole batch failed", shard.shard_id, outcome.detail)
            self._failed(shard, lane, batch, outcome.detail)

    def _failed(self, shard: ShardState, lane: Lane, batch: Batch, why: str) -> None:
        batch.attempts += 1
        limit = self.settings.max_retry_attempts
        if limit != -1 and batch.attempts > limit:
            self._give_up(shard, lane, batch, dest.RETRY_ATTEMPTS_EXHAUSTED)
            return
        delay = self.config.backoff(batch.attempts)
        batch.not_before = self._clock() + delay
        self._count("retries")
        log.info("shard %s: retry %d of %s for %d records from %s in %.2fs (%s)", shard.shard_id, batch.attempts,
                 "inf" if limit == -1 else limit, len(batch.entries), batch.entries[0].seq, delay, why)

    def _give_up(self, shard: ShardState, lane: Lane, batch: Batch, condition: str) -> None:
        """Send the failure record, then move past the batch (docs: ESM-5). If the send fails, keep the
        batch and try again later: a record is never dropped without its failure record."""
        batch.give_up = condition
        records = batch.records
        destination = self.config.destination
        if destination is None:
            log.warning("shard %s: %s for %s..%s; no OnFailure destination, records discarded", shard.shard_id,
                        condition, records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"])
        else:
            message = dest.failure_record(
                records=records, shard_id=shard.shard_id, stream_arn=self._reader.arn or "",
                function_arn=self._fn_arn(), condition=condition, invoke_count=batch.invocations,
                function_error=batch.function_error, now=self._clock())
            try:
                destination.send(message, records)  # S3 keeps the records themselves (docs: ESM-7)
            except Exception as exc:
                batch.not_before = self._clock() + self.config.backoff_cap_s
                log.error("shard %s: could not send the failure record (%s); retrying", shard.shard_id, exc)
                return
            self._count("batches_sent_to_failure")
            self._count("records_sent_to_failure", len(records))
            log.warning("shard %s: %s, sent %d records %s..%s to the failure destination", shard.shard_id,
                        condition, len(records), message["DDBStreamBatchInfo"]["startSequenceNumber"],
                        message["DDBStreamBatchInfo"]["endSequenceNumber"])
        for e in batch.entries:
            e.done = True
        lane.batches.popleft()
        self._reader.commit(shard)

    # --- helpers ----------------------------------------------------------------------------

    def _age_limit(self) -> float:
        age = self.settings.max_record_age_s
        return STREAM_RETENTION_S if age == -1 else min(age, STREAM_RETENTION_S)

    def _fn_arn(self) -> str:
        if self._function_arn is None:
            self._function_arn = dest.function_arn(self._reader.arn or "", self._function_name)
        return self._function_arn

    def _count(self, name: str, n: int = 1) -> None:
        self._counters.add(name, n)

    def _forget_shards(self) -> None:
        with self._lock:
            self._shard_status.clear()

    def _publish(self, shard: ShardState) -> None:
        heads = [lane.batches[0] for lane in shard.lanes if lane.batches]
        attempts = max((b.attempts for b in heads), default=0)
        state = ("done" if shard.done else "waiting_for_parent" if not self._reader.parent_done(shard)
                 else "retrying" if attempts else "polling")
        with self._lock:
            self._shard_status[shard.shard_id] = {
                "checkpoint": shard.checkpoint, "parent": shard.parent_id, "state": state,
                "uncommitted": len(shard.uncommitted), "attempts": attempts,
                "lanes": len(shard.lanes), "in_flight": shard.busy_lanes(),
                "last_read_created": shard.last_read_created, "caught_up": shard.caught_up,
            }


def _failed_future(exc: BaseException) -> "Future[Outcome]":
    future: "Future[Outcome]" = Future()
    future.set_exception(exc)
    return future
