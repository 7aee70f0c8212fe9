"""Extends two chalice commands where Chalice has no hook: `chalice local` serves the whole pipeline
(devserver/chalice_local.py) and `chalice deploy` deploys the whole system (infra/chalice_deploy.py).

app.py calls `extend(app)` only when AWS_CHALICE_CLI_MODE is set, which every chalice command sets
and Lambda never does. That variable alone does not say which command runs (package and deploy set
it too), so the command is read from click's context: Chalice imports app.py inside the command's
callback, where `click.get_current_context()` is that command's (docs/chalice.md).
"""
from __future__ import annotations

from typing import Any, Optional


def current_command() -> Optional[Any]:
    """The click context of the chalice command importing app.py, or None outside one."""
    import click

    return click.get_current_context(silent=True)


def extend(app: Any) -> None:
    context = current_command()
    if context is None or context.command is None:
        return
    if context.command.name == "local":
        from devserver.chalice_local import install

        install(app, context)
    elif context.command.name == "deploy":
        from infra.chalice_deploy import install as install_deploy

        install_deploy(app, context)
