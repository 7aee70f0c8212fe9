"""Per-shard bookkeeping of the runner: what was read, what is in flight, what may be committed.

Kept free of I/O so the commit rule can be read (and tested) on its own: the checkpoint only ever
moves over a prefix of the shard in which every record was either handled (success, or given up
and sent to the failure destination) or consumed without delivery (filtered out, docs: ESM-14).

With ParallelizationFactor N a shard's deliverable records are split into N lanes by a hash of the
item's key (docs: ESM-9, ESM-17): each lane is a sequence of its own, read in stream order, with at
most one batch in flight and its retries blocking only itself; the lanes' records stay in one
`uncommitted` queue in stream order, so the checkpoint waits for the slowest lane.
"""
from __future__ import annotations

import json
import zlib
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional


@dataclass
class Entry:
    seq: str
    num: int  # the sequence number as an integer: they vary in length, never compare text (docs: ESM-2)
    record: Optional[Dict[str, Any]]  # None: consumed without delivery (filtered out / no-op MODIFY)
    created: Optional[float]  # ApproximateCreationDateTime, whole seconds
    read_at: float
    done: bool = False
    size: int = 0  # JSON size, for the 6 MB invoke payload limit (docs: ESM-11)
    lane: int = 0


@dataclass
class Batch:
    entries: List[Entry]
    attempts: int = 0  # failed attempts counted against MaximumRetryAttempts
    invocations: int = 0  # invocations that carried these records (approximateInvokeCount)
    function_error: Optional[str] = None  # of the last failure: "Unhandled" or None (docs: ESM-8)
    not_before: float = 0.0  # retry backoff
    give_up: Optional[str] = None  # condition of a failure record not yet sent

    def child(self, entries: List[Entry]) -> "Batch":
        """A slice that keeps the lineage's counts (bisect halves, the remainder of a partial failure)."""
        return Batch(entries, self.attempts, self.invocations, self.function_error, self.not_before)

    @property
    def records(self) -> List[Dict[str, Any]]:
        return [e.record for e in self.entries if e.record is not None]


@dataclass
class Lane:
    """One of a shard's ParallelizationFactor sequences of batches."""

    queued: Deque[Entry] = field(default_factory=deque)  # read, deliverable, in no batch yet; stream order
    batches: Deque[Batch] = field(default_factory=deque)  # the head is in flight or waits; bisect halves follow
    in_flight: Optional["Future[Any]"] = None  # the head batch's invocation, until the runner settles it

    @property
    def free(self) -> bool:
        """Nothing in flight and nothing waiting for a retry: the lane takes a new batch when one is due."""
        return self.in_flight is None and not self.batches

    def batch_due(self, now: float, batch_size: int, window_s: float, max_payload: int, end_of_shard: bool) -> bool:
        """Invoke when the batch is full, the payload cap is reached, the window elapsed (0: as soon
        as records exist) or the shard ended (docs: ESM-11)."""
        if not self.queued:
            return False
        if len(self.queued) >= batch_size or end_of_shard or window_s <= 0:
            return True
        if sum(e.size for e in self.queued) >= max_payload:
            return True
        return now - self.queued[0].read_at >= window_s

    def take_batch(self, batch_size: int, max_payload: int) -> Batch:
        entries: List[Entry] = []
        size = 0
        while self.queued:
            e = self.queued[0]
            if entries and (len(entries) >= batch_size or size + e.size > max_payload):
                break
            entries.append(self.queued.popleft())
            size += e.size
        batch = Batch(entries)
        self.batches.append(batch)
        return batch


@dataclass
class ShardState:
    shard_id: str
    parent_id: Optional[str]
    closed: bool = False  # DescribeStream shows an EndingSequenceNumber
    checkpoint: Optional[str] = None  # last committed value, as stored
    position: Optional[str] = None  # last sequence number read; the iterator resumes after it
    iterator: Optional[str] = None
    reopen_at_trim_horizon: bool = False
    uncommitted: Deque[Entry] = field(default_factory=deque)  # every record read and not committed, in order
    lane_count: int = 1  # ParallelizationFactor
    lanes: List[Lane] = field(default_factory=list)
    end_of_shard: bool = False  # read to the end of a closed shard
    done: bool = False  # SHARD_END committed
    not_before: float = 0.0  # read backoff after errors
    read_errors: int = 0
    caught_up: bool = False  # the last GetRecords returned nothing
    last_read_created: Optional[float] = None

    def __post_init__(self) -> None:
        if not self.lanes:
            self.lanes = [Lane() for _ in range(self.lane_count)]

    @property
    def position_num(self) -> Optional[int]:
        return int(self.position) if self.position and self.position.isdigit() else None

    def add(self, entry: Entry) -> None:
        """A record just read: every record waits in `uncommitted`; a deliverable one also in its lane."""
        self.uncommitted.append(entry)
        if entry.record is not None:
            entry.lane = lane_of(entry.record, len(self.lanes))
            self.lanes[entry.lane].queued.append(entry)

    def may_read_ahead(self, limit: int) -> bool:
        """Read more while some lane is free and less than `limit` records wait uncommitted: a lane
        blocked by retries does not stop the others, and read-ahead stays bounded. With one lane
        this is: read only between batches, as Lambda's single batch stream does."""
        return len(self.uncommitted) < limit and any(lane.free for lane in self.lanes)

    def busy_lanes(self) -> int:
        return sum(lane.in_flight is not None for lane in self.lanes)

    def committable(self) -> Optional[str]:
        """Pop the consumed prefix; return the new checkpoint, or None if it did not move."""
        last = None
        while self.uncommitted and (self.uncommitted[0].record is None or self.uncommitted[0].done):
            last = self.uncommitted.popleft().seq
        return last


def lane_of(record: Dict[str, Any], lanes: int) -> int:
    """The lane of a record: a stable hash of its item's key (partition and sort key), so every
    record of one item goes to one lane, in stream order (docs: ESM-17)."""
    if lanes == 1:
        return 0
    keys = json.dumps((record.get("dynamodb") or {}).get("Keys"), sort_keys=True, separators=(",", ":"))
    return zlib.crc32(keys.encode("utf-8")) % lanes


def record_size(record: Dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":")))
