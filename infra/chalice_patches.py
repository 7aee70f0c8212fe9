"""infra/template.yaml's patches to Chalice's resources, applied to the models `chalice deploy` builds.

`chalice package --merge-template` deep-merges each patch into Chalice's resource of the same
logical id (docs: CHALICE-3, CHALICE-10). `chalice deploy` takes no template, so here each patch is resolved
against the base stack (its Ref / Fn::GetAtt / Fn::Sub read the stack's outputs), its
`{{resolve:ssm:...}}` references are read from SSM as CloudFormation would (the Powertools layer,
docs: CFN-4), and it is applied to the model its logical id names (infra/chalice_graph.py), property
by property:

    patch of   property                on the deploy path
    function   Environment.Variables   merged into the function's environment (TABLE_NAME: the base
                                       stack's table)
               Layers                  the function's layers (a merge replaces lists too)
               LoggingConfig           sent with CreateFunction / UpdateFunctionConfiguration (the log
                                       group is the base stack's)
               Tracing                 Active: the function's xray (Chalice sends TracingConfig Active)
               Events.<id>.Properties  Stream / Queue: the event source's ARN; every other property:
                                       a CreateEventSourceMapping parameter, sent on create and, where
                                       UpdateEventSourceMapping takes it, on every update
    role       Policies                the role's inline policy: every statement of every policy
    RestAPI    DefinitionBody          deep-merged into the swagger Chalice imports, with Chalice's own
                                       TemplateDeepMerger as the package path merges it
               TracingEnabled          X-Ray on the stage (Chalice's xray for the deployment)

`Metadata` (checkov's skips) means nothing to a deploy. Any other property, or a patch whose id
names nothing in the app, raises PatchError: the two paths would quietly differ.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Tuple

from botocore.session import get_session
from chalice.deploy import models

from devserver.infra import InfraError, resolve
from infra.chalice_graph import logical_ids
from infra.dynamic_references import DynamicReferenceError, ParameterLookup, resolve_dynamic_references

# SAM's event property names where the Lambda API's differ (samtranslator's PullEventSource).
_SAM_TO_API = {"KmsKeyArn": "KMSKeyArn"}
_EVENT_ARN = {models.DynamoDBEventSource: "Stream", models.SQSEventSource: "Queue"}
_FUNCTION_PROPERTIES = ("Environment", "Layers", "LoggingConfig", "Tracing", "Events")
_TRACING_MODES = {"Active": True, "PassThrough": False}


class PatchError(ValueError):
    """A patch in infra/template.yaml that the deploy path cannot apply as the package path does."""


@dataclass(frozen=True)
class MappingSettings:
    """What an event source mapping gets beyond Chalice's BatchSize, StartingPosition and window."""

    function_name: str
    event_source_arn: str
    parameters: Mapping[str, Any]  # CreateEventSourceMapping parameters

    def for_update(self) -> Dict[str, Any]:
        """The parameters UpdateEventSourceMapping takes (StartingPosition, for one, is fixed at creation)."""
        return {k: v for k, v in self.parameters.items() if k in _api_parameters("UpdateEventSourceMapping")}


@dataclass(frozen=True)
class WireSettings:
    """What the deploy adds to Chalice's API requests, where its models have no field for it."""

    swagger: Mapping[str, Any]  # merged into the imported definition
    mappings: Tuple[MappingSettings, ...]
    logging: Mapping[str, Mapping[str, Any]]  # function name -> LoggingConfig


