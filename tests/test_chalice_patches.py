"""infra/chalice_patches.py: infra/template.yaml's patches applied to the graph `chalice deploy` builds.

The refs stand in for the base stack's outputs (`<RequestsTable.StreamArn>`), so each assertion
shows where a value came from; tests/test_deploy.py checks the same against a deployed stack."""
from __future__ import annotations

import copy
import json
from typing import Any, Dict

import pytest
import yaml
from chalice.deploy import models

from infra.base_stack import base_template
from infra.chalice_graph import function_names, logical_ids, stage_application
from infra.chalice_patches import PatchError, apply_patches
from tests.conftest import ROOT, TEMPLATE
from tests.requirements_files import locked_versions


@pytest.fixture
def template() -> Dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


@pytest.fixture
def application() -> models.Application:
    return stage_application(ROOT, "dev")


def stand_in_refs(template: Dict[str, Any], application: models.Application) -> Dict[str, str]:
    stack = base_template(template, function_names(application), "storefirst-dev-base")
    refs = {ref: f"<{ref}>" for ref in stack.refs.values()}
    refs.update({"AWS::Region": "eu-central-1", "AWS::Partition": "aws", "AWS::AccountId": "123456789012"})
    return refs


# What SSM answers for the Powertools layer's public parameter (docs: LAMBDA-2), in the refs' region.
LAYER_PARAMETER = "/aws/service/powertools/python/x86_64/python{python}/{powertools}".format(
    python=(ROOT / ".python-version").read_text().strip(), powertools=locked_versions()["aws-lambda-powertools"])
LAYER_ARN = "arn:aws:lambda:eu-central-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:41"


def stand_in_parameter(name: str) -> str:
    if name != LAYER_PARAMETER:
        raise PatchError(f"no parameter {name}")
    return LAYER_ARN


def apply(template: Dict[str, Any], application: models.Application) -> Any:
    return apply_patches(application, template["Resources"], stand_in_refs(template, application),
                         parameters=stand_in_parameter)


def event_properties(template: Dict[str, Any], function: str, event: str) -> Dict[str, Any]:
    return template["Resources"][function]["Properties"]["Events"][event]["Properties"]


def test_every_mapping_property_of_the_template_becomes_an_api_parameter(template, application):
    # Any property, including ones added later (ParallelizationFactor here), is copied as it is.
    event_properties(template, "Process", "ProcessDynamodbEventSource")["ParallelizationFactor"] = 2

    wire = apply(template, application)

    [stream, queue] = sorted(wire.mappings, key=lambda m: m.function_name)[::-1]
    expected = copy.deepcopy(event_properties(template, "Process", "ProcessDynamodbEventSource"))
    del expected["Stream"]
    del expected["DestinationConfig"]["OnFailure"]["Type"]  # SAM's policy hint, not an API field
    expected["DestinationConfig"]["OnFailure"]["Destination"] = "<ProcessorFailureBucket.Arn>"
    assert (stream.function_name, stream.event_source_arn) == ("storefirst-dev-process", "<RequestsTable.StreamArn>")
    assert dict(stream.parameters) == expected
    assert stream.for_update()["ParallelizationFactor"] == 2
    assert (queue.function_name, queue.event_source_arn) == ("storefirst-dev-handle_failures",
                                                             "<ProcessorFailureQueue.Arn>")
    assert dict(queue.parameters) == {"FunctionResponseTypes": ["ReportBatchItemFailures"]}


def test_the_stages_parallelization_factor_is_sent_on_create_and_update(application):
    from infra.merge_stage import stage_template

    _, merged = stage_template("dev")  # what the chalice deploy hook applies (infra/chalice_deploy.py)
    by_stage = yaml.safe_load(TEMPLATE.read_text())["Mappings"]["StreamMappingByStage"]

    [stream] = [m for m in apply(merged, application).mappings if m.function_name == "storefirst-dev-process"]

    assert stream.parameters["ParallelizationFactor"] == by_stage["dev"]["ParallelizationFactor"]
    assert stream.for_update()["ParallelizationFactor"] == by_stage["dev"]["ParallelizationFactor"]


def test_a_setting_fixed_at_creation_is_not_sent_on_update(template, application):
    event_properties(template, "Process", "ProcessDynamodbEventSource")["StartingPosition"] = "LATEST"

    [stream] = [m for m in apply(template, application).mappings if m.function_name == "storefirst-dev-process"]

    assert stream.parameters["StartingPosition"] == "LATEST"
    assert "StartingPosition" not in stream.for_update()
    assert stream.for_update()["MaximumRetryAttempts"] == 10


