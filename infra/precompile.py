"""Add bytecode to the deployment zip that `chalice package` built.

Lambda's /var/task is read-only, so Python cannot cache what it compiles there: without bytecode
in the zip every cold start compiles app.py, chalicelib and Chalice's runtime module again (about
half of our import time, `make bench` row 6). The .pyc files are unchecked-hash ones (PEP 552):
Python loads them without comparing source timestamps, which a zip does not carry faithfully, and
they are valid because they are compiled from exactly the sources beside them in the same zip.
Bytecode only works for the Python version it was compiled by, so the runtime must match.

Usage: python infra/precompile.py build/package/deployment.zip build/package/sam.yaml|sam.json
"""
from __future__ import annotations

import py_compile
import re
import sys
import tempfile
import zipfile
from pathlib import Path

# `Runtime: python3.11` in sam.yaml, `"Runtime": "python3.11"` in sam.json
RUNTIME = re.compile(r"""\bRuntime"?\s*:\s*"?python(\d+\.\d+)\b""")


def runtime_of(sam_template: str) -> str:
    """The one Python version ("3.11") every function in the template runs on."""
    versions = set(RUNTIME.findall(sam_template))
    if len(versions) != 1:
        raise ValueError(f"expected one python runtime in the template, found {sorted(versions) or 'none'}")
    return versions.pop()


def add_bytecode(deployment_zip: Path, runtime: str) -> int:
    """Rewrite the zip with an unchecked-hash __pycache__ entry beside every .py; returns how many.

    Bytecode already in the zip is replaced: `chalice package` copies the project's own __pycache__
    folders, whose timestamp-checked files would make Lambda compile again (the zip's timestamps
    are not the sources')."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        raise ValueError(f"the functions run python{runtime} but this is python{here}: its bytecode would "
                         f"be ignored there; run `make package` with python{runtime}")
    # Beside the zip, so the final rename never crosses filesystems (/tmp is often tmpfs).
    with tempfile.TemporaryDirectory(dir=deployment_zip.parent) as work:
        rewritten = Path(work) / "deployment.zip"
        added = 0
        with zipfile.ZipFile(deployment_zip) as source, \
                zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                if "__pycache__/" in entry.filename:
                    continue
                data = source.read(entry)
                target.writestr(entry, data)
                if entry.filename.endswith(".py"):
                    bytecode = _bytecode(entry.filename, data, Path(work))
                    target.writestr(_like(entry, _cache_name(entry.filename)), bytecode)
                    added += 1
        rewritten.replace(deployment_zip)
    return added


def _cache_name(source: str) -> str:
    """Where the runtime looks for a module's bytecode. Not importlib's cache_from_source: that
    follows this interpreter's -O and PYTHONPYCACHEPREFIX, which Lambda's does not share."""
    folder, _, name = source.rpartition("/")
    pyc = f"__pycache__/{name[:-len('.py')]}.{sys.implementation.cache_tag}.pyc"
    return f"{folder}/{pyc}" if folder else pyc


def _bytecode(name: str, source: bytes, work: Path) -> bytes:
    py = work / "src" / name
    py.parent.mkdir(parents=True, exist_ok=True)
    py.write_bytes(source)
    pyc = work / "pyc"
    py_compile.compile(str(py), cfile=str(pyc), dfile=name, doraise=True, optimize=0,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return pyc.read_bytes()


def _like(entry: zipfile.ZipInfo, name: str) -> zipfile.ZipInfo:
    """Same timestamp and permissions as the source entry: the zip stays reproducible."""
    info = zipfile.ZipInfo(name, date_time=entry.date_time)
    info.external_attr = entry.external_attr
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    deployment_zip, sam_template = Path(argv[0]), Path(argv[1])
    added = add_bytecode(deployment_zip, runtime_of(sam_template.read_text()))
    print(f"{deployment_zip}: bytecode added for {added} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
