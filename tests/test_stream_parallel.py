"""ParallelizationFactor in the local ESM (docs: ESM-9, ESM-17): up to N batches of one shard in flight,
one lane per item key hash, the checkpoint held by the slowest lane. Step by step, against FakeStreams,
with batches finishing in the order each test chooses (ManualExecutor)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from devserver.stream import EsmSettings, MemoryCheckpointStore, MemoryDestination, RunnerConfig, StreamRunner
from devserver.stream.batching import lane_of
from devserver.testing.executors import ManualExecutor, PeakConcurrency
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, item

SETTINGS = EsmSettings(batch_size=10, starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                       max_retry_attempts=2, parallelization_factor=2)


@dataclass
class Rig:
    clock: FakeClock
    streams: FakeStreams
    shard: str
    handler: RecordingHandler
    executor: ManualExecutor
    checkpoints: MemoryCheckpointStore
    destination: MemoryDestination
    runner: StreamRunner

    def put(self, key: str) -> str:
        return self.streams.put({"id": {"S": key}}, new=item(key))

    @property
    def checkpoint(self) -> Optional[str]:
        return self.checkpoints.get(self.streams.stream_arn, self.shard)

    def in_flight(self) -> List[List[str]]:
        """The sequence numbers of each batch submitted and not run yet."""
        return [[r["dynamodb"]["SequenceNumber"] for r in call.args[1]] for call in self.executor.pending]

    def polls(self, n: int = 3) -> None:
        for _ in range(n):
            self.runner.poll_once()


def rig(settings: EsmSettings = SETTINGS, respond: Any = None) -> Rig:
    clock = FakeClock()
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    handler = RecordingHandler(respond)
    executor, checkpoints, destination = ManualExecutor(), MemoryCheckpointStore(), MemoryDestination()
    runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, checkpoints=checkpoints,
                                       destination=destination, clock=clock, sleep=clock.sleep, executor=executor))
    return Rig(clock, streams, shard, handler, executor, checkpoints, destination, runner)


def keys_in_lanes(lanes: int, count: int) -> List[List[str]]:
    """Item keys grouped by the lane they hash to, `count` of each."""
    found: List[List[str]] = [[] for _ in range(lanes)]
    for n in range(100 * lanes * count):  # bounded: a hash that misses a lane fails here, not hangs
        key = "k%d" % n
        lane = lane_of({"dynamodb": {"Keys": {"id": {"S": key}}}}, lanes)
        if len(found[lane]) < count:
            found[lane].append(key)
        if all(len(keys) == count for keys in found):
            return found
    raise AssertionError("no keys for some lanes: %s" % found)


def test_lanes_follow_the_items_key_and_spread_over_every_lane() -> None:
    record = {"dynamodb": {"Keys": {"id": {"S": "order-1"}}, "NewImage": {"id": {"S": "order-1"}}}}
    assert lane_of(record, 1) == 0
    assert {lane_of(record, 4) for _ in range(3)} == {lane_of({"dynamodb": {"Keys": {"id": {"S": "order-1"}}}}, 4)}
    spread = [lane_of({"dynamodb": {"Keys": {"id": {"S": "k%d" % n}}}}, 10) for n in range(1000)]
    assert set(spread) == set(range(10)) and min(spread.count(lane) for lane in range(10)) > 60


def test_up_to_the_factor_batches_of_one_shard_are_in_flight_at_once() -> None:
    r = rig(replace(SETTINGS, batch_size=2, parallelization_factor=3))
    lanes = keys_in_lanes(3, 4)
    for n in range(4):
        for keys in lanes:
            r.put(keys[n])

    r.polls()

    assert len(r.in_flight()) == 3  # one batch per lane, none more
    assert r.runner.status()["shards"][r.shard]["in_flight"] == 3
    r.executor.run(1)
    r.polls()
    assert len(r.in_flight()) == 3  # the freed lane took its next batch at once
    r.executor.run_all()
    r.polls(10)
    r.executor.run_all()
    r.polls(10)
    assert sorted(r.handler.delivered, key=int) == r.streams.sequence_numbers()
    assert r.checkpoint == r.streams.sequence_numbers()[-1]


def test_one_items_records_wait_for_its_batch_in_flight_and_keep_their_order() -> None:
    r = rig(replace(SETTINGS, batch_size=1))
    first, second, third = r.put("same"), r.put("same"), r.put("same")
    r.polls()
    assert r.in_flight() == [[first]]  # the other lane has nothing of this item: it stays free
    r.polls()
    assert r.in_flight() == [[first]]
    r.executor.run()
    r.polls()
    assert r.in_flight() == [[second]]
    r.executor.run()
    r.polls()
    r.executor.run()
    r.polls()
    assert r.handler.batches == [[first], [second], [third]]


def test_the_checkpoint_waits_for_an_earlier_batch_that_is_still_running() -> None:
    r = rig(replace(SETTINGS, batch_size=5))
    lanes = keys_in_lanes(2, 2)
    early = [r.put(key) for key in lanes[0]]  # lane 0 holds the shard's first records
    late = [r.put(key) for key in lanes[1]]
    r.polls()
    assert sorted(r.in_flight()) == sorted([early, late])

    r.executor.run([batch[0] for batch in r.in_flight()].index(late[0]))  # the later batch finishes first
    r.polls()
    assert r.checkpoint is None  # nothing committed past the running batch...

    r.executor.run()
    r.polls()
    assert r.checkpoint == late[-1]  # ...and all of it once it finished


def test_a_lane_blocked_by_retries_does_not_hold_back_the_others() -> None:
    lanes = keys_in_lanes(2, 3)
    poison = lanes[0][0]

    def respond(records: List[Dict[str, Any]]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": rec["dynamodb"]["SequenceNumber"]} for rec in records
                                      if rec["dynamodb"]["Keys"]["id"]["S"] == poison]}
    r = rig(replace(SETTINGS, batch_size=1, max_retry_attempts=3), respond)
    stuck = r.put(poison)
    behind = r.put(lanes[0][1])  # same lane, after the poison: waits for it
    others = [r.put(key) for key in lanes[1]]

    for _ in range(6):  # the poison fails and waits for its backoff (fake time stands still)
        r.polls()
        r.executor.run_all()
    delivered = r.handler.delivered
    assert set(others) <= set(delivered) and behind not in delivered
    assert r.checkpoint is None  # the checkpoint stays before the poison

    for _ in range(30):
        r.clock.advance(1)
        r.polls()
        r.executor.run_all()
    [message] = r.destination.messages
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == stuck
    assert message["requestContext"]["approximateInvokeCount"] == 4  # 1 + MaximumRetryAttempts
    assert behind in r.handler.delivered
    assert r.checkpoint == r.streams.sequence_numbers()[-1]


def test_record_age_is_checked_per_lane_and_aged_records_go_to_the_destination() -> None:
    r = rig(replace(SETTINGS, batch_size=1, max_retry_attempts=-1, max_record_age_s=60),
            lambda records: 1 / 0)
    lanes = keys_in_lanes(2, 1)
    seqs = [r.put(lanes[0][0]), r.put(lanes[1][0])]
    for _ in range(40):
        r.polls()
        r.executor.run_all()
        r.clock.advance(5)
    assert sorted(m["DDBStreamBatchInfo"]["startSequenceNumber"] for m in r.destination.messages) == seqs
    assert {m["requestContext"]["condition"] for m in r.destination.messages} == {"RecordAgeExceeded"}
    assert r.checkpoint == seqs[-1]


def test_a_thread_pool_runs_the_batches_of_one_shard_concurrently() -> None:
    lanes = keys_in_lanes(4, 5)
    meter = PeakConcurrency()

    def respond(records: List[Dict[str, Any]]) -> None:
        with meter:
            time.sleep(0.02)

    clock_streams = FakeStreams(time.time)
    shard = clock_streams.add_shard()
    for n in range(5):
        for keys in lanes:
            clock_streams.put({"id": {"S": keys[n]}}, new=item(keys[n]))
    handler = RecordingHandler(respond)
    checkpoints = MemoryCheckpointStore()
    with ThreadPoolExecutor(max_workers=8) as pool:
        runner = StreamRunner(RunnerConfig(settings=replace(SETTINGS, batch_size=2, parallelization_factor=4),
                                           streams=clock_streams, handler=handler,
                                           stream_arn=clock_streams.stream_arn, checkpoints=checkpoints,
                                           executor=pool, idle_poll_s=0.01))
        runner.start()
        deadline = time.monotonic() + 10
        last = clock_streams.sequence_numbers()[-1]
        while checkpoints.get(clock_streams.stream_arn, shard) != last and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.stop()
    assert checkpoints.get(clock_streams.stream_arn, shard) == last
    assert sorted(handler.delivered, key=int) == clock_streams.sequence_numbers()
    assert 1 < meter.peak <= 4
