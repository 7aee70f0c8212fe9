"""Security of the packaged template, per stage: least privilege, checkov's skips, and auth.

Built the way `make package STAGE=<stage>` builds it (tests/packaging.package_stage): `dev`
(AUTH_MODE none), `prod` (iam) and `keyed`, a stage added to a copy of the project with
AUTH_MODE api_key. The exact grants of each role are pinned in tests/test_package.py (prod);
here they hold in every stage, and nothing outside them is granted. `make security` runs
checkov itself (in its own venv); this checks that what it relies on survives the packaging.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterator, Tuple

import pytest
import yaml

from chalicelib import config, requests_api
from chalicelib.errors import ConfigurationError
from devserver.testing.projects import with_stage
from infra.checkov_input import with_stage_skips
from infra.merge_stage import integration_operations, merge_template, stage_auth_mode
from tests.conftest import ROOT, TEMPLATE
from tests.packaging import (
    BIN,
    RESOURCELESS,
    as_list,
    assert_api_gateway_may_only_put_items,
    package_stage,
    resources,
    statements,
)

pytestmark = pytest.mark.package  # chalice package, cfn-lint

AUTH = yaml.safe_load((ROOT / "infra" / "auth.yaml").read_text())
SECURITY: Dict[str, Any] = {"none": None, "iam": [{"sigv4": []}], "api_key": [{"api_key": []}]}
DEFINITIONS: Dict[str, Any] = {"none": None, "iam": {"sigv4": AUTH["iam"]["securityDefinitions"]["sigv4"]},
               "api_key": {"api_key": AUTH["api_key"]["securityDefinitions"]["api_key"]}}
# Writes that create or replace whole items: only API Gateway's role may make them (PUT).
ITEM_WRITES = {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems",
               "dynamodb:PartiQLInsert", "dynamodb:ImportTable", "dynamodb:RestoreTableFromBackup"}
# `*` only inside a resource of the stack: its log streams, its table's streams.
SCOPED_SUFFIX = re.compile(r"(/stream/\*|/index/[A-Za-z0-9_.-]+|:\*|/aws/lambda/\*)?")  # last: the failure objects


@pytest.fixture(scope="module", params=["dev", "prod", "keyed"])
def stage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          project_package: Any) -> Iterator[Dict[str, Any]]:
    if request.param == "keyed":  # a stage of a project copy: this module's own
        work = tmp_path_factory.mktemp("security-keyed")
        project = with_stage(work, "keyed", "api_key")
        yield {**package_stage(work, "keyed", project), "mode": stage_auth_mode("keyed", project)}
    else:
        yield {**project_package(request.param), "mode": stage_auth_mode(request.param, ROOT)}


def operations(body: Dict[str, Any]) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def roles(packaged: Dict[str, Any]) -> Dict[str, Any]:
    return {name: r for name, r in resources(packaged).items() if r["Type"] == "AWS::IAM::Role"}


# --- least privilege -------------------------------------------------------------------------

def test_the_stages_guard_as_configured(stage):
    assert stage["mode"] == {"dev": "none", "prod": "iam", "keyed": "api_key"}[stage["stage"]]


def test_api_gateway_may_only_put_items_into_the_table_in_every_stage(stage):
    assert_api_gateway_may_only_put_items(stage)


def test_only_the_put_integration_assumes_that_role_and_no_other_role_writes_items(stage):
    body = resources(stage)["RestAPI"]["Properties"]["Body"]
    credentials = [op["x-amazon-apigateway-integration"].get("credentials") for _, _, op in operations(body)
                   if op["x-amazon-apigateway-integration"]["type"] == "aws"]
    assert credentials == [{"Fn::GetAtt": ["ApiGatewayPutItemRole", "Arn"]}]

    writers = {name for name, role in roles(stage).items() for statement in statements(role)
               if ITEM_WRITES & set(as_list(statement["Action"]))}
    assert writers == {"ApiGatewayPutItemRole"}


def test_lambda_roles_trust_lambda_only_and_every_function_has_its_own(stage):
    functions = [r for r in resources(stage).values() if r["Type"] == "AWS::Lambda::Function"]
    function_roles = [f["Properties"]["Role"] for f in functions]
    assert sorted(role["Fn::GetAtt"][0] for role in function_roles) == \
        ["ApiHandlerRole", "HandleFailuresRole", "ProcessRole", "ReconcileRole"]
    for name in ("ApiHandlerRole", "HandleFailuresRole", "ProcessRole", "ReconcileRole"):
        trust = roles(stage)[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
        assert [s["Action"] for s in trust] == ["sts:AssumeRole"]


def _is_stack_resource(resource: Any, names: set) -> bool:
    """A reference to one of this stack's resources, or an ARN built only from one of them."""
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        return resource["Fn::GetAtt"][0] in names
    if isinstance(resource, dict) and set(resource) == {"Ref"}:
        return resource["Ref"] in names
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\.Arn\}(.*)", resource["Fn::Sub"])
        if match is None:
            return False
        return match.group(1) in names and SCOPED_SUFFIX.fullmatch(match.group(2)) is not None
    return False  # a literal: "*", or an ARN with open parts


