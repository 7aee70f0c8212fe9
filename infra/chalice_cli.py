"""Extends two chalice commands where Chalice has no hook: `chalice local` serves the whole pipeline
(devserver/chalice_local.py) and `chalice deploy` deploys the whole system (infra/chalice_deploy.py).

app.py calls `extend(app)` only when AWS_CHALICE_CLI_MODE is set, which every chalice command sets
and Lambda never does. That variable alone does not say which command runs (package and deploy set
it too), so the command is read from click: Chalice imports app.py inside the command's callback,
where `click.get_current_context()` is that command's. Under `chalice local`'s reloader the import
happens in the worker's server thread, where click keeps no context (it is per thread); there the
command is read from the process's arguments by Chalice's own parser (docs: CHALICE-202).
"""
from __future__ import annotations

import sys
import warnings
from typing import Any, Optional, Sequence


def current_command(argv: Optional[Sequence[str]] = None) -> Optional[str]:
    """The name of the chalice command importing app.py, or None outside one."""
    import click

    context = click.get_current_context(silent=True)
    if context is not None and context.command is not None:
        return context.command.name
    from chalice.cli import cli

    try:
        with cli.make_context("chalice", list(sys.argv[1:] if argv is None else argv),
                              resilient_parsing=True) as top, warnings.catch_warnings():
            # click 8.2 deprecates protected_args (where a group keeps the subcommand) for 9.0;
            # tests/test_chalice_local.py fails if the subcommand is no longer found this way.
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*top.protected_args, *top.args]
    except click.ClickException:
        return None
    return rest[0] if rest else None


def extend(app: Any) -> None:
    import click

    command = current_command()
    if command == "local":
        # Before anything more is imported: a new __pycache__ file would restart `chalice local`.
        sys.dont_write_bytecode = True
        from devserver.chalice_local import install

        install(app)
    elif command == "deploy":
        from infra.chalice_deploy import install as install_deploy

        install_deploy(app, click.get_current_context(silent=True))
