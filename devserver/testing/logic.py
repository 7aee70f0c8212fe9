"""Fake business logic for fault, reliability and end-to-end tests, run in the function instances
instead of app.py's (the launcher's `business_logic="devserver.testing.logic:counting"`).

- `counting`: every run is recorded before anything else, durably and outside the processor's
  memory, so another process can count how often the logic ran for each request even across
  SIGKILLs: one line "<ref>\\n" appended to RUNS_FILE with a single write(2) on an O_APPEND
  descriptor. The kernel makes such appends atomic and ordered, and keeps them once the call returns
  whatever happens to the process afterwards (no fsync: the machine is not what is being crashed).
  The request's `ref` (the client's Idempotency-Key, so the request id) is in its body because the
  business logic is given the body only. A body with "poison": true fails transiently every time
  (a dependency that never recovers); everything else is the example order logic.
- `aws_probe`: reports where AWS calls from a function instance go: STS through a default client
  (the local endpoint answers with its fake account) and DynamoDB at a real AWS endpoint (refused).
- `poison_while_flagged`: an order whose note is "poison" fails transiently for as long as the
  file named by POISON_FLAG exists: deleting the file is "deploying the fix".
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping

from chalicelib.errors import TransientError
from chalicelib.orders import take_order

RUNS_FILE = "RUNS_FILE"
POISON_FLAG = "POISON_FLAG"


def record_run(ref: str) -> None:
    line = f"{ref}\n".encode("utf-8")
    fd = os.open(os.environ[RUNS_FILE], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def counting(order: Mapping[str, Any]) -> Dict[str, Any]:
    record_run(str(order.get("ref", "?")))
    if order.get("poison") is True:
        raise TransientError("the kitchen printer is jammed (poison request)")
    return take_order(order)


def poison_while_flagged(order: Mapping[str, Any]) -> Any:
    if order.get("note") == "poison" and Path(os.environ[POISON_FLAG]).exists():
        raise TransientError("the kitchen printer is jammed")
    return take_order(order)


def aws_probe(request: Mapping[str, Any]) -> Dict[str, Any]:
    import boto3
    from botocore.exceptions import BotoCoreError

    account = boto3.client("sts").get_caller_identity()["Account"]
    real = boto3.client("dynamodb", endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
    try:
        real.list_tables()
        reached = "reached"
    except BotoCoreError as exc:
        reached = f"{type(exc).__name__}: {exc}"
    return {"defaultClientAccount": account, "realEndpoint": reached}
