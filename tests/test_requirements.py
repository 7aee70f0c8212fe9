"""The lock: every transitive dependency pinned, made from requirements-dev.txt, installed by `make`;
and every distribution the project's Python imports named in requirements-dev.txt itself."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from tests.imports_scan import distributions_of, third_party_imports
from tests.requirements_files import declared, locked_versions, normalized

# Imported only for type checking and provided by mypy itself (typeshed), not a distribution.
TYPING_ONLY = {"_typeshed"}


def test_every_directly_imported_distribution_is_declared():
    names = declared()
    undeclared = {}
    for module, files in third_party_imports().items():
        if module in TYPING_ONLY:
            continue
        distributions = {normalized(d) for d in distributions_of(module)}
        assert distributions, f"{module} (imported by {sorted(files)}) belongs to no installed distribution"
        if not distributions & set(names):
            undeclared[module] = (sorted(distributions), sorted(files)[:3])

    assert undeclared == {}, "add these to requirements-dev.txt, then `make lock`"


def test_the_lock_pins_what_the_input_asks_for():
    locked = locked_versions()

    stale = {name: (wanted, locked.get(name)) for name, wanted in declared().items()
             if name not in locked or (wanted is not None and locked[name] != wanted)}

    assert stale == {}, "requirements-dev.lock is older than requirements-dev.txt: run `make lock`"


def test_the_venv_holds_the_locked_versions():
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "missing"

    differing = {name: (pinned, installed(name)) for name, pinned in locked_versions().items()
                 if installed(name) != pinned}

    assert differing == {}, "the venv is not the lock: `make` reinstalls it when requirements-dev.lock changes"
