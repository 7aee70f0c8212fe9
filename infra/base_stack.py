"""The deploy path's base stack: what `chalice deploy` does not create, made from infra/template.yaml.

`chalice deploy` creates Lambda functions, their roles, the REST API, event source mappings and
schedules, and nothing else (docs: CHALICE-9). The table, the failure queue, the PUT route's role,
the alarm topic, the alarms and the functions' log groups come from one CloudFormation stack per
stage, `<app_name>-<stage>-base`. Its template is not a second copy of theirs: it is computed from
infra/template.yaml, the file `make package` merges, by these rules:

- a resource there with a `Type` is one of ours and goes in as it is (DeletionPolicy included);
  the others patch Chalice's resources and are applied by infra/chalice_deploy.py;
- a `Ref` to a Chalice function (the alarms' FunctionName), or a `${Process}` in an `Fn::Sub` (the
  dashboard's body), becomes the name `chalice deploy` gives it (`storefirst-dev-process`); any
  other reference to a Chalice resource is refused: none exists before `chalice deploy`.

So the log groups keep CloudFormation's generated names, as in the package path: a retained group
(DeletionPolicy Retain, docs: CFN-1) cannot block the stack's re-creation, nor can a
`/aws/lambda/<name>` group Lambda made earlier (docs: CFN-2). The functions write to them through
their LoggingConfig (infra/chalice_deploy.py sends it); `chalice logs`, which reads
`/aws/lambda/<name>`, finds nothing there.

Outputs: what the patches read, `Ref` under the logical id and attributes under id + attribute
(RequestsTable: the table's name, RequestsTableArn, RequestsTableStreamArn,
ProcessorFailureQueueArn, ApiGatewayPutItemRoleArn, ProcessLogGroupArn, ...), plus the `Ref` of
the queue (its URL) and the topic (its ARN) for operators.

    make infra STAGE=dev                             python -m infra.base_stack deploy --stage dev
    python -m infra.base_stack show --stage dev      the template, offline
    python -m infra.base_stack delete --stage dev    the stack; what has DeletionPolicy Retain stays

Every client honours AWS_ENDPOINT_URL (`python -m devserver aws` is such an endpoint).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = ["CAPABILITY_IAM"]  # the PUT route's role; CloudFormation names it
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
# Whose Ref an operator needs besides what the patches read: the table (its name), the queue (its URL:
# inspect or redrive failures), the topic (its ARN: subscribe to the alarms).
_OPERATOR_REFS = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic")
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


class BaseStackError(RuntimeError):
    """The base stack cannot be built, deployed or read as the deploy path needs it."""


@dataclass(frozen=True)
class BaseStack:
    name: str
    template: Mapping[str, Any]
    refs: Mapping[str, str]  # output key -> what it holds: "RequestsTable" (Ref) or "RequestsTable.StreamArn"

    def body(self) -> str:
        return json.dumps(self.template, indent=1, sort_keys=True)


def stack_name(app_name: str, stage: str) -> str:
    return f"{app_name}-{stage}-base"


def references(value: Any) -> Iterator[Tuple[str, Optional[str]]]:
    """(logical id, attribute or None) of every Ref, Fn::GetAtt and Fn::Sub variable inside value."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (key, argument), = value.items()
        if key == "Ref":
            yield argument, None
            return
        if key == "Fn::GetAtt":
            target, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            yield target, attribute
            return
        if key == "Fn::Sub":
            text, variables = argument if isinstance(argument, list) else (argument, {})
            for name in _SUB_VARIABLE.findall(text):
                if name not in variables:
                    target, _, attribute = name.partition(".")
                    yield target, attribute or None
            yield from references(list(variables.values()))
            return
    for item in value.values():
        yield from references(item)


