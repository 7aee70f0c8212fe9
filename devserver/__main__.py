"""python -m devserver [all|db|api|runner|faults|aws] ...: the local stack, or one part of it."""
import sys

from devserver.aws_endpoint import serve_aws
from devserver.db import serve_db
from devserver.faults import serve_faults
from devserver.serve import serve_api, serve_runner
from devserver.stack import run_stack

PARTS = {"db": serve_db, "api": serve_api, "runner": serve_runner, "faults": serve_faults,
         "aws": serve_aws,
         "all": run_stack}


def main(argv: list) -> int:
    if argv and argv[0] in PARTS:
        return PARTS[argv[0]](argv[1:])
    return run_stack(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
