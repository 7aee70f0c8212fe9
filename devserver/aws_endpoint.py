"""`python -m devserver aws [--port P]`: a bare local AWS endpoint for the deploy path.

moto's server (every service it has, nothing created in it) in this process, so that `make infra`
and `chalice deploy` can run against one URL: `AWS_ENDPOINT_URL=<its URL>`. It records what they
create; it runs nothing (use `make run` to exercise the system itself).

Three extensions, each where moto refuses what AWS accepts (`install_extensions`):

1. Lambda takes a layer version of another account as it is: AWS's public layers (Powertools,
   which infra/template.yaml adds) live in AWS's accounts; moto knows only layers published in
   its own (docs: LOCAL-7). A layer of this account must still exist.
2. API Gateway imports a Swagger 2.0 definition the way AWS does (docs: APIGW-23). moto 5.2.5
   takes only OpenAPI 3, and its `import_rest_api` needs `info.description`, which Chalice never
   sets (docs: LOCAL-6). `import_swagger` builds, for each path and method of the document, the
   method (authorization from `security`, request parameters and models, the validator), its
   method responses, its integration (type, uri, httpMethod, credentials, requestTemplates,
   passthroughBehavior, contentHandling, timeout) and integration responses (selection pattern,
   templates, parameters), plus the API's models, validators, gateway responses and binary media
   types. In `overwrite` mode (what `chalice deploy` sends) everything the document does not
   declare is dropped first; `merge` adds to what is there. OpenAPI 3 still goes to moto's import.
3. SSM answers the public parameters Powertools publishes per release (docs: LAMBDA-2), which the
   deploy path reads for infra/template.yaml's `{{resolve:ssm:...}}` layer: moto has none of them.
   Each holds the layer ARN in the shape Powertools publishes, with a stand-in layer version
   (STAND_IN_LAYER_VERSION): which number a release got is known only to AWS (docs: LOCAL-9).

tests/test_aws_endpoint.py pins the moto version and the source of what is replaced or called.
Do not write to a deployed table here: moto would invoke the mapped function, through Docker,
inside the write (docs: LOCAL-7).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from devserver.infra import DEFAULT_TIMEOUT_MS

if TYPE_CHECKING:  # moto is imported when the endpoint starts: `python -m devserver db` need not pay for it
    from moto.apigateway.models import APIGatewayBackend
    from moto.awslambda.models import LambdaFunction
    from moto.ssm.models import ParameterDict

log = logging.getLogger(__name__)

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method")
_PARAMETER_PLACES = {"header": "header", "query": "querystring", "path": "path"}
STAND_IN_LAYER_VERSION = 1  # the layer version of every Powertools parameter here (docs: LOCAL-9)


def import_swagger(backend: "APIGatewayBackend", api_id: str, doc: Mapping[str, Any], mode: str) -> None:
    """Create in `backend`'s REST API `api_id` what API Gateway creates from Swagger 2.0 `doc`."""
    api = backend.get_rest_api(api_id)
    if mode == "overwrite":
        api.resources = {}
        api.default = api.add_child("/")
        api.root_resource_id = api.default.id
        api.models, api.request_validators, api.gateway_responses = {}, {}, {}
    api.binaryMediaTypes = list(doc.get("x-amazon-apigateway-binary-media-types", []))
    if "x-amazon-apigateway-policy" in doc:
        api.policy = json.dumps(doc["x-amazon-apigateway-policy"])
    for name, schema in doc.get("definitions", {}).items():
        backend.create_model(api_id, name, "application/json", schema.get("title", ""), json.dumps(schema))
    validators = {name: backend.create_request_validator(api_id, name, spec.get("validateRequestBody", False),
                                                         spec.get("validateRequestParameters", False)).id
                  for name, spec in doc.get("x-amazon-apigateway-request-validators", {}).items()}
    for response_type, spec in doc.get("x-amazon-apigateway-gateway-responses", {}).items():
        backend.put_gateway_response(api_id, response_type, spec.get("statusCode"),
                                     spec.get("responseParameters"), spec.get("responseTemplates"))
    for path, operations in sorted(doc.get("paths", {}).items()):
        resource_id = _resource_for(backend, api_id, path)
        for method, operation in operations.items():
            if method.lower() in _METHODS:
                _put_operation(backend, api_id, resource_id, method, operation, doc, validators)
    log.info("Swagger 2.0 definition imported into REST API %s (mode %s): %d path(s)", api_id, mode,
             len(doc.get("paths", {})))