def apply_patches(application: models.Application, resources: Mapping[str, Any],
                  refs: Mapping[str, str], *, parameters: ParameterLookup) -> WireSettings:
    """Apply the patches among template `resources` (those without a Type) to `application`'s models;
    `parameters` reads an SSM parameter the patches' dynamic references name."""
    targets = logical_ids(application)
    swagger: Dict[str, Any] = {}
    mappings: List[MappingSettings] = []
    logging: Dict[str, Mapping[str, Any]] = {}
    for name, patch in resources.items():
        if "Type" in patch:
            continue
        model = targets.get(name)
        if model is None:
            raise PatchError(f"infra/template.yaml patches {name}, which the Chalice app does not have")
        properties = _resolved(patch.get("Properties", {}), refs, parameters, name)
        unknown = set(patch) - {"Properties", "Metadata"}
        if unknown:
            raise PatchError(f"infra/template.yaml: {name} sets {sorted(unknown)}; the deploy path applies "
                             f"only Properties")
        if isinstance(model, models.LambdaFunction):
            logging.update(_patch_function(model, properties, targets, mappings, name))
        elif isinstance(model, models.ManagedIAMRole):
            _only(properties, ("Policies",), name)
            statements = [s for policy in properties.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
            # A plain IAMPolicy: Chalice's build stage reads FileBasedIAMPolicy files and adds
            # wildcard trigger statements to AutoGenIAMPolicy documents, and leaves this one as it is
            # (docs: CHALICE-15).
            model.policy = models.IAMPolicy(document={"Version": "2012-10-17", "Statement": statements})
        elif isinstance(model, models.RestAPI):
            _only(properties, ("DefinitionBody", "TracingEnabled"), name)
            swagger = properties.get("DefinitionBody", {})
            model.xray = bool(properties.get("TracingEnabled", model.xray))
        else:
            raise PatchError(f"infra/template.yaml patches {name} ({type(model).__name__}), which the deploy "
                             f"path does not apply")
    return WireSettings(swagger, tuple(mappings), logging)


def _patch_function(model: models.LambdaFunction, properties: Mapping[str, Any],
                    targets: Mapping[str, models.ManagedModel], mappings: List[MappingSettings],
                    name: str) -> Dict[str, Mapping[str, Any]]:
    _only(properties, _FUNCTION_PROPERTIES, name)
    variables = properties.get("Environment", {}).get("Variables", {})
    model.environment_variables = {**model.environment_variables, **{k: str(v) for k, v in variables.items()}}
    if "Layers" in properties:
        model.layers = list(properties["Layers"])
    if "Tracing" in properties:
        if properties["Tracing"] not in _TRACING_MODES:
            raise PatchError(f"infra/template.yaml: {name}.Tracing is {properties['Tracing']!r}, not one of "
                             f"{', '.join(_TRACING_MODES)}")
        model.xray = _TRACING_MODES[properties["Tracing"]]
    for event_id, event in properties.get("Events", {}).items():
        source = targets.get(event_id)
        if not isinstance(source, models.FunctionEventSubscriber) or source.lambda_function is not model:
            raise PatchError(f"infra/template.yaml: {name}.Events.{event_id} is no event source of {name} in "
                             f"the Chalice app")
        mappings.append(_patch_event_source(source, dict(event.get("Properties", {})), f"{name}.Events.{event_id}"))
    return {model.function_name: properties["LoggingConfig"]} if "LoggingConfig" in properties else {}


def _patch_event_source(source: models.FunctionEventSubscriber, properties: Dict[str, Any],
                        where: str) -> MappingSettings:
    arn_property = _EVENT_ARN.get(type(source))
    if arn_property is None or arn_property not in properties:
        raise PatchError(f"infra/template.yaml: {where} must set {arn_property or 'a stream or queue'} "
                         f"({type(source).__name__} on the deploy path)")
    arn = properties.pop(arn_property)
    if isinstance(source, models.DynamoDBEventSource):
        source.stream_arn = arn
    elif isinstance(source, models.SQSEventSource):
        source.queue = models.QueueARN(arn=arn)
    parameters = {_SAM_TO_API.get(key, key): value for key, value in properties.items()}
    for destination in parameters.get("DestinationConfig", {}).values():
        destination.pop("Type", None)  # SAM's hint for the policy it would add; not an API field (docs: CHALICE-7)
    unknown = sorted(set(parameters) - _api_parameters("CreateEventSourceMapping"))
    if unknown:
        raise PatchError(f"infra/template.yaml: {where} sets {unknown}, which CreateEventSourceMapping does not "
                         f"take: add their API names to infra/chalice_patches.py's _SAM_TO_API")
    return MappingSettings(source.lambda_function.function_name, arn, parameters)


def _resolved(value: Any, refs: Mapping[str, str], parameters: ParameterLookup, where: str) -> Any:
    try:
        resolved = resolve(value, refs)  # a new structure: what is applied never aliases the template
    except InfraError as exc:
        raise PatchError(f"infra/template.yaml: {where}: {exc} (the base stack outputs only what the patches "
                         f"read: `make infra`)") from exc
    try:
        return resolve_dynamic_references(resolved, parameters)
    except DynamicReferenceError as exc:
        raise PatchError(f"infra/template.yaml: {where}: {exc}") from exc


def _only(properties: Mapping[str, Any], known: Tuple[str, ...], name: str) -> None:
    unknown = sorted(set(properties) - set(known))
    if unknown:
        raise PatchError(f"infra/template.yaml: {name} sets {unknown}, which the chalice deploy path does not "
                         f"apply (it applies {', '.join(known)}): teach infra/chalice_patches.py, or the two "
                         f"paths differ")


@functools.lru_cache(maxsize=None)
def _api_parameters(operation: str) -> FrozenSet[str]:
    """Parameter names of a Lambda API operation, from botocore's model (no network)."""
    shape = get_session().get_service_model("lambda").operation_model(operation).input_shape
    return frozenset(shape.members if shape is not None else ())
