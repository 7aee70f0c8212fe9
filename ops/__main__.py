"""python -m ops: look after a storefirst stage.

    python -m ops show ID                 one request
    python -m ops failed [--limit N]      FAILED requests, oldest first
    python -m ops pending [--limit N]     PENDING requests, oldest first
    python -m ops retry ID [ID ...]       move FAILED requests back to PENDING
    python -m ops retry-failed [--yes]    retry every FAILED request, with a progress bar

The API comes from --api-url or STOREFIRST_API_URL (default http://127.0.0.1:8000, `make run`);
--sigv4 signs requests with the usual AWS credentials for an IAM-authorised stage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable, List, Optional, TextIO

from ops.client import Api, ApiError


def progress(done: int, total: int, failed: int, out: TextIO, width: int = 30) -> None:
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}" + (f" ({failed} failed)" if failed else ""))
    out.flush()


def retry_all(api: Api, ids: List[str], out: TextIO, err: TextIO) -> int:
    failed = 0
    for done, request_id in enumerate(ids, start=1):
        try:
            api.retry(request_id)
        except ApiError as exc:
            failed += 1
            err.write(f"\n{request_id}: {exc}\n")
        progress(done, len(ids), failed, err)
    err.write("\n")
    out.write(f"retried {len(ids) - failed} of {len(ids)}\n")
    return 1 if failed else 0


def print_items(items: Iterable[Any], limit: int, out: TextIO) -> None:
    for count, item in enumerate(items):
        if count >= limit:
            break
        error = item.get("error", {}).get("message", "")
        out.write(f"{item['id']}\t{item['status']}\t{item['createdAt']}\tattempts={item['attempts']}\t{error}\n")


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default=os.environ.get("STOREFIRST_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--sigv4", action="store_true")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show").add_argument("id")
    for listing in ("failed", "pending"):
        commands.add_parser(listing).add_argument("--limit", type=int, default=100)
    commands.add_parser("retry").add_argument("ids", nargs="+")
    commands.add_parser("retry-failed").add_argument("--yes", action="store_true", help="do not ask")
    args = parser.parse_args(argv)
    api = Api(args.api_url, sigv4=args.sigv4, region=args.region)
    try:
        if args.command == "show":
            out.write(json.dumps(api.show(args.id), indent=2) + "\n")
        elif args.command in ("failed", "pending"):
            print_items(api.all(args.command.upper()), args.limit, out)
        elif args.command == "retry":
            return retry_all(api, args.ids, out, err)
        else:
            ids = [item["id"] for item in api.all("FAILED")]
            if not ids:
                out.write("no FAILED requests\n")
                return 0
            if not args.yes and input(f"retry {len(ids)} FAILED requests? [y/N] ").strip().lower() != "y":
                return 1
            return retry_all(api, ids, out, err)
    except ApiError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except OSError as exc:
        err.write(f"error: cannot reach {args.api_url}: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