def test_sams_names_become_the_apis(template, application):
    event_properties(template, "Process", "ProcessDynamodbEventSource")["KmsKeyArn"] = "arn:aws:kms:x"

    [stream] = [m for m in apply(template, application).mappings if m.function_name == "storefirst-dev-process"]

    assert stream.parameters["KMSKeyArn"] == "arn:aws:kms:x" and "KmsKeyArn" not in stream.parameters


def test_models_get_the_base_stacks_sources_table_layers_and_exact_policies(template, application):
    apply(template, application)

    ids: Dict[str, Any] = dict(logical_ids(application))  # models of several types
    assert ids["ProcessDynamodbEventSource"].stream_arn == "<RequestsTable.StreamArn>"
    assert ids["HandleFailuresSqsEventSource"].queue == models.QueueARN("<ProcessorFailureQueue.Arn>")
    for name in ("Process", "APIHandler", "HandleFailures", "Reconcile"):
        function = ids[name]
        assert function.environment_variables["TABLE_NAME"] == "<RequestsTable>"
        assert function.environment_variables["AUTH_MODE"] == "none"  # the stage's own variables stay
        assert function.layers == [LAYER_ARN]  # the template's {{resolve:ssm:...}}, read from SSM
        assert function.xray is True  # Tracing: Active
    role = ids["ProcessRole"]
    assert type(role.policy) is models.IAMPolicy  # not read from .chalice/policy-*.json, no wildcard added
    document: Any = role.policy.document
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["ReadTheStream"]["Resource"] == "<RequestsTable.StreamArn>"
    assert statements["ListTheTableStreams"]["Resource"] == "<RequestsTable.Arn>/stream/*"
    assert statements["WriteLogs"]["Resource"] == "<ProcessLogGroup.Arn>:*"


def test_the_rest_api_gets_the_put_route_resolved_and_tracing(template, application):
    wire = apply(template, application)

    integration = wire.swagger["paths"]["/requests"]["put"]["x-amazon-apigateway-integration"]
    assert integration["uri"] == "arn:aws:apigateway:eu-central-1:dynamodb:action/PutItem"
    assert integration["credentials"] == "<ApiGatewayPutItemRole.Arn>"
    assert '"TableName": "<RequestsTable>"' in integration["requestTemplates"]["application/json"]
    rest_api: Any = logical_ids(application)["RestAPI"]
    assert rest_api.xray is True
    assert wire.logging["storefirst-dev-process"] == {"LogGroup": "<ProcessLogGroup>", "LogFormat": "JSON"}


@pytest.mark.parametrize("change, message", [
    (lambda t: t["Resources"]["Process"]["Properties"].update(ReservedConcurrentExecutions=5),
     r"Process sets \['ReservedConcurrentExecutions'\], which the chalice deploy path does not apply"),
    (lambda t: t["Resources"]["Process"]["Properties"].update(Tracing="On"),
     r"Process.Tracing is 'On', not one of Active, PassThrough"),
    (lambda t: t["Resources"]["ProcessRole"]["Properties"].update(ManagedPolicyArns=["arn:x"]),
     r"ProcessRole sets \['ManagedPolicyArns'\]"),
    (lambda t: event_properties(t, "Process", "ProcessDynamodbEventSource").update(Retries=3),
     r"sets \['Retries'\], which CreateEventSourceMapping does not take"),
    (lambda t: t["Resources"].update(Nothing={"Properties": {}}),
     r"patches Nothing, which the Chalice app does not have"),
    (lambda t: t["Resources"]["Process"]["Properties"].update(Layers=[{"Ref": "Missing"}]),
     r"Process: template references 'Missing', which the supplied refs do not define"),
    (lambda t: t["Resources"]["Process"]["Properties"].update(Layers=["{{resolve:ssm:/elsewhere}}"]),
     r"no parameter /elsewhere"),
    (lambda t: t["Resources"]["Process"]["Properties"].update(Layers=["{{resolve:secretsmanager:s:SecretString}}"]),
     r"Process: \{\{resolve:secretsmanager:s:SecretString\}\}: the chalice deploy path resolves only"),
])
def test_what_the_deploy_path_cannot_apply_fails_loudly(template, application, change, message):
    change(template)

    with pytest.raises(PatchError, match=message):
        apply(template, application)


def test_the_applied_template_is_left_as_it_was(template, application):
    before = json.dumps(template, sort_keys=True)

    apply(template, application)

    assert json.dumps(template, sort_keys=True) == before
