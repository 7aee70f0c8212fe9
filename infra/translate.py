"""Expand the SAM template that `chalice package` wrote into plain CloudFormation, offline.

cfn-lint checks a SAM template against SAM's schema only; linting the translated template
also checks what SAM generates (the event source mapping, the stage, the API body), which is
where wrong ESM values and dangling references show up (docs: CHALICE-6).

    python infra/translate.py build/package/sam.yaml build/package/cloudformation.json
"""
from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

import yaml
from samtranslator.translator.transform import transform


class _NoManagedPolicies:
    # The template names no managed policies, so nothing has to be looked up in IAM.
    def load(self) -> Dict[str, str]:
        return {}


def translate(sam_template: Dict[str, Any]) -> Dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(sam_template)
    for resource in template["Resources"].values():
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(code_uri, str) \
                and not code_uri.startswith("s3://"):
            # `aws cloudformation package` uploads the zip and writes its S3 address here;
            # SAM accepts nothing else, so translation offline stands one in.
            resource["Properties"]["CodeUri"] = "s3://storefirst-package/" + Path(code_uri).name
    return transform(template, {}, _NoManagedPolicies())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    template = yaml.safe_load(source.read_text())
    target.write_text(json.dumps(translate(template), indent=1, sort_keys=True))
    print(f"translated {source} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
