"""Shards, recovery and restarts (docs: DDB-4, DDB-5, DDB-11, ESM-3, LOCAL-2): lineage,
closed/expired/trimmed positions, durable checkpoints across a kill, stale streams, LATEST, and a
prompt stop()."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from devserver.stream import (
    EsmSettings,
    FileCheckpointStore,
    MemoryCheckpointStore,
    MemoryDestination,
    RunnerConfig,
    StreamRunner,
)
from devserver.stream.checkpoint import SHARD_END
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, item, run_until_idle

SETTINGS = EsmSettings(batch_size=10, starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                       max_retry_attempts=2)


def make_runner(streams: FakeStreams, clock: FakeClock, handler: RecordingHandler, checkpoints: Any = None,
                settings: EsmSettings = SETTINGS, stream_arn: Any = None) -> StreamRunner:
    return StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=handler,
                                     stream_arn=stream_arn or streams.stream_arn,
                                     checkpoints=checkpoints if checkpoints is not None else MemoryCheckpointStore(),
                                     destination=MemoryDestination(), clock=clock, sleep=clock.sleep))


def put(streams: FakeStreams, n: int, shard: Optional[str] = None, prefix: str = "r") -> List[str]:
    return [streams.put({"id": {"S": "%s%d" % (prefix, i)}}, new=item("%s%d" % (prefix, i)), shard=shard)
            for i in range(n)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_restart_resumes_after_the_last_committed_record(tmp_path: Path, clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    path = tmp_path / "checkpoints.json"
    seqs = put(streams, 3)
    first = RecordingHandler()
    runner = make_runner(streams, clock, first, FileCheckpointStore(path))
    run_until_idle(runner, clock)
    # the 4th record fails once, then the process is killed (no stop(), nothing flushed)
    seqs += put(streams, 1, prefix="late")
    first.respond = lambda records: {
        "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    runner.poll_once()
    runner.poll_once()
    assert first.batches == [seqs[:3], seqs[3:]]
    del runner

    second = RecordingHandler()
    again = make_runner(streams, clock, second, FileCheckpointStore(path))
    run_until_idle(again, clock)
    assert second.batches == [seqs[3:]]  # nothing skipped, nothing committed re-run
    assert FileCheckpointStore(path).get(streams.stream_arn, shard) == seqs[-1]


def test_stale_checkpoint_of_a_recreated_table_is_discarded(
        tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "checkpoints.json"
    old = FakeStreams(clock, label="2025-12-31T00:00:00.000")
    old_shard = old.add_shard()
    put(old, 5)
    run_until_idle(make_runner(old, clock, RecordingHandler(), FileCheckpointStore(path)), clock)
    # the table is recreated: new stream label, sequence numbers start over (moto, DynamoDB Local)
    new = FakeStreams(clock)
    new.add_shard()
    seqs = put(new, 2)
    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING):
        run_until_idle(make_runner(new, clock, handler, FileCheckpointStore(path)), clock)
    assert "discarding checkpoint for stream %s" % old.stream_arn in caplog.text
    assert handler.batches == [seqs]
    assert FileCheckpointStore(path).get(old.stream_arn, old_shard) is None


def test_children_run_after_their_closed_parent(clock: FakeClock) -> None:
    streams = FakeStreams(clock, page_size=1)  # paginated DescribeStream
    parent = streams.add_shard()
    parent_seqs = put(streams, 3, shard=parent)
    child = streams.add_shard(parent=parent)
    other_child = streams.add_shard(parent=parent)
    child_seqs = put(streams, 2, shard=child, prefix="c")
    other_seqs = put(streams, 1, shard=other_child, prefix="o")
    streams.close_shard(parent)
    failures = [RuntimeError("parent fails once")]

    def respond(records: List[Dict[str, Any]]) -> None:
        if failures:
            raise failures.pop()  # the parent's retry backoff must not let the children run

    handler = RecordingHandler(respond)
    checkpoints = MemoryCheckpointStore()
    runner = make_runner(streams, clock, handler, checkpoints)
    run_until_idle(runner, clock)
    delivered = handler.delivered
    assert delivered[:6] == parent_seqs * 2
    assert sorted(delivered[6:]) == sorted(child_seqs + other_seqs)
    assert checkpoints.get(streams.stream_arn, parent) == SHARD_END
    assert runner.status()["shards"][parent]["state"] == "done"


def test_shard_rollover_while_running(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    parent = streams.add_shard()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler)
    first = put(streams, 2, shard=parent)
    run_until_idle(runner, clock)
    child = streams.add_shard(parent=parent)  # the child appears, then the parent closes (docs: DDB-5)
    late_parent = put(streams, 1, shard=parent, prefix="lp")
    child_seqs = put(streams, 2, shard=child, prefix="c")
    streams.close_shard(parent)
    run_until_idle(runner, clock)
    assert handler.delivered == first + late_parent + child_seqs


def test_expired_iterator_is_reopened_after_the_last_read(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler)
    seqs = put(streams, 2)
    run_until_idle(runner, clock)
    clock.advance(16 * 60)  # iterators live 15 minutes
    seqs += put(streams, 2, prefix="x")
    run_until_idle(runner, clock)
    assert handler.delivered == seqs
    assert ("GetShardIterator", {"ShardId": list(streams.shards)[0], "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                                 "SequenceNumber": seqs[1]}) in streams.calls


def test_trimmed_checkpoint_resumes_at_trim_horizon(tmp_path: Path, clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    path = tmp_path / "c.json"
    seqs = put(streams, 2)
    run_until_idle(make_runner(streams, clock, RecordingHandler(), FileCheckpointStore(path)), clock)
    seqs += put(streams, 4, prefix="x")
    streams.trim(shard, 4)  # records 3 and 4 expired before the runner came back (24 h, docs: DDB-4)
    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING):
        run_until_idle(make_runner(streams, clock, handler, FileCheckpointStore(path)), clock)
    assert "trimmed" in caplog.text
    assert handler.delivered == seqs[4:]


def test_trimmed_error_while_reading_does_not_redeliver(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler)
    seqs = put(streams, 3)
    run_until_idle(runner, clock)
    streams.fail_next("GetRecords", "TrimmedDataAccessException")
    seqs += put(streams, 2, prefix="x")
    run_until_idle(runner, clock)
    assert handler.delivered == seqs  # TRIM_HORIZON re-read skips what was already read


def test_dynamodb_local_invalid_shard_id_is_recovered(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler)
    streams.fail_next("GetRecords", "ResourceNotFoundException", "Invalid ShardId in ShardIterator")
    seqs = put(streams, 3)
    run_until_idle(runner, clock)
    assert handler.delivered == seqs
    assert runner.status()["counters"]["read_errors"] == 1


def test_missing_next_iterator_on_an_open_shard_is_not_the_end(clock: FakeClock) -> None:
    class Quirky(FakeStreams):  # DynamoDB Local sometimes omits NextShardIterator (docs: LOCAL-2)
        dropped = False

        def get_records(self, ShardIterator: str, Limit: int = 1000) -> Dict[str, Any]:
            out = super().get_records(ShardIterator, Limit)
            if out["Records"] and not self.dropped:
                self.dropped = True
                out.pop("NextShardIterator")
            return out

    streams = Quirky(clock)
    shard = streams.add_shard()
    handler = RecordingHandler()
    checkpoints = MemoryCheckpointStore()
    runner = make_runner(streams, clock, handler, checkpoints)
    seqs = put(streams, 2)
    run_until_idle(runner, clock)
    seqs += put(streams, 2, prefix="x")
    run_until_idle(runner, clock)
    assert handler.delivered == seqs
    assert checkpoints.get(streams.stream_arn, shard) == seqs[-1]


def test_table_not_there_yet_is_retried(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    seqs = put(streams, 1)
    answers: List[Any] = [RuntimeError("table not found"), streams.stream_arn]

    def resolve() -> str:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING):
        run_until_idle(make_runner(streams, clock, handler, stream_arn=resolve), clock)
    assert "stream not available yet" in caplog.text
    assert handler.delivered == seqs


def test_latest_skips_existing_records_durably(tmp_path: Path, clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    old = streams.add_shard()
    put(streams, 2, shard=old, prefix="old")
    streams.close_shard(old)
    put(streams, 3, shard=shard)
    path = tmp_path / "c.json"
    settings = EsmSettings(starting_position="LATEST")
    handler = RecordingHandler()
    run_until_idle(make_runner(streams, clock, handler, FileCheckpointStore(path), settings), clock)
    assert handler.batches == []
    # written while the runner was down: a restart resumes where LATEST began, not at a new LATEST
    missed = put(streams, 2, shard=shard, prefix="down")
    handler = RecordingHandler()
    run_until_idle(make_runner(streams, clock, handler, FileCheckpointStore(path), settings), clock)
    assert handler.delivered == missed


def test_latest_on_an_empty_shard_reads_everything_that_arrives_later(tmp_path: Path, clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    path = tmp_path / "c.json"
    settings = EsmSettings(starting_position="LATEST")
    run_until_idle(make_runner(streams, clock, RecordingHandler(), FileCheckpointStore(path), settings), clock)
    later = put(streams, 2)
    handler = RecordingHandler()
    run_until_idle(make_runner(streams, clock, handler, FileCheckpointStore(path), settings), clock)
    assert handler.delivered == later


def test_status_reports_counters_checkpoints_and_iterator_age(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    handler = RecordingHandler(lambda records: (_ for _ in ()).throw(RuntimeError("down")))
    runner = make_runner(streams, clock, handler)
    seqs = put(streams, 2)
    runner.poll_once()
    clock.advance(3.0)
    status = runner.status()
    assert status["counters"]["records_read"] == 2
    assert status["shards"][shard]["iterator_age_ms"] >= 3000  # behind by the oldest unprocessed read
    run_until_idle(runner, clock)
    status = runner.status()
    assert status["shards"][shard]["checkpoint"] == seqs[-1]
    assert status["shards"][shard]["iterator_age_ms"] == 0  # caught up
    assert status["counters"]["batches_sent_to_failure"] == 1


def test_stop_returns_within_two_seconds_with_the_real_clock() -> None:
    streams = FakeStreams(time.time)  # real clock and the default sleep: the runner's own idle wait
    streams.add_shard()
    handler = RecordingHandler()
    release = threading.Event()
    runner = StreamRunner(RunnerConfig(settings=SETTINGS, streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn))
    thread = runner.start()
    streams.put({"id": {"S": "a"}}, new=item("a"))
    deadline = time.monotonic() + 2
    while not handler.events and time.monotonic() < deadline:
        release.wait(0.01)
    assert handler.events and runner.status()["running"]
    started = time.monotonic()
    assert runner.stop() is True
    assert time.monotonic() - started < 2.0 and not thread.is_alive()


def test_table_recreated_while_running_switches_to_the_new_stream(clock: FakeClock,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    streams = FakeStreams(clock)
    streams.add_shard()
    checkpoints = MemoryCheckpointStore()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler, checkpoints, stream_arn=lambda: streams.stream_arn)
    before = put(streams, 2)
    run_until_idle(runner, clock)
    old_arn = streams.stream_arn
    # devserver reset: same table name, new stream label, new shards
    streams.stream_arn = old_arn.replace("2026-01-01T00:00:00.000", "2026-01-02T00:00:00.000")
    streams.shards.clear()
    streams.add_shard()
    after = put(streams, 2, prefix="new")
    with caplog.at_level(logging.WARNING):
        run_until_idle(runner, clock)
    assert handler.delivered == before + after
    assert runner.stream_arn == streams.stream_arn
    assert not checkpoints.has_stream(old_arn)
    assert "discarding checkpoint for stream %s" % old_arn in caplog.text


def test_a_shard_that_vanished_is_finished_and_its_child_runs(clock: FakeClock) -> None:
    streams = FakeStreams(clock)
    parent = streams.add_shard()
    handler = RecordingHandler()
    runner = make_runner(streams, clock, handler)
    first = put(streams, 1, shard=parent)
    run_until_idle(runner, clock)
    child = streams.add_shard(parent=parent)
    streams.remove_shard(parent)  # trimmed out of DescribeStream after 24 h (docs: DDB-11)
    later = put(streams, 2, shard=child, prefix="c")
    run_until_idle(runner, clock)
    assert handler.delivered == first + later
    assert runner.status()["shards"][parent]["state"] == "done"
