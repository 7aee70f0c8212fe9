"""The Powertools layer of infra/template.yaml: a CloudFormation dynamic reference to the public SSM
parameter Powertools publishes for each release, per architecture and Python version (docs: LAMBDA-2):

    {{resolve:ssm:/aws/service/powertools/python/x86_64/python3.11/3.37.0}}

CloudFormation resolves it when it deploys (docs: CFN-4); the `chalice deploy` path reads the same
parameter (infra/dynamic_references.py). Pinning the release in the parameter's name, rather than a
layer version number, lets tests/test_versions.py check it against the version the lock pins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PUBLISHER_ACCOUNT = "017000801446"  # AWS's account that publishes the layers (docs: LAMBDA-2)
PARAMETER_NAME = re.compile(r"/aws/service/powertools/python/(?P<architecture>x86_64|arm64)/"
                            r"python(?P<python>3\.\d+)/(?P<powertools>\d+\.\d+\.\d+)")
_REFERENCE = re.compile(r"\{\{resolve:ssm:(?P<name>[^}:]+)\}\}")


@dataclass(frozen=True)
class LayerReference:
    architecture: str
    python: str  # "3.11"
    powertools: str  # "3.37.0"


def parse_parameter_name(name: str) -> LayerReference:
    match = PARAMETER_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a Powertools layer parameter of a release (/aws/service/powertools/"
                         f"python/<arch>/python<X.Y>/<version>)")
    return LayerReference(**match.groupdict())


def parse_layer_reference(layer: Any) -> LayerReference:
    """The release, Python and architecture a template's layer entry names."""
    reference = _REFERENCE.fullmatch(layer) if isinstance(layer, str) else None
    if reference is None or PARAMETER_NAME.fullmatch(reference.group("name")) is None:
        raise ValueError(f"layer {layer!r} is not a Powertools SSM reference of a release: write "
                         f"{{{{resolve:ssm:/aws/service/powertools/python/<arch>/python<X.Y>/<version>}}}}")
    return parse_parameter_name(reference.group("name"))


def layer_arn(reference: LayerReference, region: str, layer_version: int) -> str:
    """The ARN shape Powertools publishes under that parameter (docs: LAMBDA-2)."""
    python = reference.python.replace(".", "")
    return (f"arn:aws:lambda:{region}:{PUBLISHER_ACCOUNT}:layer:AWSLambdaPowertoolsPythonV3-python{python}-"
            f"{reference.architecture}:{layer_version}")
