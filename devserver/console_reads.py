"""What the local console (/_local/, devserver/local_pages.py) lists: the latest requests of each
status, read from the local table by the app host itself. This is dev-only code, so it reads the
table directly instead of going through the API, whose routes belong to the product (and are
scoped to their caller's requests).

- PENDING and FAILED: the sparse status index, newest first (its range key is createdAt), one
  Query for the rows and a bounded COUNT Query for the total.
- SUCCEEDED: a success leaves the index and a table holds too many of them to scan, so the app host
  remembers the ids its stream mapping handed to the processor (`RecentIds`: the last 100 since
  this chalice local started) and reads those back with one BatchGetItem.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

from chalicelib.attributes import from_attribute
from chalicelib.requests_api import view_of
from chalicelib.store import STATUS_INDEX

RECENT = 100  # ids remembered, and read back on each refresh (one BatchGetItem holds 100 keys)
SHOWN = 20  # rows per status
COUNT_PAGES = 5  # a COUNT Query reads up to 1 MB of the index per page: past this, "at least"
OPEN_STATUSES = ("FAILED", "PENDING")
# The attributes a row shows: those of GET /requests/{id} (never the body) and `redriven`.
_SHOWN_ATTRIBUTES = ("id", "status", "createdAt", "updatedAt", "attempts", "result", "error", "lastError",
                     "errorHistory", "redriven")

Handler = Callable[..., Any]


class RecentIds:
    """The ids of the last `size` requests handed to the processor, newest last; thread-safe (the
    stream mapping invokes from its shard threads, the console reads from request threads)."""

    def __init__(self, size: int = RECENT) -> None:
        self._size = size
        self._ids: "OrderedDict[str, None]" = OrderedDict()
        self._lock = threading.Lock()

    def add(self, ids: Iterable[str]) -> None:
        with self._lock:
            for request_id in ids:
                self._ids[request_id] = None
                self._ids.move_to_end(request_id)
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def newest_first(self) -> List[str]:
        with self._lock:
            return list(reversed(self._ids))

    def watching(self, handler: Handler) -> Handler:
        """`handler` (the stream function's), noting the ids of each batch before it runs."""
        def watched(event: Any, context: Any = None) -> Any:
            self.add(_record_ids(event))
            return handler(event, context)
        return watched


def _record_ids(event: Any) -> List[str]:
    records = event.get("Records", []) if isinstance(event, Mapping) else []
    ids = [((record.get("dynamodb") or {}).get("Keys") or {}).get("id", {}).get("S") for record in records]
    return [request_id for request_id in ids if isinstance(request_id, str)]


class RequestReads:
    """Reads for the console's request lists; `dynamodb` is a boto3 client for the local table."""

    def __init__(self, dynamodb: Any, table: str, recent: RecentIds, *, shown: int = SHOWN,
                 clock: Callable[[], float] = time.time) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._recent = recent
        self._shown = shown
        self._clock = clock

    def snapshot(self) -> Dict[str, Any]:
        """{"FAILED"|"PENDING": {"items", "total", "totalIsAtLeast"}, "SUCCEEDED": {"items", "watched"},
        "readAt"}: items are GET /requests/{id}'s view, newest first."""
        lists: Dict[str, Any] = {status: self._open(status) for status in OPEN_STATUSES}
        lists["SUCCEEDED"], now = self._succeeded()
        # The read by id comes last: a request it finds in another state moved on between the reads
        # and is shown once, where it is now, not also in the list it has left.
        for status in OPEN_STATUSES:
            lists[status]["items"] = [item for item in lists[status]["items"]
                                      if now.get(_name(item), status) == status]
        lists["readAt"] = int(self._clock() * 1000)
        return lists

    def _open(self, status: str) -> Dict[str, Any]:
        query = {"TableName": self._table, "IndexName": STATUS_INDEX, "KeyConditionExpression": "listStatus = :s",
                 "ExpressionAttributeValues": {":s": {"S": status}}}
        page = self._dynamodb.query(**query, ScanIndexForward=False, Limit=self._shown)
        total, start, pages = 0, None, 0
        while pages < COUNT_PAGES:
            counted = self._dynamodb.query(**query, Select="COUNT", **({"ExclusiveStartKey": start} if start else {}))
            total, start, pages = total + counted["Count"], counted.get("LastEvaluatedKey"), pages + 1
            if not start:
                break
        return {"items": [_view(item) for item in page.get("Items", [])], "total": total,
                "totalIsAtLeast": start is not None}

    def _succeeded(self) -> Tuple[Dict[str, Any], Dict[Tuple[str, str], str]]:
        """The SUCCEEDED list, and the status of every recent request as this read found it."""
        ids = self._recent.newest_first()
        items: List[Dict[str, Any]] = []
        if ids:
            names = {f"#a{i}": name for i, name in enumerate(_SHOWN_ATTRIBUTES)}
            answer = self._dynamodb.batch_get_item(RequestItems={self._table: {
                "Keys": [{"id": {"S": request_id}} for request_id in ids],
                "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}})
            # Keys left unprocessed (a throttled read) are simply not shown on this refresh.
            items = [_view(item) for item in answer.get("Responses", {}).get(self._table, [])]
        succeeded = sorted((item for item in items if item.get("status") == "SUCCEEDED"),
                           key=lambda item: item.get("updatedAt") or "", reverse=True)
        return {"items": succeeded[:self._shown], "watched": len(ids)}, {_name(i): str(i.get("status")) for i in items}


def _name(view: Mapping[str, Any]) -> Tuple[str, str]:
    return view.get("owner", ""), view["id"]


def _view(raw: Mapping[str, Any]) -> Dict[str, Any]:
    item = {name: from_attribute(value) for name, value in raw.items()}
    view = view_of(item, operator=True)  # the console is the operators' view: every owner's requests
    view["redriven"] = bool(item.get("redriven"))
    return view

