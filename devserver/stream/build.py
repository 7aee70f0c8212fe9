"""Wire a StreamRunner to a local endpoint (moto server or DynamoDB Local) from the project's files."""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

import boto3
from botocore.config import Config

from devserver.db_schema import DEFAULT_BUCKET, DEFAULT_TOPIC, ttl_attribute
from devserver.db_ttl import tag_ttl_remove
from devserver.infra import load_template

from .checkpoint import FileCheckpointStore, MemoryCheckpointStore
from .destinations import (
    FailureDestination,
    S3FailureDestination,
    SnsFailureDestination,
    SqsFailureDestination,
    mapping_uuid,
)
from .invoke import Handler
from .runner import StreamRunner
from .runner_config import RunnerConfig
from .settings import OnFailure, for_stage, settings_from_template

log = logging.getLogger(__name__)

# Recent botocore sends DynamoDB Streams calls to an account-scoped host derived from the stream ARN
# ("<account>.streams-ddb.<region>..."), which moto's in-process mock does not route; an explicit
# endpoint is unaffected, but disabling the mode keeps both cases on the classic host.
CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 2, "mode": "standard"})
# A local endpoint has no bucket subdomains: address buckets in the path.
S3_CONFIG = CLIENT_CONFIG.merge(Config(s3={"addressing_style": "path"}))


def table_stream_arn(dynamodb: Any, table_name: str) -> Callable[[], str]:
    """A resolver for the table's current stream; called again after the table is recreated."""
    def resolve() -> str:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn or not (table.get("StreamSpecification") or {}).get("StreamEnabled", True):
            raise RuntimeError("table %s has no enabled stream" % table_name)
        return arn
    return resolve


def build_runner(
    *, template_path: Union[str, Path], app: Any, table_name: str, region: str,
    dynamodb_endpoint: Optional[str], sqs_endpoint: Optional[str], queue_name: Optional[str],
    checkpoint_path: Optional[Union[str, Path]], handler: Handler, function_name: Optional[str] = None,
    stage: str = "dev", session: Optional[boto3.session.Session] = None,
    clock: Callable[[], float] = time.time, bucket_name: str = DEFAULT_BUCKET, topic_name: str = DEFAULT_TOPIC,
    **runner_options: Any,
) -> StreamRunner:
    """The runner for the app's @on_dynamodb_record handler, with the template's ESM settings.

    `handler` is the Lambda entry, called as handler(event, context). Checkpoints are kept in
    `checkpoint_path` (None: in memory). The template's OnFailure destination (docs: ESM-7) is
    reached at `sqs_endpoint` (moto serves SQS, SNS and S3 on one port) under its local name:
    `queue_name`, `topic_name` or `bucket_name` by its kind, or the name in its ARN. `queue_name`
    None means no destination: a configured OnFailure is then reported and its records only logged.
    `runner_options` are RunnerConfig's other fields (executor, sleep, backoff...).
    """
    template = for_stage(load_template(template_path), stage)
    settings = settings_from_template(template, app, function_name)
    ttl = ttl_attribute(template)
    if ttl is not None:
        # Neither backend marks its expiry deletes as AWS does (docs: LOCAL-1, DDB-7): tag them before filtering.
        runner_options.setdefault("normalize", functools.partial(tag_ttl_remove, ttl_attribute=ttl))
    session = session or boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_endpoint, config=CLIENT_CONFIG)
    streams = session.client("dynamodbstreams", endpoint_url=dynamodb_endpoint, config=CLIENT_CONFIG)
    # Chalice deploys "<app>-<stage>-<name>"; the ARN's region and account come from the stream ARN.
    deployed_name = "%s-%s-%s" % (getattr(app, "app_name", "app"), stage, settings.function_name)
    destination: Optional[FailureDestination] = None
    if settings.on_failure and queue_name:
        destination = failure_destination(
            settings.on_failure, session, sqs_endpoint,
            name=settings.on_failure.local_name(queue=queue_name, topic=topic_name, bucket=bucket_name),
            mapping=mapping_uuid(deployed_name, table_name))
    elif settings.on_failure:
        log.warning("the template sends failed batches to %s, but no local destination was given; "
                    "they will only be logged", settings.on_failure)
    return StreamRunner(RunnerConfig(
        settings=settings, streams=streams, handler=handler, stream_arn=table_stream_arn(dynamodb, table_name),
        region=region, destination=destination,
        checkpoints=FileCheckpointStore(checkpoint_path) if checkpoint_path is not None else MemoryCheckpointStore(),
        function_name=deployed_name, clock=clock, **runner_options,
    ))


def failure_destination(on_failure: OnFailure, session: boto3.session.Session, endpoint: Optional[str], *,
                        name: str, mapping: str) -> FailureDestination:
    """The client-backed destination for the template's OnFailure, by its kind (docs: ESM-7)."""
    if on_failure.kind == "SQS":
        return SqsFailureDestination(session.client("sqs", endpoint_url=endpoint, config=CLIENT_CONFIG),
                                     queue_name=name)
    if on_failure.kind == "SNS":
        return SnsFailureDestination(session.client("sns", endpoint_url=endpoint, config=CLIENT_CONFIG),
                                     topic_name=name)
    if on_failure.kind == "S3":
        return S3FailureDestination(session.client("s3", endpoint_url=endpoint, config=S3_CONFIG),
                                    bucket=name, mapping_uuid=mapping)
    raise ValueError("no local destination for %s" % on_failure)
