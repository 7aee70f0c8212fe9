"""The chalice deploy path end to end on this machine: `python -m devserver aws`, `make infra`, then
the real `chalice deploy` CLI on a temporary copy of the project (so `.chalice/deployed/` never
appears in the repository). What was deployed is compared with what `make package` builds, resolved
against the same base stack, so the two paths cannot drift apart unnoticed."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import boto3
import pytest

from devserver.infra import resolve
from devserver.testing.api import read_until
from infra.base_stack import deployed_refs, stage_base_stack
from infra.chalice_deploy import ssm_parameters
from infra.dynamic_references import resolve_dynamic_references
from tests.conftest import ROOT, ctrl_c_reaches_it
from tests.packaging import RESOURCELESS, deployed_names

pytestmark = pytest.mark.stack

BIN = Path(sys.executable).parent
PROJECT_PARTS = ("app.py", "chalicelib", "infra", "devserver", "requirements.txt", ".chalice")
TIMEOUT_S = 120  # one CLI run; each takes a few seconds here
REGION = "eu-central-1"
FUNCTIONS = {"Process": "process", "APIHandler": "", "HandleFailures": "handle_failures", "Reconcile": "reconcile"}


def start_endpoint(log: Path) -> "tuple[subprocess.Popen[str], str]":
    process = subprocess.Popen([sys.executable, "-m", "devserver", "aws", "--port", "0"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=log.open("w"), preexec_fn=ctrl_c_reaches_it)
    [first] = read_until(process, "AWS_ENDPOINT_URL=", timeout=TIMEOUT_S)
    assert first.startswith("AWS_ENDPOINT_URL=http://127.0.0.1:"), first + log.read_text()
    return process, first.split("=", 1)[1]


@contextlib.contextmanager
def running_endpoint(log: Path) -> Iterator[str]:
    process, url = start_endpoint(log)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


@pytest.fixture
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An endpoint of the test's own: IAM roles are per account, not per region, so scenarios that
    deploy the same stage must not share one."""
    with running_endpoint(tmp_path_factory.mktemp("endpoint") / "endpoint.log") as url:
        yield url


@pytest.fixture(scope="module")
def dev_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_endpoint(tmp_path_factory.mktemp("endpoint") / "endpoint.log") as url:
        yield url


def aws_env(url: str, region: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=region,
               AWS_REGION=region, AWS_ENDPOINT_URL=url)
    return env


def project_copy(target: Path) -> Path:
    """The files `chalice deploy` reads, without a `.chalice/deployed/` record or cached zips."""
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part,
                            ignore=shutil.ignore_patterns("__pycache__", "deployed", "deployments"))
        else:
            shutil.copy2(source, target / part)
    return target


def run(command: List[str], env: Dict[str, str], cwd: Path = ROOT) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def make(target: str, stage: str, env: Dict[str, str]) -> "subprocess.CompletedProcess[str]":
    # -o: the venv running these tests is installed; make must not reinstall it.
    return run(["make", "--no-print-directory", "-o", ".venv/.installed", target, f"STAGE={stage}"], env)


