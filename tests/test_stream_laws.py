"""Properties of the runner that hold for every input (Hypothesis)."""
from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import HealthCheck, given, settings, strategies as st

from devserver.stream import (
    EsmSettings,
    FilterPattern,
    MemoryCheckpointStore,
    MemoryDestination,
    RunnerConfig,
    StreamRunner,
)
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, item, run_until_idle

PENDING_INSERTS = FilterPattern.parse(
    '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}')

# Sorted, distinct sequence numbers of 21 to 40 digits (docs: ESM-2): lengths vary inside one batch.
sequence_numbers = st.lists(st.integers(min_value=10 ** 20, max_value=10 ** 40 - 1), min_size=1, max_size=25,
                            unique=True).map(sorted)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers=sequence_numbers, data=st.data())
def test_reported_failures_set_the_checkpoint_to_before_the_lowest(numbers: List[int], data: st.DataObject) -> None:
    clock = FakeClock()
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    seqs = []
    for n in numbers:
        streams.shards[shard].seqs = iter([n])
        seqs.append(streams.put({"id": {"S": str(n)}}, new=item(str(n))))
    failed = data.draw(st.lists(st.sampled_from(seqs), min_size=1, unique=True), label="failed")
    handler = RecordingHandler(lambda records: {"batchItemFailures": [{"itemIdentifier": s} for s in failed]})
    checkpoints = MemoryCheckpointStore()
    settings = EsmSettings(batch_size=len(seqs), starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                           max_retry_attempts=1)
    runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, checkpoints=checkpoints,
                                       destination=MemoryDestination(), clock=clock, sleep=clock.sleep))
    runner.poll_once()
    runner.poll_once()
    lowest = seqs.index(min(failed, key=int))
    assert checkpoints.get(streams.stream_arn, shard) == (seqs[lowest - 1] if lowest else None)
    clock.advance(5)
    runner.poll_once()
    assert handler.batches[1] == seqs[lowest:]  # the retry starts exactly at the lowest failure


writes = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["PENDING", "DONE"]), st.booleans()),
                  min_size=0, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes=writes, batch_size=st.integers(1, 7), window=st.sampled_from([0, 1]),
       split_at=st.integers(0, 40), with_filter=st.booleans(), polls=st.lists(st.integers(0, 3), max_size=40))
def test_failure_free_run_delivers_or_filters_every_record_exactly_once(
        writes: List[Any], batch_size: int, window: int, split_at: int, with_filter: bool,
        polls: List[int]) -> None:
    clock = FakeClock()
    streams = FakeStreams(clock, page_size=2)
    parent = streams.add_shard()
    children = [streams.add_shard(parent=parent), streams.add_shard(parent=parent)]
    expected: Dict[str, List[str]] = {}
    handler = RecordingHandler()
    settings = EsmSettings(batch_size=batch_size, batching_window_s=window, starting_position="TRIM_HORIZON",
                           filters=(PENDING_INSERTS,) if with_filter else ())
    runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, clock=clock, sleep=clock.sleep))
    shard_of = {}
    for n, (target, status, is_update) in enumerate(writes):
        if n == split_at:
            streams.close_shard(parent)  # children get records while the parent may still have some
        for _ in range(polls[n] if n < len(polls) else 0):
            runner.poll_once()  # interleave polling with writing
        shard = parent if n < split_at else children[target % 2]
        key = "k%d" % n
        seq = streams.put({"id": {"S": key}}, new=item(key, status),
                          old=item(key, "RECEIVED") if is_update else None, shard=shard)
        shard_of[seq] = shard
        if not with_filter or (status == "PENDING" and not is_update):
            expected.setdefault(shard, []).append(seq)
    if split_at >= len(writes):
        streams.close_shard(parent)
    run_until_idle(runner, clock)

    delivered = handler.delivered
    assert len(delivered) == len(set(delivered))  # exactly once
    counters = runner.status()["counters"]
    assert counters["records_read"] == len(writes)
    assert len(delivered) + counters["records_filtered_out"] == len(writes)
    for shard, seqs in expected.items():
        assert [s for s in delivered if shard_of[s] == shard] == seqs  # in sequence order per shard
    parent_seqs = [i for i, s in enumerate(delivered) if shard_of[s] == parent]
    child_seqs = [i for i, s in enumerate(delivered) if shard_of[s] != parent]
    assert not parent_seqs or not child_seqs or max(parent_seqs) < min(child_seqs)  # parent first
    assert all(len(b) <= batch_size for b in handler.batches)
