"""ESM settings: read from infra/template.yaml + the Chalice decorator, validated like the Lambda API
(docs: ESM-3, ESM-7, ESM-12)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from chalice import Chalice
from chalice.app import DynamoDBEventConfig

from devserver.stream.settings import (
    DecoratorValues,
    EsmSettings,
    OnFailure,
    SettingsError,
    cfn_name,
    decorator_values,
    for_stage,
    parse_settings,
    settings_from_template,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE: Dict[str, Any] = yaml.safe_load((ROOT / "infra" / "template.yaml").read_text())
DECORATOR = DecoratorValues(name="process", batch_size=100, starting_position="TRIM_HORIZON")


def with_props(**props: Any) -> Dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    target = template["Resources"]["Process"]["Properties"]["Events"]["ProcessDynamodbEventSource"]["Properties"]
    for key, value in props.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return template


def test_the_project_template_and_app() -> None:
    import app  # the real Chalice app: its blueprint registers the @on_dynamodb_record handler

    settings = settings_from_template(TEMPLATE, app.app)
    source = app.app.event_sources[0]
    assert isinstance(source, DynamoDBEventConfig)
    assert settings.function_name == "process"
    assert settings.batch_size == source.batch_size
    assert settings.starting_position == source.starting_position
    assert settings.report_batch_item_failures is True
    assert settings.bisect_on_error is True
    assert settings.max_retry_attempts == 10
    assert settings.max_record_age_s == 3600
    assert settings.on_failure is not None and settings.on_failure.logical
    assert len(settings.filters) == 3  # which records they admit: tests/test_filter_criteria.py
    assert settings.filters[0].matches({"eventName": "INSERT", "dynamodb": {"NewImage": {"status": {"S": "PENDING"}}}})


def test_decorator_values_come_from_app_event_sources() -> None:
    app = Chalice(app_name="t")

    @app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:eu-central-1:1:table/t/stream/x", batch_size=7,
                            starting_position="LATEST", maximum_batching_window_in_seconds=3)
    def handle(event: Any) -> None:
        pass

    values = decorator_values(app)
    assert values == DecoratorValues(name="handle", batch_size=7, starting_position="LATEST",
                                     maximum_batching_window_in_seconds=3)
    settings = parse_settings({"Resources": {}}, values)  # no template properties: Lambda's defaults (docs: ESM-3)
    assert settings == EsmSettings(batch_size=7, batching_window_s=3, starting_position="LATEST",
                                   function_name="handle")


def test_template_values_win_over_the_decorator_like_merge_template() -> None:
    settings = parse_settings(with_props(BatchSize=5, StartingPosition="LATEST"), DECORATOR)
    assert (settings.batch_size, settings.starting_position) == (5, "LATEST")


def test_no_dynamodb_handler_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="exactly one @on_dynamodb_record"):
        decorator_values(Chalice(app_name="empty"))


def test_cfn_names_follow_chalice() -> None:
    assert cfn_name("process-dynamodb-event-source") == "ProcessDynamodbEventSource"
    assert cfn_name("my_handler") == "MyHandler"


@pytest.mark.parametrize("props, message", [
    ({"MaximumRecordAgeInSeconds": 59}, "MaximumRecordAgeInSeconds"),
    ({"MaximumRecordAgeInSeconds": 0}, "MaximumRecordAgeInSeconds"),
    ({"MaximumRecordAgeInSeconds": 604_801}, "MaximumRecordAgeInSeconds"),
    ({"MaximumRetryAttempts": 10_001}, "MaximumRetryAttempts"),
    ({"ParallelizationFactor": 0}, "ParallelizationFactor"),
    ({"ParallelizationFactor": 11}, "ParallelizationFactor"),
    ({"MaximumRetryAttempts": -2}, "MaximumRetryAttempts"),
    ({"MaximumRetryAttempts": True}, "MaximumRetryAttempts"),
    ({"BatchSize": 0}, "BatchSize"),
    ({"BatchSize": 10_001}, "BatchSize"),
    ({"MaximumBatchingWindowInSeconds": 301}, "MaximumBatchingWindowInSeconds"),
    ({"StartingPosition": "AT_TIMESTAMP"}, "StartingPosition"),
    ({"FunctionResponseTypes": ["ReportItemFailures"]}, "FunctionResponseTypes"),
    ({"FunctionResponseTypes": "ReportBatchItemFailures"}, "FunctionResponseTypes"),
    ({"BisectBatchOnFunctionError": "yes"}, "BisectBatchOnFunctionError"),
    ({"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}}, "not valid JSON"),
    ({"FilterCriteria": {"Filters": [{"Pattern": '["INSERT"]'}]}}, "JSON object"),
    ({"FilterCriteria": {"Filters": [{"Pattern": '{"eventName": "INSERT"}'}]}}, "must be lists"),
    ({"FilterCriteria": {"Filters": [{"Pattern": '{"a": [{"numeric": [">", "1"]}]}'}]}}, "numbers"),
    ({"FilterCriteria": {"Filters": [{"Pattern": '{"a": [{"bogus": 1}]}'}]}}, "unknown operator"),
    ({"FilterCriteria": {"Filters": [{"Pattern": '{"a": [' + '"x",' * 1400 + '"x"]}'}]}}, "4096"),
    ({"FilterCriteria": {"Filters": [{"Pattern": "{}"}] * 21}}, "at most 20"),
    ({"TumblingWindowInSeconds": 60}, "TumblingWindowInSeconds"),
    ({"DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": "arn:aws:s3:::b"}}}, "does not match"),
    ({"DestinationConfig": {"OnFailure": {"Type": "Kafka", "Destination": "arn:aws:sqs:eu-central-1:1:q"}}},
     "does not match"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:kafka:eu-central-1:1:cluster/c/1"}}},
     "not an SQS queue, SNS topic or S3 bucket"),
    ({"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["AlarmTopicMissing", "Arn"]}}}},
     "missing resource"),
    ({"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["RequestsTable", "Arn"]}}}},
     "AWS::DynamoDB::Table, not a queue"),
    ({"DestinationConfig": {"OnFailure": {"Destination": {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:1:q"}}}},
     "must be an ARN, Fn::GetAtt or Ref"),
    ({"DestinationConfig": {"OnFailure": "arn:aws:sqs:eu-central-1:1:q"}}, "OnFailure must be a mapping"),
])
def test_values_aws_would_reject(props: Dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_settings(with_props(**props), DECORATOR)


@pytest.mark.parametrize("props, field, expected", [
    ({"MaximumRecordAgeInSeconds": -1}, "max_record_age_s", -1),
    ({"MaximumRecordAgeInSeconds": 60}, "max_record_age_s", 60),
    ({"ParallelizationFactor": None}, "parallelization_factor", 1),
    ({"ParallelizationFactor": 10}, "parallelization_factor", 10),
    ({"ParallelizationFactor": "4"}, "parallelization_factor", 4),
    ({"MaximumRetryAttempts": -1}, "max_retry_attempts", -1),
    ({"MaximumRetryAttempts": "3"}, "max_retry_attempts", 3),  # CloudFormation coerces numeric strings
    ({"FunctionResponseTypes": None}, "report_batch_item_failures", False),
    ({"FilterCriteria": None}, "filters", ()),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:eu-central-1:1:dlq"}}}, "on_failure",
     OnFailure("SQS", "dlq", logical=False)),
    ({"DestinationConfig": {"OnFailure": {"Type": "SNS", "Destination": "arn:aws:sns:eu-central-1:1:alerts"}}},
     "on_failure", OnFailure("SNS", "alerts", logical=False)),
    ({"DestinationConfig": {"OnFailure": {"Type": "S3", "Destination": "arn:aws:s3:::failed-batches"}}},
     "on_failure", OnFailure("S3", "failed-batches", logical=False)),
    ({"DestinationConfig": {"OnFailure": {"Destination": {"Ref": "AlarmTopic"}}}}, "on_failure",
     OnFailure("SNS", "AlarmTopic", logical=True)),
    ({"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": "ProcessorFailureQueue.Arn"}}}},
     "on_failure", OnFailure("SQS", "ProcessorFailureQueue", logical=True)),
    ({"DestinationConfig": None}, "on_failure", None),
    ({"DestinationConfig": {"OnFailure": {}}}, "on_failure", None),
])
def test_values_aws_accepts(props: Dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(parse_settings(with_props(**props), DECORATOR), field) == expected


def test_settings_are_frozen_and_hashable() -> None:
    settings = parse_settings(TEMPLATE, DECORATOR)
    with pytest.raises(AttributeError):
        settings.batch_size = 1  # type: ignore[misc]  # assigning to a frozen field is what this test checks
    assert hash(settings) == hash(parse_settings(TEMPLATE, DECORATOR))


def test_a_bucket_in_the_template_is_an_s3_destination() -> None:
    template = with_props(DestinationConfig={"OnFailure": {"Type": "S3", "Destination": {
        "Fn::GetAtt": ["FailedBatches", "Arn"]}}})
    template["Resources"]["FailedBatches"] = {"Type": "AWS::S3::Bucket"}

    assert parse_settings(template, DECORATOR).on_failure == OnFailure("S3", "FailedBatches", logical=True)


# --- per-stage mapping settings (infra/template.yaml's Mappings.StreamMappingByStage) ---------------

def test_each_stage_deploys_and_runs_locally_with_the_same_parallelization_factor() -> None:
    import app
    from devserver.stream import build_runner
    from infra.merge_stage import stage_template

    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    by_stage = TEMPLATE["Mappings"]["StreamMappingByStage"]
    assert set(stages) <= set(by_stage)
    for stage in stages:
        _, merged = stage_template(stage)  # what make package merges and the chalice deploy hook applies
        deployed = merged["Resources"]["Process"]["Properties"]["Events"]["ProcessDynamodbEventSource"]["Properties"]
        runner = build_runner(template_path=ROOT / "infra" / "template.yaml", app=app.app, table_name="t",
                              region="eu-central-1", dynamodb_endpoint=None, sqs_endpoint=None, queue_name=None,
                              checkpoint_path=None, handler=lambda event, context: None, stage=stage)
        expected = by_stage[stage]["ParallelizationFactor"]
        assert deployed["ParallelizationFactor"] == runner.settings.parallelization_factor == expected
        assert "Mappings" not in merged  # CloudFormation never sees the per-stage section


def test_a_stage_without_settings_is_refused_with_the_fix() -> None:
    with pytest.raises(SettingsError, match="stage 'staging' has no entry in Mappings.StreamMappingByStage"):
        for_stage(TEMPLATE, "staging")


def test_the_stages_settings_reach_only_stream_mappings_and_leave_the_template_as_it_was() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Mappings"]["StreamMappingByStage"]["dev"] = {"ParallelizationFactor": 7, "BatchSize": 50}

    settings = parse_settings(for_stage(template, "dev"), DECORATOR)

    assert (settings.parallelization_factor, settings.batch_size) == (7, 50)
    queue = for_stage(template, "dev")["Resources"]["HandleFailures"]["Properties"]["Events"]
    assert "ParallelizationFactor" not in queue["HandleFailuresSqsEventSource"]["Properties"]
    assert template["Mappings"]["StreamMappingByStage"]["dev"]["ParallelizationFactor"] == 7
