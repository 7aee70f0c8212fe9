"""AWS clients, configured once: bounded retries and timeouts, a pool sized for the threads."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings

if TYPE_CHECKING:  # the stub packages are dev-only (requirements-dev.txt); nothing is imported at run time
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def _config(**config: Any) -> Config:
    from botocore.config import Config

    return Config(
        # Three tries in all (standard mode backs off up to ~1 s, then ~2 s): a write-back
        # still throttled after that is reported for Lambda to retry rather than holding a
        # worker thread of the batch any longer.
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        **config,
    )


def dynamodb_client(settings: Settings) -> DynamoDBClient:
    import boto3

    # No client-side parameter validation: our calls have fixed, tested shapes, DynamoDB validates
    # them anyway, and checking each nested attribute value cost a fifth of the processor's CPU per
    # record (docs/measurements.md).
    return boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint_url,
                        config=_config(max_pool_connections=settings.max_concurrency + 2, parameter_validation=False))


def s3_client() -> S3Client:
    import boto3

    # No endpoint of ours: AWS's, or the local stack's through botocore's AWS_ENDPOINT_URL_S3.
    return boto3.client("s3", config=_config())
