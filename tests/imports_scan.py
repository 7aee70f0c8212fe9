"""Which third-party distributions the project's own Python imports (tests/test_requirements.py)."""
from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Dict, Iterable, Set

from tests.conftest import ROOT

# The project's own top-level packages and modules (pyproject.toml's known-first-party).
FIRST_PARTY = {"app", "chalicelib", "devserver", "infra", "ops", "bench", "reliability", "tests"}
SOURCES = ("app.py", "chalicelib", "devserver", "infra", "ops", "bench", "reliability", "tests")


def python_files(root: Path = ROOT) -> Iterable[Path]:
    for source in SOURCES:
        path = root / source
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def imported_modules(path: Path) -> Set[str]:
    """Top-level names of the absolute imports in one file (typing-only imports included: mypy needs them)."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports(root: Path = ROOT) -> Dict[str, Set[str]]:
    """Module -> the files importing it, for every module neither the standard library nor ours."""
    found: Dict[str, Set[str]] = {}
    for path in python_files(root):
        for module in imported_modules(path) - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}:
            found.setdefault(module, set()).add(str(path.relative_to(root)))
    return found


def distributions_of(module: str) -> Set[str]:
    return set(packages_distributions().get(module, ()))
