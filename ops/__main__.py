"""python -m ops: look after a storefirst stage through its operator routes (/admin/requests/...).

    python -m ops show OWNER/ID                   one request, as JSON
    python -m ops failed [--limit N]              FAILED requests of every owner, oldest first
    python -m ops pending [--limit N]             PENDING requests of every owner, oldest first
    python -m ops retry OWNER/ID [OWNER/ID ...]   move FAILED requests back to PENDING
    python -m ops retry-failed [--yes]            retry every FAILED request (asks first; --yes without a terminal)

A request is named OWNER/ID, as `failed` and `pending` print it; a bare ID is the anonymous
owner's, what a stage without auth stores (`make run`).

The API comes from --api-url or STOREFIRST_API_URL (default http://127.0.0.1:8000, `make run`);
--sigv4 signs requests with the usual AWS credentials for a stage with auth, whose /admin/* routes
only IAM identities granted execute-api:Invoke on them may call. Every call is tried again on 429,
503 or no answer (--max-attempts, backoff with jitter, Retry-After honoured).
`python -m ops COMMAND --help` says more about each.

Exit codes:
  0    done
  1    something failed: the API unreachable or refusing (access denied included), a request not
       found or not retried, no AWS credentials for --sigv4, the confirmation declined
  2    usage: arguments argparse refuses, or retry-failed without --yes when stdin is not a terminal
  130  interrupted (Ctrl-C)
"""
from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import Callable, List, Mapping, Optional, TextIO

from ops import commands
from ops.arguments import ParserExit, build_parser
from ops.backoff import Backoff
from ops.client import Api
from ops.errors import OpsError
from ops.sigv4 import signer_for


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr, *,
         stdin: Optional[TextIO] = None, environ: Optional[Mapping[str, str]] = None,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Runs the CLI; returns its exit code. stdin, the environment and sleep are injected for tests."""
    stdin = stdin if stdin is not None else sys.stdin
    environ = environ if environ is not None else os.environ
    parser = build_parser(__doc__ or "", out, err, environ)
    try:
        args = parser.parse_args(argv)
        if args.command == "retry-failed" and not args.yes and not stdin.isatty():
            # Nobody can answer the question: refuse before touching anything, as a usage error.
            parser.commands["retry-failed"].error("it asks before retrying and stdin is not a terminal: "
                         "pass --yes to retry every FAILED request without asking")
    except ParserExit as exit:
        return exit.status
    try:
        signer = signer_for(args.api_url, args.region, environ.get("AWS_REGION")) if args.sigv4 else None
        api = Api(args.api_url, signer=signer, backoff=Backoff(attempts=args.max_attempts, sleep=sleep))
        if args.command == "show":
            return commands.show(api, args.name, out)
        if args.command in ("failed", "pending"):
            return commands.list_requests(api, args.command.upper(), args.limit, out)
        if args.command == "retry":
            return commands.retry(api, args.names, args.concurrency, out, err)
        confirm = partial(_confirm, stdin=stdin, err=err, yes=args.yes)
        return commands.retry_failed(api, args.concurrency, confirm, out, err)
    except OpsError as exc:
        err.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        err.write("interrupted (requests already retried stay PENDING)\n")
        return 130


def _confirm(count: int, *, stdin: TextIO, err: TextIO, yes: bool) -> bool:
    return yes or commands.ask(f"retry {count} FAILED requests?", stdin, err)


if __name__ == "__main__":
    sys.exit(main())
