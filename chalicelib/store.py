"""The request store: every DynamoDB call the Lambda functions make, and the one place where
botocore errors become storefirst errors.

Cost per call (on-demand): a strongly consistent read costs 1 read unit per 4 KB of the WHOLE
item (a projection does not lower it); a write costs 1 write unit per 1 KB of the larger of the
item before and after.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError, HTTPClientError

from chalicelib.attributes import from_attribute, to_attribute
from chalicelib.errors import (
    ConditionFailed,
    ItemTooLarge,
    RequestNotFound,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
)
from chalicelib.model import FAILED, PENDING, SUCCEEDED, created_at_ms
from chalicelib.ownership import public_id

# What each DynamoDB error code means for the caller: every error botocore's DynamoDB model
# declares, plus the common errors it does not model. tests/test_store.py fails when the model
# names a code missing here, so a new code forces a decision instead of falling into a default.
_MODELLED = {
    "ConditionalCheckFailedException": ConditionFailed,
    "InternalServerError": StoreUnavailable,
    "LimitExceededException": StoreUnavailable,
    "ProvisionedThroughputExceededException": StoreUnavailable,
    "ReplicatedWriteConflictException": StoreUnavailable,
    "RequestLimitExceeded": StoreUnavailable,
    "ThrottlingException": StoreUnavailable,
    "TransactionConflictException": StoreUnavailable,
    "TransactionInProgressException": StoreUnavailable,
    **{code: StoreMisconfigured for code in (
        "BackupInUseException", "BackupNotFoundException", "ContinuousBackupsUnavailableException",
        "DuplicateItemException", "ExportConflictException", "ExportNotFoundException",
        "GlobalTableAlreadyExistsException", "GlobalTableNotFoundException",
        "IdempotentParameterMismatchException", "ImportConflictException", "ImportNotFoundException",
        "IndexNotFoundException", "InvalidExportTimeException", "InvalidRestoreTimeException",
        "ItemCollectionSizeLimitExceededException", "PointInTimeRecoveryUnavailableException",
        "PolicyNotFoundException", "ReplicaAlreadyExistsException", "ReplicaNotFoundException",
        "ResourceInUseException", "ResourceNotFoundException", "TableAlreadyExistsException",
        "TableInUseException", "TableNotFoundException", "TransactionCanceledException",
    )},
}
ERROR_CLASSES: Mapping[str, Type[StoreError]] = {
    **_MODELLED,
    "ServiceUnavailable": StoreUnavailable,
    "Throttling": StoreUnavailable,
    "AccessDeniedException": StoreMisconfigured,
    "UnrecognizedClientException": StoreMisconfigured,
    "ValidationException": StoreMisconfigured,
}

# The per-statement error codes of BatchExecuteStatement (a call can succeed while some of its
# statements fail). tests/test_store.py fails when botocore's model names a code missing here.
STATEMENT_ERROR_CLASSES: Mapping[str, Type[StoreError]] = {
    "ConditionalCheckFailed": ConditionFailed,
    "InternalServerError": StoreUnavailable,
    "ProvisionedThroughputExceeded": StoreUnavailable,
    "RequestLimitExceeded": StoreUnavailable,
    "ThrottlingError": StoreUnavailable,
    "TransactionConflict": StoreUnavailable,
    **{code: StoreMisconfigured for code in (
        "AccessDenied", "DuplicateItem", "ItemCollectionSizeLimitExceeded", "ResourceNotFound", "ValidationError")},
}
# BatchExecuteStatement takes at most 25 statements (docs: DDB-202).
MAX_STATEMENTS = 25

_STATUS_PROJECTION = "id, #s, createdAt"
STATUS_INDEX = "open-by-status"
_INDEX_KEY = ("id", "listStatus", "createdAt")  # the table's key and the index's: a position in it
_MAX_LIST_READS = 10
_BATCH_GET_LIMIT = 100


@dataclass(frozen=True)
class ItemState:
    request_id: str
    status: str
    # Which request holds the id: after a TTL delete the same Idempotency-Key can be stored again.
    created_at_ms: Optional[int] = None


def map_error(exc: Exception) -> StoreError:
    """Translate a botocore exception into the storefirst error that says what to do next."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "ValidationException" and "Item size" in message:
            return ItemTooLarge(message, code)
        error_class = ERROR_CLASSES.get(code)
        if error_class is None:
            # An unknown code: a server fault can pass, anything else is on our side.
            error_class = StoreUnavailable if status >= 500 else StoreMisconfigured
        return error_class(message, code)
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return StoreUnavailable(str(exc), type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        return StoreMisconfigured(str(exc), type(exc).__name__)
    raise TypeError(f"not a botocore error: {exc!r}")


def statement_error(code: str, message: str) -> StoreError:
    """The storefirst error for one failed statement of a BatchExecuteStatement."""
    if code == "ValidationError" and "Item size" in message:
        return ItemTooLarge(message, code)
    # An unknown code is retried rather than failing the request: nothing is lost by trying again.
    return STATEMENT_ERROR_CLASSES.get(code, StoreUnavailable)(message or code, code)


@dataclass(frozen=True)
class WriteBack:
    """One request's outcome as a PartiQL UPDATE, conditional on the item still being PENDING."""

    request_id: str
    statement: str
    parameters: Tuple[Dict[str, Any], ...]


class RequestStore:
    """Reads and conditional writes on the requests table through a low-level DynamoDB client
    (thread-safe, unlike boto3 resources: write-backs of one batch run in threads)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        unprocessed_retries: int = 4,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep
        self._unprocessed_retries = unprocessed_retries

    def current_states(self, request_ids: Iterable[str]) -> Dict[str, ItemState]:
        """Consistent status (and creation time) of each id that exists; one BatchGetItem per 100 ids."""
        ids = list(dict.fromkeys(request_ids))
        states: Dict[str, ItemState] = {}
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            for item in self._batch_get(ids[start:start + _BATCH_GET_LIMIT]):
                state = ItemState(request_id=item["id"]["S"], status=item.get("status", {}).get("S", ""),
                                  created_at_ms=created_at_ms(item))
                states[state.request_id] = state
        return states

    def _batch_get(self, ids: Sequence[str]) -> List[Mapping[str, Any]]:
        keys: List[Dict[str, Any]] = [{"id": {"S": i}} for i in ids]
        found: List[Mapping[str, Any]] = []
        for attempt in range(self._unprocessed_retries + 1):
            if attempt:
                # BatchGetItem returns UnprocessedKeys instead of failing when throttled.
                self._sleep(min(0.05 * 2 ** attempt, 1.0))
            request = {
                self._table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": _STATUS_PROJECTION,
                    "ExpressionAttributeNames": {"#s": "status"},
                }
            }
            response = self._call("batch_get_item", RequestItems=request)
            found.extend(response.get("Responses", {}).get(self._table, []))
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            if not keys:
                return found
        raise StoreUnavailable(f"{len(keys)} keys stayed unprocessed after retries", "UnprocessedKeys")

    def get(self, request_id: str) -> Optional[Dict[str, Any]]:
        """The item as plain Python values, without the stored request body, or None."""
        response = self._call(
            "get_item",
            TableName=self._table,
            Key={"id": {"S": request_id}},
            ConsistentRead=True,
            ProjectionExpression="id, #s, createdAt, updatedAt, attempts, #r, #e, lastError, errorHistory",
            ExpressionAttributeNames={"#s": "status", "#r": "result", "#e": "error"},
        )
        item = response.get("Item")
        return None if item is None else {k: from_attribute(v) for k, v in item.items()}

    # --- write-backs: one conditional PartiQL UPDATE per request, up to 25 per call ------------
    # Only a PENDING item may change: a terminal state is never overwritten, whatever is
    # redelivered or raced. Batched because the SDK's CPU per call, not DynamoDB, bounded the
    # processor: one BatchExecuteStatement of 25 costs about a tenth of the CPU of 25 UpdateItems
    # (docs/measurements.md).

    def succeeded(self, request_id: str, result: Any, *, now_ms: int, expires_at: int) -> WriteBack:
        return self._pending_update(
            request_id,
            [("status", {"S": SUCCEEDED}), ("result", to_attribute(result)), ("ttl", {"N": str(expires_at)}),
             ("updatedAt", {"N": str(now_ms)})],
            count_attempt=True, remove=("error", "listStatus"))

    def failed(self, request_id: str, error: Mapping[str, str], *, now_ms: int, attempt: bool = True) -> WriteBack:
        """FAILED with `error`; `attempt` is False when giving up without running the logic."""
        return self._pending_update(
            request_id,
            [("status", {"S": FAILED}), ("listStatus", {"S": FAILED}), ("error", to_attribute(dict(error))),
             ("updatedAt", {"N": str(now_ms)})],
            count_attempt=attempt)

    def attempted(self, request_id: str, error: Mapping[str, str], *, now_ms: int) -> WriteBack:
        """A transient failure counted; the item stays PENDING for the retry."""
        return self._pending_update(
            request_id, [("lastError", to_attribute(dict(error))), ("updatedAt", {"N": str(now_ms)})],
            count_attempt=True)

    def write(self, writebacks: Sequence[WriteBack]) -> List[Optional[StoreError]]:
        """Run the write-backs, 25 per call; for each, None once written or the error that stopped it
        (ConditionFailed: the item is no longer PENDING)."""
        results: List[Optional[StoreError]] = []
        for start in range(0, len(writebacks), MAX_STATEMENTS):
            chunk = writebacks[start:start + MAX_STATEMENTS]
            statements = [{"Statement": w.statement, "Parameters": list(w.parameters)} for w in chunk]
            try:
                answers = self._call("batch_execute_statement", Statements=statements)["Responses"]
            except ItemTooLarge as exc:
                # A value over 400 KB on its own fails the whole call (docs: DDB-202): find it alone.
                if len(chunk) == 1:
                    results.append(exc)
                else:
                    for writeback in chunk:
                        results.extend(self.write([writeback]))
                continue
            except StoreError as exc:  # the whole call failed, after the client's own retries
                results.extend([exc] * len(chunk))
                continue
            for answer in answers:
                error = answer.get("Error")
                results.append(None if not error else statement_error(str(error.get("Code", "")),
                                                                      str(error.get("Message", ""))))
        return results

    def finish_succeeded(self, request_id: str, result: Any, *, now_ms: int, expires_at: int) -> None:
        self._write_one(self.succeeded(request_id, result, now_ms=now_ms, expires_at=expires_at))

    def finish_failed(self, request_id: str, error: Mapping[str, str], *, now_ms: int, attempt: bool = True) -> None:
        self._write_one(self.failed(request_id, error, now_ms=now_ms, attempt=attempt))

    def record_attempt(self, request_id: str, error: Mapping[str, str], *, now_ms: int) -> None:
        self._write_one(self.attempted(request_id, error, now_ms=now_ms))

    def _write_one(self, writeback: WriteBack) -> None:
        error = self.write([writeback])[0]
        if error is not None:
            raise error

    def _pending_update(self, request_id: str, sets: Sequence[Tuple[str, Dict[str, Any]]], *, count_attempt: bool,
                        remove: Sequence[str] = ()) -> WriteBack:
        clauses = [f'SET "{name}" = ?' for name, _ in sets]
        parameters = [value for _, value in sets]
        if count_attempt:
            clauses.append('SET "attempts" = "attempts" + ?')
            parameters.append({"N": "1"})
        clauses += [f'REMOVE "{name}"' for name in remove]
        statement = f'UPDATE "{self._table}" {" ".join(clauses)} WHERE "id" = ? AND "status" = ?'
        return WriteBack(request_id, statement, (*parameters, {"S": request_id}, {"S": PENDING}))

    def retry(self, key: str, *, now_ms: int) -> Dict[str, Any]:
        """FAILED -> PENDING, the error appended to errorHistory; the stream then delivers the
        change to the processor (infra's retry filter). Returns the item as it was.

        `key` is the item's ("<owner>/<id>"); errors name the request by the id its owner knows.
        Raises RequestNotFound, or ConditionFailed when the item is not FAILED (or changed
        between the read and the write, which is conditional on what was read)."""
        response = self._call(
            "get_item", TableName=self._table, Key={"id": {"S": key}}, ConsistentRead=True,
            ProjectionExpression="id, #s, #e, updatedAt", ExpressionAttributeNames={"#s": "status", "#e": "error"},
        )
        item = response.get("Item")
        if item is None:
            raise RequestNotFound(f"no request with id {public_id(key)}")
        before = {k: from_attribute(v) for k, v in item.items()}
        if before.get("status") != FAILED:
            raise ConditionFailed(f"request {public_id(key)} is {before.get('status')}, not FAILED", "NotFailed")
        self._call(
            "update_item",
            TableName=self._table,
            Key={"id": {"S": key}},
            UpdateExpression="SET #s = :pending, listStatus = :pending, updatedAt = :now, "
                             "errorHistory = list_append(if_not_exists(errorHistory, :none), :error) REMOVE #e",
            ConditionExpression="#s = :failed AND updatedAt = :seen",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues={
                ":pending": {"S": PENDING}, ":failed": {"S": FAILED}, ":now": {"N": str(now_ms)},
                ":seen": item["updatedAt"], ":none": {"L": []},
                ":error": {"L": [item.get("error", {"M": {}})]},
            },
        )
        return before

    def redrive(self, request_id: str, *, now_ms: int) -> None:
        """Touch a stuck PENDING item so its stream delivers it again, once (infra's third filter
        admits exactly redriven false -> true)."""
        self._call(
            "update_item",
            TableName=self._table,
            Key={"id": {"S": request_id}},
            UpdateExpression="SET redriven = :yes, redrivenAt = :now, updatedAt = :now",
            ConditionExpression="#s = :pending AND redriven = :no",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":pending": {"S": PENDING}, ":yes": {"BOOL": True}, ":no": {"BOOL": False},
                                       ":now": {"N": str(now_ms)}},
        )

    def list_by_status(
            self, status: str, *, limit: int, start: Optional[Mapping[str, Any]] = None,
            created_before_ms: Optional[int] = None,
            owner: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """Up to `limit` items of the sparse index, oldest first, and the key to continue from (or
        None); only `owner`'s when given. An owner's items are picked from everyone's (the index is
        by status), reading at most _MAX_LIST_READS pages per call: a caller with few requests
        among many may get a short page and a key to continue from."""
        condition = "listStatus = :status"
        values: Dict[str, Any] = {":status": {"S": status}}
        if created_before_ms is not None:
            condition += " AND createdAt < :before"
            values[":before"] = {"N": str(created_before_ms)}
        query: Dict[str, Any] = {
            "TableName": self._table, "IndexName": STATUS_INDEX, "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values, "Limit": limit,
        }
        if owner is not None:
            query["FilterExpression"] = "#owner = :owner"
            query["ExpressionAttributeNames"] = {"#owner": "owner"}
            values[":owner"] = {"S": owner}
        found: List[Dict[str, Any]] = []
        last: Optional[Dict[str, Any]] = dict(start) if start else None
        for _ in range(_MAX_LIST_READS):
            if last:
                query["ExclusiveStartKey"] = last
            response = self._call("query", **query)
            page = response.get("Items", [])
            if len(found) + len(page) >= limit:
                taken = page[:limit - len(found)]
                found += taken
                # Continue after the last item returned, not after the page: the rest of it is unread.
                more = len(taken) < len(page) or "LastEvaluatedKey" in response
                last = {k: taken[-1][k] for k in _INDEX_KEY} if more else None
                break
            found += page
            last = response.get("LastEvaluatedKey")
            if not last:
                break
        return [{k: from_attribute(v) for k, v in item.items()} for item in found], last

    def _call(self, operation: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            response: Dict[str, Any] = getattr(self._client, operation)(**kwargs)
            return response
        except (ClientError, BotoCoreError) as exc:
            raise map_error(exc) from exc
