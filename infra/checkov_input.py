"""The translated template as checkov should read it: each stage SAM generates carries its API's skips.

A skip is declared on the resource it is about (`Metadata.checkov.skip` in infra/template.yaml),
and the merge and SAM keep Metadata on the resources they copy. SAM drops it on the one
resource it generates whose checks were already answered on its source: the stage of an
`AWS::Serverless::Api` (tracing, access logs and caching are properties of the SAM API, where
checkov checks them too). This copies the API's skips to that stage, and nothing else.

    python infra/checkov_input.py build/package/cloudformation.json build/package/cloudformation-checkov.json
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Dict, List


def with_stage_skips(template: Dict[str, Any]) -> Dict[str, Any]:
    result = copy.deepcopy(template)
    resources = result["Resources"]
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Stage" or "Metadata" in resource:
            continue
        api = resources.get(resource["Properties"].get("RestApiId", {}).get("Ref", ""), {})
        skips = api.get("Metadata", {}).get("checkov")
        if skips is not None:
            resource["Metadata"] = {"checkov": copy.deepcopy(skips)}
    return result


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    target.write_text(json.dumps(with_stage_skips(json.loads(source.read_text())), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
