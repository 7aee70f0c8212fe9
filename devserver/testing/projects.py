"""Copies of the project with one more Chalice stage, for tests of what a new stage gets."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from devserver.local_config import PROJECT_DIR

# What `chalice package` and the deploy hook read; chalicelib and infra are code, the rest settings.
_FILES = ("app.py", "requirements.txt", ".chalice/config.json")
_TREES = ("chalicelib", "infra")


def with_stage(work: Path, stage: str, auth_mode: str, parallelization_factor: int = 1) -> Path:
    """A copy of the project under `work` whose .chalice/config.json adds `stage` with AUTH_MODE
    `auth_mode`, and whose infra/template.yaml lists its stream mapping settings, as every stage must."""
    project = work / "project"
    for name in _FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_DIR / name, project / name)
    for name in _TREES:
        shutil.copytree(PROJECT_DIR / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for policy in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(policy, project / ".chalice" / policy.name)
    config = project / ".chalice" / "config.json"
    settings = json.loads(config.read_text())
    settings["stages"][stage] = {"api_gateway_stage": "api", "environment_variables": {"AUTH_MODE": auth_mode}}
    config.write_text(json.dumps(settings, indent=2))
    template = project / "infra" / "template.yaml"
    listed = "  StreamMappingByStage:\n"
    template.write_text(template.read_text().replace(
        listed, f"{listed}    {stage}: {{ParallelizationFactor: {parallelization_factor}}}\n"))
    return project
