"""A request belongs to whoever stored it: two producers and an operator on the local stack with
`--auth iam` (README "Who can see what"), on moto and on DynamoDB Local."""
from __future__ import annotations

import json
from typing import Any, Dict, Tuple

import pytest

from devserver.launcher import LocalStack, StackOptions
from devserver.testing.api import Api

pytestmark = pytest.mark.stack

OPERATOR = "OPERATOR1"
STACK_OPTIONS = StackOptions(auth="iam", operators=frozenset({OPERATOR}))
ORDER = {"table": 3, "items": [{"dish": "margherita", "qty": 1}]}
UNKNOWN = {"table": 3, "items": [{"dish": "durian", "qty": 1}]}
NOT_FOUND = "no request with id {}"


def callers(stack: LocalStack) -> Tuple[Api, Api, Api]:
    return Api(stack.api_url, "ALICE"), Api(stack.api_url, "BOB"), Api(stack.api_url, OPERATOR)


def unique(stack: LocalStack, name: str) -> str:
    return f"{name}-{stack.options.backend}"


def items(stack: LocalStack) -> Dict[str, Dict[str, Any]]:
    scan = stack.client("dynamodb").scan(TableName=stack.table_name, ConsistentRead=True)["Items"]
    return {item["id"]["S"]: item for item in scan}


def test_two_owners_may_use_one_key_and_neither_learns_of_the_other(local_stack):
    alice, bob, _ = callers(local_stack)
    key = unique(local_stack, "table-12-order-1")

    assert alice.put(ORDER, {"Idempotency-Key": key}) == (202, {"id": key})
    assert bob.put(UNKNOWN, {"Idempotency-Key": key}) == (202, {"id": key})
    status, answer = alice.put(UNKNOWN, {"Idempotency-Key": key})

    assert (status, answer["id"]) == (409, key)
    stored = items(local_stack)
    assert json.loads(stored[f"iam-ALICE/{key}"]["request"]["S"]) == ORDER  # the repeat changed nothing
    assert json.loads(stored[f"iam-BOB/{key}"]["request"]["S"]) == UNKNOWN
    # The processor runs each owner's request on its own.
    assert alice.finished(key)["status"] == "SUCCEEDED"
    assert bob.finished(key)["status"] == "FAILED"


def test_another_owners_request_is_not_found_for_reads_and_retries(local_stack):
    alice, bob, _ = callers(local_stack)
    failed = alice.accepted(UNKNOWN)
    assert alice.finished(failed)["status"] == "FAILED"

    assert bob.get(failed) == (404, {"message": NOT_FOUND.format(failed)})
    assert bob.retry(failed) == (404, {"message": NOT_FOUND.format(failed)})
    # Exactly what an id nobody used gets: no oracle.
    assert bob.get("never-used") == (404, {"message": NOT_FOUND.format("never-used")})

    assert alice.get(failed)[1]["status"] == "FAILED"  # bob's retry did nothing
    assert alice.retry(failed) == (202, {"id": failed, "status": "PENDING"})


def test_a_listing_has_the_callers_own_requests_only(local_stack):
    alice, bob, _ = callers(local_stack)
    mine = {alice.accepted(UNKNOWN) for _ in range(3)}
    theirs = {bob.accepted(UNKNOWN) for _ in range(4)}
    for request_id in mine:
        alice.finished(request_id)
    for request_id in theirs:
        bob.finished(request_id)

    listed, cursor = set(), None
    while True:
        status, page = alice.list("FAILED", limit="2", **({"cursor": cursor} if cursor else {}))
        assert status == 200 and all("owner" not in item for item in page["items"])
        listed |= {item["id"] for item in page["items"]}
        cursor = page["next"]
        if cursor is None:
            break
    assert mine <= listed and not listed & theirs


def test_an_operator_sees_and_retries_every_owners_requests(local_stack):
    alice, bob, operator = callers(local_stack)
    key = unique(local_stack, "shared-key")
    alice.put(UNKNOWN, {"Idempotency-Key": key})
    bob.put(UNKNOWN, {"Idempotency-Key": key})
    alice.finished(key), bob.finished(key)

    status, page = operator.operator_list("FAILED", limit="100")
    assert status == 200
    assert {("iam-ALICE", key), ("iam-BOB", key)} <= {(item["owner"], item["id"]) for item in page["items"]}
    status, bobs = operator.operator_get("iam-BOB", key)
    assert (status, bobs["owner"], bobs["status"]) == (200, "iam-BOB", "FAILED")
    assert operator.operator_retry("iam-BOB", key) == (202, {"id": key, "status": "PENDING"})
    assert bob.get(key)[1]["errorHistory"][0]["type"] == "RejectedRequest"
    assert alice.get(key)[1]["status"] == "FAILED"  # only bob's was retried
    assert operator.operator_get("iam-CAROL", key)[0] == 404


def test_a_producer_cannot_call_the_operator_routes(local_stack):
    alice, _, _ = callers(local_stack)

    for status, answer in (alice.operator_list("FAILED"), alice.operator_get("iam-BOB", "x"),
                           alice.operator_retry("iam-BOB", "x")):
        assert status == 403
        assert answer["message"].startswith("User: arn:aws:iam::123456789012:user/ALICE is not authorized to "
                                            "perform: execute-api:Invoke on resource: ")


@pytest.mark.parametrize("api, message", [
    (Api("", None), "Missing Authentication Token"),
    (Api("", "ALICE", secret_key="not-the-secret"), "The request signature we calculated does not match"),
    (Api("", "ALICE", region="eu-west-1"), "Credential should be scoped to a valid region"),
], ids=["unsigned", "wrong-secret", "wrong-region"])
def test_unsigned_or_wrongly_signed_requests_are_403_and_store_nothing(local_stack, api, message):
    api.url = local_stack.api_url
    key = unique(local_stack, f"refused-{api.secret_key}-{api.region}")
    before = len(items(local_stack))

    for status, answer in (api.put(ORDER, {"Idempotency-Key": key}), api.get(key), api.retry(key),
                           api.list("FAILED")):
        assert status == 403 and answer["message"].startswith(message), answer
    assert len(items(local_stack)) == before
