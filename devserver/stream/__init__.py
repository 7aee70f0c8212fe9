"""A local Lambda event source mapping for DynamoDB Streams (docs/lambda-esm.md).

    runner = build_runner(template_path=..., app=app, table_name=..., region=..., dynamodb_endpoint=...,
                          sqs_endpoint=..., queue_name=..., checkpoint_path=..., handler=app.process)
    runner.start(); ...; runner.status(); runner.stop()
"""
from .build import build_runner, table_stream_arn
from .checkpoint import FileCheckpointStore, MemoryCheckpointStore
from .destinations import (
    MemoryDestination,
    S3FailureDestination,
    SnsFailureDestination,
    SqsFailureDestination,
    failure_record,
)
from .filters import FilterPattern, PatternError, matches_any
from .invoke import parse_batch_response
from .records import to_lambda_record
from .runner import StreamRunner
from .runner_config import RunnerConfig
from .settings import EsmSettings, OnFailure, SettingsError, decorator_values, parse_settings, settings_from_template

__all__ = [
    "EsmSettings", "FileCheckpointStore", "FilterPattern", "MemoryCheckpointStore", "MemoryDestination", "OnFailure",
    "PatternError", "RunnerConfig", "S3FailureDestination", "SettingsError", "SnsFailureDestination",
    "SqsFailureDestination", "StreamRunner", "build_runner", "decorator_values",
    "failure_record", "matches_any", "parse_batch_response", "parse_settings",
    "settings_from_template", "table_stream_arn", "to_lambda_record",
]
