"""AWS clients, configured once: bounded retries and timeouts, a pool sized for the threads."""
from __future__ import annotations

from typing import Any

from chalicelib.config import Settings


def dynamodb_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint_url,
        config=Config(
            # Standard mode retries throttling and 5xx with backoff before we see an error.
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=settings.max_concurrency + 2,
        ),
    )


def streams_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodbstreams",
        endpoint_url=settings.dynamodb_endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=2,
            read_timeout=5,
            # Recent botocore derives an account-scoped host from the stream ARN; the classic
            # regional endpoint serves the same API and is what local endpoints emulate.
            account_id_endpoint_mode="disabled",
        ),
    )
