"""The durable checkpoint file: atomic, keyed by stream ARN + shard, stale streams discarded."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from devserver.stream.checkpoint import FileCheckpointStore, discard_stale_streams

OLD = "arn:aws:dynamodb:eu-central-1:123456789012:table/requests/stream/2025-12-31T00:00:00.000"
NEW = "arn:aws:dynamodb:eu-central-1:123456789012:table/requests/stream/2026-01-01T00:00:00.000"
OTHER = "arn:aws:dynamodb:eu-central-1:123456789012:table/other/stream/2025-12-31T00:00:00.000"


def test_values_survive_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoints.json"
    store = FileCheckpointStore(path)
    store.put(NEW, "shardId-1", "4421584500000000017450439091")
    store.put(NEW, "shardId-0", "SHARD_END")
    again = FileCheckpointStore(path)
    assert again.get(NEW, "shardId-1") == "4421584500000000017450439091"
    assert again.shards(NEW) == {"shardId-1": "4421584500000000017450439091", "shardId-0": "SHARD_END"}
    assert again.has_stream(NEW) and not again.has_stream(OLD)
    assert json.loads(path.read_text())["version"] == 1


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    store = FileCheckpointStore(path)
    for n in range(20):
        store.put(NEW, "shardId-1", str(10 ** 21 + n))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoints.json"]
    assert FileCheckpointStore(path).get(NEW, "shardId-1") == str(10 ** 21 + 19)


def test_a_foreign_or_torn_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    path.write_text("{half")
    with pytest.raises(ValueError, match="not valid JSON"):
        FileCheckpointStore(path)
    path.write_text('{"version": 99}')
    with pytest.raises(ValueError, match="unknown format"):
        FileCheckpointStore(path)


def test_mark_and_forget(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "c.json")
    store.mark_stream(NEW)
    assert FileCheckpointStore(tmp_path / "c.json").has_stream(NEW)
    store.put(NEW, "a", "1" * 21)
    store.put(NEW, "b", "2" * 21)
    store.forget(NEW, "a")
    assert store.shards(NEW) == {"b": "2" * 21}
    store.forget(NEW)
    assert not FileCheckpointStore(tmp_path / "c.json").has_stream(NEW)


def test_stale_stream_of_the_same_table_is_discarded_with_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileCheckpointStore(tmp_path / "c.json")
    store.put(OLD, "shardId-1", "1" * 21)
    store.put(OTHER, "shardId-1", "1" * 21)
    store.put(NEW, "shardId-1", "2" * 21)
    with caplog.at_level(logging.WARNING, logger="devserver.stream.checkpoint"):
        assert discard_stale_streams(store, NEW) == [OLD]
    assert "discarding checkpoint for stream %s" % OLD in caplog.text
    reloaded = FileCheckpointStore(tmp_path / "c.json")
    assert reloaded.streams() == [OTHER, NEW] or set(reloaded.streams()) == {OTHER, NEW}
    assert reloaded.get(NEW, "shardId-1") == "2" * 21
