"""The stream processor through Chalice's test client, against moto."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import processor, runtime
from chalicelib.errors import TransientError
from chalicelib.orders import take_order
from chalicelib.store import RequestStore
from devserver.testing.events import StreamEvents, pending_item
from devserver.testing.fakes import FailingClient, client_error
from tests.conftest import TABLE

NOW = 1767225700.25
ORDER = {"table": 7, "items": [{"dish": "margherita", "qty": 2}, {"dish": "tiramisu", "qty": 1}]}
UNKNOWN_DISH = {"table": 7, "items": [{"dish": "hawaiian", "qty": 1}]}


class CountingLogic:
    """Business logic that records every call, then delegates."""

    def __init__(self, logic: Callable[[Mapping[str, Any]], Any] = take_order) -> None:
        self.calls: List[Mapping[str, Any]] = []
        self._logic = logic
        self._lock = threading.Lock()

    def __call__(self, request: Mapping[str, Any]) -> Any:
        with self._lock:
            self.calls.append(request)
        return self._logic(request)


def transient_for(dish: str) -> Callable[[Mapping[str, Any]], Any]:
    def logic(request: Mapping[str, Any]) -> Any:
        if any(item.get("dish") == dish for item in request.get("items", [])):
            raise TransientError("the kitchen printer is offline")
        return take_order(request)
    return logic


@pytest.fixture
def events() -> StreamEvents:
    return StreamEvents(TABLE)


@pytest.fixture
def lambda_client(dynamodb: Any) -> Iterator[Client]:
    processor.use_processor(None)
    runtime.reset()
    with Client(app_module.app, stage_name="dev") as client:
        yield client
    processor.use_processor(None)
    runtime.reset()


def install(dynamodb: Any, logic: Callable[[Mapping[str, Any]], Any], *, client: Any = None,
            workers: int = 4) -> None:
    processor.use_processor(processor.StreamProcessor(
        RequestStore(client or dynamodb, TABLE, sleep=lambda _: None),
        logic,
        executor=ThreadPoolExecutor(max_workers=workers),
        success_ttl_seconds=300,
        now=lambda: NOW,
    ))


def put(dynamodb: Any, request_id: str, body: Any) -> Dict[str, Any]:
    item = pending_item(request_id, body)
    dynamodb.put_item(TableName=TABLE, Item=item)
    return item


def item(dynamodb: Any, request_id: str) -> Dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": request_id}}, ConsistentRead=True)["Item"]


def invoke(client: Client, event: Dict[str, Any]) -> Dict[str, Any]:
    return client.lambda_.invoke("process", event).payload


def failures(response: Dict[str, Any]) -> List[str]:
    return [entry["itemIdentifier"] for entry in response["batchItemFailures"]]


def test_a_valid_order_succeeds_with_its_result_and_a_ttl(lambda_client, dynamodb, events):
    install(dynamodb, take_order)
    record = events.insert(put(dynamodb, "r1", ORDER))

    response = invoke(lambda_client, events.event(record))

    assert response == {"batchItemFailures": []}
    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": "SUCCEEDED"}
    assert stored["ttl"] == {"N": str(int(NOW) + 300)}
    assert stored["attempts"] == {"N": "1"}
    assert stored["updatedAt"] == {"N": str(int(NOW * 1000))}
    assert stored["result"]["M"]["portions"]["M"] == {"margherita": {"N": "2"}, "tiramisu": {"N": "1"}}
    assert stored["request"] == {"S": json.dumps(ORDER)}


def test_the_wired_processor_reads_its_settings_from_the_stage(lambda_client, dynamodb, events):
    # No processor installed: app.py's wiring and .chalice/config.json's environment build it.
    record = events.insert(put(dynamodb, "r1", ORDER))

    assert invoke(lambda_client, events.event(record)) == {"batchItemFailures": []}

    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": "SUCCEEDED"}
    now = int(stored["updatedAt"]["N"]) // 1000
    assert int(stored["ttl"]["N"]) - now in (299, 300, 301)  # dev stage: SUCCESS_TTL_SECONDS=300


def test_an_unknown_dish_fails_permanently_and_is_kept(lambda_client, dynamodb, events):
    install(dynamodb, take_order)
    record = events.insert(put(dynamodb, "r1", UNKNOWN_DISH))

    assert invoke(lambda_client, events.event(record)) == {"batchItemFailures": []}

    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": "FAILED"}
    assert stored["error"]["M"]["type"] == {"S": "RejectedRequest"}
    assert "hawaiian" in stored["error"]["M"]["message"]["S"]
    assert "ttl" not in stored


def test_a_transient_failure_is_reported_for_retry_and_counted(lambda_client, dynamodb, events):
    install(dynamodb, transient_for("margherita"))
    record = events.insert(put(dynamodb, "r1", ORDER))

    response = invoke(lambda_client, events.event(record))

    assert failures(response) == [record["dynamodb"]["SequenceNumber"]]
    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": "PENDING"}
    assert stored["attempts"] == {"N": "1"}
    assert stored["lastError"]["M"]["message"] == {"S": "the kitchen printer is offline"}


def test_a_mixed_batch_reports_exactly_the_transient_records(lambda_client, dynamodb, events):
    install(dynamodb, transient_for("insalata"))
    salad = {"table": 3, "items": [{"dish": "insalata", "qty": 1}]}
    records = [
        events.insert(put(dynamodb, "ok-1", ORDER)),
        events.insert(put(dynamodb, "salad-1", salad)),
        events.insert(put(dynamodb, "bad-1", UNKNOWN_DISH)),
        events.insert(put(dynamodb, "salad-2", salad)),
        events.insert(put(dynamodb, "ok-2", ORDER)),
    ]

    response = invoke(lambda_client, events.event(*records))

    assert failures(response) == [records[1]["dynamodb"]["SequenceNumber"], records[3]["dynamodb"]["SequenceNumber"]]
    statuses = {i: item(dynamodb, i)["status"]["S"] for i in ("ok-1", "salad-1", "bad-1", "salad-2", "ok-2")}
    assert statuses == {"ok-1": "SUCCEEDED", "salad-1": "PENDING", "bad-1": "FAILED",
                        "salad-2": "PENDING", "ok-2": "SUCCEEDED"}


def test_redelivery_does_not_run_the_business_logic_again(lambda_client, dynamodb, events):
    logic = CountingLogic()
    install(dynamodb, logic)
    records = [events.insert(put(dynamodb, "ok", ORDER)), events.insert(put(dynamodb, "bad", UNKNOWN_DISH))]
    invoke(lambda_client, events.event(*records))
    before = {i: item(dynamodb, i) for i in ("ok", "bad")}

    response = invoke(lambda_client, events.event(*records))

    assert response == {"batchItemFailures": []}
    assert len(logic.calls) == 2
    assert {i: item(dynamodb, i) for i in ("ok", "bad")} == before


def test_a_terminal_item_is_never_overwritten_by_a_late_write(dynamodb):
    store = RequestStore(dynamodb, TABLE)
    put(dynamodb, "r1", ORDER)
    store.finish_failed("r1", {"type": "RejectedRequest", "message": "no"}, now_ms=1)

    with pytest.raises(Exception) as raised:
        store.finish_succeeded("r1", {"ok": True}, now_ms=2, expires_at=3)

    assert type(raised.value).__name__ == "ConditionFailed"
    assert item(dynamodb, "r1")["status"] == {"S": "FAILED"}


def test_processor_writes_and_ttl_deletes_are_ignored(lambda_client, dynamodb, events):
    logic = CountingLogic()
    install(dynamodb, logic)
    pending = pending_item("r1", ORDER)
    done = {**pending, "status": {"S": "SUCCEEDED"}, "ttl": {"N": "1"}}
    counted = {**pending, "attempts": {"N": "1"}}
    records = [events.modify(pending, done), events.modify(pending, counted), events.remove(done, by_ttl=True)]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert logic.calls == []


def test_a_throttled_write_back_is_retried_and_leaves_the_item_pending(lambda_client, dynamodb, events):
    logic = CountingLogic()
    install(dynamodb, logic, client=FailingClient(dynamodb, "batch_execute_statement"))
    record = events.insert(put(dynamodb, "r1", ORDER))

    response = invoke(lambda_client, events.event(record))

    assert failures(response) == [record["dynamodb"]["SequenceNumber"]]
    assert item(dynamodb, "r1")["status"] == {"S": "PENDING"}
    assert len(logic.calls) == 1


def test_a_throttled_status_read_retries_the_whole_batch_without_running_anything(lambda_client, dynamodb, events):
    logic = CountingLogic()
    install(dynamodb, logic, client=FailingClient(dynamodb, "batch_get_item"))
    records = [events.insert(put(dynamodb, f"r{i}", ORDER)) for i in range(3)]

    response = invoke(lambda_client, events.event(*records))

    assert failures(response) == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert logic.calls == []


@pytest.mark.parametrize("raised, expected_status", [
    (ValueError("boom"), "FAILED"),
    (client_error("ThrottlingException", "SendMessage", message="slow"), "PENDING"),
    (client_error("AccessDeniedException", "SendMessage", message="no"), "FAILED"),
])
def test_unexpected_and_downstream_errors_are_classified(lambda_client, dynamodb, events, raised, expected_status):
    def logic(request: Mapping[str, Any]) -> Any:
        raise raised
    install(dynamodb, logic)
    record = events.insert(put(dynamodb, "r1", ORDER))

    response = invoke(lambda_client, events.event(record))

    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": expected_status}
    assert bool(failures(response)) is (expected_status == "PENDING")
    if expected_status == "FAILED":
        assert stored["error"]["M"]["type"] == {"S": type(raised).__name__}


@pytest.mark.parametrize("body, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
])
def test_a_stored_request_that_is_not_a_json_object_fails(lambda_client, dynamodb, events, body, message):
    install(dynamodb, CountingLogic())
    record = events.insert(put(dynamodb, "r1", body))

    invoke(lambda_client, events.event(record))

    stored = item(dynamodb, "r1")
    assert stored["status"] == {"S": "FAILED"}
    assert message in stored["error"]["M"]["message"]["S"]


def test_a_result_too_large_for_the_item_fails_the_request(lambda_client, dynamodb, events):
    install(dynamodb, lambda request: {"blob": "x" * 420_000})
    record = events.insert(put(dynamodb, "r1", ORDER))

    assert invoke(lambda_client, events.event(record)) == {"batchItemFailures": []}
    stored = item(dynamodb, "r1")
    assert stored["error"]["M"]["type"] == {"S": "ResultTooLarge"} and "result" not in stored


def test_one_result_too_large_fails_alone_in_its_write_back_call(lambda_client, dynamodb, events):
    def logic(request: Mapping[str, Any]) -> Any:
        return {"blob": "x" * 420_000} if request["table"] == 2 else take_order(request)
    install(dynamodb, logic)
    records = [events.insert(put(dynamodb, f"r{i}", {**ORDER, "table": i})) for i in range(1, 4)]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert [item(dynamodb, f"r{i}")["status"]["S"] for i in range(1, 4)] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert item(dynamodb, "r2")["error"]["M"]["type"] == {"S": "ResultTooLarge"}


class StatementErrors:
    """A DynamoDB client whose BatchExecuteStatement fails the statements of chosen ids, one by one,
    with a per-statement error code, as DynamoDB can while the call itself succeeds."""

    def __init__(self, client: Any, errors: Mapping[str, str]) -> None:
        self._client = client
        self._errors = errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_execute_statement(self, Statements: List[Dict[str, Any]]) -> Dict[str, Any]:
        keep = [s for s in Statements if s["Parameters"][-2]["S"] not in self._errors]
        answers = iter(self._client.batch_execute_statement(Statements=keep)["Responses"] if keep else [])
        return {"Responses": [
            {"Error": {"Code": self._errors[s["Parameters"][-2]["S"]], "Message": "injected"}}
            if s["Parameters"][-2]["S"] in self._errors else next(answers) for s in Statements]}


def test_a_statement_throttled_alone_retries_only_its_request(lambda_client, dynamodb, events):
    install(dynamodb, take_order, client=StatementErrors(dynamodb, {"r1": "ThrottlingError"}))
    records = [events.insert(put(dynamodb, f"r{i}", ORDER)) for i in range(3)]

    response = invoke(lambda_client, events.event(*records))

    assert failures(response) == [records[1]["dynamodb"]["SequenceNumber"]]
    assert [item(dynamodb, f"r{i}")["status"]["S"] for i in range(3)] == ["SUCCEEDED", "PENDING", "SUCCEEDED"]


def test_a_write_back_the_table_refuses_fails_the_whole_batch_for_lambda_to_retry(lambda_client, dynamodb, events):
    install(dynamodb, take_order, client=StatementErrors(dynamodb, {"r0": "AccessDenied"}))
    record = events.insert(put(dynamodb, "r0", ORDER))

    with pytest.raises(Exception, match="injected"):
        processor.current().process_batch(events.event(record)["Records"])


def test_a_batch_of_100_writes_back_in_four_calls(lambda_client, dynamodb, events):
    counted = CountingCalls(dynamodb)
    install(dynamodb, take_order, client=counted)
    records = [events.insert(put(dynamodb, f"r{i:03d}", ORDER)) for i in range(100)]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert counted.calls == {"batch_get_item": 1, "batch_execute_statement": 4}


class CountingCalls:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return real(**kwargs)
        return counted


def test_a_deleted_item_is_skipped(lambda_client, dynamodb, events):
    logic = CountingLogic()
    install(dynamodb, logic)
    record = events.insert(pending_item("gone", ORDER))

    assert invoke(lambda_client, events.event(record)) == {"batchItemFailures": []}
    assert logic.calls == []


def test_records_of_one_id_keep_their_order_after_a_transient_failure(lambda_client, dynamodb, events):
    calls = CountingLogic(transient_for("margherita"))
    install(dynamodb, calls)
    pending = put(dynamodb, "r1", ORDER)
    failed = {**pending, "status": {"S": "FAILED"}}
    first = events.insert(pending)
    retried = events.modify(failed, pending)  # a FAILED -> PENDING retry of the same id

    response = invoke(lambda_client, events.event(first, retried))

    assert failures(response) == [first["dynamodb"]["SequenceNumber"], retried["dynamodb"]["SequenceNumber"]]
    assert len(calls.calls) == 1


def test_batches_larger_than_one_status_read_are_processed(lambda_client, dynamodb, events):
    install(dynamodb, take_order, workers=8)
    records = [events.insert(put(dynamodb, f"r{i:03d}", ORDER)) for i in range(150)]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert all(item(dynamodb, f"r{i:03d}")["status"] == {"S": "SUCCEEDED"} for i in range(150))


def test_write_backs_run_concurrently_up_to_the_bound(dynamodb, events):
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}
    arrived = threading.Barrier(3, timeout=5)

    def slow(request: Mapping[str, Any]) -> Any:
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        try:
            arrived.wait()  # three must run at once, or this times out
        except threading.BrokenBarrierError:
            pass
        with lock:
            running["now"] -= 1
        return take_order(request)

    install(dynamodb, slow, workers=3)
    records = [events.insert(put(dynamodb, f"r{i}", ORDER)) for i in range(9)]

    response = processor.current().process_batch(records)

    assert response == {"batchItemFailures": []}
    assert running["peak"] == 3
    processor.use_processor(None)


def test_every_log_line_about_a_request_carries_its_id(lambda_client, dynamodb, events, json_logs):
    install(dynamodb, take_order)
    records = [events.insert(put(dynamodb, "ok-1", ORDER)), events.insert(put(dynamodb, "bad-1", UNKNOWN_DISH))]
    invoke(lambda_client, events.event(*records))

    about_requests = [line for line in json_logs.lines if line["message"] != "batch processed"]
    assert {line["request_id"] for line in about_requests} == {"bad-1"}  # a failure gets a line of its own
    assert all(line["service"] == "storefirst" for line in json_logs.lines)
    batch = [line for line in json_logs.lines if line["message"] == "batch processed"][0]
    # Successes are named in the batch's line (one line each only at DEBUG): every id is logged.
    assert (batch["requests"], batch["request_ids"]) == (2, ["ok-1"])


def test_each_batch_publishes_its_metrics_once(dynamodb, events):
    published: List[Tuple[Dict[str, int], List[int]]] = []
    processor_ = processor.StreamProcessor(
        RequestStore(dynamodb, TABLE), transient_for("insalata"), executor=ThreadPoolExecutor(2),
        success_ttl_seconds=300, now=lambda: NOW, publish=lambda c, v: published.append((dict(c), list(v))))
    salad = {"table": 3, "items": [{"dish": "insalata", "qty": 1}]}
    records = [events.insert(put(dynamodb, "ok", ORDER)), events.insert(put(dynamodb, "bad", UNKNOWN_DISH)),
               events.insert(put(dynamodb, "salad", salad))]

    processor_.process_batch(records)

    [(counts, latencies)] = published
    assert counts == {"Processed": 3, "Succeeded": 1, "Failed": 1, "TransientRetries": 1}
    created_ms = 1767225600000  # pending_item's createdAt
    assert latencies == [int(NOW * 1000) - created_ms] * 2


def test_the_lambda_handler_writes_one_embedded_metric_line_per_batch(lambda_client, dynamodb, events, capsys):
    install(dynamodb, CountingLogic())
    records = [events.insert(put(dynamodb, f"r{i}", ORDER)) for i in range(3)]

    invoke(lambda_client, events.event(*records))

    [line] = [blob for blob in map(json.loads, capsys.readouterr().out.splitlines()) if "_aws" in blob]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "storefirst"
    assert (line["Processed"], line["Succeeded"], len(line["ProcessingLatency"])) == ([3.0], [3.0], 3)


def test_a_body_nested_deeper_than_python_parses_fails_alone(lambda_client, dynamodb, events):
    install(dynamodb, CountingLogic())
    deep = put(dynamodb, "deep", "[" * 100_000 + "]" * 100_000)
    records = [events.insert(deep), events.insert(put(dynamodb, "ok", ORDER))]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert item(dynamodb, "deep")["error"]["M"]["message"] == {"S": "the request nests too deeply to parse"}
    assert item(dynamodb, "ok")["status"] == {"S": "SUCCEEDED"}


def test_two_admitted_records_of_one_id_in_a_batch_run_the_logic_once(lambda_client, dynamodb, events):
    # e.g. an INSERT and the reconciler's re-drive of the same request land in one batch
    logic = CountingLogic()
    install(dynamodb, logic)
    pending = {**put(dynamodb, "r1", ORDER), "redriven": {"BOOL": False}}
    records = [events.insert(pending), events.modify(pending, {**pending, "redriven": {"BOOL": True}})]

    assert invoke(lambda_client, events.event(*records)) == {"batchItemFailures": []}
    assert len(logic.calls) == 1
    assert item(dynamodb, "r1")["status"] == {"S": "SUCCEEDED"}


def test_a_redelivered_record_of_an_expired_request_does_not_run_for_the_new_one_with_its_id(
        lambda_client, dynamodb, events):
    # The first request with this Idempotency-Key succeeded and expired (TTL); the key was then
    # stored again. An old INSERT redelivered now must not finish the new request.
    logic = CountingLogic()
    install(dynamodb, logic)
    dynamodb.put_item(TableName=TABLE, Item=pending_item("key-1", ORDER, created_at_ms=2_000))
    earlier = pending_item("key-1", UNKNOWN_DISH, created_at_ms=1_000)

    assert invoke(lambda_client, events.event(events.insert(earlier))) == {"batchItemFailures": []}
    assert logic.calls == []
    assert item(dynamodb, "key-1")["status"] == {"S": "PENDING"}

    current = pending_item("key-1", ORDER, created_at_ms=2_000)
    both = events.event(events.insert(earlier), events.insert(current))
    assert invoke(lambda_client, both) == {"batchItemFailures": []}
    assert logic.calls == [ORDER]
    assert item(dynamodb, "key-1")["status"] == {"S": "SUCCEEDED"}
