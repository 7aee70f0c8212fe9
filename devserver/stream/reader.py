"""Reading a DynamoDB stream for the runner: shard discovery and lineage, iterators, recovery (esm §5, §7).

A mixin of StreamRunner, split out to keep each module readable; it uses the runner's state
(declared below) and its commit/count/backoff helpers.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Set

from botocore.exceptions import ClientError

from .batching import Entry, ShardState, record_size
from .checkpoint import SHARD_END, TRIM_HORIZON, CheckpointStore, discard_stale_streams
from .filters import matches_any
from .records import creation_seconds, is_noop_modify, sequence_number, to_lambda_record
from .settings import EsmSettings

log = logging.getLogger(__name__)


class StreamReading:
    settings: EsmSettings
    _streams: Any
    _resolve_arn: Callable[[], str]
    _arn: Optional[str]
    _region: Optional[str]
    _checkpoints: CheckpointStore
    _clock: Callable[[], float]
    _stop: threading.Event
    _lock: threading.Lock
    _shards: Dict[str, ShardState]
    _shard_status: Dict[str, Dict[str, Any]]
    _listed: Set[str]
    _limit: int
    _drop_noop: bool
    _normalize: Callable[[Dict[str, Any]], Dict[str, Any]]
    _ready: bool
    _init_failures: int
    _not_before: float
    _next_discovery: float
    _rediscover_s: float
    _backoff_cap: float

    # Provided by StreamRunner.
    def _count(self, name: str, n: int = 1) -> None:
        raise NotImplementedError

    def _commit(self, shard: ShardState) -> None:
        raise NotImplementedError

    def _save(self, shard: ShardState, value: str) -> None:
        raise NotImplementedError

    def _backoff(self, attempt: int) -> float:
        raise NotImplementedError

    # --- reading (esm §5) -----------------------------------------------------------------

    def _read(self, shard: ShardState) -> bool:
        if shard.iterator is None and not self._open_iterator(shard):
            return False
        try:
            resp = self._streams.get_records(ShardIterator=shard.iterator, Limit=self._limit)
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
            self._count("records_read")
            record = self._normalize(to_lambda_record(raw, region=self._region or "", stream_arn=self._arn or ""))
            deliver: Optional[Dict[str, Any]] = record
            if self._drop_noop and is_noop_modify(raw):
                deliver = None  # AWS would not have written this record at all (esm §1, §7)
                self._count("records_skipped_noop")
            elif not matches_any(self.settings.filters, record):  # filtered on the full record (esm §9)
                deliver = None  # filtered out: consumed, never retried (esm §4)
                self._count("records_filtered_out")
            shard.uncommitted.append(Entry(seq, int(seq), deliver, creation_seconds(raw), now,
                                           size=record_size(deliver) if deliver else 0))
            shard.position = seq
            shard.last_read_created = creation_seconds(raw)
        shard.caught_up = not raws
        self._commit(shard)  # a filtered-out prefix is consumed right away
        if shard.iterator is None:
            self._shard_end_signal(shard)
        return bool(raws)

    def _open_iterator(self, shard: ShardState) -> bool:
        after = shard.position or (shard.checkpoint if shard.checkpoint not in (None, TRIM_HORIZON) else None)
        if shard.reopen_at_trim_horizon:
            after, shard.reopen_at_trim_horizon = None, False
        args: Dict[str, Any] = {"StreamArn": self._arn, "ShardId": shard.shard_id}
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
        self._count("read_errors")
        if code == "ExpiredIteratorException":  # iterators live 15 minutes (esm §5)
            log.info("shard %s: iterator expired; reopening after %s", shard.shard_id, shard.position)
            return True
        if code == "TrimmedDataAccessException":
            log.warning("shard %s: position %s was trimmed; resuming at TRIM_HORIZON", shard.shard_id, shard.position)
            shard.reopen_at_trim_horizon = True
            return True
        shard.read_errors += 1
        shard.not_before = self._clock() + self._backoff(shard.read_errors)
        if code == "ResourceNotFoundException":
            # Includes DynamoDB Local's "Invalid ShardId in ShardIterator" (esm §7): reopen, re-discover.
            log.warning("shard %s: %s; re-discovering shards", shard.shard_id, exc)
            self._next_discovery = 0.0
        else:
            log.warning("shard %s: reading failed (%s); retrying", shard.shard_id, exc)
        return False

    def _shard_end_signal(self, shard: ShardState) -> None:
        """No NextShardIterator: the shard is closed and read to its end - unless DescribeStream says
        it is still open (DynamoDB Local sometimes omits the iterator, esm §7); then just reopen."""
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
            self._arn = arn
            self._region = self._region or arn.split(":")[3]
            discard_stale_streams(self._checkpoints, arn)
            self._discover()
        except Exception as exc:
            self._init_failures += 1
            self._not_before = self._clock() + self._backoff(self._init_failures)
            log.warning("stream not available yet (%s); retrying", exc)
            return False
        self._init_failures = 0
        for sid in set(self._checkpoints.shards(arn)) - self._listed:
            log.info("discarding checkpoint of shard %s: no longer in stream %s (trimmed)", sid, arn)
            self._checkpoints.forget(arn, sid)
        if not self._checkpoints.has_stream(arn) and self.settings.starting_position == "LATEST":
            try:
                tips = {sid: self._latest_tip(shard) for sid, shard in self._shards.items()}
            except Exception as exc:
                self._not_before = self._clock() + self._backoff_cap
                log.warning("could not find the LATEST position (%s); retrying", exc)
                return False
            for sid, tip in tips.items():  # saved together, so a failure above leaves the stream fresh
                self._save(self._shards[sid], tip)
                self._shards[sid].done = tip == SHARD_END
                self._shards[sid].position = tip if tip not in (SHARD_END, TRIM_HORIZON) else None
        self._checkpoints.mark_stream(arn)  # from now on, a shard without a checkpoint is read whole
        self._ready = True
        log.info("reading stream %s (%d shards) from %s", arn, len(self._shards),
                 "checkpoints" if any(s.checkpoint for s in self._shards.values()) else self.settings.starting_position)
        return True

    def _latest_tip(self, shard: ShardState) -> str:
        """StartingPosition LATEST, made durable: the checkpoint that skips what the shard holds now,
        so that a restart resumes there instead of at a new LATEST (esm §2). An empty shard gets
        TRIM_HORIZON: everything that arrives in it later is after our start."""
        if shard.closed:
            return SHARD_END
        it = self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard.shard_id,
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
            args = {"StreamArn": self._arn, **({"ExclusiveStartShardId": start} if start else {})}
            desc = self._streams.describe_stream(**args)["StreamDescription"]
            found.extend(desc.get("Shards") or [])
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        self._listed = {s["ShardId"] for s in found}
        for s in found:
            closed = "EndingSequenceNumber" in (s.get("SequenceNumberRange") or {})
            known = self._shards.get(s["ShardId"])
            if known is not None:
                known.closed = closed
                continue
            stored = self._checkpoints.get(self._arn or "", s["ShardId"])
            shard = ShardState(s["ShardId"], s.get("ParentShardId"), closed=closed, checkpoint=stored,
                               done=stored == SHARD_END)
            self._shards[shard.shard_id] = shard
            log.debug("discovered shard %s (parent %s, checkpoint %s)", shard.shard_id, shard.parent_id, stored)
        for shard in self._shards.values():
            if shard.shard_id not in self._listed and not shard.end_of_shard:
                # Gone from DescribeStream: trimmed after 24 h (esm §5); nothing is left to read in it.
                log.info("shard %s is no longer in the stream; finishing it", shard.shard_id)
                shard.end_of_shard, shard.iterator = True, None
        self._next_discovery = self._clock() + self._rediscover_s

    def _discover_safely(self) -> bool:
        try:
            self._discover()
            return True
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                # The stream is gone (table deleted or recreated): start over with the table's new stream.
                log.warning("stream %s no longer exists; re-resolving the table's stream", self._arn)
                self._ready = False
                self._shards.clear()
                with self._lock:
                    self._shard_status.clear()
            else:
                log.warning("describe_stream failed (%s); retrying", exc)
            self._not_before = self._clock() + self._backoff_cap
            return False

    def _parent_done(self, shard: ShardState) -> bool:
        parent = self._shards.get(shard.parent_id or "")
        return parent is None or parent.done  # an unknown parent was trimmed away long ago (esm §5)


def _code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
