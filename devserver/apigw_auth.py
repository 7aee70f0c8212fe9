"""IAM auth on the local API Gateway: SigV4 for service `execute-api`, checked as AWS checks it.

`--auth iam` (LocalAuth.mode) guards every route, as AUTH_MODE iam does on AWS (infra/auth.yaml,
chalicelib/requests_api.py). There is no IAM here, so:
- every access key id is a principal of its own (an IAM user whose unique id is the key id), and
  all share one secret key (`--secret-key`, default "testing", what botocore's tests and moto use);
- operators are the access key ids named by `--operators`: only they may call /admin/..., as only
  a role granted `execute-api:Invoke` on those routes may on AWS (docs: IAM-102).
A request without a signature, with a wrong one, scoped to another region or service, or dated
more than 5 minutes away from now, is refused with API Gateway's 403 responses (docs: APIGW-24).
The signature is recomputed with botocore's own signer, over exactly the headers the client signed.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Mapping, Union

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from werkzeug.wrappers import Request

from devserver.local_config import AUTH_MODES, DEFAULT_REGION, DEFAULT_SECRET_KEY, LocalConfig

__all__ = ["Denied", "LocalAuth", "OPERATOR_PREFIX", "local_auth"]

OPERATOR_PREFIX = "/admin/"
SERVICE = "execute-api"
MAX_SKEW = datetime.timedelta(minutes=5)  # docs: APIGW-24
_ALGORITHM = "AWS4-HMAC-SHA256"
_PARAMETER = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")
_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
             "Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class Denied:
    """Why a request is refused: an API Gateway response type (403 each) and its message."""

    response_type: str
    message: str


@dataclass(frozen=True)
class LocalAuth:
    mode: str = "none"
    secret_key: str = DEFAULT_SECRET_KEY
    operators: FrozenSet[str] = field(default_factory=frozenset)
    region: str = DEFAULT_REGION
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        if self.mode not in AUTH_MODES:
            raise ValueError(f"local auth must be one of {', '.join(AUTH_MODES)}, got {self.mode!r}")

    def caller(self, request: Request, body: bytes, now: datetime.datetime) -> Union[Dict[str, str], Denied, None]:
        """The caller's `$context.identity` fields from its signature (None when auth is off), or
        why it is refused."""
        if self.mode == "none":
            return None
        header = request.headers.get("Authorization")
        if not header:
            return Denied("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        signed = _parse(header)
        if isinstance(signed, Denied):
            return signed
        access_key, date, region, service = signed["scope"]
        amz_date = request.headers.get("X-Amz-Date", "")
        if region != self.region:
            return Denied("INVALID_SIGNATURE", f"Credential should be scoped to a valid region, not '{region}'. ")
        if service != SERVICE:
            return Denied("INVALID_SIGNATURE", f"Credential should be scoped to correct service: '{SERVICE}'. ")
        try:
            when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return Denied("INVALID_SIGNATURE", "Authorization header requires existence of either a 'X-Amz-Date' or "
                                               "a 'Date' header.")
        stale = _stale(when, now, amz_date) or (
            None if date == amz_date[:8] else f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                              f"version of date from HTTP: '{date}' != '{amz_date[:8]}'")
        if stale:
            return Denied("INVALID_SIGNATURE", stale)
        if signed["signature"] != self._signature(request, body, access_key, amz_date, signed["headers"]):
            return Denied("INVALID_SIGNATURE", _MISMATCH)
        if request.path.startswith(OPERATOR_PREFIX) and access_key not in self.operators:
            return Denied("ACCESS_DENIED", f"User: {self._user_arn(access_key)} is not authorized to perform: "
                                           f"execute-api:Invoke on resource: {self._method_arn(request)}")
        return {"accountId": self.account_id, "caller": access_key, "accessKey": access_key,
                "userArn": self._user_arn(access_key), "user": access_key}

    def _signature(self, request: Request, body: bytes, access_key: str, amz_date: str, names: FrozenSet[str]) -> str:
        # The URL as sent: SigV4 signs the path's encoded form, which werkzeug's `path` has decoded.
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        url = f"{request.scheme}://{request.host}{raw}"
        signer = _SignedHeadersOnly(Credentials(access_key, self.secret_key), SERVICE, self.region, names)
        aws_request = AWSRequest(method=request.method, url=url, data=body,
                                 headers={name: value for name, value in request.headers.items()})
        aws_request.context["timestamp"] = amz_date
        canonical = signer.canonical_request(aws_request)
        return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))

    def _user_arn(self, access_key: str) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{access_key}"

    def _method_arn(self, request: Request) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:local/api/{request.method}{request.path}"


class _SignedHeadersOnly(SigV4Auth):
    """botocore's signer, over the headers the client says it signed rather than all it sent."""

    def __init__(self, credentials: Credentials, service: str, region: str, names: FrozenSet[str]) -> None:
        super().__init__(credentials, service, region)
        self._names = names

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in sorted(self._names):
            value = request.headers.get(name)
            if value is not None:
                chosen[name] = value
        return chosen


def _stale(when: datetime.datetime, now: datetime.datetime, amz_date: str) -> str:
    def stamp(moment: datetime.datetime) -> str:
        return moment.strftime(SIGV4_TIMESTAMP)
    if when < now - MAX_SKEW:
        return f"Signature expired: {amz_date} is now earlier than {stamp(now - MAX_SKEW)} ({stamp(now)} - 5 min.)"
    if when > now + MAX_SKEW:
        return (f"Signature not yet current: {amz_date} is still later than {stamp(now + MAX_SKEW)} "
                f"({stamp(now)} + 5 min.)")
    return ""


def _parse(header: str) -> Union[Dict[str, Any], Denied]:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != _ALGORITHM:
        return Denied("INVALID_SIGNATURE", f"Authorization header requires '{_ALGORITHM}'. Authorization={header}")
    found: Mapping[str, str] = dict(_PARAMETER.findall(rest))
    missing = [f"Authorization header requires '{name}' parameter."
               for name in ("Credential", "Signature", "SignedHeaders") if not found.get(name)]
    scope = found.get("Credential", "").split("/")
    if not missing and (len(scope) != 5 or scope[4] != "aws4_request"):
        missing.append("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.")
    if missing:
        return Denied("INVALID_SIGNATURE", " ".join(missing) + f" Authorization={header}")
    return {"scope": scope[:4], "signature": found["Signature"],
            "headers": frozenset(found["SignedHeaders"].lower().split(";"))}



def local_auth(local: LocalConfig, stage_auth_mode: str) -> LocalAuth:
    """The local API's auth: what the local config says, else the stage's own if it is iam. (An
    api_key stage runs without auth here: no local API keys; every caller is anonymous.)"""
    mode = local.auth or ("iam" if stage_auth_mode == "iam" else "none")
    return LocalAuth(mode=mode, secret_key=local.secret_key, operators=local.operators, region=local.region)
