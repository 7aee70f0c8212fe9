"""The local stack never talks to real AWS.

Every process of the local stack that runs app code (the chalice local worker, each function
instance) gets fake credentials, endpoint variables that point every botocore client at the local
endpoints (`local_aws_environment`), and `install()`: a guard in botocore's HTTP session that
refuses any request to a host that is not this machine, whatever endpoint a client was built with.
A refused request fails like an unreachable endpoint (an EndpointConnectionError), which the app
already treats as storage being unavailable, so the caller gets a clear 503, never a 500.
"""
from __future__ import annotations

import ipaddress
import os
import urllib.parse
from typing import Any, Dict, Mapping, MutableMapping, Optional

from botocore import httpsession
from botocore.exceptions import EndpointConnectionError

FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
# What a developer's shell may carry that could reach a real account: never passed on.
_REAL_CREDENTIALS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_SHARED_CREDENTIALS_FILE",
                     "AWS_CONFIG_FILE")
_INSTALLED = "_storefirst_guarded"


class RealAwsRefused(EndpointConnectionError):
    fmt = ('Refused to send a request to "{endpoint_url}": the local stack only talks to endpoints on '
           'this machine (devserver/aws_guard.py). Point the client at the local endpoint '
           '(AWS_ENDPOINT_URL is set for you) instead of real AWS.')


def is_local(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install() -> None:
    """Refuse every botocore request to a non-loopback host in this process (idempotent)."""
    session_class: Any = httpsession.URLLib3Session
    if getattr(session_class, _INSTALLED, False):
        return
    send = session_class.send

    def guarded_send(self: Any, request: Any) -> Any:
        if not is_local(request.url):
            raise RealAwsRefused(endpoint_url=request.url)
        return send(self, request)

    session_class.send = guarded_send
    setattr(session_class, _INSTALLED, True)


def local_aws_environment(*, region: str, dynamodb: str, sqs: Optional[str] = None,
                          other: Optional[str] = None) -> Dict[str, str]:
    """Variables that make every botocore client in a process use the local endpoints and fake
    credentials: DynamoDB and its streams at `dynamodb`, SQS at `sqs`, anything else at `other`."""
    environment = {
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": other or sqs or dynamodb,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": dynamodb,
        "AWS_ENDPOINT_URL_SQS": sqs or dynamodb,
        # chalicelib.config reads this one for its DynamoDB and stream clients.
        "DYNAMODB_ENDPOINT_URL": dynamodb,
    }
    return environment


def apply(environment: Mapping[str, str], target: Optional[MutableMapping[str, str]] = None) -> None:
    """Set `environment` in `target` (os.environ by default) and drop any real credentials."""
    target = os.environ if target is None else target
    for name in _REAL_CREDENTIALS:
        target.pop(name, None)
    target.update(environment)


def without_real_credentials(environ: Mapping[str, str]) -> Dict[str, str]:
    return {k: v for k, v in environ.items() if k not in _REAL_CREDENTIALS}
