"""One Python and one Powertools everywhere: .python-version, the interpreter running the tests (the
venv `make` builds, which `chalice package` takes the functions' runtime from), the tools' target
versions, and the Powertools layer infra/template.yaml loads, against the version the lock pins."""
from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from typing import Any, Dict, List

import pytest
import yaml

from infra.powertools_layer import LayerReference, parse_layer_reference
from tests.conftest import ROOT, TEMPLATE
from tests.requirements_files import locked_versions

PYTHON = (ROOT / ".python-version").read_text().strip()
FUNCTIONS = ("APIHandler", "Process", "HandleFailures", "Reconcile")


def layers(template: Dict[str, Any], function: str) -> List[Any]:
    layer_list: List[Any] = template["Resources"][function]["Properties"]["Layers"]
    return layer_list


def test_python_version_names_a_minor_version():
    assert re.fullmatch(r"3\.\d+", PYTHON), PYTHON


def test_the_tests_run_on_the_projects_python():
    # make refuses a .venv of another version; this catches a run outside make.
    assert "%d.%d" % sys.version_info[:2] == PYTHON


def test_ruff_and_mypy_target_the_projects_python():
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]

    assert tools["ruff"]["target-version"] == "py" + PYTHON.replace(".", "")
    assert tools["mypy"]["python_version"] == PYTHON


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_loads_the_locked_powertools_built_for_the_projects_python(function):
    template = yaml.safe_load(TEMPLATE.read_text())

    [reference] = [parse_layer_reference(layer) for layer in layers(template, function)]

    assert reference == LayerReference(architecture="x86_64", python=PYTHON,
                                       powertools=locked_versions()["aws-lambda-powertools"])


def test_the_locked_powertools_is_the_one_tests_import():
    assert version("aws-lambda-powertools") == locked_versions()["aws-lambda-powertools"]


@pytest.mark.parametrize("layer, message", [
    ({"Fn::Sub": "arn:aws:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:27"},
     "not a Powertools SSM reference"),
    ("{{resolve:ssm:/aws/service/powertools/python/x86_64/python3.11/latest}}", "not a Powertools SSM reference"),
])
def test_a_layer_not_pinned_through_the_public_parameter_is_refused(layer, message):
    with pytest.raises(ValueError, match=message):
        parse_layer_reference(layer)
