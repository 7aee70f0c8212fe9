"""Durable per-shard checkpoints: the last fully consumed sequence number of each shard.

Lambda keeps the mapping's position across disable/enable (docs: ESM-3); the local runner keeps
it across restarts in a JSON file, written atomically (temp file + fsync + os.replace) so a SIGKILL
leaves either the old or the new checkpoint, never a torn file.

Values are sequence numbers, or one of two markers (the second borrowed from the KCL):
- TRIM_HORIZON: nothing consumed yet, but everything in the shard is ours to read;
- SHARD_END: the shard is closed and fully consumed; its children may run.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Union

log = logging.getLogger(__name__)

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
_FORMAT = 1


class CheckpointStore(Protocol):
    def get(self, stream_arn: str, shard_id: str) -> Optional[str]: ...
    def put(self, stream_arn: str, shard_id: str, value: str) -> None: ...
    def shards(self, stream_arn: str) -> Dict[str, str]: ...
    def has_stream(self, stream_arn: str) -> bool: ...
    def mark_stream(self, stream_arn: str) -> None: ...
    def forget(self, stream_arn: str, shard_id: Optional[str] = None) -> None: ...
    def streams(self) -> List[str]: ...


class MemoryCheckpointStore:
    """Same contract, nothing on disk; the base of the file store."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: Dict[str, Dict[str, str]] = {}

    def get(self, stream_arn: str, shard_id: str) -> Optional[str]:
        with self._lock:
            return self._data.get(stream_arn, {}).get(shard_id)

    def put(self, stream_arn: str, shard_id: str, value: str) -> None:
        with self._lock:
            self._data.setdefault(stream_arn, {})[shard_id] = str(value)
            self._save()

    def shards(self, stream_arn: str) -> Dict[str, str]:
        with self._lock:
            return dict(self._data.get(stream_arn, {}))

    def has_stream(self, stream_arn: str) -> bool:
        with self._lock:
            return stream_arn in self._data

    def mark_stream(self, stream_arn: str) -> None:
        with self._lock:
            if stream_arn not in self._data:
                self._data[stream_arn] = {}
                self._save()

    def forget(self, stream_arn: str, shard_id: Optional[str] = None) -> None:
        with self._lock:
            if shard_id is None:
                self._data.pop(stream_arn, None)
            else:
                self._data.get(stream_arn, {}).pop(shard_id, None)
            self._save()

    def streams(self) -> List[str]:
        with self._lock:
            return list(self._data)

    def _save(self) -> None:
        pass


class FileCheckpointStore(MemoryCheckpointStore):
    """`{"version": 1, "streams": {stream_arn: {shard_id: value}}}` in one JSON file."""

    def __init__(self, path: Union[str, Path]) -> None:
        super().__init__()
        self.path = Path(path)
        self._data = self._load()

    def _load(self) -> Dict[str, Dict[str, str]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            # Only a foreign file can be torn (our writes are atomic): refuse rather than re-run everything.
            raise ValueError("checkpoint file %s is not valid JSON: %s" % (self.path, exc)) from exc
        if not isinstance(doc, dict) or doc.get("version") != _FORMAT:
            raise ValueError("checkpoint file %s has an unknown format" % self.path)
        return {arn: {sid: str(v) for sid, v in shards.items()}
                for arn, shards in (doc.get("streams") or {}).items()}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": _FORMAT, "streams": self._data}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def discard_stale_streams(store: CheckpointStore, current_arn: str) -> List[str]:
    """Drop checkpoints of earlier streams of the same table.

    A table has one current stream (LatestStreamArn); a different label for the same table means
    the table or its stream was recreated, and its sequence numbers mean nothing to the new one
    (moto and DynamoDB Local even restart them at the same value, docs: LOCAL-104). Other tables'
    entries in a shared file are left alone.
    """
    table_prefix = current_arn.split("/stream/")[0] + "/stream/"
    stale = [arn for arn in store.streams() if arn != current_arn and arn.startswith(table_prefix)]
    for arn in stale:
        log.warning("discarding checkpoint for stream %s: it no longer exists (the table's stream is now %s)",
                    arn, current_arn)
        store.forget(arn)
    return stale