def _resource_for(backend: "APIGatewayBackend", api_id: str, path: str) -> str:
    """The id of `path`'s resource, creating it and any missing ancestor."""
    api = backend.get_rest_api(api_id)
    parent, so_far = api.root_resource_id, ""
    for part in [p for p in path.split("/") if p]:
        so_far += "/" + part
        existing = api.get_resource_for_path(so_far)
        parent = existing.id if existing is not None else backend.create_resource(api_id, parent, part).id
    return parent


def _put_operation(backend: "APIGatewayBackend", api_id: str, resource_id: str, method: str,
                   operation: Mapping[str, Any], doc: Mapping[str, Any], validators: Mapping[str, str]) -> None:
    http_method = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
    definitions = doc.get("securityDefinitions", {})
    schemes = [name for requirement in operation.get("security", doc.get("security", [])) for name in requirement]
    unsupported = [name for name in schemes if "x-amazon-apigateway-authorizer" in definitions.get(name, {})]
    if unsupported:
        raise NotImplementedError(f"{http_method} {api_id}: authorizers {unsupported} are not emulated here")
    sigv4 = any(definitions.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4" for name in schemes)
    api_key = any(definitions.get(name, {}).get("name") == "x-api-key" for name in schemes)
    consumes = operation.get("consumes", doc.get("consumes", ["application/json"]))
    parameters: Dict[str, bool] = {}
    models: Dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "body":
            models.update({media: _model_name(parameter["schema"]) for media in consumes})
        elif parameter.get("in") in _PARAMETER_PLACES:
            place = _PARAMETER_PLACES[parameter["in"]]
            parameters[f"method.request.{place}.{parameter['name']}"] = bool(parameter.get("required", False))
    validator = operation.get("x-amazon-apigateway-request-validator", doc.get("x-amazon-apigateway-request-validator"))
    backend.put_method(api_id, resource_id, http_method, "AWS_IAM" if sigv4 else "NONE", api_key_required=api_key,
                       request_parameters=parameters or None, request_models=models or None,
                       operation_name=operation.get("operationId"),
                       request_validator_id=validators[validator] if validator else None)
    produces = operation.get("produces", doc.get("produces", ["application/json"]))
    for status, response in operation.get("responses", {}).items():
        schema = response.get("schema")
        backend.put_method_response(
            api_id, resource_id, http_method, str(status),
            {media: _model_name(schema) for media in produces} if schema else None,
            {f"method.response.header.{header}": False for header in response.get("headers", {})} or None)
    integration = operation.get("x-amazon-apigateway-integration")
    if integration:
        _put_integration(backend, api_id, resource_id, http_method, integration)


def _put_integration(backend: "APIGatewayBackend", api_id: str, resource_id: str, http_method: str,
                     integration: Mapping[str, Any]) -> None:
    # Swagger spells type and passthroughBehavior in lower case; API Gateway answers them upper case.
    backend.put_integration(
        api_id, resource_id, http_method, integration["type"].upper(), integration.get("uri", ""),
        integration.get("httpMethod", ""), credentials=integration.get("credentials"),
        request_templates=dict(integration.get("requestTemplates", {})) or None,
        passthrough_behavior=integration.get("passthroughBehavior", "when_no_match").upper(),
        cache_namespace=integration.get("cacheNamespace"),
        timeout_in_millis=integration.get("timeoutInMillis", DEFAULT_TIMEOUT_MS),
        request_parameters=integration.get("requestParameters"),
        content_handling=integration.get("contentHandling"),
        connection_type=integration.get("connectionType"))
    for pattern, response in integration.get("responses", {}).items():
        backend.put_integration_response(
            api_id, resource_id, http_method, str(response["statusCode"]),
            selection_pattern="" if pattern == "default" else pattern,
            response_templates=dict(response.get("responseTemplates", {})),
            response_parameters=response.get("responseParameters"),
            content_handling=response.get("contentHandling"))


def _model_name(schema: Mapping[str, Any]) -> str:
    reference = schema.get("$ref", "")
    if not reference.startswith("#/definitions/"):
        raise NotImplementedError(f"only $ref to #/definitions are emulated as models, got {schema!r}")
    return reference[len("#/definitions/"):]


def _is_swagger(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("swagger", "")).startswith("2.")


def install_extensions() -> None:
    """Accept other accounts' layers; route Swagger 2.0 documents of import_rest_api / put_rest_api to
    import_swagger (idempotent)."""
    from moto.apigateway.models import APIGatewayBackend
    from moto.awslambda.models import LambdaFunction

    if getattr(APIGatewayBackend.put_rest_api, "swagger_aware", False):
        return
    moto_layers = LambdaFunction._get_layers_data

    def layers_data(self: "LambdaFunction", layers_versions_arns: List[str]) -> List[Any]:
        own = [arn for arn in layers_versions_arns if arn.split(":")[4] == self.account_id]
        known = {layer["Arn"]: layer for layer in moto_layers(self, own)}
        return [known.get(arn, {"Arn": arn, "CodeSize": 0}) for arn in layers_versions_arns]

    LambdaFunction._get_layers_data = functools.wraps(moto_layers)(layers_data)  # type: ignore[method-assign]
    _serve_powertools_parameters()
    moto_import, moto_put = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api

    def import_rest_api(self: "APIGatewayBackend", api_doc: Dict[str, Any], fail_on_warnings: bool) -> Any:
        if not _is_swagger(api_doc):
            return moto_import(self, api_doc, fail_on_warnings)
        info = api_doc.get("info", {})
        api = self.create_rest_api(name=info.get("title", ""), description=info.get("description", ""))
        import_swagger(self, api.id, api_doc, "overwrite")
        return api

    def put_rest_api(self: "APIGatewayBackend", function_id: str, api_doc: Dict[str, Any], fail_on_warnings: bool,
                     mode: str = "merge") -> Any:
        if not _is_swagger(api_doc):
            return moto_put(self, function_id, api_doc, fail_on_warnings, mode)
        import_swagger(self, function_id, api_doc, mode)
        return self.get_rest_api(function_id)

    for name, replacement in (("import_rest_api", import_rest_api), ("put_rest_api", put_rest_api)):
        wrapped: Any = functools.wraps(getattr(APIGatewayBackend, name))(replacement)
        wrapped.swagger_aware = True
        setattr(APIGatewayBackend, name, wrapped)


def _serve_powertools_parameters() -> None:
    """moto's SSM loads AWS's public parameters into a region when one is first asked for; Powertools'
    are added the same way (extension 3)."""
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ParameterDict

    from infra.powertools_layer import PARAMETER_NAME, layer_arn, parse_parameter_name

    moto_loading = ParameterDict._check_loading_status

    def check_loading_status(self: "ParameterDict", key: str) -> None:
        moto_loading(self, key)
        name = str(key or "")
        # dict's own methods: ParameterDict's would call back into this one.
        if PARAMETER_NAME.fullmatch(name) and not dict.__contains__(self, name):
            arn = layer_arn(parse_parameter_name(name), self.region_name, STAND_IN_LAYER_VERSION)
            dict.__setitem__(self, name, [Parameter(  # type: ignore[abstract]  # moto makes them so too
                account_id=self.account_id, name=name, value=arn, parameter_type="String", description=None,
                allowed_pattern=None, keyid=None, last_modified_date=utcnow(), version=1, data_type="text")])

    ParameterDict._check_loading_status = functools.wraps(moto_loading)(check_loading_status)  # type: ignore[method-assign]


class AwsEndpointServer:
    """moto's server with the extensions, serving from a thread; `url` is where it listens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        install_extensions()
        # Bound here, not in the thread (as moto's ThreadedMotoServer does), so a port in use raises OSError.
        self._server = make_server(host, port, DomainDispatcherApplication(create_backend_app), threaded=True,
                                   request_handler=MotoRequestHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-endpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def serve_aws(argv: Optional[List[str]] = None) -> int:
    """`python -m devserver aws`: a bare local AWS endpoint until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m devserver aws", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = AwsEndpointServer(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", flush=True)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:  # from the first line out, a Ctrl-C stops the server as it should
        print(f"AWS_ENDPOINT_URL={server.url}", flush=True)
        print("moto: nothing is created in it; any access key, e.g. AWS_ACCESS_KEY_ID=testing. Ctrl-C stops it.",
              flush=True)
        while not stopped.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
