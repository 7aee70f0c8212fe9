"""infra/chalice_deploy.py: the canary on the Chalice internals it hooks and relies on, what its
request handlers add, and the refusal of a mapping on another stream. Nothing is sent anywhere:
requests are answered in process, before they would leave botocore."""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
from typing import Any, Dict, List, Tuple

import botocore.session
import chalice
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from chalice.cli.factory import CLIFactory
from chalice.config import DeployedResources

from devserver.testing.projects import with_stage
from infra.chalice_deploy import (
    CHALICE_VERSION,
    HOOKED,
    REPLACE_MAPPINGS,
    Additions,
    StaleMappingError,
    replaced_stream_mappings,
)
from infra.chalice_graph import logical_ids, stage_application
from infra.chalice_patches import MappingSettings, PatchError, WireSettings
from tests.conftest import ROOT

# What the chalice deploy path relies on in chalice 1.34.0, with a digest of its source and what to
# re-check when the digest changes (docs/chalice.md has the facts, CHALICE-8 to CHALICE-16).
RELIED_ON: Dict[str, Tuple[str, str]] = {
    "chalice.deploy.appgraph.ApplicationGraphBuilder.build": (
        "c64558ee71512df7", "hooked: it must still return the whole graph, before any AWS call (CHALICE-8)"),
    "chalice.awsclient.TypedAWSClient._client": (
        "a7742c95663570ef", "hooked: every botocore client of the deploy must still be made here (CHALICE-14)"),
    "chalice.awsclient.TypedAWSClient.verify_event_source_arn_current": (
        "7fdca5f009f0e9c9", "hooked: RemoteState must still ask it whether a stream mapping exists (CHALICE-11)"),
    "chalice.cli.deploy": (
        "1e7b391067751f99", "the Deployer must still be built before app.py is imported (CHALICE-8)"),
    "chalice.deploy.deployer.Deployer._deploy": (
        "6385aa61a7a03baf", "order: validate (imports app.py), graph, build stage, plan, sweep, execute (CHALICE-8)"),
    "chalice.deploy.deployer.BaseDeployStep.handle": (
        "6f5b3cdcdd643ba4", "build steps dispatch on the class name: a plain IAMPolicy is left alone (CHALICE-15)"),
    "chalice.deploy.deployer.LambdaEventSourcePolicyInjector._needs_policy_injected": (
        "83a10a4229ee9f0f", "no wildcard stream/queue statement is added to a plain IAMPolicy (CHALICE-15)"),
    "chalice.deploy.planner.RemoteState._resource_exists_dynamodbeventsource": (
        "98e2843f37ffb87e", "a stream mapping is checked against the recorded stream (CHALICE-11)"),
    "chalice.deploy.planner.PlanStage._plan_dynamodbeventsource": (
        "f2f1afc59c4331aa", "update keeps the recorded stream; create uses the model's (CHALICE-11)"),
    "chalice.deploy.planner.PlanStage._plan_managediamrole": (
        "5dd917032275264e", "a role gets policy.document as its one inline policy, on every deploy (CHALICE-9)"),
    "chalice.deploy.sweeper.ResourceSweeper._determine_dynamodb_event": (
        "25e5e29bb0f0c20a", "a mapping recorded on another stream is deleted after the new one exists (CHALICE-13)"),
    "chalice.awsclient.TypedAWSClient.create_lambda_event_source": (
        "82f5caf804fb6807", "CreateEventSourceMapping carries EventSourceArn and FunctionName (CHALICE-4)"),
    "chalice.awsclient.TypedAWSClient.update_lambda_event_source": (
        "69a5ebf1a7ada2f4", "UpdateEventSourceMapping carries the UUID (CHALICE-4)"),
    "chalice.awsclient.TypedAWSClient.import_rest_api": (
        "16bfad484b585beb", "ImportRestApi's body is the whole definition, as JSON (CHALICE-4)"),
    "chalice.awsclient.TypedAWSClient.update_api_from_swagger": (
        "d91bc0a40341f114", "PutRestApi overwrites with the whole definition, as JSON (CHALICE-4)"),
    "chalice.awsclient.TypedAWSClient.create_function": (
        "08bdd9761afe520b", "CreateFunction names the function by FunctionName (LoggingConfig is added)"),
    "chalice.awsclient.TypedAWSClient._update_function_config": (
        "add71821cbc3212b", "UpdateFunctionConfiguration names the function by FunctionName"),
    "chalice.package.TemplateDeepMerger._merge_dict": (
        "0ffb184dd84b8e35", "the package path's merge, reused for the definition (CHALICE-3)"),
    "chalice.package.SAMTemplateGenerator._generate_restapi": (
        "14c0084a122cf278", "the API handler's logical id is APIHandler, the API's RestAPI (CHALICE-10)"),
    "chalice.package.SAMTemplateGenerator._register_cfn_resource_name": (
        "67f199f8c452132a", "other logical ids are to_cfn_resource_name(resource_name) (CHALICE-10)"),
    "chalice.utils.to_cfn_resource_name": ("043f426554c63d25", "the naming rule itself (CHALICE-10)"),
}


