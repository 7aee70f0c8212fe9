"""SigV4 signing for an IAM-authorised stage (AUTH_MODE iam), from the usual AWS credentials.

Credentials are resolved once per run (botocore's chain: environment, profile, SSO, container,
instance metadata), not per request: resolution can take seconds, and refreshable credentials
refresh themselves when signing. Every attempt is signed anew (the signature carries its time).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

from ops.errors import CredentialsMissing

# https://{api-id}.execute-api.{region}.amazonaws.com/{stage}: the region the API lives in.
EXECUTE_API_HOST = re.compile(r"^https?://[^/]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:[:/]|$)")


class Signer:
    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def headers(self, method: str, url: str, body: Optional[bytes]) -> Dict[str, str]:
        """The headers that authenticate this one attempt (Authorization, X-Amz-Date, the token)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"")
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())


def signer_for(api_url: str, region: Optional[str] = None, default_region: Optional[str] = None) -> Signer:
    """A Signer for the API's region: `region` (--region) if given, else the execute-api host's, else
    `default_region` (AWS_REGION), else botocore's (AWS_DEFAULT_REGION, the profile), else us-east-1.
    Raises CredentialsMissing."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.get_session()
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # a missing profile, a failing credential_process...
        raise CredentialsMissing(f"cannot load AWS credentials for --sigv4 ({exc})") from exc
    if credentials is None:
        raise CredentialsMissing("no AWS credentials found for --sigv4")
    from_host = EXECUTE_API_HOST.match(api_url)
    chosen = (region or (from_host.group(1) if from_host else None) or default_region
              or session.get_config_variable("region"))
    return Signer(credentials, chosen or "us-east-1")
