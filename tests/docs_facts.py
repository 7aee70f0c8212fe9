"""The facts of docs/*.md and the project's files that cite them (tests/test_docs.py checks them)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from tests.conftest import ROOT

DOCS = ROOT / "docs"
FACT = re.compile(r"^### ([A-Z]+-\d+): \S", re.M)
CITATION = re.compile(r"\(docs: ([^)]*)\)")
FACT_ID = re.compile(r"^[A-Z]+-\d+$")
CITING_SUFFIXES = {".py", ".yaml", ".yml", ".md", ".json", ".txt", ""}


def facts() -> Dict[str, Tuple[Path, str]]:
    """Fact id -> (file, the fact's text up to the next heading)."""
    found: Dict[str, Tuple[Path, str]] = {}
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        starts = [(m.start(), m.group(1)) for m in FACT.finditer(text)]
        for i, (start, fact_id) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            body = text[start:end].split("\n## ")[0]
            assert fact_id not in found, f"{fact_id} is defined in {found[fact_id][0].name} and {path.name}"
            found[fact_id] = (path, body)
    return found


def project_files() -> List[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed
            if Path(name).suffix in CITING_SUFFIXES and not name.startswith(("node_modules/", ".venv"))
            and (ROOT / name).is_file() and name not in ("tests/test_docs.py", "tests/docs_facts.py")]
