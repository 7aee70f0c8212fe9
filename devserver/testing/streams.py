"""Test doubles for the stream runner: an in-memory DynamoDB stream, a clock and a recording handler.

FakeStreams answers the three `dynamodbstreams` calls the runner makes with boto3's shapes
(datetime timestamps with microseconds, raw bytes for binaries), and can do what moto cannot
(docs: LOCAL-1, LOCAL-106): several shards with parent/child lineage, closing shards, trimming,
expiring iterators, sequence numbers of growing length. Errors are botocore ClientErrors with AWS's codes.
"""
from __future__ import annotations

import copy
import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from botocore.exceptions import ClientError

from devserver.testing.fakes import client_error

ITERATOR_LIFETIME_S = 15 * 60  # an iterator expires 15 minutes after it is issued (docs: DDB-5)


class FakeClock:
    """Wall-clock stand-in; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1767225600.25) -> None:
        self.now = start
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Shard:
    shard_id: str
    parent: Optional[str]
    seqs: Any  # iterator of ints
    records: List[Dict[str, Any]] = field(default_factory=list)
    trimmed: int = 0  # records before this index are gone
    closed: bool = False
    first_seq: int = 0


class FakeStreams:
    """An in-memory stream with the `dynamodbstreams` client's method names and shapes."""

    def __init__(
        self, clock: Callable[[], float], *, region: str = "eu-central-1", account: str = "123456789012",
        table: str = "requests", label: str = "2026-01-01T00:00:00.000", view_type: str = "NEW_AND_OLD_IMAGES",
        page_size: int = 100,
    ) -> None:
        self.clock = clock
        self.region = region
        self.view_type = view_type
        self.stream_arn = "arn:aws:dynamodb:%s:%s:table/%s/stream/%s" % (region, account, table, label)
        self.page_size = page_size
        self.shards: Dict[str, _Shard] = {}
        self.calls: List[Tuple[str, Dict[str, Any]]] = []
        self._iterators: Dict[str, Dict[str, Any]] = {}
        self._failures: Dict[str, List[ClientError]] = {}
        self._shard_no = itertools.count(1)

    # --- driving the stream ----------------------------------------------------------------

    def add_shard(self, parent: Optional[str] = None, first_seq: Optional[int] = None, step: int = 1) -> str:
        n = next(self._shard_no)
        shard_id = "shardId-%020d-%08x" % (1767225600000 + n, 0xF35F62E0 + n)
        # Shard 1 starts just below a power of ten, so its numbers grow from 21 to 22 digits.
        start = first_seq if first_seq is not None else (10 ** 21 - 5 if n == 1 else 4421584500000000017450439091 * n)
        self.shards[shard_id] = _Shard(shard_id, parent, itertools.count(start, step), first_seq=start)
        return shard_id

    def close_shard(self, shard_id: str) -> None:
        self.shards[shard_id].closed = True

    def remove_shard(self, shard_id: str) -> None:
        del self.shards[shard_id]

    def trim(self, shard_id: str, count: int) -> None:
        """Records older than the trim horizon are gone (24 h retention, docs: DDB-4)."""
        self.shards[shard_id].trimmed = count

    def fail_next(self, operation: str, code: str, message: str = "injected") -> None:
        self._failures.setdefault(operation, []).append(client_error(code, operation, message=message))

    def put(
        self, keys: Dict[str, Any], *, new: Optional[Dict[str, Any]] = None, old: Optional[Dict[str, Any]] = None,
        shard: Optional[str] = None, ttl_delete: bool = False, created: Optional[float] = None,
    ) -> str:
        """Append a record; the event name follows from the images, like DynamoDB's."""
        target = self.shards[shard] if shard else [s for s in self.shards.values() if not s.closed][-1]
        seq = str(next(target.seqs))
        stamp = dt.datetime.fromtimestamp(self.clock() if created is None else created, tz=dt.timezone.utc)
        ddb: Dict[str, Any] = {"ApproximateCreationDateTime": stamp, "Keys": copy.deepcopy(keys)}
        if new is not None and self.view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            ddb["NewImage"] = copy.deepcopy(new)
        if old is not None and self.view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            ddb["OldImage"] = copy.deepcopy(old)
        ddb.update(SequenceNumber=seq, SizeBytes=40 + 10 * len(ddb), StreamViewType=self.view_type)
        raw = {"eventID": uuid.uuid4().hex,
               "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
               "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": self.region, "dynamodb": ddb}
        if ttl_delete:
            raw["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        target.records.append(raw)
        return seq

    def sequence_numbers(self, shard_id: Optional[str] = None) -> List[str]:
        shards = [self.shards[shard_id]] if shard_id else list(self.shards.values())
        return [r["dynamodb"]["SequenceNumber"] for s in shards for r in s.records]

    # --- the client API ----------------------------------------------------------------------

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: Optional[str] = None,
                        Limit: int = 100) -> Dict[str, Any]:
        self._enter("DescribeStream", StreamArn=StreamArn, ExclusiveStartShardId=ExclusiveStartShardId)
        self._check_arn(StreamArn, "DescribeStream")
        ids = list(self.shards)
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = ids[start:start + min(Limit, self.page_size)]
        shards = []
        for sid in page:
            s = self.shards[sid]
            rng = {"StartingSequenceNumber": str(s.first_seq)}
            if s.closed:
                rng["EndingSequenceNumber"] = (s.records[-1]["dynamodb"]["SequenceNumber"] if s.records
                                               else str(s.first_seq))
            shards.append({"ShardId": sid, **({"ParentShardId": s.parent} if s.parent else {}),
                           "SequenceNumberRange": rng})
        desc = {"StreamArn": StreamArn, "StreamStatus": "ENABLED", "StreamViewType": self.view_type, "Shards": shards}
        if start + len(page) < len(ids):
            desc["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": desc}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: Optional[str] = None) -> Dict[str, Any]:
        self._enter("GetShardIterator", ShardId=ShardId, ShardIteratorType=ShardIteratorType,
                    SequenceNumber=SequenceNumber)
        self._check_arn(StreamArn, "GetShardIterator")
        s = self.shards.get(ShardId)
        if s is None:
            raise client_error("ResourceNotFoundException", "GetShardIterator",
                               message="Requested resource not found: Shard does not exist")
        if ShardIteratorType == "TRIM_HORIZON":
            pos = s.trimmed
        elif ShardIteratorType == "LATEST":
            pos = len(s.records)
        else:
            seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in s.records]
            target = int(SequenceNumber or "0")
            if target not in seqs:
                raise client_error("ValidationException", "GetShardIterator", message="Invalid SequenceNumber")
            pos = seqs.index(target) + (1 if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else 0)
            if pos < s.trimmed:
                raise client_error("TrimmedDataAccessException", "GetShardIterator",
                                   message="Requested data is beyond the trim horizon")
        token = uuid.uuid4().hex
        self._iterators[token] = {"shard": ShardId, "pos": pos, "issued": self.clock()}
        return {"ShardIterator": token}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> Dict[str, Any]:
        self._enter("GetRecords", ShardIterator=ShardIterator, Limit=Limit)
        it = self._iterators.get(ShardIterator)
        if it is None or it["shard"] not in self.shards:
            raise client_error("ResourceNotFoundException", "GetRecords", message="Invalid ShardId in ShardIterator")
        if self.clock() - it["issued"] > ITERATOR_LIFETIME_S:
            raise client_error("ExpiredIteratorException", "GetRecords", message="Iterator expired")
        s = self.shards[it["shard"]]
        if it["pos"] < s.trimmed:
            raise client_error("TrimmedDataAccessException", "GetRecords",
                               message="Requested data is beyond the trim horizon")
        batch = s.records[it["pos"]:it["pos"] + min(Limit, 1000)]
        out: Dict[str, Any] = {"Records": copy.deepcopy(batch)}
        pos = it["pos"] + len(batch)
        if not (s.closed and pos >= len(s.records)):  # a closed shard read to its end has no next iterator
            token = uuid.uuid4().hex
            self._iterators[token] = {"shard": s.shard_id, "pos": pos, "issued": self.clock()}
            out["NextShardIterator"] = token
        return out

    def _enter(self, operation: str, **args: Any) -> None:
        self.calls.append((operation, args))
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _check_arn(self, arn: str, operation: str) -> None:
        if arn != self.stream_arn:
            raise client_error("ResourceNotFoundException", operation,
                               message="Requested resource not found: Stream: %s not found" % arn)


