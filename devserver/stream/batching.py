"""Per-shard bookkeeping of the runner: what was read, what is in flight, what may be committed.

Kept free of I/O so the commit rule can be read (and tested) on its own: the checkpoint only ever
moves over a prefix of the shard in which every record was either handled (success, or given up
and sent to the failure destination) or consumed without delivery (filtered out, esm §4).
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional


@dataclass
class Entry:
    seq: str
    num: int  # the sequence number as an integer: they vary in length, never compare text (esm §1)
    record: Optional[Dict[str, Any]]  # None: consumed without delivery (filtered out / no-op MODIFY)
    created: Optional[float]  # ApproximateCreationDateTime, whole seconds
    read_at: float
    done: bool = False
    size: int = 0  # JSON size, for the 6 MB invoke payload limit (esm §2)


@dataclass
class Batch:
    entries: List[Entry]
    attempts: int = 0  # failed attempts counted against MaximumRetryAttempts
    invocations: int = 0  # invocations that carried these records (approximateInvokeCount)
    function_error: Optional[str] = None  # of the last failure: "Unhandled" or None (esm §2)
    not_before: float = 0.0  # retry backoff
    give_up: Optional[str] = None  # condition of a failure record not yet sent

    def child(self, entries: List[Entry]) -> "Batch":
        """A slice that keeps the lineage's counts (bisect halves, the remainder of a partial failure)."""
        return Batch(entries, self.attempts, self.invocations, self.function_error, self.not_before)

    @property
    def records(self) -> List[Dict[str, Any]]:
        return [e.record for e in self.entries if e.record is not None]


@dataclass
class ShardState:
    shard_id: str
    parent_id: Optional[str]
    closed: bool = False  # DescribeStream shows an EndingSequenceNumber
    checkpoint: Optional[str] = None  # last committed value, as stored
    position: Optional[str] = None  # last sequence number read; the iterator resumes after it
    iterator: Optional[str] = None
    reopen_at_trim_horizon: bool = False
    uncommitted: Deque[Entry] = field(default_factory=deque)
    batches: Deque[Batch] = field(default_factory=deque)
    end_of_shard: bool = False  # read to the end of a closed shard
    done: bool = False  # SHARD_END committed
    not_before: float = 0.0  # read backoff after errors
    read_errors: int = 0
    caught_up: bool = False  # the last GetRecords returned nothing
    last_read_created: Optional[float] = None

    @property
    def position_num(self) -> Optional[int]:
        return int(self.position) if self.position and self.position.isdigit() else None

    def pending(self) -> List[Entry]:
        """Deliverable records read but not yet handed to a batch (only valid with no batch in flight)."""
        return [e for e in self.uncommitted if e.record is not None and not e.done]

    def batch_due(self, now: float, batch_size: int, window_s: float, max_payload: int) -> bool:
        """Invoke when the batch is full, the payload cap is reached, the window elapsed (0: as soon
        as records exist) or the shard ended (esm §2)."""
        pending = self.pending()
        if not pending:
            return False
        if len(pending) >= batch_size or self.end_of_shard or window_s <= 0:
            return True
        if sum(e.size for e in pending) >= max_payload:
            return True
        return now - pending[0].read_at >= window_s

    def take_batch(self, batch_size: int, max_payload: int) -> Batch:
        entries: List[Entry] = []
        size = 0
        for e in self.pending():
            if entries and (len(entries) >= batch_size or size + e.size > max_payload):
                break
            entries.append(e)
            size += e.size
        batch = Batch(entries)
        self.batches.append(batch)
        return batch

    def committable(self) -> Optional[str]:
        """Pop the consumed prefix; return the new checkpoint, or None if it did not move."""
        last = None
        while self.uncommitted and (self.uncommitted[0].record is None or self.uncommitted[0].done):
            last = self.uncommitted.popleft().seq
        return last


def record_size(record: Dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":")))