def base_template(template: Mapping[str, Any], functions: Mapping[str, str], stack: str) -> BaseStack:
    """The base stack of infra/template.yaml `template`; `functions`: logical id -> deployed name."""
    resources = template["Resources"]
    # Rebuilt, not shared: the template stays as it was.
    ours = {name: _function_names_for_refs(r, functions) for name, r in resources.items() if "Type" in r}
    patches = {name: r for name, r in resources.items() if "Type" not in r}
    for name, resource in ours.items():
        foreign = {t for t, _ in references(resource) if t not in ours and "::" not in t}
        if foreign:
            raise BaseStackError(f"infra/template.yaml: {name} refers to {sorted(foreign)}, which only "
                                 f"chalice deploy creates: the base stack cannot hold it")
    outputs: Dict[str, Any] = {}
    refs: Dict[str, str] = {}
    wanted: Set[Tuple[str, Optional[str]]] = {(t, a) for t, a in references(list(patches.values())) if t in ours}
    wanted |= {(name, None) for name, r in ours.items() if r["Type"] in _OPERATOR_REFS}
    for target, attribute in sorted(wanted, key=lambda ta: (ta[0], ta[1] or "")):
        key = target + (attribute or "")
        if key in refs:
            raise BaseStackError(f"output {key} would hold both {refs[key]} and {target}.{attribute}")
        refs[key] = f"{target}.{attribute}" if attribute else target
        outputs[key] = {"Description": f"Fn::GetAtt {target}.{attribute}" if attribute else f"Ref {target}",
                        "Value": {"Fn::GetAtt": [target, attribute]} if attribute else {"Ref": target}}
    body = {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"{stack}: what chalice deploy does not create (by infra/base_stack.py)",
            "Resources": ours, "Outputs": outputs}
    return BaseStack(stack, body, refs)


def _function_names_for_refs(value: Any, functions: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_function_names_for_refs(item, functions) for item in value]
    if isinstance(value, dict):
        if list(value) == ["Ref"] and value["Ref"] in functions:
            return functions[value["Ref"]]
        if list(value) == ["Fn::Sub"]:
            return {"Fn::Sub": _function_names_in_sub(value["Fn::Sub"], functions)}
        return {key: _function_names_for_refs(item, functions) for key, item in value.items()}
    return value


def _function_names_in_sub(argument: Any, functions: Mapping[str, str]) -> Any:
    """An Fn::Sub argument with each `${<function>}` written as the function's deployed name (a
    variable the Sub defines itself is left to it)."""
    text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})

    def named(match: "re.Match[str]") -> str:
        name = match.group(1)
        return functions[name] if name in functions and name not in variables else match.group(0)

    text = _SUB_VARIABLE.sub(named, text)
    return [text, _function_names_for_refs(variables, functions)] if isinstance(argument, list) else text


def stage_base_stack(project_dir: Path, stage: str) -> BaseStack:
    """The stage's base stack, built from the project's infra/template.yaml and Chalice app (imported)."""
    from infra.chalice_graph import function_names, stage_application

    application = stage_application(project_dir, stage)
    app_name = json.loads((project_dir / ".chalice" / "config.json").read_text())["app_name"]
    template = yaml.safe_load((project_dir / "infra" / "template.yaml").read_text())
    return base_template(template, function_names(application), stack_name(app_name, stage))


def _described(cloudformation: Any, name: str) -> Optional[Dict[str, Any]]:
    try:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stack


def _deployed_template(cloudformation: Any, name: str) -> Any:
    body = cloudformation.get_template(StackName=name)["TemplateBody"]
    if isinstance(body, str):  # botocore decodes JSON bodies itself (docs: CFN-3); moto's may come back as text
        try:
            return json.loads(body)
        except ValueError:
            return body
    return json.loads(json.dumps(body))  # OrderedDict -> dict, for a plain comparison