def _resolve(qualname: str) -> Any:
    parts = qualname.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
            break
        except ImportError:
            continue
    for part in parts[split:]:
        found = getattr(found, part)
    return getattr(found, "callback", found)  # a click command: its function


def test_chalice_is_the_version_the_deploy_hook_was_written_for():
    pinned = re.search(r"^chalice==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)

    assert chalice.__version__ == CHALICE_VERSION == (pinned and pinned.group(1)), (
        f"chalice {chalice.__version__} (pinned {pinned and pinned.group(1)}) is not {CHALICE_VERSION}, which "
        f"infra/chalice_deploy.py was written for: re-check every entry of RELIED_ON in {__file__} and the "
        f"facts CHALICE-8 to CHALICE-16 in docs/chalice.md, then update CHALICE_VERSION and the digests")


def test_every_hooked_function_is_watched():
    assert set(HOOKED) <= set(RELIED_ON)


@pytest.mark.parametrize("qualname", sorted(RELIED_ON))
def test_what_the_deploy_hook_relies_on_is_unchanged(qualname):
    digest, recheck = RELIED_ON[qualname]

    source = inspect.getsource(_resolve(qualname))

    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"{qualname} changed in chalice {chalice.__version__}; infra/chalice_deploy.py relies on it: {recheck}. "
        f"Re-check that, then update its digest here")


