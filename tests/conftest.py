"""Shared fixtures: fake credentials for every test, and the requests table in moto."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import boto3
import pytest
import yaml
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
TABLE = "storefirst-requests"  # .chalice/config.json's TABLE_NAME, which Chalice's test client sets


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never reach AWS: fake credentials, a fixed region, no profile from the machine.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)


def table_definition() -> Dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())["Resources"]["RequestsTable"]["Properties"]


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client with the requests table created as infra/ defines it."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        spec = table_definition()
        client.create_table(
            TableName=TABLE,
            KeySchema=spec["KeySchema"],
            AttributeDefinitions=spec["AttributeDefinitions"],
            BillingMode=spec["BillingMode"],
            StreamSpecification={"StreamEnabled": True, **spec["StreamSpecification"]},
        )
        yield client
