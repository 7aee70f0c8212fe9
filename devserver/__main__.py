"""`python -m devserver [options]` (what `make run` runs): `chalice local`, with the local stack's
options turned into its STOREFIRST_* environment (devserver/local_config.py). The process replaces
itself with `chalice local`, so Ctrl-C and SIGTERM reach exactly what a user typing it would get.

`python -m devserver db|faults|aws ...` start one part alone (see each part's --help).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

from devserver.aws_endpoint import serve_aws
from devserver.db import serve_db
from devserver.faults import serve_faults
from devserver.local_config import (
    AUTH_MODES,
    BACKENDS,
    DEFAULT_SECRET_KEY,
    PROJECT_DIR,
    LocalConfig,
    LocalConfigError,
    chalice_local_argv,
    parse_operators,
)

PARTS = {"db": serve_db, "faults": serve_faults, "aws": serve_aws}


def chalice_local_command(argv: Optional[List[str]] = None) -> tuple[List[str], dict[str, str]]:
    """The `chalice local` command line and environment that `python -m devserver argv` runs."""
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="dev", help="the Chalice stage (.chalice/config.json)")
    parser.add_argument("--no-autoreload", action="store_true", help="do not restart when the code changes")
    parser.add_argument("--backend", choices=BACKENDS, default=LocalConfig.backend,
                        help="moto's server, AWS's DynamoDB Local (data kept in the state directory), "
                             "or any endpoint (--endpoint-url, e.g. LocalStack)")
    parser.add_argument("--endpoint-url", help="with --backend url: the DynamoDB endpoint")
    parser.add_argument("--reset", action="store_true", help="DynamoDB Local: start from an empty database")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="checkpoints, logs and database files (default: outside the project, "
                             "~/.local/state/storefirst/<project>-<hash>)")
    parser.add_argument("--auth", choices=AUTH_MODES, default=None,
                        help="the local API's auth: iam requires SigV4 (service execute-api) and takes each access "
                             "key id as its own caller; none: every caller is one anonymous owner (default: iam "
                             "if the stage's AUTH_MODE is iam, else none)")
    parser.add_argument("--operators", default="", metavar="KEY_ID[,KEY_ID]",
                        help="with --auth iam: the access key ids that may call /admin/... (see every request)")
    parser.add_argument("--secret-key", default=None,
                        help="with --auth iam: the secret key of every local access key "
                             f"(default {DEFAULT_SECRET_KEY!r})")
    args = parser.parse_args(argv)
    try:
        config = LocalConfig.from_env()
        config = replace(config, backend=args.backend, endpoint_url=args.endpoint_url, reset=args.reset,
                         state_dir=args.state_dir or config.state_dir, auth=args.auth or config.auth,
                         secret_key=args.secret_key or config.secret_key,
                         operators=parse_operators(args.operators) or config.operators)
    except LocalConfigError as exc:
        parser.error(str(exc))
    command = chalice_local_argv(PROJECT_DIR, host=args.host, port=args.port, stage=args.stage,
                                 autoreload=not args.no_autoreload)
    return command, {**os.environ, **config.to_env()}


def main(argv: List[str]) -> int:
    if argv and argv[0] in PARTS:
        return PARTS[argv[0]](argv[1:])
    command, environment = chalice_local_command(argv)
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