def test_no_role_grants_a_wildcard_or_anything_outside_the_stack(stage):
    everything = resources(stage)
    all_roles = roles(stage)
    assert set(all_roles) == {"ApiGatewayPutItemRole", "ApiHandlerRole", "HandleFailuresRole", "ProcessRole",
                              "ReconcileRole"}
    assert not [r for r in everything.values() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]
    for name, role in all_roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], name
        for statement in statements(role):
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, (name, statement)  # no Not*, no Condition
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in as_list(statement["Action"])), (name, statement)
            if set(as_list(statement["Action"])) <= RESOURCELESS:
                assert statement["Resource"] == "*", (name, statement)
                continue
            for resource in as_list(statement["Resource"]):
                assert _is_stack_resource(resource, set(everything)), (name, resource)


def test_the_policy_files_grant_nothing_and_give_each_function_its_own_role():
    # Chalice names a role after its function's iam_policy_file; both deploy paths then replace the
    # file's statements with infra/template.yaml's, so a file that granted anything would be a
    # second, unchecked copy (and what a deploy that somehow skipped the hook would get).
    functions = json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_functions"]
    files = [settings["iam_policy_file"] for settings in functions.values()]

    assert len(set(files)) == len(files) == 4
    assert sorted(files) == sorted(p.name for p in (ROOT / ".chalice").glob("policy-*.json"))
    for name in files:
        assert json.loads((ROOT / ".chalice" / name).read_text())["Statement"] == [], name


# --- checkov's skips -------------------------------------------------------------------------

SKIPPED = {name: r["Metadata"]["checkov"] for name, r in yaml.safe_load(TEMPLATE.read_text())["Resources"].items()
           if "checkov" in r.get("Metadata", {})}


def test_every_skip_names_a_check_and_says_why():
    assert SKIPPED
    for name, checkov in SKIPPED.items():
        for skip in checkov["skip"]:
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip["comment"]) > 20, (name, skip)


