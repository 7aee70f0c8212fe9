"""Retry, checkpoint and batching semantics of the local ESM (docs: ESM-5, ESM-6, ESM-14), against FakeStreams."""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional

import pytest

from devserver.stream import (
    EsmSettings,
    FilterPattern,
    MemoryCheckpointStore,
    MemoryDestination,
    RunnerConfig,
    StreamRunner,
)
from devserver.testing.streams import FakeClock, FakeStreams, RecordingHandler, item, run_until_idle

BASE = EsmSettings(batch_size=10, starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                   max_retry_attempts=2)
PENDING_INSERTS = FilterPattern.parse(
    '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}')


@dataclass
class Rig:
    clock: FakeClock
    streams: FakeStreams
    shard: str
    handler: RecordingHandler
    destination: MemoryDestination
    checkpoints: MemoryCheckpointStore
    runner: StreamRunner

    def put(self, n: int, status: str = "PENDING", prefix: str = "r") -> List[str]:
        return [self.streams.put({"id": {"S": "%s%d" % (prefix, i)}}, new=item("%s%d" % (prefix, i), status))
                for i in range(n)]

    def drain(self) -> None:
        run_until_idle(self.runner, self.clock)

    @property
    def checkpoint(self) -> Optional[str]:
        return self.checkpoints.get(self.streams.stream_arn, self.shard)


def rig(respond: Optional[Callable[[List[Dict[str, Any]]], Any]] = None, *, destination: Any = None,
        runner_options: Optional[Dict[str, Any]] = None, **settings: Any) -> Rig:
    clock = FakeClock()
    streams = FakeStreams(clock)
    shard = streams.add_shard()
    handler = RecordingHandler(respond)
    destination = destination or MemoryDestination()
    checkpoints = MemoryCheckpointStore()
    runner = StreamRunner(RunnerConfig(settings=replace(BASE, **settings), streams=streams, handler=handler,
                                       stream_arn=streams.stream_arn, checkpoints=checkpoints,
                                       destination=destination, clock=clock, sleep=clock.sleep,
                                       **(runner_options or {})))
    return Rig(clock, streams, shard, handler, destination, checkpoints, runner)


def fail(*seqs: str) -> Callable[[List[Dict[str, Any]]], Dict[str, Any]]:
    """Always report these sequence numbers (those present in the batch) as failed."""
    def respond(records: List[Dict[str, Any]]) -> Dict[str, Any]:
        present = {r["dynamodb"]["SequenceNumber"] for r in records}
        return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs if s in present]}
    return respond


def raise_for(*keys: str) -> Callable[[List[Dict[str, Any]]], None]:
    def respond(records: List[Dict[str, Any]]) -> None:
        for r in records:
            if r["dynamodb"]["Keys"]["id"]["S"] in keys:
                raise RuntimeError("poison %s" % r["dynamodb"]["Keys"]["id"]["S"])
    return respond


# --- full success: null, {}, [], empty or null list (docs: ESM-6) ----------------------------

@pytest.mark.parametrize("response", [
    None, {}, [], "", {"batchItemFailures": []}, {"batchItemFailures": None}, {"unrelated": 1},
])
def test_success_shapes_commit_the_whole_batch(response: Any) -> None:
    r = rig(lambda records: response)
    seqs = r.put(3)
    r.drain()
    assert r.handler.batches == [seqs]
    assert r.checkpoint == seqs[-1]
    assert r.destination.messages == []
    assert r.runner.status()["counters"]["retries"] == 0


# --- whole-batch failure from a malformed response (docs: ESM-6) -----------------------------

