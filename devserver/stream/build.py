"""Wire a StreamRunner to a local endpoint (moto server or DynamoDB Local) from the project's files."""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

import boto3
import yaml
from botocore.config import Config

from devserver.db_schema import ttl_attribute
from devserver.db_ttl import tag_ttl_remove

from .checkpoint import FileCheckpointStore, MemoryCheckpointStore
from .destinations import FailureDestination, SqsFailureDestination
from .invoke import Handler
from .runner import StreamRunner
from .settings import settings_from_template

log = logging.getLogger(__name__)

# Recent botocore sends DynamoDB Streams calls to an account-scoped host derived from the stream ARN
# ("<account>.streams-ddb.<region>..."), which moto's in-process mock does not route; an explicit
# endpoint is unaffected, but disabling the mode keeps both cases on the classic host.
CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 2, "mode": "standard"})


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
    clock: Callable[[], float] = time.time, **runner_options: Any,
) -> StreamRunner:
    """The runner for the app's @on_dynamodb_record handler, with the template's ESM settings.

    `handler` is the Lambda entry, called as handler(event, context). Checkpoints are kept in
    `checkpoint_path` (None: in memory). `queue_name` is the local
    name of the template's OnFailure queue (None: no destination; a configured OnFailure is then
    reported and its records only logged). `runner_options` go to StreamRunner (backoff, sleep...).
    """
    template = yaml.safe_load(Path(template_path).read_text(encoding="utf-8"))
    settings = settings_from_template(template, app, function_name)
    ttl = ttl_attribute(template)
    if ttl is not None:
        # Neither backend marks its expiry deletes as AWS does (esm §7): tag them before filtering.
        runner_options.setdefault("normalize", functools.partial(tag_ttl_remove, ttl_attribute=ttl))
    session = session or boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_endpoint, config=CLIENT_CONFIG)
    streams = session.client("dynamodbstreams", endpoint_url=dynamodb_endpoint, config=CLIENT_CONFIG)
    destination: Optional[FailureDestination] = None
    if settings.on_failure_queue and queue_name:
        sqs = session.client("sqs", endpoint_url=sqs_endpoint, config=CLIENT_CONFIG)
        destination = SqsFailureDestination(sqs, queue_name=queue_name)
    elif settings.on_failure_queue:
        log.warning("the template sends failed batches to %s, but no local queue was given; "
                    "they will only be logged", settings.on_failure_queue)
    # Chalice deploys "<app>-<stage>-<name>"; the ARN's region and account come from the stream ARN.
    deployed_name = "%s-%s-%s" % (getattr(app, "app_name", "app"), stage, settings.function_name)
    return StreamRunner(
        settings=settings, streams=streams, handler=handler, stream_arn=table_stream_arn(dynamodb, table_name),
        region=region, destination=destination,
        checkpoints=FileCheckpointStore(checkpoint_path) if checkpoint_path is not None else MemoryCheckpointStore(),
        function_name=deployed_name, clock=clock, **runner_options,
    )