def test_the_merge_and_sam_keep_each_skip_on_its_resource(stage):
    checkov_input = with_stage_skips(stage["cfn"])["Resources"]
    for name, checkov in SKIPPED.items():
        assert stage["sam"]["Resources"][name]["Metadata"]["checkov"] == checkov, name
        assert checkov_input[name]["Metadata"]["checkov"] == checkov, name
    [stage_resource] = [r for r in checkov_input.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stage_resource["Metadata"]["checkov"] == SKIPPED["RestAPI"]  # SAM drops it; checkov_input.py restores it
    assert stage_resource["Properties"]["TracingEnabled"] is True  # CKV_AWS_73 fixed, not skipped


# --- auth ----------------------------------------------------------------------------------------

CALLER_ROUTES = {("/requests", "put"), ("/requests", "get"), ("/requests/{request_id}", "get"),
                 ("/requests/{request_id}/retry", "post")}
OPERATOR_ROUTES = {("/admin/requests", "get"), ("/admin/requests/{owner}/{request_id}", "get"),
                   ("/admin/requests/{owner}/{request_id}/retry", "post")}


def test_every_caller_route_is_guarded_alike_and_operator_routes_by_iam(stage):
    mode = stage["mode"]
    operators = None if mode == "none" else SECURITY["iam"]  # only IAM can grant a role (README "Who can see what")
    for template in (stage["sam"]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"],
                     resources(stage)["RestAPI"]["Properties"]["Body"]):
        guarded = {(path, method): operation.get("security") for path, method, operation in operations(template)}
        assert set(guarded) == CALLER_ROUTES | OPERATOR_ROUTES
        assert {route: guarded[route] for route in CALLER_ROUTES} == dict.fromkeys(CALLER_ROUTES, SECURITY[mode])
        assert {route: guarded[route] for route in OPERATOR_ROUTES} == dict.fromkeys(OPERATOR_ROUTES, operators)
        definitions = {**(DEFINITIONS[mode] or {}), **(DEFINITIONS["iam"] if operators else {})}
        assert template.get("securityDefinitions") == (definitions or None)


def test_an_api_key_stage_has_a_usage_plan_for_its_stage_and_one_key(stage):
    everything = resources(stage)
    plans = [r for r in everything.values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    if stage["mode"] != "api_key":
        assert not plans and "ApiKey" not in everything
        return
    [plan] = plans
    assert plan["Properties"]["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPIapiStage"}}]
    assert everything["ApiUsagePlanKey"]["Properties"] == {"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY",
                                                           "UsagePlanId": {"Ref": "ApiUsagePlan"}}
    assert stage["cfn"]["Outputs"]["ApiKeyId"] == {"Value": {"Ref": "ApiKey"}}


def test_cfn_lint_passes_for_every_stage(stage):
    import subprocess

    result = subprocess.run([str(BIN / "cfn-lint"), str(stage["dir"] / "sam.yaml"),
                             str(stage["dir"] / "cloudformation.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_stack_reads_an_open_template():
    template = yaml.safe_load(TEMPLATE.read_text())

    assert "securityDefinitions" not in template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert [op.get("security") for _, _, op in integration_operations(template)] == [None]
    assert merge_template(template, "none", AUTH) == template


def test_merging_never_replaces_a_resource_of_the_template():
    template = yaml.safe_load(TEMPLATE.read_text())
    template["Resources"]["ApiKey"] = {"Type": "AWS::SNS::Topic"}

    with pytest.raises(ValueError, match="Resources.ApiKey"):
        merge_template(template, "api_key", AUTH)


@pytest.mark.parametrize("environ, mode", [({}, "none"), ({"AUTH_MODE": ""}, "none"), ({"AUTH_MODE": "iam"}, "iam"),
                                           ({"AUTH_MODE": "api_key"}, "api_key")])
def test_auth_mode_defaults_to_open_for_the_local_stack_and_tests(environ, mode):
    assert config.auth_mode(environ) == mode


@pytest.mark.parametrize("value", ["IAM", "cognito", "api-key"])
def test_an_unknown_auth_mode_fails_loudly(value):
    with pytest.raises(ConfigurationError, match="AUTH_MODE must be one of none, iam, api_key"):
        config.auth_mode({"AUTH_MODE": value})


def test_a_stage_not_in_the_config_gets_the_top_level_mode_which_is_closed():
    assert stage_auth_mode("staging") == "iam"


def test_the_route_options_per_mode():
    assert requests_api.route_auth("none") == {}
    assert requests_api.route_auth("api_key") == {"api_key_required": True}
    assert requests_api.route_auth("iam")["authorizer"].to_swagger() == AUTH["iam"]["securityDefinitions"]["sigv4"]


def test_the_routes_this_process_imported_are_open():
    # The tests and the local stack import app.py without the stage's variables: AUTH_MODE unset.
    assert requests_api.AUTH == {}
