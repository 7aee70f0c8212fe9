"""requirements-dev.txt (what the project asks for) and requirements-dev.lock (what `make lock`
resolved it to), read as {distribution name: version}. Names are normalized (PEP 503)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional

from tests.conftest import ROOT

INPUT = ROOT / "requirements-dev.txt"
LOCK = ROOT / "requirements-dev.lock"
# name, optional [extras], optional ==version; comments and options are skipped.
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*(?P<version>\S+))?\s*(#.*)?$")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> Dict[str, Optional[str]]:
    found: Dict[str, Optional[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise ValueError(f"{path.name}: cannot read {line!r}")
        found[normalized(match.group("name"))] = match.group("version")
    return found


def declared() -> Dict[str, Optional[str]]:
    return requirements(INPUT)


def locked_versions() -> Dict[str, str]:
    locked = requirements(LOCK)
    unpinned = sorted(name for name, version in locked.items() if version is None)
    if unpinned:
        raise ValueError(f"{LOCK.name} leaves {unpinned} unpinned: run `make lock`")
    return {name: str(version) for name, version in locked.items()}
