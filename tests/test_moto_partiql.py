"""devserver/moto_partiql.py: the app's PartiQL UPDATEs run in moto as DynamoDB runs them, checked
statement for statement against DynamoDB Local, AWS's own engine (docs: DDB-201, LOCAL-119)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List

import boto3
import pytest
import yaml
from moto import mock_aws

from chalicelib.store import RequestStore
from devserver import moto_partiql
from devserver.db_process import free_port, start_dynamodb_local, stop
from devserver.db_schema import create_table_request
from devserver.moto_partiql import NotOurs, translate
from devserver.testing.events import pending_item
from tests.conftest import TABLE, TEMPLATE


def keys(table: str) -> List[str]:
    return ["id"]


def test_an_update_becomes_the_conditional_update_item_it_means():
    update = translate('UPDATE "t" SET "status" = ? SET "n" = "n" + ? REMOVE "e" WHERE "id" = ? AND "status" = ?',
                       [{"S": "DONE"}, {"N": "1"}, {"S": "r1"}, {"S": "PENDING"}], keys)

    assert update.update_expression == "SET #a0 = :p0, #a1 = #a1 + :p1 REMOVE #a2"
    assert update.condition_expression == "attribute_exists(#a3) AND #a4 = :p3"
    assert update.key == {"id": {"S": "r1"}}
    assert update.names == {"#a0": "status", "#a1": "n", "#a2": "e", "#a3": "id", "#a4": "status"}
    assert update.values == {":p0": {"S": "DONE"}, ":p1": {"N": "1"}, ":p3": {"S": "PENDING"}}


@pytest.mark.parametrize("statement, parameters", [
    ('SELECT * FROM "t" WHERE "id" = ?', [{"S": "a"}]),
    ('UPDATE "t" SET "a" = ? WHERE "status" = ?', [{"S": "x"}, {"S": "y"}]),  # not the key
    ('UPDATE "t" SET "a" = "b" + ? WHERE "id" = ?', [{"N": "1"}, {"S": "y"}]),  # another attribute
    ('UPDATE "t" SET "a" = list_append("a", ?) WHERE "id" = ?', [{"L": []}, {"S": "y"}]),
    ('UPDATE "t" SET "a" = ? WHERE "id" = ?', [{"S": "x"}]),  # a ? without a parameter
])
def test_anything_else_is_left_to_moto(statement, parameters):
    with pytest.raises(NotOurs):
        translate(statement, parameters, keys)


@pytest.fixture(scope="module", params=["moto", "dynamodb-local"])
def table(request: pytest.FixtureRequest) -> Iterator[Any]:
    template = yaml.safe_load(TEMPLATE.read_text())
    credentials: Dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "a",
                                   "aws_secret_access_key": "b"}
    if request.param == "moto":
        moto_partiql.install()
        with mock_aws():
            client = boto3.client("dynamodb", **credentials)
            client.create_table(**create_table_request(template, TABLE))
            yield client
        return
    local = start_dynamodb_local(port=free_port())
    try:
        client = boto3.client("dynamodb", endpoint_url=local.endpoint_url, **credentials)
        client.create_table(**create_table_request(template, TABLE))
        yield client
    finally:
        stop(local)


def stored(client: Any, request_id: str) -> Dict[str, Any]:
    item: Dict[str, Any] = client.get_item(TableName=TABLE, Key={"id": {"S": request_id}},
                                           ConsistentRead=True).get("Item", {})
    return item


@pytest.mark.stack
def test_both_backends_answer_the_write_backs_alike(table):
    store = RequestStore(table, TABLE)
    for request_id in ("ok", "failed", "attempted", "finished", "huge"):
        table.put_item(TableName=TABLE, Item=pending_item(request_id, {}))
    store.finish_succeeded("finished", {"done": True}, now_ms=5, expires_at=6)

    errors = store.write([
        store.succeeded("ok", {"portions": {"margherita": 2}, "ratio": 0.5}, now_ms=10, expires_at=20),
        store.failed("failed", {"type": "RejectedRequest", "message": "no"}, now_ms=11),
        store.attempted("attempted", {"type": "TransientError", "message": "later"}, now_ms=12),
        store.succeeded("finished", {"again": True}, now_ms=13, expires_at=21),  # no longer PENDING
        store.succeeded("missing", {}, now_ms=14, expires_at=22),  # no such item
        store.succeeded("huge", {"blob": "x" * 420_000}, now_ms=15, expires_at=23),
    ])

    assert [type(e).__name__ if e else None for e in errors] == [
        None, None, None, "ConditionFailed", "ConditionFailed", "ItemTooLarge"]
    ok = stored(table, "ok")
    assert (ok["status"], ok["attempts"], ok["ttl"]) == ({"S": "SUCCEEDED"}, {"N": "1"}, {"N": "20"})
    assert "listStatus" not in ok and ok["result"]["M"]["ratio"] == {"N": "0.5"}
    failed = stored(table, "failed")
    assert (failed["status"], failed["listStatus"], failed["attempts"]) == ({"S": "FAILED"}, {"S": "FAILED"},
                                                                           {"N": "1"})
    attempted = stored(table, "attempted")
    assert (attempted["status"], attempted["attempts"]) == ({"S": "PENDING"}, {"N": "1"})
    assert attempted["lastError"]["M"]["message"] == {"S": "later"}
    assert stored(table, "finished")["result"] == {"M": {"done": {"BOOL": True}}}  # never overwritten
    assert stored(table, "missing") == {}  # an update never creates an item
    huge = stored(table, "huge")
    assert huge["status"] == {"S": "PENDING"} and "result" not in huge  # rejected whole