def deploy(cloudformation: Any, stack: BaseStack, delay: int = 5) -> str:
    """Create or update the stack; "created", "updated" or "unchanged" (nothing sent)."""
    current = _described(cloudformation, stack.name)
    waiter_config = {"Delay": delay, "MaxAttempts": 720}
    if current is None:
        cloudformation.create_stack(StackName=stack.name, TemplateBody=stack.body(), Capabilities=CAPABILITIES)
        _wait(cloudformation, "stack_create_complete", stack.name, waiter_config)
        return "created"
    if current["StackStatus"] not in _DONE:
        raise BaseStackError(f"{stack.name} is {current['StackStatus']}: wait for it to settle, or delete a "
                             f"stack whose creation failed (python -m infra.base_stack delete)")
    if _deployed_template(cloudformation, stack.name) == stack.template:
        return "unchanged"
    try:
        cloudformation.update_stack(StackName=stack.name, TemplateBody=stack.body(), Capabilities=CAPABILITIES)
    except cloudformation.exceptions.ClientError as exc:
        if "No updates are to be performed" in str(exc):  # docs: CFN-3
            return "unchanged"
        raise
    _wait(cloudformation, "stack_update_complete", stack.name, waiter_config)
    return "updated"


def _wait(cloudformation: Any, waiter: str, name: str, config: Mapping[str, int]) -> None:
    from botocore.exceptions import WaiterError

    try:
        cloudformation.get_waiter(waiter).wait(StackName=name, WaiterConfig=dict(config))
    except WaiterError as exc:
        failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                  for e in cloudformation.describe_stack_events(StackName=name)["StackEvents"]
                  if e["ResourceStatus"].endswith("_FAILED")]
        raise BaseStackError(f"{name}: {exc}; {'; '.join(failed[:5]) or 'no failed resource reported'}") from exc


def deployed_refs(cloudformation: Any, stack: BaseStack, stage: str) -> Dict[str, str]:
    """What the deployed stack holds, keyed as the template refers to it ("RequestsTable.Arn"), plus
    AWS::Region / AWS::AccountId / AWS::Partition of the stack. Refuses a missing or outdated stack."""
    current = _described(cloudformation, stack.name)
    if current is None:
        raise BaseStackError(f"there is no base stack {stack.name} here (region "
                             f"{cloudformation.meta.region_name}): run `make infra STAGE={stage}` first")
    if current["StackStatus"] not in _DONE:
        raise BaseStackError(f"base stack {stack.name} is {current['StackStatus']}: `make infra STAGE={stage}`")
    if _deployed_template(cloudformation, stack.name) != stack.template:
        raise BaseStackError(f"base stack {stack.name} is not what infra/template.yaml now makes: run "
                             f"`make infra STAGE={stage}` first, so both deploy paths have the same resources")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in current.get("Outputs", [])}
    missing = sorted(set(stack.refs) - set(outputs))
    if missing:
        raise BaseStackError(f"base stack {stack.name} lacks outputs {missing}: `make infra STAGE={stage}`")
    _, partition, _, region, account, _ = current["StackId"].split(":", 5)
    refs = {ref: outputs[key] for key, ref in stack.refs.items()}
    refs.update({"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account})
    return refs


def delete(cloudformation: Any, stack: BaseStack, delay: int = 5) -> List[str]:
    """Delete the stack; the logical ids it leaves behind (DeletionPolicy Retain)."""
    if _described(cloudformation, stack.name) is None:
        return []
    cloudformation.delete_stack(StackName=stack.name)
    _wait(cloudformation, "stack_delete_complete", stack.name, {"Delay": delay, "MaxAttempts": 720})
    return sorted(name for name, r in stack.template["Resources"].items() if r.get("DeletionPolicy") == "Retain")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.base_stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("deploy", "show", "delete"))
    parser.add_argument("--stage", required=True)
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    stack = stage_base_stack(args.project_dir.resolve(), args.stage)
    if args.action == "show":
        print(stack.body())
        return 0
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudformation = boto3.Session(profile_name=args.profile).client("cloudformation")
        if args.action == "delete":
            kept = delete(cloudformation, stack)
            print(f"{stack.name}: deleted; kept (DeletionPolicy Retain): {', '.join(kept) or 'nothing'}")
            return 0
        result = deploy(cloudformation, stack)
        refs = deployed_refs(cloudformation, stack, args.stage)
    except (BaseStackError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{stack.name}: {result}" + (" (the deployed template is already this one; nothing sent)"
                                       if result == "unchanged" else ""))
    for key in sorted(stack.refs):
        print(f"  {key:32} {refs[stack.refs[key]]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
