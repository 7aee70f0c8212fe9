"""Laws of the local ESM with ParallelizationFactor (docs: ESM-5, ESM-6, ESM-9, ESM-17), for any stream,
any handler behaviour and any order in which concurrent batches finish (Hypothesis).

A handler fails at random (partial batch responses, exceptions, malformed responses), records are
written while the runner polls, and the test decides at each step whether to poll, finish one of
the batches in flight (any of them, ManualExecutor) or let fake time pass. Every invocation and
every failure record is logged, and these must hold throughout:
- no two batches in flight share an item key, and at most N are in flight;
- a record is delivered only after every earlier record of its item is finished (succeeded or
  given up), and never again once it is finished;
- every record at or before the checkpoint is finished or was filtered out;
and at the end every record is finished, the checkpoint is the shard's last record, a batch given up
after its retries was carried by exactly 1 + MaximumRetryAttempts failed attempts, and each retry,
bisect half and partial remainder carried exactly the records the rules say.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

from hypothesis import given, settings, strategies as st

from devserver.stream import EsmSettings, FilterPattern, MemoryCheckpointStore, RunnerConfig, StreamRunner
from devserver.stream.destinations import MemoryDestination
from devserver.testing.executors import ManualExecutor
from devserver.testing.streams import FakeClock, FakeStreams, item
from tests.hypothesis_profiles import law_profile

PENDING = FilterPattern.parse('{"dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}')
MAX_STEPS = 4000


@dataclass
class Invocation:
    seqs: List[str]
    keys: List[str]
    kind: str = "running"  # then: success, partial, raise, malformed
    failed_from: Optional[str] = None  # partial: the lowest reported record


@dataclass
class Log:
    """What happened, in order: invocations (at submit) and failure records (when sent)."""

    key_of: Dict[str, str] = field(default_factory=dict)
    order: List[str] = field(default_factory=list)  # deliverable records in stream order
    invocations: List[Invocation] = field(default_factory=list)
    finished: Set[str] = field(default_factory=set)
    given_up: List[List[str]] = field(default_factory=list)

    def finish(self, seqs: List[str]) -> None:
        assert not self.finished & set(seqs), "a record finished twice: %s" % (self.finished & set(seqs))
        self.finished.update(seqs)


class CheckedExecutor(ManualExecutor):
    """Checks, as each batch is submitted, what must hold of the batches in flight and of order."""

    def __init__(self, log: Log, factor: int) -> None:
        super().__init__()
        self.log, self.factor = log, factor
        self.running: Dict[int, Invocation] = {}

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in args[1]]
        keys = [self.log.key_of[s] for s in seqs]
        busy = {k for inv in self.running.values() for k in inv.keys}
        assert not busy & set(keys), "item %s in two concurrent batches" % (busy & set(keys))
        assert len(self.running) < self.factor, "more than %d batches of one shard in flight" % self.factor
        assert not self.log.finished & set(seqs), "a finished record was delivered again"
        assert seqs == sorted(seqs, key=int), "a batch out of stream order"
        for seq in seqs:
            earlier = self.log.order[:self.log.order.index(seq)]
            waiting = [s for s in earlier if self.log.key_of[s] == self.log.key_of[seq]
                       and s not in self.log.finished and s not in seqs]
            assert not waiting, "%s delivered before %s of the same item finished" % (seq, waiting)
        invocation = Invocation(seqs, keys)
        self.log.invocations.append(invocation)
        future = super().submit(fn, *args, **kwargs)
        self.running[id(future)] = invocation
        return future

    def finish_one(self, index: int) -> None:
        call = self.run(index)
        invocation = self.running.pop(id(call.future))
        if invocation.kind == "success":
            self.log.finish(invocation.seqs)
        elif invocation.kind == "partial":
            cut = invocation.seqs.index(invocation.failed_from or "")
            self.log.finish(invocation.seqs[:cut])


class ChaosHandler:
    """Answers each batch at random: success, a partial failure, an exception or a malformed answer."""

    def __init__(self, rng: random.Random, log: Log, executor: CheckedExecutor) -> None:
        self.rng, self.log, self.executor = rng, log, executor

    def __call__(self, event: Dict[str, Any], context: Any) -> Any:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        invocation = next(inv for inv in reversed(self.log.invocations) if inv.seqs == seqs and inv.kind == "running")
        roll = self.rng.random()
        if roll < 0.55:
            invocation.kind = "success"
            return {"batchItemFailures": []}
        if roll < 0.8:
            reported = self.rng.sample(seqs, self.rng.randint(1, len(seqs)))
            invocation.kind, invocation.failed_from = "partial", min(reported, key=int)
            return {"batchItemFailures": [{"itemIdentifier": s} for s in reported]}
        if roll < 0.93:
            invocation.kind = "raise"
            raise RuntimeError("chaos")
        invocation.kind = "malformed"
        return {"batchItemFailures": [{"itemIdentifier": ""}]}


class LoggedDestination(MemoryDestination):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def send(self, message: Dict[str, Any], records: Any) -> None:
        super().send(message, records)
        seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
        self.log.given_up.append(seqs)
        self.log.finish(seqs)


writes = st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=8, max_size=40)  # (item, deliverable)


@settings(law_profile())
@given(writes=writes, factor=st.integers(1, 4), batch_size=st.integers(1, 5), bisect=st.booleans(),
       retries=st.integers(0, 2), page=st.integers(1, 7), rng=st.randoms(use_true_random=False))
def test_parallel_batches_keep_every_law_whatever_fails_and_whatever_finishes_first(
        writes: List[Any], factor: int, batch_size: int, bisect: bool, retries: int, page: int,
        rng: random.Random) -> None:
    clock = FakeClock()
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    log = Log()
    executor = CheckedExecutor(log, factor)
    checkpoints = MemoryCheckpointStore()
    config = RunnerConfig(
        settings=EsmSettings(batch_size=batch_size, starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                             bisect_on_error=bisect, max_retry_attempts=retries, parallelization_factor=factor,
                             filters=(PENDING,)),
        streams=streams, handler=ChaosHandler(rng, log, executor), stream_arn=streams.stream_arn,
        checkpoints=checkpoints, destination=LoggedDestination(log), clock=clock, sleep=clock.sleep,
        executor=executor, get_records_limit=page)
    runner = StreamRunner(config)
    every: List[str] = []
    to_write = list(writes)
    for _ in range(MAX_STEPS):
        roll = rng.random()
        if to_write and roll < 0.15:
            n, deliverable = to_write.pop(0)
            key = "item-%d" % n
            seq = streams.put({"id": {"S": key}}, new=item(key, "PENDING" if deliverable else "DONE"))
            every.append(seq)
            log.key_of[seq] = key
            if deliverable:
                log.order.append(seq)
        elif executor.pending and roll < 0.55:
            executor.finish_one(rng.randrange(len(executor.pending)))
        elif roll < 0.92:
            runner.poll_once()
        else:
            clock.advance(rng.choice([0.05, 0.5, 2.0]))
        checkpoint = checkpoints.get(streams.stream_arn, shard)
        if checkpoint is not None:
            upto = every[:every.index(checkpoint) + 1]
            unfinished = [s for s in upto if s in log.order and s not in log.finished]
            assert not unfinished, "checkpoint %s is past unfinished %s" % (checkpoint, unfinished)
        if not to_write and checkpoint == every[-1] and not executor.pending:
            break
    else:
        raise AssertionError("not finished after %d steps" % MAX_STEPS)

    assert log.finished == set(log.order)
    assert runner.status()["shards"][shard]["uncommitted"] == 0
    check_retries_bisects_and_remainders(log, retries, bisect)


def check_retries_bisects_and_remainders(log: Log, retries: int, bisect: bool) -> None:
    def counts_as_attempt(inv: Invocation) -> bool:
        return inv.kind in ("partial", "malformed") or (inv.kind == "raise" and (not bisect or len(inv.seqs) == 1))

    for given_up in log.given_up:
        carried = [inv for inv in log.invocations if given_up[0] in inv.seqs]
        assert all(set(given_up) <= set(inv.seqs) for inv in carried)  # one lineage, only ever narrowed
        assert sum(counts_as_attempt(inv) for inv in carried) == retries + 1
    for n, inv in enumerate(log.invocations):
        later = log.invocations[n + 1:]
        if inv.kind == "raise" and bisect and len(inv.seqs) > 1:
            mid = (len(inv.seqs) + 1) // 2
            expected = [inv.seqs[:mid], inv.seqs[mid:]]
        elif inv.kind == "partial":
            expected = [inv.seqs[inv.seqs.index(inv.failed_from or ""):]]
        elif inv.kind in ("raise", "malformed"):
            expected = [inv.seqs]
        else:
            continue
        for part in expected:
            following = next((nxt for nxt in later if part[0] in nxt.seqs), None)
            if following is not None:
                assert following.seqs == part, "after %s %s: %s, not %s" % (inv.kind, inv.seqs, following.seqs, part)
            else:
                assert part in log.given_up, "%s was neither retried nor given up" % part
