"""A function instance that dies mid-batch loses nothing, with ParallelizationFactor > 1 (issue 11.2):
the local stream mapping runs batches of one shard at once through devserver/functions.py's pool, one
instance each; the instance that exits is a Runtime.ExitError, a function error the mapping retries
(bisecting) while the other lanes go on, and every record ends up handled, in order per item."""
from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devserver.functions import FunctionConfig, FunctionPool
from devserver.stream import EsmSettings, MemoryCheckpointStore, MemoryDestination, RunnerConfig, StreamRunner
from devserver.testing.streams import FakeStreams, item
from tests.conftest import ROOT

pytestmark = pytest.mark.stack  # starts function-instance processes

# The function: appends each batch's records to a log, and exits (like a SIGKILL or an out-of-memory
# kill) the first time it meets the item "crash", after logging nothing of that batch.
APP = textwrap.dedent('''
    import json, os
    from pathlib import Path

    def process(event, context):
        records = [(r["dynamodb"]["Keys"]["id"]["S"], r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]
        marker = Path(os.environ["CRASH_MARKER"])
        if any(key == "crash" for key, _ in records) and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(137)
        with open(os.environ["HANDLED_LOG"], "a") as log:
            log.write(json.dumps(records) + "\\n")
        return {"batchItemFailures": []}

    class App:
        handler_map = {"process": process}

    app = App()
''')


def test_an_instance_dying_mid_batch_loses_nothing_with_parallel_batches(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    handled, marker = tmp_path / "handled.jsonl", tmp_path / "crashed"
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
                   "CRASH_MARKER": str(marker), "HANDLED_LOG": str(handled), "PYTHONDONTWRITEBYTECODE": "1"}
    pool = FunctionPool({"process": FunctionConfig("process", environment, timeout_s=20)}, project_dir=tmp_path,
                        python=sys.executable)
    streams = FakeStreams(time.time)
    shard = streams.add_shard()
    keys = ["a", "b", "c", "d", "e", "f"]
    for n in range(8):
        for key in keys:
            streams.put({"id": {"S": key}}, new=item(key, version={"N": str(n)}))
        if n == 3:
            streams.put({"id": {"S": "crash"}}, new=item("crash"))
    expected = streams.sequence_numbers()
    checkpoints = MemoryCheckpointStore()
    settings = EsmSettings(batch_size=4, starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                           bisect_on_error=True, max_retry_attempts=3, parallelization_factor=3)
    with ThreadPoolExecutor(max_workers=3) as batches:
        runner = StreamRunner(RunnerConfig(settings=settings, streams=streams, handler=pool.handler("process"),
                                           stream_arn=streams.stream_arn, checkpoints=checkpoints,
                                           destination=MemoryDestination(), executor=batches, idle_poll_s=0.01,
                                           backoff_base_s=0.01))
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while checkpoints.get(streams.stream_arn, shard) != expected[-1] and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            assert runner.stop(timeout=5)
            status = pool.status()["process"]
            pool.close()

    assert marker.exists(), "the instance never crashed"
    assert checkpoints.get(streams.stream_arn, shard) == expected[-1]
    batches_handled = [[tuple(pair) for pair in json.loads(line)] for line in handled.read_text().splitlines()]
    seen = [seq for batch in batches_handled for _, seq in batch]
    assert sorted(set(seen), key=int) == expected  # nothing lost...
    key_of = {seq: key for batch in batches_handled for key, seq in batch}
    for key in keys + ["crash"]:
        ordered = [seq for seq in seen if key_of[seq] == key]
        assert ordered == sorted(ordered, key=int)  # ...and each item's records handled in stream order
    counters = runner.status()["counters"]
    assert counters["function_errors"] >= 1 and counters["batches_sent_to_failure"] == 0
    assert status["crashes"] == 1 and status["instances"] <= 3
    assert status["cold_starts"] >= 3  # two instances at once at least, and the crashed one's replacement
