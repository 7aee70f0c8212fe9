"""The packaged template as `make package` builds it, and what tests read from it (shared by the
package, security and deploy tests)."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

from infra.merge_stage import write_stage_template
from infra.precompile import add_bytecode, runtime_of
from infra.translate import translate
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def package_stage(work: Path, stage: str, project_dir: Path = ROOT) -> Dict[str, Any]:
    """What `make package STAGE=<stage>` builds: the stage's merge template (infra/merge_stage.py),
    `chalice package` with it, bytecode in its zip, then SAM translated offline."""
    merge_template, out = work / f"merge-{stage}.yaml", work / "package"
    write_stage_template(stage, merge_template, project_dir, project_dir / "infra" / "template.yaml",
                         project_dir / "infra" / "auth.yaml")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", stage, "--merge-template", str(merge_template), str(out)],
        cwd=project_dir, env=env, check=True, capture_output=True,
    )
    add_bytecode(out / "deployment.zip", runtime_of((out / "sam.yaml").read_text()))
    sam = yaml.safe_load((out / "sam.yaml").read_text())
    cloudformation = translate(sam)
    (out / "cloudformation.json").write_text(json.dumps(cloudformation))
    return {"dir": out, "stage": stage, "sam": sam, "cfn": cloudformation}


def resources(packaged: Dict[str, Any]) -> Dict[str, Any]:
    return packaged["cfn"]["Resources"]


def statements(role: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else [value]


def assert_api_gateway_may_only_put_items(packaged: Dict[str, Any]) -> None:
    """API Gateway's role may put items into the table, and nothing else."""
    role = resources(packaged)["ApiGatewayPutItemRole"]

    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                      "Action": "sts:AssumeRole"}]
    assert statements(role) == [{"Effect": "Allow", "Action": "dynamodb:PutItem",
                                 "Resource": {"Fn::GetAtt": ["RequestsTable", "Arn"]}}]


# Active tracing's two actions, which take no resource (docs: IAM-4).
WRITE_TRACES = {"xray:PutTraceSegments": "*", "xray:PutTelemetryRecords": "*"}
RESOURCELESS = set(WRITE_TRACES)


@functools.lru_cache(maxsize=1)
def deployed_functions() -> Dict[str, str]:
    """The deployed name of each Chalice function of stage dev, as Chalice's deploy graph names it."""
    from infra.chalice_graph import function_names, stage_application

    return function_names(stage_application(ROOT, "dev"))


def deployed_names(text: str) -> str:
    """`text` (a template as JSON) with each Chalice function's Ref and ${...} as its deployed name."""
    for logical, name in deployed_functions().items():
        text = text.replace(json.dumps({"Ref": logical}), json.dumps(name)).replace("${%s}" % logical, name)
    return text
