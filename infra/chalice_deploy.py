"""`chalice deploy --stage <stage>`: the whole system, in step with `make package` / `make deploy`.

infra/chalice_cli.py calls install() only under `chalice deploy`, while Chalice imports app.py:
after the command has built its Deployer and before the Deployer builds the application graph
(docs: CHALICE-8). install() wraps three Chalice functions in this process, a CLI process that
deploys once and exits:

- ApplicationGraphBuilder.build: once Chalice has its graph, read the stage's base stack
  (infra/base_stack.py: it must be what infra/template.yaml makes now), apply infra/template.yaml's
  patches for the stage's AUTH_MODE (infra/merge_stage.py) to the models (infra/chalice_patches.py:
  event source ARNs, environment, layers, role policies, X-Ray), and refuse a stream mapping that
  reads another stream than the stack's table (below). Nothing has been sent to AWS yet.
- TypedAWSClient._client: each botocore client Chalice makes gets handlers (botocore's event
  system, docs: CHALICE-14) that add what Chalice's models have no field for: the patched routes
  into the definition of ImportRestApi / PutRestApi (every deploy sends the whole definition and
  overwrites the API: docs: CHALICE-4), the mapping settings into Create/UpdateEventSourceMapping,
  LoggingConfig into CreateFunction / UpdateFunctionConfiguration.
- TypedAWSClient.verify_event_source_arn_current: says "gone" for a stream mapping the user asked
  to replace (below).

A recreated table has a new stream, and Chalice keeps an existing mapping on the stream it was
created with (docs: CHALICE-11). The deploy stops and says how to move it: run again with
STOREFIRST_REPLACE_MAPPINGS=<its UUID>; Chalice then creates a mapping on the new stream and its
sweeper deletes the old one, as it does for any mapping whose source changed (docs: CHALICE-13).

tests/test_chalice_hooks.py pins the chalice version and the source of all Chalice relies on here.
Every call goes through botocore, so AWS_ENDPOINT_URL applies throughout.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set

import click
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import Session
from chalice.awsclient import TypedAWSClient
from chalice.config import Config, DeployedResources
from chalice.deploy import models
from chalice.deploy.appgraph import ApplicationGraphBuilder
from chalice.package import TemplateDeepMerger

from infra.base_stack import BaseStackError, base_template, deployed_refs, stack_name
from infra.chalice_graph import function_names, logical_ids
from infra.chalice_patches import MappingSettings, PatchError, WireSettings, apply_patches
from infra.merge_stage import stage_template

log = logging.getLogger(__name__)

CHALICE_VERSION = "1.34.0"  # requirements-dev.txt pins it; tests/test_chalice_hooks.py checks
HOOKED = (
    "chalice.deploy.appgraph.ApplicationGraphBuilder.build",
    "chalice.awsclient.TypedAWSClient._client",
    "chalice.awsclient.TypedAWSClient.verify_event_source_arn_current",
)
REPLACE_MAPPINGS = "STOREFIRST_REPLACE_MAPPINGS"  # comma-separated UUIDs of stream mappings


class StaleMappingError(click.ClickException):
    """A recorded stream mapping reads another stream than the base stack's table."""


def install(app: Any, context: Any) -> None:
    """Hook `chalice deploy` (app and context are Chalice's; the stage comes with the graph)."""
    if getattr(ApplicationGraphBuilder.build, "storefirst_hook", False):
        return
    additions = Additions()
    chalice_build = ApplicationGraphBuilder.build
    chalice_client = TypedAWSClient._client
    chalice_verify = TypedAWSClient.verify_event_source_arn_current

    def build(self: ApplicationGraphBuilder, config: Config, stage_name: str) -> models.Application:
        application = chalice_build(self, config, stage_name)
        try:
            additions.prepare(application, config, stage_name)
        except (BaseStackError, PatchError) as exc:
            raise click.ClickException(str(exc)) from exc
        except (BotoCoreError, ClientError) as exc:
            raise click.ClickException(f"stage {stage_name}: {exc}") from exc
        return application

    def client(self: TypedAWSClient, service_name: str) -> Any:
        created = chalice_client(self, service_name)
        additions.register(created)
        return created

    def verify(self: TypedAWSClient, event_uuid: str, event_source_arn: str, function_arn: str) -> bool:
        return event_uuid not in additions.replaced and chalice_verify(self, event_uuid, event_source_arn,
                                                                       function_arn)

    build.storefirst_hook = True  # type: ignore[attr-defined]
    ApplicationGraphBuilder.build = build  # type: ignore[method-assign]
    TypedAWSClient._client = client  # type: ignore[method-assign]
    TypedAWSClient.verify_event_source_arn_current = verify  # type: ignore[method-assign]


