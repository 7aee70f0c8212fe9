"""The write-back the processor had before BatchExecuteStatement, kept as the bench's baseline:
one conditional UpdateItem per record, each in its own worker thread (as the processor ran them),
with client-side parameter validation as botocore does it by default.

Same decisions, same item changes as chalicelib/store.py's PartiQL UPDATEs (a terminal state is never
overwritten: the update is conditional on PENDING); only the calls differ. Never shipped.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from chalicelib.attributes import to_attribute
from chalicelib.errors import StoreError
from chalicelib.model import FAILED, PENDING, SUCCEEDED
from chalicelib.store import RequestStore, WriteBack


@dataclass(frozen=True)
class UpdateItemWriteBack(WriteBack):
    update: Dict[str, Any] = field(default_factory=dict)  # the UpdateItem call's parameters


class UpdateItemStore(RequestStore):
    """RequestStore whose write-backs are one UpdateItem each, run concurrently on `executor`."""

    def __init__(self, client: Any, table_name: str, *, executor: Executor) -> None:
        super().__init__(client, table_name)
        self._writers = executor

    def succeeded(self, request_id: str, result: Any, *, now_ms: int, expires_at: int) -> WriteBack:
        return self._update(request_id,
                            "SET #s = :status, #r = :result, #ttl = :ttl, updatedAt = :now ADD attempts :one "
                            "REMOVE #e, listStatus",
                            {":status": {"S": SUCCEEDED}, ":result": to_attribute(result),
                             ":ttl": {"N": str(expires_at)}, ":now": {"N": str(now_ms)}},
                            {"#r": "result", "#ttl": "ttl", "#e": "error"})

    def failed(self, request_id: str, error: Mapping[str, str], *, now_ms: int, attempt: bool = True) -> WriteBack:
        return self._update(request_id,
                            "SET #s = :status, listStatus = :status, #e = :error, updatedAt = :now"
                            + (" ADD attempts :one" if attempt else ""),
                            {":status": {"S": FAILED}, ":error": to_attribute(dict(error)), ":now": {"N": str(now_ms)}},
                            {"#e": "error"})

    def attempted(self, request_id: str, error: Mapping[str, str], *, now_ms: int) -> WriteBack:
        return self._update(request_id, "SET lastError = :error, updatedAt = :now ADD attempts :one",
                            {":error": to_attribute(dict(error)), ":now": {"N": str(now_ms)}}, {})

    def write(self, writebacks: Sequence[WriteBack]) -> List[Optional[StoreError]]:
        calls = [self._writers.submit(self._write_one_call, w) for w in writebacks]
        return [call.result() for call in calls]

    def _write_one_call(self, writeback: WriteBack) -> Optional[StoreError]:
        assert isinstance(writeback, UpdateItemWriteBack)
        try:
            self._call("update_item", **writeback.update)
        except StoreError as exc:
            return exc
        return None

    def _update(self, request_id: str, update: str, values: Dict[str, Any], names: Dict[str, str]) -> WriteBack:
        if ":one" in update:
            values = {**values, ":one": {"N": "1"}}
        return UpdateItemWriteBack(request_id, "", (), update={
            "TableName": self._table, "Key": {"id": {"S": request_id}}, "UpdateExpression": update,
            "ConditionExpression": "#s = :pending", "ExpressionAttributeNames": {"#s": "status", **names},
            "ExpressionAttributeValues": {":pending": {"S": PENDING}, **values}})
