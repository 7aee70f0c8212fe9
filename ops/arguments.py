"""The CLI's arguments: every subcommand and option with its help, and their validation.

Every command calls the API's operator routes (ops/client.py): GET /admin/requests/OWNER/ID,
GET /admin/requests?status=, POST /admin/requests/OWNER/ID/retry. They see every owner's
requests, so a stage with auth guards them with IAM alone: with --sigv4 the caller needs
execute-api:Invoke on the API's /admin/* routes. A request is named OWNER/ID, as `failed` and
`pending` print it; a bare ID is the anonymous owner's (what `make run` stores).

The parser writes help to `out` and errors to `err` (the streams main() was given, not the
process's) and raises ParserExit instead of exiting, so main() returns every exit code itself.
"""
from __future__ import annotations

import argparse
import urllib.parse
from typing import TYPE_CHECKING, Callable, Dict, Mapping, NoReturn, Optional, TextIO

from ops.backoff import DEFAULT_ATTEMPTS, MAX_ATTEMPTS
from ops.client import LIST_PATH, REQUEST_PATH, RETRY_PATH, RequestName

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

LOCAL_API_URL = "http://127.0.0.1:8000"  # where `make run` serves the API
DEFAULT_CONCURRENCY, MAX_CONCURRENCY = 8, 64
DEFAULT_LIMIT = 100


class ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    out: TextIO
    err: TextIO
    commands: Dict[str, "Parser"]  # the root's subcommands, by name

    def print_help(self, file: Optional[SupportsWrite[str]] = None) -> None:
        super().print_help(file or self.out)

    def print_usage(self, file: Optional[SupportsWrite[str]] = None) -> None:
        super().print_usage(file or self.out)

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            self.err.write(message)
        raise ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage(self.err)
        self.exit(2, f"{self.prog}: error: {message}\n")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not {text!r}")
        return int(text)
    return parse


def request_name(text: str) -> RequestName:
    try:
        return RequestName.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def http_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL (from --api-url, else "
                                         f"STOREFIRST_API_URL), not {text!r}")
    return text


def build_parser(doc: str, out: TextIO, err: TextIO, environ: Mapping[str, str]) -> Parser:
    """`doc` is __main__'s docstring: its text up to "Exit codes:" describes, the rest is the epilog."""
    description, marker, exit_codes = doc.partition("Exit codes:")
    parser = _streams(Parser(prog="python -m ops", description=description.strip(), epilog=marker + exit_codes,
                             formatter_class=argparse.RawDescriptionHelpFormatter), out, err)
    api_url = environ.get("STOREFIRST_API_URL") or LOCAL_API_URL
    parser.add_argument("--api-url", type=http_url, default=api_url, metavar="URL",
                        help="the API to operate: a stage's URL (https://ID.execute-api.REGION.amazonaws.com/api) "
                             f"or the local stack's (default: $STOREFIRST_API_URL, else {LOCAL_API_URL}, "
                             f"where `make run` serves it; now {api_url})")
    parser.add_argument("--sigv4", action="store_true",
                        help="sign every call with your AWS credentials (SigV4), for a stage with auth (AUTH_MODE "
                             "iam or api_key: the operator routes take IAM in both) or the local stack's --auth iam: "
                             "your identity needs execute-api:Invoke on the API's /admin/* routes")
    parser.add_argument("--region",
                        help="the region to sign for with --sigv4 (default: the execute-api URL's, else "
                             "$AWS_REGION, else your AWS configuration's)")
    parser.add_argument("--max-attempts", type=whole_number(1, MAX_ATTEMPTS), default=DEFAULT_ATTEMPTS, metavar="N",
                        help="tries per API call when it is answered 429 or 503 or not at all, with exponential "
                             "backoff and jitter, honouring Retry-After "
                             f"(1-{MAX_ATTEMPTS}, default {DEFAULT_ATTEMPTS})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser, title="commands")
    parser.commands = {}

    def command(name: str, summary: str, details: str = "") -> Parser:
        parser.commands[name] = _streams(
            commands.add_parser(name, help=summary, description=f"{summary}.\n\n{details}".strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter), out, err)
        return parser.commands[name]

    show = command("show", f"print one request as JSON (GET {REQUEST_ROUTE}; read-only)",
                   "Its owner, id, status, createdAt, updatedAt, attempts and its result, error, lastError\n"
                   "or errorHistory; never the stored body.")
    show.add_argument("name", type=request_name, metavar="OWNER/ID", help=f"the request, {NAME_HELP}")
    for status, meaning in (("FAILED", "failed for good, kept until retried"),
                            ("PENDING", "accepted, not finished yet")):
        listing = command(status.lower(), f"list {status} requests ({meaning}), oldest first "
                                          f"(GET {LIST_PATH}?status={status}; read-only)",
                          "Every owner's. One line each, tab-separated: OWNER/ID (the name the other commands\n"
                          "take), status, createdAt, attempts=N, error message.")
        listing.add_argument("--limit", type=whole_number(1, 1_000_000), default=DEFAULT_LIMIT, metavar="N",
                             help=f"print at most N (default {DEFAULT_LIMIT})")
    retry = command("retry", f"retry the named FAILED requests (POST {RETRY_ROUTE} each)", RETRY_DETAILS)
    retry.add_argument("names", nargs="+", type=request_name, metavar="OWNER/ID",
                       help=f"the requests to retry, one or more, each {NAME_HELP}")
    _concurrency(retry)
    retry_failed = command("retry-failed", "retry every FAILED request, after asking",
                           f"Lists every owner's FAILED requests (GET {LIST_PATH}?status=FAILED), asks for\n"
                           "confirmation, then retries each by OWNER/ID as `retry` does.\n\n" + RETRY_DETAILS)
    retry_failed.add_argument("--yes", action="store_true",
                              help="retry without asking; required when stdin is not a terminal (scripts, cron)")
    _concurrency(retry_failed)
    return parser


REQUEST_ROUTE = REQUEST_PATH.format(owner="OWNER", id="ID")
RETRY_ROUTE = RETRY_PATH.format(owner="OWNER", id="ID")
NAME_HELP = ("named OWNER/ID as `failed` and `pending` print it: OWNER is anonymous, iam-<principal id> or "
             "key-<API key id>, ID its Idempotency-Key or the id its PUT was answered; a bare ID is the "
             "anonymous owner's (what a stage without auth, `make run`, stores)")
RETRY_DETAILS = f"""\
A retry (POST {RETRY_ROUTE}) moves the request back to PENDING and appends
its error to errorHistory; the processor then runs it again. Only FAILED requests can be
retried (409 otherwise). Output: each failure on its own line on stderr, in the order the
requests were given whatever order they finished in, then the summary line `retried N of M`
on stdout. On a terminal, a progress bar with rate and ETA on stderr while it runs. An error
about one request (400, 404, 409) does not stop the others; any other (unreachable, access
denied, still throttled) stops the run: the requests it did not get to are counted as not
attempted."""


def _concurrency(command: argparse.ArgumentParser) -> None:
    command.add_argument("--concurrency", type=whole_number(1, MAX_CONCURRENCY), default=DEFAULT_CONCURRENCY,
                         metavar="N",
                         help=f"retries in flight at once (1-{MAX_CONCURRENCY}, default {DEFAULT_CONCURRENCY})")


def _streams(parser: Parser, out: TextIO, err: TextIO) -> Parser:
    # argparse builds the subparsers and passes them no streams: set them on each after the fact.
    parser.out, parser.err = out, err
    return parser
