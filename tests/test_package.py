"""The deployable template, as `make package` builds it: chalice package --merge-template,
then SAM translated offline. Least privilege and the stream settings are read from it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from typing import Any, Dict

import pytest
import yaml

from infra.powertools_layer import LayerReference, parse_layer_reference
from infra.precompile import add_bytecode, runtime_of
from tests.conftest import ROOT
from tests.packaging import (
    WRITE_TRACES,
    as_list,
    resources,
    statements,
)

pytestmark = pytest.mark.package  # chalice package, cfn-lint


@pytest.fixture(scope="session")
def packaged(project_package: Any) -> Dict[str, Any]:
    # cfn-lint and the PUT role's reach are checked for every stage in tests/test_security.py.
    result: Dict[str, Any] = project_package("prod")
    return result




@pytest.mark.parametrize("role_name, expected", [
    ("ProcessRole", {
        "dynamodb:DescribeStream": {"Fn::GetAtt": ["RequestsTable", "StreamArn"]},
        "dynamodb:GetRecords": {"Fn::GetAtt": ["RequestsTable", "StreamArn"]},
        "dynamodb:GetShardIterator": {"Fn::GetAtt": ["RequestsTable", "StreamArn"]},
        "dynamodb:ListStreams": {"Fn::Sub": "${RequestsTable.Arn}/stream/*"},
        "dynamodb:BatchGetItem": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "dynamodb:PartiQLUpdate": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "s3:PutObject": {"Fn::Sub": "${ProcessorFailureBucket.Arn}/aws/lambda/*"},
        "s3:ListBucket": {"Fn::GetAtt": ["ProcessorFailureBucket", "Arn"]},
        "logs:CreateLogStream": {"Fn::Sub": "${ProcessLogGroup.Arn}:*"},
        "logs:PutLogEvents": {"Fn::Sub": "${ProcessLogGroup.Arn}:*"},
        **WRITE_TRACES,
    }),
    ("ApiHandlerRole", {
        "dynamodb:GetItem": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "dynamodb:UpdateItem": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "dynamodb:Query": {"Fn::Sub": "${RequestsTable.Arn}/index/open-by-status"},
        "logs:CreateLogStream": {"Fn::Sub": "${APIHandlerLogGroup.Arn}:*"},
        "logs:PutLogEvents": {"Fn::Sub": "${APIHandlerLogGroup.Arn}:*"},
        **WRITE_TRACES,
    }),
    ("HandleFailuresRole", {
        "sqs:ReceiveMessage": {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]},
        "sqs:DeleteMessage": {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]},
        "sqs:GetQueueAttributes": {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]},
        "s3:GetObject": {"Fn::Sub": "${ProcessorFailureBucket.Arn}/aws/lambda/*"},
        "s3:ListBucket": {"Fn::GetAtt": ["ProcessorFailureBucket", "Arn"]},  # a gone object is 404 (IAM-5)
        "dynamodb:PartiQLUpdate": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "logs:CreateLogStream": {"Fn::Sub": "${HandleFailuresLogGroup.Arn}:*"},
        "logs:PutLogEvents": {"Fn::Sub": "${HandleFailuresLogGroup.Arn}:*"},
        **WRITE_TRACES,
    }),
    ("ReconcileRole", {
        "dynamodb:Query": {"Fn::Sub": "${RequestsTable.Arn}/index/open-by-status"},
        "dynamodb:UpdateItem": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "dynamodb:PartiQLUpdate": {"Fn::GetAtt": ["RequestsTable", "Arn"]},
        "logs:CreateLogStream": {"Fn::Sub": "${ReconcileLogGroup.Arn}:*"},
        "logs:PutLogEvents": {"Fn::Sub": "${ReconcileLogGroup.Arn}:*"},
        **WRITE_TRACES,
    }),
])
def test_each_lambda_role_names_exact_actions_on_exact_resources(packaged, role_name, expected):
    granted = {}
    for statement in statements(resources(packaged)[role_name]):
        assert statement["Effect"] == "Allow"
        assert len(as_list(statement["Resource"])) == 1
        for action in as_list(statement["Action"]):
            assert "*" not in action
            granted[action] = statement["Resource"]

    assert granted == expected
    assert "ManagedPolicyArns" not in resources(packaged)[role_name]["Properties"]


# No role grants a wildcard or a resource outside the stack, in any stage: tests/test_security.py.


def test_the_stream_mapping_retries_partially_bisects_and_gives_up_into_the_bucket(packaged):
    [mapping] = [r for r in resources(packaged).values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                 and r["Properties"]["FunctionName"] == {"Ref": "Process"}]
    properties = mapping["Properties"]

    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["RequestsTable", "StreamArn"]}
    assert properties["FunctionName"] == {"Ref": "Process"}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 <= properties["MaximumRetryAttempts"] <= 10000
    assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 604800
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["BatchSize"] == 100
    by_stage = yaml.safe_load((ROOT / "infra" / "template.yaml").read_text())["Mappings"]["StreamMappingByStage"]
    assert properties["ParallelizationFactor"] == by_stage[packaged["stage"]]["ParallelizationFactor"]
    # SAM drops its Type (docs: CHALICE-7): only the bucket reaches the mapping.
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ProcessorFailureBucket", "Arn"]}}}
    patterns = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert patterns[0] == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PENDING"]}}}}
    assert len(patterns) == 3  # plus retries and re-drives: tests/test_filter_criteria.py


def test_the_failure_queue_consumer_reports_partial_batch_failures(packaged):
    [mapping] = [r for r in resources(packaged).values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                 and r["Properties"]["FunctionName"] == {"Ref": "HandleFailures"}]

    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources(packaged)["ProcessorFailureQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * resources(packaged)["HandleFailures"]["Properties"]["Timeout"]


def test_each_failure_object_is_announced_on_the_queue_and_only_s3_may_send_there(packaged):
    everything = resources(packaged)
    bucket = everything["ProcessorFailureBucket"]
    [notification] = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    [statement] = everything["ProcessorFailureQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert notification["Queue"] == {"Fn::GetAtt": ["ProcessorFailureQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "aws/lambda/"}]
    assert bucket["DependsOn"] == "ProcessorFailureQueuePolicy"  # S3 checks the policy when notifying is set up
    assert (statement["Principal"], statement["Action"]) == ({"Service": "s3.amazonaws.com"}, "sqs:SendMessage")
    # the policy names the bucket's own ARN, built from the same name the bucket is given
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", bucket["Properties"]["BucketName"]]]}
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] * 86400 == \
        everything["ProcessorFailureQueue"]["Properties"]["MessageRetentionPeriod"]


def test_the_reconciler_runs_on_a_schedule(packaged):
    rules = [r for r in resources(packaged).values() if r["Type"] == "AWS::Events::Rule"]

    assert [r["Properties"]["ScheduleExpression"] for r in rules] == ["rate(5 minutes)"]
    assert rules[0]["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Reconcile", "Arn"]}


@pytest.mark.parametrize("alarm, namespace, metric, dimension", [
    ("ProcessorIteratorAgeAlarm", "AWS/Lambda", "IteratorAge", {"Ref": "Process"}),
    ("FailureQueueDepthAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
     {"Fn::GetAtt": ["ProcessorFailureQueue", "QueueName"]}),
    ("ProcessorErrorsAlarm", "AWS/Lambda", "Errors", {"Ref": "Process"}),
    ("Api5xxAlarm", "AWS/ApiGateway", "5XXError", "storefirst"),
    ("RequestsFailedAlarm", "storefirst", "Failed", "storefirst"),
])
def test_operators_are_alarmed_on_what_strands_requests(packaged, alarm, namespace, metric, dimension):
    properties = resources(packaged)[alarm]["Properties"]

    assert (properties["Namespace"], properties["MetricName"]) == (namespace, metric)
    assert properties["Dimensions"][0]["Value"] == dimension
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_dashboard_shows_intake_outcomes_latency_lag_failures_and_function_health(packaged):
    body = resources(packaged)["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    filled = body.replace("${AWS::Region}", "eu-central-1").replace("${ProcessorFailureQueue.QueueName}", "q")
    for function in ("Process", "APIHandler", "HandleFailures", "Reconcile"):
        filled = filled.replace("${%s}" % function, function)

    widgets = json.loads(filled)["widgets"]
    rows = [row for w in widgets for row in w["properties"]["metrics"]]
    named = {part for row in rows for part in row if isinstance(part, str)}
    assert {"Count", "4XXError", "5XXError", "Processed", "Succeeded", "Failed", "ProcessingLatency",
            "IteratorAge", "ApproximateNumberOfMessagesVisible", "Errors", "Throttles"} <= named
    assert {"Process", "APIHandler", "HandleFailures", "Reconcile", "q"} <= named
    assert {"p50", "p90", "p99"} <= {part["stat"] for row in rows for part in row if isinstance(part, dict)}


def test_the_status_index_is_sparse_and_keyed_by_status_then_age(packaged):
    [index] = resources(packaged)["RequestsTable"]["Properties"]["GlobalSecondaryIndexes"]

    assert index["IndexName"] == "open-by-status"
    assert index["KeySchema"] == [{"AttributeName": "listStatus", "KeyType": "HASH"},
                                  {"AttributeName": "createdAt", "KeyType": "RANGE"}]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"


def test_the_table_keeps_its_data_and_streams_both_images(packaged):
    table = resources(packaged)["RequestsTable"]
    properties = table["Properties"]

    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_the_put_route_is_a_direct_dynamodb_integration(packaged):
    body = resources(packaged)["RestAPI"]["Properties"]["Body"]
    put = body["paths"]["/requests"]["put"]
    integration = put["x-amazon-apigateway-integration"]

    assert integration["type"] == "aws"
    assert integration["uri"] == {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:dynamodb:action/PutItem"}
    assert integration["credentials"] == {"Fn::GetAtt": ["ApiGatewayPutItemRole", "Arn"]}
    assert integration["passthroughBehavior"] == "never"
    assert put["x-amazon-apigateway-request-validator"] == "body-only"
    assert body["x-amazon-apigateway-request-validators"]["body-only"]["validateRequestBody"] is True
    declared = set(put["responses"])
    selected = {r["statusCode"] for r in integration["responses"].values()}
    assert selected <= declared  # a selected status without a method response is a 500 (docs: APIGW-17)
    assert {"202", "400", "409", "413", "415", "429", "500", "503"} <= declared
    # The Chalice route is still there beside it.
    assert "get" in body["paths"]["/requests/{request_id}"]


def test_every_function_is_traced_actively(packaged):
    functions = [r for r in resources(packaged).values() if r["Type"] == "AWS::Lambda::Function"]

    assert len(functions) == 4
    assert [f["Properties"]["TracingConfig"] for f in functions] == [{"Mode": "Active"}] * 4


def test_every_function_gets_the_locked_powertools_for_its_runtime_and_its_table(packaged):
    python = (ROOT / ".python-version").read_text().strip()
    for name in ("Process", "APIHandler", "HandleFailures", "Reconcile"):
        properties = resources(packaged)[name]["Properties"]
        [layer] = properties["Layers"]
        # Chalice takes the runtime from the interpreter that packaged (the venv of .python-version);
        # the layer is the public parameter's for that Python (tests/test_versions.py).
        assert properties["Runtime"] == f"python{python}"
        assert parse_layer_reference(layer) == LayerReference("x86_64", python, version("aws-lambda-powertools"))
        assert properties["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "RequestsTable"}


def test_the_prod_stage_keeps_successes_longer_than_dev(packaged):
    variables = resources(packaged)["Process"]["Properties"]["Environment"]["Variables"]

    assert variables["SUCCESS_TTL_SECONDS"] == "3600"


def test_the_deployment_zip_holds_only_our_code(packaged):
    import zipfile

    names = zipfile.ZipFile(packaged["dir"] / "deployment.zip").namelist()

    assert "app.py" in names and "chalicelib/processor.py" in names
    assert not [n for n in names if n.startswith(("boto3/", "botocore/", "aws_lambda_powertools/", "devserver/",
                                                  "tests/", "ops/", "bench/"))]


def test_the_zip_ships_bytecode_that_python_loads_without_compiling(packaged, tmp_path):
    import zipfile

    zipfile.ZipFile(packaged["dir"] / "deployment.zip").extractall(tmp_path)
    # The pycs are unchecked: Python does not compare them with their sources. A source edited
    # after packaging is therefore not what runs, which proves the shipped bytecode is.
    errors = tmp_path / "chalicelib" / "errors.py"
    errors.write_text(errors.read_text() + "\nEDITED_AFTER_PACKAGING = True\n")
    probe = "import app, chalicelib.errors as e; print(hasattr(e, 'EDITED_AFTER_PACKAGING'))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {probe}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
    names = zipfile.ZipFile(packaged["dir"] / "deployment.zip").namelist()
    sources = [n for n in names if n.endswith(".py")]
    assert len([n for n in names if n.endswith(".pyc")]) == len(sources) > 0


def test_bytecode_is_written_once_even_on_a_zip_that_already_has_it(packaged, tmp_path):
    import shutil
    import zipfile

    again = tmp_path / "deployment.zip"
    shutil.copy(packaged["dir"] / "deployment.zip", again)

    add_bytecode(again, runtime_of((packaged["dir"] / "sam.yaml").read_text()))

    first, second = zipfile.ZipFile(packaged["dir"] / "deployment.zip"), zipfile.ZipFile(again)
    assert second.namelist() == first.namelist() and len(set(second.namelist())) == len(second.namelist())
    assert all(first.read(name) == second.read(name) for name in first.namelist())
    assert "chalicelib/__pycache__/processor.cpython-%d%d.pyc" % sys.version_info[:2] in second.namelist()


def test_a_projects_own_timestamp_bytecode_is_replaced_by_unchecked_bytecode(tmp_path):
    import zipfile

    # `chalice package` copies the project's __pycache__ folders, written by any local import.
    pyc = "chalicelib/__pycache__/orders.cpython-%d%d.pyc" % sys.version_info[:2]
    made = tmp_path / "deployment.zip"
    with zipfile.ZipFile(made, "w") as archive:
        archive.writestr("chalicelib/orders.py", "X = 1\n")
        archive.writestr(pyc, b"\x00" * 16 + b"timestamp-checked, from a developer's tree")

    assert add_bytecode(made, f"{sys.version_info.major}.{sys.version_info.minor}") == 1

    shipped = zipfile.ZipFile(made).read(pyc)
    assert int.from_bytes(shipped[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked


def test_bytecode_for_another_python_than_the_functions_run_is_refused(packaged, tmp_path):
    other = "3.99"

    with pytest.raises(ValueError, match=rf"run python{other} but this is python3\."):
        add_bytecode(packaged["dir"] / "deployment.zip", other)
    with pytest.raises(ValueError, match="expected one python runtime"):
        runtime_of("Runtime: python3.11\nRuntime: python3.12\n")
