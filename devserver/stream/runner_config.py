"""Everything a StreamRunner is built from, in one object, each default written once here.

Lambda's own settings for the mapping are `settings` (EsmSettings, read from infra/template.yaml);
the rest is what the local runner is wired to (the stream, the handler, where failures and
checkpoints go) and how it paces itself locally. build.py fills it from the project's files;
tests build it directly with fakes.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

from .checkpoint import CheckpointStore, MemoryCheckpointStore
from .destinations import FailureDestination
from .invoke import Handler
from .settings import EsmSettings

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invoke payload limit (docs: ESM-11)
MAX_GET_RECORDS = 1000  # GetRecords returns at most 1,000 records (docs: DDB-5)
MAX_IDLE_POLL_S = 0.25  # Lambda polls each shard about 4 times a second (docs: ESM-10)


def unchanged(record: Dict[str, Any]) -> Dict[str, Any]:
    return record


@dataclass(frozen=True)
class RunnerConfig:
    """A StreamRunner's mapping settings, wiring and local pacing."""

    settings: EsmSettings
    streams: Any  # a boto3 `dynamodbstreams` client, or devserver.testing.streams.FakeStreams
    handler: Handler  # the Lambda entry, handler(event, context)
    stream_arn: Union[str, Callable[[], str]]  # or a resolver, called again after the table is recreated
    region: Optional[str] = None  # the records' awsRegion; None: the stream ARN's
    checkpoints: CheckpointStore = field(default_factory=MemoryCheckpointStore)
    destination: Optional[FailureDestination] = None  # None: given-up records are only logged
    function_name: Optional[str] = None  # the deployed Lambda's name; None: settings.function_name
    function_arn: Optional[str] = None  # None: built from the stream ARN's region and account
    clock: Callable[[], float] = time.time
    sleep: Optional[Callable[[float], Any]] = None  # None: an idle wait that stop() and finished batches end
    # Where invocations run. None: inline, in the polling thread, one after another (deterministic:
    # what step-by-step tests and the in-process pipeline want). The app host gives a thread pool, so
    # up to ParallelizationFactor batches of a shard are in flight at once, each in a function instance.
    executor: Optional[Executor] = None
    # Repairs a backend's record before filtering (the local TTL deletes, see build.py).
    normalize: Callable[[Dict[str, Any]], Dict[str, Any]] = unchanged
    backoff_base_s: float = 0.05  # retry pacing is not documented (docs: ESM-5): doubling from here...
    backoff_cap_s: float = 2.0  # ...up to here
    idle_poll_s: float = MAX_IDLE_POLL_S  # capped at MAX_IDLE_POLL_S, so stop() stays prompt
    rediscover_s: float = 10.0  # DescribeStream again this often (new shards after a split)
    get_records_limit: int = MAX_GET_RECORDS
    drop_noop_modify: bool = True  # AWS writes no record for a write that changed nothing (docs: DDB-6)
    max_payload_bytes: int = MAX_PAYLOAD_BYTES

    @property
    def idle_wait_s(self) -> float:
        return min(self.idle_poll_s, MAX_IDLE_POLL_S)

    @property
    def records_per_read(self) -> int:
        return max(1, min(MAX_GET_RECORDS, self.get_records_limit))

    def backoff(self, attempt: int) -> float:
        """Seconds before the `attempt`-th retry (of a batch, a read, the stream's discovery)."""
        return min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, attempt - 1)))


class Counters:
    """The runner's counters, shared by its parts and read from any thread."""

    NAMES = ("records_read", "records_filtered_out", "records_skipped_noop", "records_delivered",
             "invocations", "function_errors", "bad_responses", "partial_failures", "retries", "bisects",
             "batches_sent_to_failure", "records_sent_to_failure", "records_age_exceeded", "read_errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, int] = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)
