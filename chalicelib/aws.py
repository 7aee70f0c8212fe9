"""AWS clients, configured once: bounded retries and timeouts, a pool sized for the threads."""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.config import Settings


def _client(service: str, endpoint_url: Optional[str], **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        config=Config(
            # Three tries in all (standard mode backs off up to ~1 s, then ~2 s): a write-back
            # still throttled after that is reported for Lambda to retry rather than holding a
            # worker thread of the batch any longer.
            retries={"mode": "standard", "total_max_attempts": 3},
            connect_timeout=2,
            read_timeout=5,
            **config,
        ),
    )


def dynamodb_client(settings: Settings) -> Any:
    return _client("dynamodb", settings.dynamodb_endpoint_url, max_pool_connections=settings.max_concurrency + 2)


def s3_client() -> Any:
    # No endpoint of ours: AWS's, or the local stack's through botocore's AWS_ENDPOINT_URL_S3.
    return _client("s3", None)
