"""moto's server, with each DynamoDB and DynamoDB Streams call run one at a time, and the app's
PartiQL UPDATEs run as DynamoDB runs them (devserver/moto_partiql.py).

moto's server handles requests in threads, but its DynamoDB model is not thread-safe: two
concurrent writes can get the same stream sequence number (the runner then skips one of them
as already read: a lost request), and a conditional put's check and write can interleave (two
"first" writes of one Idempotency-Key). DynamoDB does neither. moto is CPU-bound under one
interpreter lock anyway, so serialising these calls costs little.

    python -m devserver.moto_server -H 127.0.0.1 -p 8001   (the arguments of moto.server)
"""
from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from devserver import moto_partiql

_ONE_AT_A_TIME = threading.RLock()


def _serialised(call_action: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call_action)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _ONE_AT_A_TIME:
            return call_action(*args, **kwargs)
    return wrapper


def serialise_dynamodb() -> None:
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        # Ignored (method-assign): replacing the method on the class is the point (every request takes the lock).
        handler.call_action = _serialised(handler.call_action)  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    serialise_dynamodb()
    moto_partiql.install()
    main(sys.argv[1:])  # returns None once the server stops
    sys.exit(0)