class RecordingHandler:
    """A Lambda entry `(event, context)` that records each event and answers via `respond(records)`
    (return a response, or raise to simulate a function error)."""

    def __init__(self, respond: Optional[Callable[[List[Dict[str, Any]]], Any]] = None) -> None:
        self.respond = respond or (lambda records: None)
        self.events: List[Dict[str, Any]] = []
        self.contexts: List[Any] = []

    def __call__(self, event: Dict[str, Any], context: Any) -> Any:
        self.events.append(copy.deepcopy(event))
        self.contexts.append(context)
        return self.respond(event["Records"])

    @property
    def batches(self) -> List[List[str]]:
        """The sequence numbers of every invocation, in order."""
        return [[r["dynamodb"]["SequenceNumber"] for r in e["Records"]] for e in self.events]

    @property
    def delivered(self) -> List[str]:
        return [seq for batch in self.batches for seq in batch]


def run_until_idle(runner: Any, clock: FakeClock, *, idle_polls: int = 40, max_polls: int = 10_000) -> int:
    """Poll like `run()` does, on fake time, until `idle_polls` polls in a row did nothing
    (40 x 0.25 s = 10 s of fake time: longer than any backoff). Returns the number of polls."""
    idle = 0
    for n in range(1, max_polls + 1):
        if runner.poll_once():
            idle = 0
        else:
            idle += 1
            if idle >= idle_polls:
                return n
            clock.sleep(0.25)
    raise AssertionError("runner still busy after %d polls" % max_polls)


def item(key: str, status: str = "PENDING", **attrs: Dict[str, Any]) -> Dict[str, Any]:
    """A typed item of the requests table: {"id": {"S": key}, "status": {"S": status}, ...}."""
    return {"id": {"S": key}, "status": {"S": status}, **attrs}