def answered_in_process(service: str) -> Tuple[Any, List[Tuple[str, Dict[str, Any]]]]:
    """A botocore client whose requests are recorded (operation, request) and answered `{}` in process."""
    client = botocore.session.Session().create_client(
        service, region_name="eu-central-1", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing", aws_secret_access_key="testing")
    sent: List[Tuple[str, Dict[str, Any]]] = []

    def answer(params: Dict[str, Any], model: Any, **_: Any) -> Any:
        sent.append((model.name, json.loads(params["body"] or b"{}")))
        return AWSResponse("", 200, HTTPHeaders(), None), {}  # what botocore's Stubber answers with

    client.meta.events.register(f"before-call.{service}", answer)
    return client, sent


UUID = "11111111-1111-4111-8111-111111111111"
STREAM = "arn:aws:dynamodb:eu-central-1:123456789012:table/T/stream/2026-12-01T00:00:00.000"
SETTINGS = MappingSettings("storefirst-dev-process", STREAM, {
    "StartingPosition": "LATEST", "MaximumRetryAttempts": 10, "FilterCriteria": {"Filters": [{"Pattern": "{}"}]}})


@pytest.fixture
def additions() -> Additions:
    additions = Additions()
    additions.wire = WireSettings(
        swagger={"paths": {"/requests": {"put": {"x-amazon-apigateway-integration": {"type": "aws"}}}}},
        mappings=(SETTINGS,), logging={"storefirst-dev-process": {"LogGroup": "G", "LogFormat": "JSON"}})
    additions.by_uuid = {UUID: SETTINGS}
    return additions


def test_mapping_requests_get_the_templates_settings(additions):
    client, sent = answered_in_process("lambda")
    additions.register(client)

    client.create_event_source_mapping(EventSourceArn=STREAM, BatchSize=100, StartingPosition="TRIM_HORIZON",
                                       FunctionName="arn:aws:lambda:eu-central-1:1:function:storefirst-dev-process")
    client.update_event_source_mapping(UUID=UUID, BatchSize=100)
    client.update_event_source_mapping(UUID=UUID.replace("1", "2"), BatchSize=7)  # not one of ours

    (_, created), (_, updated), (_, untouched) = sent
    assert created["StartingPosition"] == "LATEST"  # the template wins, as in the package path's merge
    assert created["FilterCriteria"] == SETTINGS.parameters["FilterCriteria"] and created["MaximumRetryAttempts"] == 10
    assert updated == {"BatchSize": 100, "MaximumRetryAttempts": 10, "FilterCriteria": SETTINGS.parameters[
        "FilterCriteria"]}  # StartingPosition is fixed at creation
    assert untouched == {"BatchSize": 7}


def test_functions_get_their_logging_config(additions):
    client, sent = answered_in_process("lambda")
    additions.register(client)

    client.create_function(FunctionName="storefirst-dev-process", Role="r", Code={"ZipFile": b"z"})
    client.update_function_configuration(FunctionName="storefirst-dev-process", Timeout=120)
    client.update_function_configuration(FunctionName="storefirst-dev", Timeout=60)

    assert [body.get("LoggingConfig") for _, body in sent] == [{"LogGroup": "G", "LogFormat": "JSON"}] * 2 + [None]


def test_every_definition_chalice_imports_or_overwrites_keeps_the_put_route(additions):
    client, sent = answered_in_process("apigateway")
    additions.register(client)
    chalices = {"swagger": "2.0", "info": {"title": "storefirst"},
                "paths": {"/requests": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy"}}}}}

    client.import_rest_api(body=json.dumps(chalices))
    client.put_rest_api(restApiId="a1", mode="overwrite", body=json.dumps(chalices))

    for _, body in sent:
        assert set(body["paths"]["/requests"]) == {"get", "put"}
        assert body["paths"]["/requests"]["put"]["x-amazon-apigateway-integration"] == {"type": "aws"}


def test_a_mapping_on_another_stream_is_refused_with_the_command_that_moves_it(monkeypatch):
    application = stage_application(ROOT, "dev")
    source: Any = logical_ids(application)["ProcessDynamodbEventSource"]
    source.stream_arn = STREAM
    deployed = DeployedResources({"resources": [
        {"name": "process-dynamodb-event-source", "resource_type": "dynamodb_event", "event_uuid": "u-1",
         "stream_arn": STREAM.replace("table/T", "table/OLD"), "lambda_arn": "arn:aws:lambda:x"}]})
    monkeypatch.delenv(REPLACE_MAPPINGS, raising=False)

    with pytest.raises(StaleMappingError, match=r"(?s)process-dynamodb-event-source \(u-1\).*table/OLD.*table/T/"
                                                r".*\n  STOREFIRST_REPLACE_MAPPINGS=u-1 chalice deploy --stage dev$"):
        replaced_stream_mappings(application, deployed, "storefirst-dev-base", "dev")
    monkeypatch.setenv(REPLACE_MAPPINGS, "u-1")
    assert replaced_stream_mappings(application, deployed, "storefirst-dev-base", "dev") == {"u-1"}
    current = DeployedResources({"resources": [dict(deployed.resource_values("process-dynamodb-event-source"),
                                                    stream_arn=STREAM)]})
    assert replaced_stream_mappings(application, current, "storefirst-dev-base", "dev") == set()


def test_a_stage_whose_auth_needs_the_api_itself_is_sent_to_make_deploy(tmp_path):
    project = with_stage(tmp_path, "keyed", "api_key")
    config = CLIFactory(str(project)).create_config_obj(chalice_stage_name="keyed")

    with pytest.raises(PatchError, match=r"AUTH_MODE api_key adds \['ApiKey', 'ApiUsagePlan', 'ApiUsagePlanKey'\], "
                                         r"which need the REST API .* deploy stage keyed with `make deploy`"):
        Additions().prepare(stage_application(ROOT, "dev"), config, "keyed")