class Additions:
    """The deploy's view of the stage, set by the graph hook and read by the request handlers."""

    def __init__(self) -> None:
        self.wire: Optional[WireSettings] = None
        self.by_uuid: Dict[str, MappingSettings] = {}  # deployed mappings, for UpdateEventSourceMapping
        self.replaced: Set[str] = set()  # stream mappings Chalice is to recreate

    def prepare(self, application: models.Application, config: Config, stage: str) -> None:
        """Apply the stage's patches to `application`; refuse a mapping on another stream."""
        project = Path(config.project_dir)
        template = yaml.safe_load((project / "infra" / "template.yaml").read_text())
        mode, merged = stage_template(stage, project)
        beyond = sorted(set(_typed(merged)) - set(_typed(template)))
        if beyond:
            raise PatchError(f"AUTH_MODE {mode} adds {beyond}, which need the REST API before they can exist: "
                             f"chalice deploy cannot make them; deploy stage {stage} with `make deploy`")
        session = Session(profile=config.profile)  # made as Chalice makes its own: same credentials, region
        stack = base_template(template, function_names(application), stack_name(config.app_name, stage))
        refs = deployed_refs(session.create_client("cloudformation"), stack, stage)
        self.wire = apply_patches(application, merged["Resources"], refs,
                                  parameters=ssm_parameters(session.create_client("ssm")))
        deployed = config.deployed_resources(stage)
        self.replaced = replaced_stream_mappings(application, deployed, stack.name, stage)
        sources = {(m.lambda_function.function_name, _event_source_arn(m)): m for m in _event_sources(application)}
        for settings in self.wire.mappings:
            uuid = _deployed_value(deployed, sources[(settings.function_name, settings.event_source_arn)],
                                   "event_uuid")
            if uuid:
                self.by_uuid[uuid] = settings
        click.echo(f"Base stack {stack.name}: table {refs.get('RequestsTable', '?')}; infra/template.yaml "
                   f"applied for AUTH_MODE {mode}: {len(self.wire.mappings)} event source mapping(s), "
                   f"{len(self.wire.swagger.get('paths', {}))} path(s) added to the API")

    def register(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        handlers = {"apigateway": {"ImportRestApi": self.add_routes, "PutRestApi": self.add_routes},
                    "lambda": {"CreateEventSourceMapping": self.add_mapping_settings,
                               "UpdateEventSourceMapping": self.add_mapping_settings,
                               "CreateFunction": self.add_logging_config,
                               "UpdateFunctionConfiguration": self.add_logging_config}}.get(service, {})
        for operation, handler in handlers.items():
            client.meta.events.register(f"before-parameter-build.{service}.{operation}", handler,
                                        unique_id=f"storefirst-{operation}")

    def _settings(self) -> WireSettings:
        if self.wire is None:
            raise RuntimeError("Chalice sent a request before it built the application graph: "
                               "infra/chalice_deploy.py's order no longer holds (docs: CHALICE-8)")
        return self.wire

    def add_routes(self, params: Dict[str, Any], **_: Any) -> None:
        definition = json.loads(params["body"])
        merged = TemplateDeepMerger().merge(copy.deepcopy(dict(self._settings().swagger)), definition)
        params["body"] = json.dumps(merged, indent=2)
        log.debug("definition of %s: added paths %s", definition["info"].get("title"),
                  sorted(set(merged["paths"]) - set(definition["paths"])))

    def add_mapping_settings(self, params: Dict[str, Any], **_: Any) -> None:
        if "UUID" in params:
            settings = self.by_uuid.get(params["UUID"])
            added = settings.for_update() if settings else {}
        else:
            function = params["FunctionName"].split(":")[6] if params["FunctionName"].startswith("arn:") \
                else params["FunctionName"]
            settings = next((s for s in self._settings().mappings if s.function_name == function
                             and s.event_source_arn == params["EventSourceArn"]), None)
            added = dict(settings.parameters) if settings else {}
        params.update(copy.deepcopy(added))  # the template's value wins, as in the package path's merge
        log.debug("mapping %s: added %s", params.get("UUID") or params["EventSourceArn"], sorted(added))

    def add_logging_config(self, params: Dict[str, Any], **_: Any) -> None:
        config = self._settings().logging.get(params["FunctionName"])
        if config:
            params["LoggingConfig"] = dict(config)


def ssm_parameters(ssm: Any) -> Callable[[str], str]:
    """Reads a parameter a patch's `{{resolve:ssm:...}}` names, in the stage's region, as CloudFormation
    does when it deploys (docs: CFN-4): the Powertools layer's ARN for the locked release (docs: LAMBDA-2)."""
    def lookup(name: str) -> str:
        try:
            value: str = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound as exc:
            raise PatchError(f"SSM parameter {name} does not exist in {ssm.meta.region_name}: infra/template.yaml "
                             f"names it in a {{{{resolve:ssm:...}}}} reference (a Powertools release whose layer "
                             f"parameter is not published yet?)") from exc
        return value
    return lookup


def replaced_stream_mappings(application: models.Application, deployed: DeployedResources, stack: str,
                             stage: str) -> Set[str]:
    """UUIDs of recorded stream mappings on another stream than their model's: all must be named in
    REPLACE_MAPPINGS, or the deploy is refused (StaleMappingError) before anything is changed."""
    stale = [(m, old, _deployed_value(deployed, m, "event_uuid")) for m in _event_sources(application)
             if isinstance(m, models.DynamoDBEventSource)
             for old in [_deployed_value(deployed, m, "stream_arn")] if old and old != m.stream_arn]
    named = set(os.environ.get(REPLACE_MAPPINGS, "").split(","))
    if any(uuid not in named for _, _, uuid in stale):
        listed = "".join(f"\n  {m.resource_name} ({uuid}) of {m.lambda_function.function_name} reads\n    {old}\n"
                         f"  but base stack {stack}'s table streams\n    {m.stream_arn}" for m, old, uuid in stale)
        raise StaleMappingError(
            f"a stream mapping reads another stream than the base stack's table (was the table recreated?):"
            f"{listed}\nChalice would keep it on the old stream (docs/chalice.md, CHALICE-11). To move it, deploy "
            f"with its UUID: Chalice then creates a mapping on the new stream, reading from its StartingPosition, "
            f"and deletes the old one; requests still PENDING in the old table stay there.\n"
            f"  {REPLACE_MAPPINGS}={','.join(str(uuid) for _, _, uuid in stale)} chalice deploy --stage {stage}")
    for model, old, uuid in stale:
        click.echo(f"Replacing mapping {uuid} of {model.lambda_function.function_name} on {old}")
    return {str(uuid) for _, _, uuid in stale}


def _event_sources(application: models.Application) -> List[models.FunctionEventSubscriber]:
    return [m for m in logical_ids(application).values() if isinstance(m, models.FunctionEventSubscriber)]


def _typed(template: Dict[str, Any]) -> Dict[str, Any]:
    return {name: r for name, r in template.get("Resources", {}).items() if "Type" in r}


def _event_source_arn(model: models.FunctionEventSubscriber) -> str:
    if isinstance(model, models.DynamoDBEventSource):
        return model.stream_arn
    queue = getattr(model, "queue", None)
    return queue.arn if isinstance(queue, models.QueueARN) else ""


def _deployed_value(deployed: DeployedResources, model: models.ManagedModel, key: str) -> Optional[str]:
    try:
        return deployed.resource_values(model.resource_name).get(key)
    except ValueError:  # not deployed yet
        return None
