"""The local event source mapping: polls a DynamoDB stream and invokes the handler like Lambda does.

One thread, round-robin over shards; each shard is read in sequence order and blocked while its
head batch is retried (esm §3), parents finish before children (esm §5). Everything external is
injected: the streams client (boto3 `dynamodbstreams` or a fake), the handler, the failure
destination, the checkpoint store, the clock and the sleep.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional

from . import destinations as dest
from .batching import Batch, ShardState
from .invoke import BAD_RESPONSE, FUNCTION_ERROR, PARTIAL, SUCCESS, invoke
from .reader import ShardReader
from .runner_config import Counters, RunnerConfig

log = logging.getLogger(__name__)

STREAM_RETENTION_S = 24 * 3600  # records older than this are trimmed from the stream (esm §5)


class StreamRunner:
    """Lambda's ESM for one DynamoDB stream and one handler, run locally.

    Choices where AWS documents no exact behaviour (esm §3, §9):
    - a function error with bisect on halves the batch (first half rounded up) down to single
      records; halves run at once and keep the lineage's attempt and invocation counts;
    - a malformed partial response is a whole-batch failure, counted, never bisected;
    - the retry after a partial failure carries only the remainder (not refilled up to BatchSize);
    - approximateInvokeCount counts every invocation that carried the given-up records;
    - with MaximumRecordAgeInSeconds -1, the 24 h stream retention is the age limit.
    """

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self.settings = config.settings
        self._handler = config.handler
        self._destination = config.destination
        self._function_name = config.function_name or config.settings.function_name  # the deployed Lambda's name
        self._function_arn = config.function_arn
        self._clock = config.clock
        self._stop = threading.Event()
        self._sleep = config.sleep or self._stop.wait  # the default wakes up at once on stop()
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
        """Poll until stop(). Commits are saved as they happen, so leaving needs no flush."""
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
        """Ask the loop to leave; True if it did within `timeout` (a handler mid-call is waited for)."""
        self._stop.set()
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
        """One step for every runnable shard; True if anything happened (read records, invoked...)."""
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
        now = self._clock()
        s = self.settings
        if not shard.batches and shard.batch_due(now, s.batch_size, s.batching_window_s, self.config.max_payload_bytes):
            shard.take_batch(s.batch_size, self.config.max_payload_bytes)
        if shard.batches:
            batch = shard.batches[0]
            if batch.not_before > now:
                return False
            self._work(shard, batch)
            return True
        if shard.end_of_shard and not shard.uncommitted:
            self._reader.finish(shard)
            return True
        if shard.end_of_shard or shard.not_before > now:
            return False
        return self._reader.read(shard)

    # --- invoking and retrying (esm §3) -------------------------------------------------------

    def _work(self, shard: ShardState, batch: Batch) -> None:
        if batch.give_up:
            self._give_up(shard, batch, batch.give_up)  # the failure record could not be sent last time
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
                shard.batches.popleft()
            shard.batches.appendleft(aged)
            self._count("records_age_exceeded", len(aged.entries))
            self._give_up(shard, aged, dest.RECORD_AGE_EXCEEDED)
            return
        records = batch.records
        outcome = invoke(self._handler, records, function_name=self._function_name, function_arn=self._fn_arn(),
                         report_batch_item_failures=self.settings.report_batch_item_failures, clock=self._clock)
        batch.invocations += 1
        self._count("invocations")
        self._count("records_delivered", len(records))
        if outcome.kind == SUCCESS:
            for e in batch.entries:
                e.done = True
            shard.batches.popleft()
            self._reader.commit(shard)
        elif outcome.kind == PARTIAL:
            # Everything before the lowest reported record is committed; retry from it, including
            # records after it that had succeeded; this counts as an attempt (esm §3, AWS-observed).
            self._count("partial_failures")
            cut = next(i for i, e in enumerate(batch.entries) if e.seq == outcome.failed_from)
            for e in batch.entries[:cut]:
                e.done = True
            batch.entries = batch.entries[cut:]
            batch.function_error = None
            self._reader.commit(shard)
            self._failed(shard, batch, outcome.detail or "partial failure from %s" % outcome.failed_from)
        elif outcome.kind == FUNCTION_ERROR:
            self._count("function_errors")
            batch.function_error = "Unhandled"
            if self.settings.bisect_on_error and len(batch.entries) > 1:
                # Halves are new batches, run at once; splitting does not consume retries (esm §2).
                mid = (len(batch.entries) + 1) // 2
                shard.batches.popleft()
                shard.batches.appendleft(batch.child(batch.entries[mid:]))
                shard.batches.appendleft(batch.child(batch.entries[:mid]))
                self._count("bisects")
                log.info("shard %s: function error, bisecting %d records", shard.shard_id, len(batch.entries))
            else:
                self._failed(shard, batch, outcome.detail)
        else:
            assert outcome.kind == BAD_RESPONSE
            self._count("bad_responses")
            batch.function_error = None  # a malformed response is not a function error (AWS-observed)
            log.warning("shard %s: invalid batch response (%s); the whole batch failed", shard.shard_id, outcome.detail)
            self._failed(shard, batch, outcome.detail)

    def _failed(self, shard: ShardState, batch: Batch, why: str) -> None:
        batch.attempts += 1
        limit = self.settings.max_retry_attempts
        if limit != -1 and batch.attempts > limit:
            self._give_up(shard, batch, dest.RETRY_ATTEMPTS_EXHAUSTED)
            return
        delay = self.config.backoff(batch.attempts)
        batch.not_before = self._clock() + delay
        self._count("retries")
        log.info("shard %s: retry %d of %s for %d records from %s in %.2fs (%s)", shard.shard_id, batch.attempts,
                 "inf" if limit == -1 else limit, len(batch.entries), batch.entries[0].seq, delay, why)

    def _give_up(self, shard: ShardState, batch: Batch, condition: str) -> None:
        """Send the failure record, then move past the batch (esm §3). If the send fails, keep the
        batch and try again later: a record is never dropped without its failure record."""
        batch.give_up = condition
        records = batch.records
        if self._destination is None:
            log.warning("shard %s: %s for %s..%s; no OnFailure destination, records discarded", shard.shard_id,
                        condition, records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"])
        else:
            message = dest.failure_record(
                records=records, shard_id=shard.shard_id, stream_arn=self._reader.arn or "",
                function_arn=self._fn_arn(), condition=condition, invoke_count=batch.invocations,
                function_error=batch.function_error, now=self._clock())
            try:
                self._destination.send(message, records)  # S3 keeps the records themselves (docs: ESM-7)
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
        shard.batches.popleft()
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
        state = ("done" if shard.done else "waiting_for_parent" if not self._reader.parent_done(shard)
                 else "retrying" if shard.batches and shard.batches[0].attempts else "polling")
        with self._lock:
            self._shard_status[shard.shard_id] = {
                "checkpoint": shard.checkpoint, "parent": shard.parent_id, "state": state,
                "uncommitted": len(shard.uncommitted), "attempts": shard.batches[0].attempts if shard.batches else 0,
                "last_read_created": shard.last_read_created, "caught_up": shard.caught_up,
            }

