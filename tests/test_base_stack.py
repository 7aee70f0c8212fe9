"""The deploy path's base stack (infra/base_stack.py): what it takes from infra/template.yaml, and
that deploying it twice changes nothing (moto's CloudFormation, in process)."""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, Iterator

import boto3
import pytest
import yaml
from moto import mock_aws

from infra.base_stack import BaseStackError, base_template, deploy, deployed_refs, references
from tests.conftest import TEMPLATE
from tests.packaging import deployed_functions, deployed_names

# moto's CloudFormation creates no alarms, dashboards or queue policies (it says so in a warning); the
# template is what is checked here.
pytestmark = [pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudWatch..Alarm"),
              pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudWatch..Dashboard"),
              pytest.mark.filterwarnings("ignore:Tried to parse AWS..SQS..QueuePolicy")]



@pytest.fixture
def template() -> Dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name="eu-central-1")


def test_the_base_stack_holds_the_templates_own_resources_as_they_are(template):
    stack = base_template(template, deployed_functions(), "storefirst-dev-base")

    ours = {name: r for name, r in template["Resources"].items() if "Type" in r}
    assert set(stack.template["Resources"]) == set(ours)
    for name, resource in ours.items():
        expected = json.loads(deployed_names(json.dumps(resource)))
        assert stack.template["Resources"][name] == expected, name
    assert stack.template["Resources"]["RequestsTable"]["DeletionPolicy"] == "Retain"


def test_alarms_name_the_function_chalice_deploy_creates(template):
    resources = base_template(template, deployed_functions(), "storefirst-dev-base").template["Resources"]

    for alarm in ("ProcessorIteratorAgeAlarm", "ProcessorErrorsAlarm"):
        assert resources[alarm]["Properties"]["Dimensions"] == [{"Name": "FunctionName",
                                                                  "Value": "storefirst-dev-process"}]


def test_it_outputs_every_value_the_patches_read_and_what_operators_need(template):
    stack = base_template(template, deployed_functions(), "storefirst-dev-base")

    patches = [r for r in template["Resources"].values() if "Type" not in r]
    read = {f"{t}.{a}" if a else t for t, a in references(patches) if t in stack.template["Resources"]}
    assert read <= set(stack.refs.values())
    assert {"RequestsTable", "RequestsTable.Arn", "RequestsTable.StreamArn", "ProcessorFailureQueue",
            "ProcessorFailureQueue.Arn", "ApiGatewayPutItemRole.Arn", "AlarmTopic"} <= set(stack.refs.values())
    assert stack.refs["RequestsTableStreamArn"] == "RequestsTable.StreamArn"


def test_a_resource_that_needs_a_chalice_resource_is_refused(template):
    broken = copy.deepcopy(template)
    broken["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = {"Ref": "RestAPI"}

    with pytest.raises(BaseStackError, match=r"AlarmTopic refers to \['RestAPI'\], which only chalice deploy"):
        base_template(broken, deployed_functions(), "storefirst-dev-base")


def test_a_second_deploy_sends_nothing_and_a_changed_template_updates(template, cloudformation):
    stack = base_template(template, deployed_functions(), "storefirst-dev-base")

    assert deploy(cloudformation, stack, delay=0) == "created"
    assert deploy(cloudformation, stack, delay=0) == "unchanged"
    refs = deployed_refs(cloudformation, stack, "dev")
    assert refs["RequestsTable.StreamArn"].startswith(f"arn:aws:dynamodb:eu-central-1:123456789012:table/"
                                                      f"{refs['RequestsTable']}/stream/")
    assert (refs["AWS::Region"], refs["AWS::Partition"]) == ("eu-central-1", "aws")

    changed = copy.deepcopy(template)
    changed["Resources"]["ProcessorFailureQueue"]["Properties"]["MessageRetentionPeriod"] = 86400
    changed_stack = base_template(changed, deployed_functions(), "storefirst-dev-base")
    assert deploy(cloudformation, changed_stack, delay=0) == "updated"


def test_chalice_deploy_is_told_to_run_make_infra_when_the_stack_is_missing_or_outdated(template, cloudformation):
    stack = base_template(template, deployed_functions(), "storefirst-dev-base")

    with pytest.raises(BaseStackError, match=r"no base stack storefirst-dev-base .*make infra STAGE=dev"):
        deployed_refs(cloudformation, stack, "dev")
    deploy(cloudformation, stack, delay=0)
    changed = copy.deepcopy(template)
    changed["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = "storefirst alarms"
    with pytest.raises(BaseStackError, match=r"not what infra/template.yaml now makes: run `make infra STAGE=dev`"):
        deployed_refs(cloudformation, base_template(changed, deployed_functions(), "storefirst-dev-base"), "dev")


def test_the_dashboard_names_the_functions_chalice_deploy_creates(template):
    resources = base_template(template, deployed_functions(), "storefirst-dev-base").template["Resources"]

    body = resources["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert all(f'"{name}"' in body for name in deployed_functions().values())
    assert not [name for name in deployed_functions() if "${" + name + "}" in body]
    # its own resources and pseudo parameters are left to CloudFormation
    assert "${ProcessorFailureQueue.QueueName}" in body and "${AWS::Region}" in body
    json.loads(body.replace("${ProcessorFailureQueue.QueueName}", "q").replace("${AWS::Region}", "r"))


def test_a_sub_keeps_its_own_variables_even_when_named_like_a_function(template):
    template["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = {
        "Fn::Sub": ["${Process}-${Reconcile}", {"Process": "mine"}]}

    topic = base_template(template, deployed_functions(), "storefirst-dev-base").template["Resources"]["AlarmTopic"]

    assert topic["Properties"]["DisplayName"] == {"Fn::Sub": ["${Process}-storefirst-dev-reconcile",
                                                              {"Process": "mine"}]}