def chalice_deploy(project: Path, stage: str, env: Dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return run([str(BIN / "chalice"), "--project-dir", str(project), "deploy", "--stage", stage], env)


def client(service: str, env: Dict[str, str]) -> Any:
    make_client: Any = boto3.client  # its stubs overload on each service's literal name
    return make_client(service, region_name=env["AWS_DEFAULT_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def base_refs(stage: str, env: Dict[str, str]) -> Dict[str, str]:
    return deployed_refs(client("cloudformation", env), stage_base_stack(ROOT, stage), stage)


def deployed_state(env: Dict[str, str], stage: str) -> Dict[str, Any]:
    """What a deploy leaves, without what changes by itself (timestamps, Chalice's new API deployment)."""
    apigateway, lam, iam = client("apigateway", env), client("lambda", env), client("iam", env)
    [api] = apigateway.get_rest_apis()["items"]
    state: Dict[str, Any] = {"api": {k: api[k] for k in ("id", "name", "binaryMediaTypes")}, "methods": {},
                             "functions": {}, "roles": {}}
    # An overwrite recreates the validators, so they are named here by name, not by id.
    validators = {v.pop("id"): v for v in apigateway.get_request_validators(restApiId=api["id"])["items"]}
    state["validators"] = sorted(validators.values(), key=lambda v: v["name"])
    for resource in apigateway.get_resources(restApiId=api["id"])["items"]:
        for verb in resource.get("resourceMethods", {}):
            method = apigateway.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod=verb)
            method.pop("ResponseMetadata")
            if "requestValidatorId" in method:
                method["requestValidator"] = validators[method.pop("requestValidatorId")]["name"]
            state["methods"][f"{verb} {resource['path']}"] = method
    state["gateway_responses"] = apigateway.get_gateway_responses(restApiId=api["id"])["items"]
    for function in lam.list_functions()["Functions"]:
        state["functions"][function["FunctionName"]] = {k: function.get(k) for k in (
            "Role", "Handler", "Runtime", "Timeout", "MemorySize", "Environment", "Layers", "CodeSha256")}
    state["mappings"] = sorted(({k: v for k, v in m.items() if k != "LastModified"}
                                for m in lam.list_event_source_mappings()["EventSourceMappings"]),
                               key=lambda m: m["EventSourceArn"])
    for role in iam.list_roles()["Roles"]:
        if role["RoleName"].startswith(f"storefirst-{stage}-") and "-base-" not in role["RoleName"]:
            state["roles"][role["RoleName"]] = role_policies(iam, role["RoleName"])
    return state


def role_policies(iam: Any, role: str) -> Dict[str, Any]:
    inline = {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
              for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}
    return {"inline": inline, "managed": iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}


@pytest.fixture(scope="module")
def dev(dev_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Stage dev: make infra twice, chalice deploy twice, with the state after each deploy."""
    env = aws_env(dev_endpoint, REGION)
    project = project_copy(tmp_path_factory.mktemp("project"))
    infra = [make("infra", "dev", env), make("infra", "dev", env)]
    first = chalice_deploy(project, "dev", env)
    assert first.returncode == 0, first.stdout + first.stderr
    after_first = deployed_state(env, "dev")
    second = chalice_deploy(project, "dev", env)
    assert second.returncode == 0, second.stdout + second.stderr
    return {"env": env, "project": project, "infra": infra, "deploys": [first, second], "refs": base_refs("dev", env),
            "states": [after_first, deployed_state(env, "dev")]}


@pytest.fixture(scope="module")
def package(project_package: Any) -> Dict[str, Any]:
    """`make package STAGE=dev`'s translated template."""
    resources: Dict[str, Any] = project_package("dev")["cfn"]["Resources"]
    return resources


def test_make_infra_creates_the_base_stack_then_changes_nothing_and_says_so(dev):
    first, second = dev["infra"]

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "storefirst-dev-base: created" in first.stdout.splitlines()
    assert "storefirst-dev-base: unchanged (the deployed template is already this one; nothing sent)" in \
        second.stdout.splitlines()
    assert f"RequestsTableStreamArn           {dev['refs']['RequestsTable.StreamArn']}" in second.stdout


def test_a_second_chalice_deploy_changes_nothing(dev):
    after_first, after_second = dev["states"]

    assert after_second == after_first
    assert "Updating rest API" in dev["deploys"][1].stdout  # the whole definition was sent again: route kept
    assert not (ROOT / ".chalice" / "deployed").exists()


def test_the_put_route_is_the_package_paths(dev, package):
    body = package["RestAPI"]["Properties"]["Body"]
    expected = resolve(body["paths"]["/requests"]["put"], dev["refs"])
    integration = expected["x-amazon-apigateway-integration"]
    state = dev["states"][1]

    put = state["methods"]["PUT /requests"]
    deployed = put["methodIntegration"]
    assert (deployed["type"], deployed["passthroughBehavior"]) == (integration["type"].upper(),
                                                                    integration["passthroughBehavior"].upper())
    for key in ("uri", "credentials", "httpMethod", "requestTemplates"):
        assert deployed[key] == integration[key], key
    assert {r.get("selectionPattern", "default"): (r["statusCode"], r.get("responseTemplates"))
            for r in deployed["integrationResponses"].values()} == {
        pattern: (r["statusCode"], r.get("responseTemplates")) for pattern, r in integration["responses"].items()}
    assert set(put["methodResponses"]) == set(expected["responses"])
    assert put["requestParameters"] == {"method.request.header.Idempotency-Key": False}
    assert put["authorizationType"] == "NONE"  # stage dev: AUTH_MODE none
    assert put["requestValidator"] == expected["x-amazon-apigateway-request-validator"]
    [validator] = [v for v in state["validators"] if v["name"] == put["requestValidator"]]
    declared = body["x-amazon-apigateway-request-validators"][put["requestValidator"]]
    assert (validator["validateRequestBody"], validator["validateRequestParameters"]) == (
        declared["validateRequestBody"], declared["validateRequestParameters"])
    assert {g["responseType"]: (str(g["statusCode"]), g["responseTemplates"]) for g in state["gateway_responses"]} \
        == {t: (str(g["statusCode"]), g["responseTemplates"])
            for t, g in body["x-amazon-apigateway-gateway-responses"].items()}
    # The same routes as the package path's API, Chalice's and the template's.
    assert set(state["methods"]) == {f"{verb.upper()} {path}" for path, verbs in body["paths"].items()
                                     for verb in verbs}


def test_every_mapping_setting_is_the_package_paths(dev, package):
    mappings = [r["Properties"] for r in package.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    deployed = {m["EventSourceArn"]: m for m in dev["states"][1]["mappings"]}

    assert len(mappings) == len(deployed) == 2
    for properties in mappings:
        expected = resolve({k: v for k, v in properties.items() if k != "FunctionName"}, dev["refs"])
        mapping = deployed[expected["EventSourceArn"]]
        assert {k: mapping.get(k) for k in expected} == expected
        function = FUNCTIONS[properties["FunctionName"]["Ref"]]
        assert mapping["FunctionArn"].endswith(f":function:storefirst-dev-{function}")
    stream = deployed[dev["refs"]["RequestsTable.StreamArn"]]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and stream["BisectBatchOnFunctionError"]
    assert stream["DestinationConfig"] == {"OnFailure": {"Destination": dev["refs"]["ProcessorFailureBucket.Arn"]}}
    assert len(stream["FilterCriteria"]["Filters"]) == 3


def test_roles_are_as_least_privileged_as_the_package_paths(dev, package):
    roles = dev["states"][1]["roles"]

    assert set(roles) == {f"storefirst-dev-{name}" for name in ("process", "api_handler", "handle_failures",
                                                                 "reconcile")}
    for logical, role in (("ProcessRole", "process"), ("ApiHandlerRole", "api_handler"),
                          ("HandleFailuresRole", "handle_failures"), ("ReconcileRole", "reconcile")):
        expected = [s for policy in package[logical]["Properties"]["Policies"]
                    for s in resolve(policy["PolicyDocument"], dev["refs"])["Statement"]]
        [document] = roles[f"storefirst-dev-{role}"]["inline"].values()
        assert document["Statement"] == expected, logical
        assert roles[f"storefirst-dev-{role}"]["managed"] == []
        for statement in document["Statement"]:
            assert "*" not in json.dumps(statement["Action"])
            if statement.get("Sid") == "WriteTraces":  # X-Ray's actions take no resource (docs: IAM-4)
                assert statement["Resource"] == "*" and set(statement["Action"]) == RESOURCELESS
                continue
            assert all(r.count("*") == 0 or r.endswith(("/stream/*", ":*", "/aws/lambda/*")) for r in
                       ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]))


def test_functions_get_the_base_stacks_table_and_the_package_paths_settings(dev, package):
    functions = dev["states"][1]["functions"]

    for logical, suffix in FUNCTIONS.items():
        properties = resolve({k: package[logical]["Properties"][k] for k in ("Environment", "Layers")}, dev["refs"])
        # The layer's {{resolve:ssm:...}}, read from the endpoint's SSM as CloudFormation reads AWS's.
        properties = resolve_dynamic_references(properties, ssm_parameters(client("ssm", dev["env"])))
        deployed = functions["storefirst-dev" + (f"-{suffix}" if suffix else "")]
        assert deployed["Environment"] == properties["Environment"]
        assert [layer["Arn"] for layer in deployed["Layers"]] == properties["Layers"]
        assert deployed["Environment"]["Variables"]["TABLE_NAME"] == dev["refs"]["RequestsTable"]
        assert (deployed["Timeout"], deployed["MemorySize"]) == (package[logical]["Properties"]["Timeout"],
                                                                  package[logical]["Properties"]["MemorySize"])
    # LoggingConfig is sent too (tests/test_chalice_hooks.py); moto 5.2.5 keeps no LoggingConfig to read back.


def test_the_base_stack_holds_the_package_paths_own_resources(dev, package):
    deployed = client("cloudformation", dev["env"]).get_template(StackName="storefirst-dev-base")["TemplateBody"]
    deployed = json.loads(deployed) if isinstance(deployed, str) else deployed

    for name, resource in deployed["Resources"].items():
        assert resource == json.loads(deployed_names(json.dumps(package[name]))), name
    assert {"RequestsTable", "ProcessorFailureQueue", "ApiGatewayPutItemRole", "AlarmTopic",
            "ProcessorIteratorAgeAlarm"} <= set(deployed["Resources"])


def test_a_deploy_onto_a_recreated_table_is_refused_until_asked_to_move_the_mapping(endpoint, tmp_path):
    env = aws_env(endpoint, REGION)
    project = project_copy(tmp_path)
    assert make("infra", "dev", env).returncode == 0
    assert chalice_deploy(project, "dev", env).returncode == 0
    old_stream = base_refs("dev", env)["RequestsTable.StreamArn"]
    deleted = make("infra-delete", "dev", env)
    assert "kept (DeletionPolicy Retain): " in deleted.stdout and "RequestsTable" in deleted.stdout
    assert make("infra", "dev", env).returncode == 0
    new_stream = base_refs("dev", env)["RequestsTable.StreamArn"]

    refused = chalice_deploy(project, "dev", env)

    assert refused.returncode == 1
    record = json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())["resources"]
    [old] = [r for r in record if r["name"] == "process-dynamodb-event-source"]
    assert old_stream in refused.stderr and new_stream in refused.stderr
    assert refused.stderr.rstrip().endswith(f"STOREFIRST_REPLACE_MAPPINGS={old['event_uuid']} chalice deploy "
                                            f"--stage dev")
    lam = client("lambda", env)
    assert lam.get_event_source_mapping(UUID=old["event_uuid"])["EventSourceArn"] == old_stream  # untouched

    moved = chalice_deploy(project, "dev", {**env, "STOREFIRST_REPLACE_MAPPINGS": old["event_uuid"]})

    assert moved.returncode == 0, moved.stdout + moved.stderr
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    streams = [m for m in mappings if ":dynamodb:" in m["EventSourceArn"]]
    assert [m["EventSourceArn"] for m in streams] == [new_stream]
    assert streams[0]["FilterCriteria"]["Filters"] and streams[0]["MaximumRetryAttempts"] == 10
    assert len(mappings) == 2  # the recreated queue's mapping was moved by Chalice itself
    assert chalice_deploy(project, "dev", env).returncode == 0


def test_chalice_delete_removes_what_chalice_made_and_leaves_the_base_stack(endpoint, tmp_path):
    env = aws_env(endpoint, REGION)
    project = project_copy(tmp_path)
    assert make("infra", "dev", env).returncode == 0
    assert chalice_deploy(project, "dev", env).returncode == 0

    deleted = run([str(BIN / "chalice"), "--project-dir", str(project), "delete", "--stage", "dev"], env)

    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    lam = client("lambda", env)
    assert lam.list_functions()["Functions"] == lam.list_event_source_mappings()["EventSourceMappings"] == []
    assert client("apigateway", env).get_rest_apis()["items"] == []
    assert [r for r in client("iam", env).list_roles()["Roles"] if "-base-" not in r["RoleName"]] == []
    assert json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())["resources"] == []
    refs = base_refs("dev", env)  # the base stack, its table included, is untouched
    assert client("dynamodb", env).describe_table(TableName=refs["RequestsTable"])["Table"]["TableStatus"] == "ACTIVE"


def test_prod_guards_the_put_route_as_it_guards_chalices_routes(endpoint, tmp_path):
    env = aws_env(endpoint, REGION)
    assert make("infra", "prod", env).returncode == 0

    deployed = chalice_deploy(project_copy(tmp_path), "prod", env)

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "applied for AUTH_MODE iam" in deployed.stdout
    methods = deployed_state(env, "prod")["methods"]
    assert {name: m["authorizationType"] for name, m in methods.items()} == {name: "AWS_IAM" for name in methods}
    assert "PUT /requests" in methods


def test_ctrl_c_stops_the_endpoint(tmp_path):
    process, url = start_endpoint(tmp_path / "endpoint.log")

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=10) == 0
