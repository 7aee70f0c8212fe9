"""No class of ours shares a name with one of botocore's or Chalice's: a reader (or a traceback) that
says `ClientError` or `Config` must mean exactly one thing (chalicelib.errors.CallerError was once
named ClientError, botocore's most common exception)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterable, List

import botocore
import chalice

ROOT = Path(__file__).resolve().parent.parent
OURS = ("app.py", "chalicelib", "devserver", "infra", "ops", "bench", "reliability", "tests")


def class_names(paths: Iterable[Path]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(str(path))
    return found


def python_files(root: Path) -> Iterable[Path]:
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def test_no_class_of_ours_is_named_like_one_of_botocore_or_chalice():
    theirs = class_names(path for library in (botocore, chalice)
                         for path in python_files(Path(str(library.__file__)).parent))
    ours = class_names(path for name in OURS for path in python_files(ROOT / name))
    assert len(theirs) > 300 and len(ours) > 50  # both sides were really read

    shared = {name: (ours[name], theirs[name][:2]) for name in set(ours) & set(theirs)}

    assert shared == {}
