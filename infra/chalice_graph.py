"""The Chalice application graph of a stage, and the logical id `chalice package` gives each model.

Both deploy paths start from the same graph (chalice.deploy.appgraph): `chalice package` names
each model with a CloudFormation logical id, which is what infra/template.yaml patches (`Process`,
`ProcessRole`, `ProcessDynamodbEventSource`, `APIHandler`, `RestAPI`), and `chalice deploy` gives
it a physical name (`storefirst-dev-process`, role `storefirst-dev-process`, and `storefirst-dev`
for the API handler). The deploy path reads the template through these ids (docs: CHALICE-10).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from chalice.cli.factory import CLIFactory
from chalice.deploy import models
from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
from chalice.utils import to_cfn_resource_name

REST_API_ID = "RestAPI"
API_HANDLER_ID = "APIHandler"


def stage_application(project_dir: Path, stage: str) -> models.Application:
    """The graph `chalice deploy --stage <stage>` would build (imports app.py; no AWS calls)."""
    config = CLIFactory(str(project_dir)).create_config_obj(chalice_stage_name=stage)
    return ApplicationGraphBuilder().build(config, stage)


def logical_ids(application: models.Application) -> Dict[str, models.ManagedModel]:
    """Logical id -> model for the functions, their roles and event sources, and the REST API."""
    ordered = DependencyBuilder().build_dependencies(application)
    api_handlers = {id(model.lambda_function) for model in ordered if isinstance(model, models.RestAPI)}
    ids: Dict[str, models.ManagedModel] = {}
    for model in ordered:
        if isinstance(model, models.RestAPI):
            name = REST_API_ID
        elif isinstance(model, models.LambdaFunction) and id(model) in api_handlers:
            name = API_HANDLER_ID
        elif isinstance(model, (models.LambdaFunction, models.ManagedIAMRole, models.FunctionEventSubscriber)):
            name = to_cfn_resource_name(model.resource_name)
        else:
            continue
        if name in ids and ids[name] is not model:
            raise ValueError(f"two Chalice resources would both be {name} in chalice package's template")
        ids[name] = model
    return ids


def function_names(application: models.Application) -> Dict[str, str]:
    """Logical id -> the name `chalice deploy` gives each Lambda function."""
    return {name: model.function_name for name, model in logical_ids(application).items()
            if isinstance(model, models.LambdaFunction)}