MALFORMED: Dict[str, Callable[[List[str]], Any]] = {
    "empty id": lambda s: {"batchItemFailures": [{"itemIdentifier": ""}]},
    "null id": lambda s: {"batchItemFailures": [{"itemIdentifier": None}]},
    "missing key": lambda s: {"batchItemFailures": [{"ItemIdentifier": s[1]}]},
    "id not in batch": lambda s: {"batchItemFailures": [{"itemIdentifier": "123"}]},  # AWS-observed
    "numeric id": lambda s: {"batchItemFailures": [{"itemIdentifier": int(s[1])}]},
    "non-dict entry": lambda s: {"batchItemFailures": [s[1]]},
    "non-list value": lambda s: {"batchItemFailures": {"itemIdentifier": s[1]}},
    "string value": lambda s: {"batchItemFailures": s[1]},
    "valid then bad": lambda s: {"batchItemFailures": [{"itemIdentifier": s[2]}, {"itemIdentifier": ""}]},
    "top-level string": lambda s: "failed",
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_responses_fail_the_whole_batch(shape: str) -> None:
    holder: List[str] = []
    r = rig(lambda records: MALFORMED[shape](holder))
    holder.extend(r.put(3))
    r.put(1, prefix="after")
    r.drain()
    # 1 + MaximumRetryAttempts invocations of the same whole batch (AWS-observed for "123")
    assert r.handler.batches == [r.streams.sequence_numbers()] * 3
    [message] = r.destination.messages
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["responseContext"]["functionError"] is None  # not a function error (AWS-observed)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 4
    assert r.checkpoint == r.streams.sequence_numbers()[-1]  # moved past the batch


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    r = rig(lambda records: {"batchItemFailures": [{"itemIdentifier": ""}]}, report_batch_item_failures=False)
    seqs = r.put(2)
    r.drain()
    assert r.handler.batches == [seqs] and r.checkpoint == seqs[-1]


# --- partial failure: lowest id is the checkpoint (docs: ESM-6) -------------------------------

def test_partial_failure_retries_from_the_lowest_reported_record() -> None:
    calls: List[int] = []

    def respond(records: List[Dict[str, Any]]) -> Any:
        calls.append(len(records))
        if len(calls) == 1:  # report two, out of order; the lowest (index 2) wins
            return {"batchItemFailures": [{"itemIdentifier": seqs[4]}, {"itemIdentifier": seqs[2]}]}
        return None

    r = rig(respond)
    seqs = r.put(6)
    r.runner.poll_once()  # discover + read
    r.runner.poll_once()  # invoke
    assert r.checkpoint == seqs[1]  # everything before the lowest failure is committed
    r.drain()
    # records 3 and 5 succeeded the first time but are re-delivered: retry starts at the checkpoint
    assert r.handler.batches == [seqs, seqs[2:]]
    assert r.checkpoint == seqs[-1]


def test_lowest_is_by_integer_value_across_lengths() -> None:
    # Shard 1's numbers grow from 21 to 22 digits: as text "1000..." < "9999...", as numbers it is not.
    r = rig(lambda records: None)
    seqs = r.put(7)
    assert len(seqs[4]) == 21 and len(seqs[5]) == 22
    r.handler.respond = lambda records: (
        {"batchItemFailures": [{"itemIdentifier": seqs[5]}, {"itemIdentifier": seqs[4]}]} if len(records) == 7
        else None)
    r.drain()
    assert r.handler.batches[1] == seqs[4:]


def test_partial_failure_counts_as_an_attempt() -> None:
    # AWS-observed: BatchSize 3, MaximumRetryAttempts 3, last record always reported -> 4 invocations,
    # then only that record (batchSize 1) goes to the destination.
    r = rig(batch_size=3, max_retry_attempts=3)
    seqs = r.put(3)
    r.handler.respond = fail(seqs[2])
    r.drain()
    assert r.handler.batches == [seqs, [seqs[2]], [seqs[2]], [seqs[2]]]
    [message] = r.destination.messages
    assert message["requestContext"]["approximateInvokeCount"] == 4
    assert message["responseContext"]["functionError"] is None
    info = message["DDBStreamBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (1, seqs[2], seqs[2])
    assert r.checkpoint == seqs[2]


# --- function errors, bisect, exhaustion (docs: ESM-5, ESM-6, ESM-8) --------------------------

def test_retry_exhaustion_sends_the_aws_shaped_failure_record_and_moves_on() -> None:
    r = rig(raise_for("r1"), batch_size=2)
    seqs = r.put(4)
    r.drain()
    assert r.handler.batches == [seqs[:2]] * 3 + [seqs[2:]]
    [message] = r.destination.messages
    assert set(message) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert re.fullmatch(r"[0-9a-f-]{36}", message["requestContext"].pop("requestId"))
    assert message["requestContext"] == {
        "functionArn": "arn:aws:lambda:eu-central-1:123456789012:function:process",
        "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3}
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert message["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
    assert message["DDBStreamBatchInfo"] == {
        "shardId": r.shard, "startSequenceNumber": seqs[0], "endSequenceNumber": seqs[1],
        "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
        "approximateArrivalOfLastRecord": "2026-01-01T00:00:00Z",
        "batchSize": 2, "streamArn": r.streams.stream_arn}
    assert r.checkpoint == seqs[-1]
    counters = r.runner.status()["counters"]
    assert (counters["retries"], counters["function_errors"], counters["batches_sent_to_failure"]) == (2, 3, 1)


def test_zero_retries_means_one_invocation() -> None:
    r = rig(raise_for("r0"), max_retry_attempts=0)
    r.put(1)
    r.drain()
    assert len(r.handler.batches) == 1
    assert r.destination.messages[0]["requestContext"]["approximateInvokeCount"] == 1


def test_bisect_isolates_the_poison_record_without_consuming_retries() -> None:
    r = rig(raise_for("r1"), batch_size=4, bisect_on_error=True, max_retry_attempts=0)
    seqs = r.put(4)
    r.drain()
    # halves are invoked at once and are not retries: [1-4] -> [1,2] -> [1] ok, [2] fails once -> out
    assert r.handler.batches == [seqs, seqs[:2], seqs[:1], seqs[1:2], seqs[2:]]
    [message] = r.destination.messages
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == seqs[1]
    counters = r.runner.status()["counters"]
    assert (counters["bisects"], counters["retries"]) == (2, 0)
    assert r.checkpoint == seqs[-1]


def test_bisect_with_partial_response_retries_only_the_remainder() -> None:
    r = rig(batch_size=4, bisect_on_error=True, max_retry_attempts=1)
    seqs = r.put(4)
    r.handler.respond = fail(seqs[2])
    r.drain()
    assert r.handler.batches == [seqs, seqs[2:]]
    assert r.destination.messages[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == seqs[2]
    assert r.runner.status()["counters"]["bisects"] == 0


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    r = rig(max_retry_attempts=8)
    times: List[float] = []

    def respond(records: List[Dict[str, Any]]) -> None:
        times.append(r.clock())
        raise RuntimeError("always")

    r.handler.respond = respond
    r.put(1)
    r.drain()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 8
    assert gaps == sorted(gaps)  # 0.05 s doubling, observed at the 0.25 s poll granularity
    assert gaps[0] <= 0.25 and 2.0 <= gaps[-1] <= 2.25  # capped at 2 s
    assert max(r.clock.sleeps) <= 0.25  # never sleeps longer than a poll interval, so stop() stays prompt


def test_record_age_exceeded_discards_without_invoking() -> None:
    r = rig(max_record_age_s=60)
    seqs = r.put(2)
    r.clock.advance(61.5)
    fresh = r.put(1, prefix="fresh")
    r.drain()
    assert r.handler.batches == [fresh]
    [message] = r.destination.messages
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 0
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2
    assert message["DDBStreamBatchInfo"]["endSequenceNumber"] == seqs[-1]
    assert r.checkpoint == fresh[-1]


def test_infinite_retries_stop_at_the_record_age() -> None:
    r = rig(raise_for("r0"), max_retry_attempts=-1, max_record_age_s=60)
    r.put(1)
    r.drain()
    [message] = r.destination.messages
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["responseContext"]["functionError"] == "Unhandled"
    assert message["requestContext"]["approximateInvokeCount"] == len(r.handler.batches) > 10


def test_failure_record_send_error_keeps_the_batch_until_sent() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.failures = 1
            self.messages: List[Dict[str, Any]] = []

        def send(self, message: Dict[str, Any], records: Any) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("queue down")
            self.messages.append(message)

    r = rig(raise_for("r0"), destination=Flaky(), max_retry_attempts=0)
    seqs = r.put(1)
    r.runner.poll_once()
    r.runner.poll_once()
    assert r.checkpoint is None  # not moved: the failure record was not delivered
    r.drain()
    assert len(r.destination.messages) == 1 and r.checkpoint == seqs[0]
    assert len(r.handler.batches) == 1  # the send is retried, not the invocation


# --- filtering (docs: ESM-14) ----------------------------------------------------------------

def test_filtered_out_records_advance_the_checkpoint_without_invoking() -> None:
    r = rig(filters=(PENDING_INSERTS,))
    done = r.put(3, status="DONE")
    r.drain()
    assert r.handler.batches == []
    assert r.checkpoint == done[-1]
    counters = r.runner.status()["counters"]
    assert (counters["records_filtered_out"], counters["invocations"]) == (3, 0)


def test_only_matching_records_are_delivered_in_order() -> None:
    r = rig(filters=(PENDING_INSERTS,))
    a = r.put(1, prefix="a")
    r.put(2, status="DONE", prefix="b")
    c = r.put(1, prefix="c")
    modify = r.streams.put({"id": {"S": "a0"}}, new=item("a0", "PENDING", x={"N": "1"}), old=item("a0"))
    r.drain()
    assert r.handler.batches == [a + c]  # MODIFY to PENDING is not an INSERT
    assert r.checkpoint == modify


def test_noop_modify_from_moto_is_consumed_without_delivery() -> None:
    r = rig()
    first = r.streams.put({"id": {"S": "x"}}, new=item("x"))
    noop = r.streams.put({"id": {"S": "x"}}, new=item("x"), old=item("x"))
    r.drain()
    assert r.handler.batches == [[first]]
    assert r.checkpoint == noop
    assert r.runner.status()["counters"]["records_skipped_noop"] == 1


# --- batching (docs: ESM-11) -----------------------------------------------------------------

def test_window_zero_invokes_as_soon_as_records_exist() -> None:
    r = rig(batch_size=100)
    seqs = r.put(3)
    r.runner.poll_once()
    r.runner.poll_once()
    assert r.handler.batches == [seqs]


def test_batching_window_waits_until_full_or_elapsed() -> None:
    r = rig(batch_size=3, batching_window_s=2)
    first = r.put(2)
    for _ in range(4):
        r.runner.poll_once()
    assert r.handler.batches == []  # not full, window open
    r.clock.advance(2.0)
    r.runner.poll_once()
    assert r.handler.batches == [first]
    full = r.put(3, prefix="f")
    for _ in range(3):
        r.runner.poll_once()
    assert r.handler.batches == [first, full]  # full: no waiting for the window


def test_batch_size_caps_each_invocation() -> None:
    r = rig(batch_size=4)
    seqs = r.put(10)
    r.drain()
    assert r.handler.batches == [seqs[:4], seqs[4:8], seqs[8:]]


def test_payload_cap_splits_large_batches() -> None:
    r = rig(batch_size=10, runner_options={"max_payload_bytes": 3000})  # stands in for the 6 MB invoke limit
    for i in range(4):
        r.streams.put({"id": {"S": "big%d" % i}}, new=item("big%d" % i, blob={"S": "x" * 900}))
    r.drain()
    assert [len(b) for b in r.handler.batches] == [2, 2]


def test_events_are_aws_shaped_and_json() -> None:
    r = rig()
    r.streams.put({"id": {"S": "k"}}, new=item("k", data={"B": b"foobar"}))
    r.drain()
    [event] = r.handler.events
    [record] = event["Records"]
    assert record["eventVersion"] == "1.1" and record["awsRegion"] == "eu-central-1"
    assert record["eventSourceARN"] == r.streams.stream_arn
    assert record["dynamodb"]["NewImage"]["data"] == {"B": "Zm9vYmFy"}
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1767225600.0
    context = r.handler.contexts[0]
    assert context.function_name == "process" and context.get_remaining_time_in_millis() > 0
    json.dumps(r.runner.status())


def test_per_key_order_is_kept_across_retries() -> None:
    attempts: Dict[str, int] = {}
    processed: List[tuple] = []

    def respond(records: List[Dict[str, Any]]) -> Any:
        for rec in records:
            key = rec["dynamodb"]["Keys"]["id"]["S"]
            version = rec["dynamodb"]["NewImage"]["v"]["N"]
            attempts[rec["dynamodb"]["SequenceNumber"]] = attempts.get(rec["dynamodb"]["SequenceNumber"], 0) + 1
            if version == "2" and attempts[rec["dynamodb"]["SequenceNumber"]] < 3:
                return {"batchItemFailures": [{"itemIdentifier": rec["dynamodb"]["SequenceNumber"]}]}
            processed.append((key, int(version)))
        return None

    r = rig(respond, batch_size=3, max_retry_attempts=5)
    for v in range(1, 5):
        for key in ("a", "b"):
            r.streams.put({"id": {"S": key}}, new=item(key, v={"N": str(v)}))
    r.drain()
    for key in ("a", "b"):
        versions = [v for k, v in processed if k == key]
        assert versions == sorted(versions)  # re-deliveries may repeat, never reorder
        assert set(versions) == {1, 2, 3, 4}
    assert r.destination.messages == []


def test_a_normalizer_repairs_records_before_they_are_filtered_and_delivered():
    # The local stack passes db_ttl.tag_ttl_remove: an expired item's delete becomes a TTL delete.
    from functools import partial

    from devserver.db_ttl import tag_ttl_remove

    ttl_deletes = FilterPattern.parse('{"userIdentity": {"type": ["Service"]}}')
    r = rig(filters=(ttl_deletes,), runner_options={"normalize": partial(tag_ttl_remove, ttl_attribute="ttl")})
    now = r.clock()
    expired = {**item("r1", "SUCCEEDED"), "ttl": {"N": str(int(now) - 10)}}
    live = {**item("r2", "SUCCEEDED"), "ttl": {"N": str(int(now) + 3600)}}
    swept = r.streams.put({"id": {"S": "r1"}}, old=expired)
    r.streams.put({"id": {"S": "r2"}}, old=live)

    r.drain()

    assert r.handler.delivered == [swept]
    assert r.handler.events[0]["Records"][0]["userIdentity"] == {"type": "Service",
                                                                 "principalId": "dynamodb.amazonaws.com"}
