"""Reading one DynamoDB stream for the runner: the stream's shards and their lineage, iterators,
recovery from expired or trimmed positions, filtering, and the durable checkpoint (docs: DDB-4, DDB-5).

The runner holds one ShardReader. The reader owns the shards' read side (what was read, where to
read next, what is committed); the runner owns invoking and retrying. Both run in the runner's
polling thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Set

from botocore.exceptions import ClientError

from .batching import Entry, ShardState, record_size
from .checkpoint import SHARD_END, TRIM_HORIZON, discard_stale_streams
from .filters import matches_any
from .records import creation_seconds, is_noop_modify, sequence_number, to_lambda_record
from .runner_config import Counters, RunnerConfig

log = logging.getLogger(__name__)


class ShardReader:
    """The read side of one stream mapping: discovers shards, reads them in order, filters, commits."""

    def __init__(self, config: RunnerConfig, counters: Counters, stop: threading.Event,
                 on_stream_gone: Callable[[], None] = lambda: None) -> None:
        self._config = config
        self.settings = config.settings
        self._streams = config.streams
        stream_arn = config.stream_arn
        self._resolve_arn: Callable[[], str] = stream_arn if callable(stream_arn) else (lambda: stream_arn)
        self._region = config.region
        self._checkpoints = config.checkpoints
        self._clock = config.clock
        self._counters = counters
        self._stop = stop
        self._on_stream_gone = on_stream_gone
        self.arn: Optional[str] = None
        self.shards: Dict[str, ShardState] = {}
        self.ready = False
        self._listed: Set[str] = set()
        self._init_failures = 0
        self.not_before = 0.0  # the stream could not be found or described: wait until then
        self._next_discovery = 0.0

    # --- the stream ------------------------------------------------------------------------

    def ensure_ready(self) -> bool:
        """Find the stream and its shards (again after it was recreated), and rediscover shards
        periodically; False when there is nothing to read from yet."""
        if self._clock() < self.not_before:
            return False
        if not self.ready and not self._initialise():
            return False
        if self._clock() >= self._next_discovery and not self._discover_safely():
            return False
        return True

    def parent_done(self, shard: ShardState) -> bool:
        parent = self.shards.get(shard.parent_id or "")
        return parent is None or parent.done  # an unknown parent was trimmed away long ago (docs: DDB-11)

    def finish(self, shard: ShardState) -> None:
        """The closed shard is read and handled to its end: SHARD_END, and look for its children now."""
        self.save(shard, SHARD_END)
        shard.done = True
        self._next_discovery = 0.0
        log.info("shard %s finished; its children may start", shard.shard_id)

    # --- the checkpoint ---------------------------------------------------------------------

    def commit(self, shard: ShardState) -> None:
        """Move the checkpoint over the shard's handled prefix, if it grew."""
        last = shard.committable()
        if last is not None:
            self.save(shard, last)

    def save(self, shard: ShardState, value: str) -> None:
        if self.shards.get(shard.shard_id) is not shard:
            return  # a shard of a stream that is gone (its batch finished after the table was recreated)
        shard.checkpoint = value
        self._checkpoints.put(self.arn or "", shard.shard_id, value)

    # --- reading (docs: DDB-5) --------------------------------------------------------------

    def read(self, shard: ShardState) -> bool:
        """One GetRecords on the shard; True if it returned records."""
        if shard.iterator is None and not self._open_iterator(shard):
            return False
        try:
            resp = self._streams.get_records(ShardIterator=shard.iterator, Limit=self._config.records_per_read)
        except Exception as exc:
            return self._read_failed(shard, exc)
        shard.read_errors = 0
        raws = resp.get("Records") or []
        shard.iterator = resp.get("NextShardIterator")
        now = self._clock()
        for raw in raws:
            seq = sequence_number(raw)
            if shard.position_num is not None and int(seq) <= shard.position_num:
                continue  # already read before a recovery re-opened the shard at TRIM_HORIZON
            self._counters.add("records_read")
            record = self._config.normalize(to_lambda_record(raw, region=self._region or "", stream_arn=self.arn or ""))
            deliver: Optional[Dict[str, Any]] = record
            if self._config.drop_noop_modify and is_noop_modify(raw):
                deliver = None  # AWS would not have written this record at all (docs: DDB-6, LOCAL-110)
                self._counters.add("records_skipped_noop")
            elif not matches_any(self.settings.filters, record):  # filtered on the full record (docs: ESM-13, ESM-15)
                deliver = None  # filtered out: consumed, never retried (docs: ESM-14)
                self._counters.add("records_filtered_out")
            shard.add(Entry(seq, int(seq), deliver, creation_seconds(raw), now,
                            size=record_size(deliver) if deliver else 0))
            shard.position = seq
            shard.last_read_created = creation_seconds(raw)
        shard.caught_up = not raws
        self.commit(shard)  # a filtered-out prefix is consumed right away
        if shard.iterator is None:
            self._shard_end_signal(shard)
        return bool(raws)

    def _open_iterator(self, shard: ShardState) -> bool:
        after = shard.position or (shard.checkpoint if shard.checkpoint not in (None, TRIM_HORIZON) else None)
        if shard.reopen_at_trim_horizon:
            after, shard.reopen_at_trim_horizon = None, False
        args: Dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard.shard_id}
        args.update({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after
                    else {"ShardIteratorType": "TRIM_HORIZON"})
        try:
            shard.iterator = self._streams.get_shard_iterator(**args)["ShardIterator"]
            return True
        except Exception as exc:
            if after and _code(exc) == "TrimmedDataAccessException":
                log.warning("shard %s: records after %s were trimmed before being read; resuming at TRIM_HORIZON",
                            shard.shard_id, after)
                shard.reopen_at_trim_horizon = True
                return self._open_iterator(shard)
            self._read_failed(shard, exc)
            return False

    def _read_failed(self, shard: ShardState, exc: Exception) -> bool:
        code = _code(exc)
        shard.iterator = None
        self._counters.add("read_errors")
        if code == "ExpiredIteratorException":  # iterators live 15 minutes (docs: DDB-5)
            log.info("shard %s: iterator expired; reopening after %s", shard.shard_id, shard.position)
            return True
        if code == "TrimmedDataAccessException":
            log.warning("shard %s: position %s was trimmed; resuming at TRIM_HORIZON", shard.shard_id, shard.position)
            shard.reopen_at_trim_horizon = True
            return True
        shard.read_errors += 1
        shard.not_before = self._clock() + self._config.backoff(shard.read_errors)
        if code == "ResourceNotFoundException":
            # Includes DynamoDB Local's "Invalid ShardId in ShardIterator" (docs: LOCAL-2): reopen, re-discover.
            log.warning("shard %s: %s; re-discovering shards", shard.shard_id, exc)
            self._next_discovery = 0.0
        else:
            log.warning("shard %s: reading failed (%s); retrying", shard.shard_id, exc)
        return False

    def _shard_end_signal(self, shard: ShardState) -> None:
        """No NextShardIterator: the shard is closed and read to its end - unless DescribeStream says
        it is still open (DynamoDB Local sometimes omits the iterator, docs: LOCAL-2); then just reopen."""
        if not self._discover_safely():
            return
        if shard.closed or shard.shard_id not in self._listed:
            shard.end_of_shard = True
            log.info("shard %s: reached the end of the closed shard", shard.shard_id)
        else:
            log.info("shard %s: no NextShardIterator on an open shard; reopening after %s",
                     shard.shard_id, shard.position)

    # --- stream and shard discovery -------------------------------------------------------

    def _initialise(self) -> bool:
        try:
            arn = self._resolve_arn()
            self.arn = arn
            self._region = self._region or arn.split(":")[3]
            discard_stale_streams(self._checkpoints, arn)
            self._discover()
        except Exception as exc:
            self._init_failures += 1
            self.not_before = self._clock() + self._config.backoff(self._init_failures)
            log.warning("stream not available yet (%s); retrying", exc)
            return False
        self._init_failures = 0
        for sid in set(self._checkpoints.shards(arn)) - self._listed:
            log.info("discarding checkpoint of shard %s: no longer in stream %s (trimmed)", sid, arn)
            self._checkpoints.forget(arn, sid)
        if not self._checkpoints.has_stream(arn) and self.settings.starting_position == "LATEST":
            try:
                tips = {sid: self._latest_tip(shard) for sid, shard in self.shards.items()}
            except Exception as exc:
                self.not_before = self._clock() + self._config.backoff_cap_s
                log.warning("could not find the LATEST position (%s); retrying", exc)
                return False
            for sid, tip in tips.items():  # saved together, so a failure above leaves the stream fresh
                self.save(self.shards[sid], tip)
                self.shards[sid].done = tip == SHARD_END
                self.shards[sid].position = tip if tip not in (SHARD_END, TRIM_HORIZON) else None
        self._checkpoints.mark_stream(arn)  # from now on, a shard without a checkpoint is read whole
        self.ready = True
        log.info("reading stream %s (%d shards) from %s", arn, len(self.shards),
                 "checkpoints" if any(s.checkpoint for s in self.shards.values()) else self.settings.starting_position)
        return True

    def _latest_tip(self, shard: ShardState) -> str:
        """StartingPosition LATEST, made durable: the checkpoint that skips what the shard holds now,
        so that a restart resumes there instead of at a new LATEST (docs: ESM-3). An empty shard gets
        TRIM_HORIZON: everything that arrives in it later is after our start."""
        if shard.closed:
            return SHARD_END
        it = self._streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard.shard_id,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        last = None
        while it and not self._stop.is_set():
            resp = self._streams.get_records(ShardIterator=it, Limit=1000)
            if not resp.get("Records"):
                break
            last = sequence_number(resp["Records"][-1])
            it = resp.get("NextShardIterator")
        log.info("shard %s: StartingPosition LATEST, skipping existing records up to %s", shard.shard_id, last)
        return last or TRIM_HORIZON

    def _discover(self) -> None:
        found: List[Dict[str, Any]] = []
        start: Optional[str] = None
        while True:
            args = {"StreamArn": self.arn, **({"ExclusiveStartShardId": start} if start else {})}
            desc = self._streams.describe_stream(**args)["StreamDescription"]
            found.extend(desc.get("Shards") or [])
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        self._listed = {s["ShardId"] for s in found}
        for s in found:
            closed = "EndingSequenceNumber" in (s.get("SequenceNumberRange") or {})
            known = self.shards.get(s["ShardId"])
            if known is not None:
                known.closed = closed
                continue
            stored = self._checkpoints.get(self.arn or "", s["ShardId"])
            shard = ShardState(s["ShardId"], s.get("ParentShardId"), closed=closed, checkpoint=stored,
                               done=stored == SHARD_END, lane_count=self.settings.parallelization_factor)
            self.shards[shard.shard_id] = shard
            log.debug("discovered shard %s (parent %s, checkpoint %s)", shard.shard_id, shard.parent_id, stored)
        for shard in self.shards.values():
            if shard.shard_id not in self._listed and not shard.end_of_shard:
                # Gone from DescribeStream: trimmed after 24 h (docs: DDB-4, DDB-11); nothing is left to read in it.
                log.info("shard %s is no longer in the stream; finishing it", shard.shard_id)
                shard.end_of_shard, shard.iterator = True, None
        self._next_discovery = self._clock() + self._config.rediscover_s

    def _discover_safely(self) -> bool:
        try:
            self._discover()
            return True
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                # The stream is gone (table deleted or recreated): start over with the table's new stream.
                log.warning("stream %s no longer exists; re-resolving the table's stream", self.arn)
                self.ready = False
                self.shards.clear()
                self._on_stream_gone()
            else:
                log.warning("describe_stream failed (%s); retrying", exc)
            self.not_before = self._clock() + self._config.backoff_cap_s
            return False


def _code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
