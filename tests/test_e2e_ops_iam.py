"""The operator CLI against the local stack with IAM auth (`--auth iam`, devserver/apigw_auth.py), as
against a stage with auth: two producers store failed requests under one Idempotency-Key, the
operator (--sigv4 with its access key) lists both by OWNER/ID and retries one; a producer's key is
no operator's, and an unsigned CLI is told to sign. ops.__main__.main runs in-process; botocore
finds the credentials --sigv4 signs with in the environment, as it would on an operator's machine."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Iterator

import pytest

from devserver.launcher import LocalStack, StackOptions
from devserver.local_config import DEFAULT_SECRET_KEY
from devserver.testing.api import Api, wait_for
from ops.__main__ import main as ops_main

pytestmark = pytest.mark.stack

OPERATOR = "OPS1"
UNKNOWN = {"table": 5, "items": [{"dish": "durian", "qty": 1}]}  # fails for good: RejectedRequest


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(StackOptions(auth="iam", operators=frozenset({OPERATOR}))) as stack:
        yield stack


@pytest.fixture
def ops(stack: LocalStack, monkeypatch: pytest.MonkeyPatch):
    """Runs the CLI against the stack, signed as `access_key` (None: unsigned)."""
    def run(*argv: str, access_key: str | None = OPERATOR) -> Run:
        signing: list[str] = []
        if access_key is not None:
            # An IAM user's long-term keys: no session token (conftest sets one for every test).
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_KEY)
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
            signing = ["--sigv4", "--region", "us-east-1"]
        out, err = io.StringIO(), io.StringIO()
        code = ops_main(["--api-url", stack.api_url, *signing, *argv], out, err, stdin=io.StringIO(), environ={})
        return Run(code, out.getvalue(), err.getvalue())
    return run


def test_an_operator_lists_both_producers_failed_requests_and_retries_one_by_owner_and_id(stack, ops):
    alice, bob = Api(stack.api_url, "ALICE"), Api(stack.api_url, "BOB")
    key = "table-5.order-1"
    assert alice.put(UNKNOWN, {"Idempotency-Key": key}) == (202, {"id": key})
    assert bob.put(UNKNOWN, {"Idempotency-Key": key}) == (202, {"id": key})
    assert alice.finished(key)["status"] == bob.finished(key)["status"] == "FAILED"

    failed = ops("failed")

    assert (failed.code, failed.err) == (0, "")
    lines = {line.split("\t")[0]: line.split("\t") for line in failed.out.splitlines()}
    for name in (f"iam-ALICE/{key}", f"iam-BOB/{key}"):
        assert lines[name][1] == "FAILED" and lines[name][-1] == "unknown dish 'durian': not on the menu"

    show = ops("show", f"iam-BOB/{key}")
    assert show.code == 0
    assert {field: json.loads(show.out)[field] for field in ("owner", "id", "status")} == {
        "owner": "iam-BOB", "id": key, "status": "FAILED"}

    retry = ops("retry", f"iam-BOB/{key}")

    assert (retry.code, retry.out, retry.err) == (0, "retried 1 of 1\n", "")
    # Bob's ran again (and failed again: the dish is still unknown); Alice's was not touched.
    again = wait_for(lambda: bob.get(key)[1].get("errorHistory") and bob.finished(key), 15, "bob's second run")
    assert again["status"] == "FAILED" and len(again["errorHistory"]) == 1
    assert "errorHistory" not in alice.get(key)[1]
    # A bare id is the anonymous owner's, and nobody stored one anonymously here.
    bare = ops("show", key)
    assert bare.code == 1 and bare.err.startswith(f"error: anonymous/{key}: no request has this id (404)")


def test_a_producers_credentials_are_refused_the_operator_routes(stack, ops):
    alice = Api(stack.api_url, "ALICE")
    key = "table-5.order-2"
    assert alice.put(UNKNOWN, {"Idempotency-Key": key}) == (202, {"id": key})
    assert alice.finished(key)["status"] == "FAILED"

    listing = ops("failed", access_key="ALICE")
    retry = ops("retry", f"iam-ALICE/{key}", access_key="ALICE")

    denied = ("access denied (403: User: arn:aws:iam::123456789012:user/ALICE is not authorized to perform: "
              "execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:local/api/{}): these "
              "AWS credentials are not an operator's: the operator routes need execute-api:Invoke on the API's "
              "/admin/* routes (use an operator's profile or keys)")
    assert (listing.code, listing.out) == (1, "")
    assert listing.err == "error: listing FAILED requests: " + denied.format("GET/admin/requests") + "\n"
    assert retry.code == 1
    assert retry.err == f"iam-ALICE/{key}: " + denied.format(f"POST/admin/requests/iam-ALICE/{key}/retry") + "\n"
    assert retry.out == "retried 0 of 1; 1 failed\n"
    assert alice.get(key)[1]["status"] == "FAILED" and "errorHistory" not in alice.get(key)[1]


def test_an_unsigned_cli_is_told_to_sign(ops):
    run = ops("failed", access_key=None)

    assert run.code == 1
    assert run.err == ("error: listing FAILED requests: access denied (403: Missing Authentication Token): a stage "
                       "with auth needs --sigv4, with credentials granted execute-api:Invoke on the API's /admin/* "
                       "routes, and --api-url must end with the stage (…/api)\n")
