"""The API as a client sees it, as Swagger 2.0: what schemathesis tests the local stack against.

Built the way `chalice package` builds the deployed definition: Chalice's swagger generator for the
app's routes, deep-merged (Chalice's own TemplateDeepMerger) with the stage's merge template's
DefinitionBody (infra/merge_stage.py: the PUT route, its models and responses). API Gateway's
extensions are then dropped, and the Chalice routes get what Chalice cannot declare: their
documented answers (README "The request lifecycle" and "Operating it") and the list routes' query
parameters, for a caller's routes and the operators' /admin ones alike. Every route may also answer
API Gateway's 403 (no such method on the resource, or missing credentials on a guarded stage).

    python infra/openapi.py --stage dev build/openapi-dev.json
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalice.deploy.swagger import CFNSwaggerGenerator  # noqa: E402
from chalice.package import TemplateDeepMerger  # noqa: E402

from chalicelib.model import ID_PATTERN as _ID  # noqa: E402
from chalicelib.ownership import OWNER_PATTERN  # noqa: E402
from infra.merge_stage import stage_auth_mode, stage_template  # noqa: E402

ID_PATTERN = f"^{_ID}$"  # the PUT template's $idValid checks the same
_ERROR = {"$ref": "#/definitions/Error"}
_FORBIDDEN = {"description": "API Gateway: no such method here, missing credentials (AUTH_MODE iam/api_key), or "
                             "a caller IAM does not allow on the route (/admin/... for a producer)",
              "schema": _ERROR}
_UNAVAILABLE = {"description": "storage throttled or down; retry", "schema": _ERROR}
_MEDIA = {"description": "a Content-Type the route does not take (Chalice)", "schema": {"type": "object"}}
_REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "type": "string", "pattern": ID_PATTERN}
_OWNER = {"name": "owner", "in": "path", "required": True, "type": "string", "pattern": f"^{OWNER_PATTERN}$"}
_NOT_AN_ID = {"description": "an id (or owner) that cannot exist", "schema": _ERROR}
_NOT_FOUND = {"description": "no request with this id (of the caller's, on /requests)", "schema": _ERROR}
_SHOW = {
    "200": {"description": "the request's status", "schema": {"$ref": "#/definitions/Empty"}},
    "400": _NOT_AN_ID,
    "404": _NOT_FOUND,
    "415": _MEDIA,
    "503": _UNAVAILABLE,
}
_RETRY = {
    "202": {"description": "FAILED -> PENDING: it runs again", "schema": {
        "type": "object", "properties": {"id": {"type": "string"}, "status": {"type": "string"}}}},
    "400": _NOT_AN_ID,
    "404": _NOT_FOUND,
    "409": {"description": "the request is not FAILED", "schema": _ERROR},
    "415": _MEDIA,
    "503": _UNAVAILABLE,
}
_LIST = {
    "parameters": [
        {"name": "status", "in": "query", "required": True, "type": "string", "enum": ["PENDING", "FAILED"]},
        {"name": "limit", "in": "query", "required": False, "type": "integer", "minimum": 1, "maximum": 100},
        {"name": "cursor", "in": "query", "required": False, "type": "string"},
    ],
    "responses": {
        "200": {"description": "a page of requests, oldest first", "schema": {"$ref": "#/definitions/Empty"}},
        "400": {"description": "bad status, limit or cursor", "schema": _ERROR},
        "415": _MEDIA,
        "503": _UNAVAILABLE,
    }}
# A caller's routes and the operators' answer alike (chalicelib/requests_api.py); each is copied
# where it is used.
CHALICE_ROUTES: Dict[str, Dict[str, Dict[str, Any]]] = {
    "/requests/{request_id}": {"get": {"parameters": [_REQUEST_ID], "responses": _SHOW}},
    "/requests/{request_id}/retry": {"post": {"parameters": [_REQUEST_ID], "responses": _RETRY}},
    "/requests": {"get": _LIST},
    "/admin/requests/{owner}/{request_id}": {"get": {"parameters": [_OWNER, _REQUEST_ID], "responses": _SHOW}},
    "/admin/requests/{owner}/{request_id}/retry": {"post": {"parameters": [_OWNER, _REQUEST_ID], "responses": _RETRY}},
    "/admin/requests": {"get": _LIST},
}


def _without_extensions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_extensions(v) for k, v in value.items() if not str(k).startswith("x-amazon-apigateway")}
    if isinstance(value, list):
        return [_without_extensions(v) for v in value]
    return value


def describe(stage: str = "dev", project_dir: Path = ROOT) -> Dict[str, Any]:
    """The definition for `stage`. app.py must be imported with the stage's AUTH_MODE, as Chalice
    imports it when it packages: main() sets it first; an importer (the tests: none) must match."""
    mode, merged = stage_template(stage, project_dir)
    os.environ.setdefault("AUTH_MODE", mode)
    import app as app_module
    from chalicelib import requests_api

    def shape(options: Dict[str, Any]) -> Dict[str, Any]:  # an authorizer compares by identity
        return {key: type(value).__name__ if key == "authorizer" else value for key, value in options.items()}

    if shape(requests_api.AUTH) != shape(requests_api.route_auth(mode)):
        raise ValueError(f"app.py was imported with other auth than stage {stage}'s {mode}: "
                         f"run python infra/openapi.py --stage {stage} in a process of its own")
    swagger = CFNSwaggerGenerator().generate_swagger(app_module.app)
    body = TemplateDeepMerger().merge(merged["Resources"]["RestAPI"]["Properties"]["DefinitionBody"], swagger)
    api = _without_extensions(copy.deepcopy(body))
    for parameter in api["paths"]["/requests"]["put"]["parameters"]:
        if parameter["name"] == "Idempotency-Key":  # the PUT template's $idValid
            parameter["pattern"] = ID_PATTERN
    # The PUT template refuses an object without members, and no body, which API Gateway hands it as
    # {} (docs: APIGW-2). The model cannot say so on AWS (docs: APIGW-16); the description can.
    api["definitions"]["RequestBody"]["minProperties"] = 1
    for path, methods in CHALICE_ROUTES.items():
        for method, documented in methods.items():
            api["paths"][path][method].update(copy.deepcopy(documented))
    for methods in api["paths"].values():
        for operation in methods.values():
            operation["responses"].setdefault("403", copy.deepcopy(_FORBIDDEN))
    api["info"]["description"] = f"storefirst, stage {stage} (AUTH_MODE {mode})"
    return api


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python infra/openapi.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    os.environ["AUTH_MODE"] = stage_auth_mode(args.stage)
    args.target.parent.mkdir(parents=True, exist_ok=True)
    args.target.write_text(json.dumps(describe(args.stage), indent=1))
    print(f"{args.target}: stage {args.stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
