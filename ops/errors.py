"""What can go wrong for an operator, each error worded to say what to do next.

    OpsError                 a runtime failure: the CLI prints it and exits 1
     ├── CredentialsMissing  --sigv4 and no usable AWS credentials
     ├── Unreachable         no HTTP answer from the API (refused, reset, timed out) after every attempt
     └── ApiError            an HTTP answer that is not 2xx (after every attempt, for 429 and 503)
          ├── RequestFailed  about this one request (400 and below): a bulk retry reports it and goes on
          │    ├── RequestNotFound  404: no request has that owner and id
          │    └── NotRetryable     409: the request is not FAILED
          ├── AccessDenied   401, 403: the stage wants IAM auth, or this identity is no operator
          └── Unavailable    429 or 503 on every attempt, or another 5xx

Any error but RequestFailed would fail the next request the same way: a bulk retry stops on it.
ops/client.py is the one place that raises them (error_for maps a status to its class).
"""
from __future__ import annotations

from typing import Dict, Type

START_THE_STACK = "start the local stack with `make run`, or point --api-url / STOREFIRST_API_URL at a stage's URL"


class OpsError(Exception):
    """A runtime failure, already worded for the operator."""


class CredentialsMissing(OpsError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"{detail}: --sigv4 signs with the usual AWS credentials: set AWS_PROFILE (after `aws configure` "
            "or `aws sso login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
            "temporary ones); the local stack needs no --sigv4 unless it runs with --auth iam (then "
            "AWS_ACCESS_KEY_ID is one of its --operators and AWS_SECRET_ACCESS_KEY its secret key)")


class Unreachable(OpsError):
    def __init__(self, base_url: str, reason: str, attempts: int) -> None:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"cannot reach the API at {base_url} ({reason}; {tries}): {START_THE_STACK}")


class ApiError(OpsError):
    """`what` names the call (a request's OWNER/ID, or "listing FAILED requests"); `message` is the API's."""

    SUMMARY = "failed"
    ADVICE = ""
    SHOWS_MESSAGE = True

    def __init__(self, what: str, status: int, message: str, note: str = "") -> None:
        self.what, self.status, self.message = what, status, message
        detail = f": {message}" if message and self.SHOWS_MESSAGE else ""
        advice = "; ".join(part for part in (self.advice(), note) if part)
        super().__init__(f"{what}: {self.SUMMARY} ({status}{detail})" + (f": {advice}" if advice else ""))

    def advice(self) -> str:
        return self.ADVICE


class RequestFailed(ApiError):
    SUMMARY = "refused"


class RequestNotFound(RequestFailed):
    SUMMARY = "no request has this id"
    ADVICE = ("check the owner and the id, as `failed` and `pending` print them (a bare ID is the anonymous "
              "owner's; a SUCCEEDED request is deleted once its ttl passes)")
    SHOWS_MESSAGE = False  # it only repeats the id


class NotRetryable(RequestFailed):
    SUMMARY = "not retried"
    SHOWS_MESSAGE = False  # the API's says the same; the status it names is one `show` away

    def advice(self) -> str:
        return f"only FAILED requests can be retried (`python -m ops show {self.what}` shows its status)"


class AccessDenied(ApiError):
    SUMMARY = "access denied"

    def advice(self) -> str:
        if "is not authorized to perform" in self.message:  # signed, by an identity without the grant
            return ("these AWS credentials are not an operator's: the operator routes need execute-api:Invoke "
                    "on the API's /admin/* routes (use an operator's profile or keys)")
        return ("a stage with auth needs --sigv4, with credentials granted execute-api:Invoke on the API's "
                "/admin/* routes, and --api-url must end with the stage (…/api)")


class Unavailable(ApiError):
    SUMMARY = "unavailable"

    def advice(self) -> str:
        if self.status in (429, 503):
            return "the API is throttled or its storage unavailable: try again later, or raise --max-attempts"
        return "the API failed: see its logs"


BY_STATUS: Dict[int, Type[ApiError]] = {400: RequestFailed, 404: RequestNotFound, 409: NotRetryable,
                                        401: AccessDenied, 403: AccessDenied, 429: Unavailable}


def error_for(what: str, status: int, message: str, note: str = "") -> ApiError:
    """The error for a non-2xx answer of `status` whose body said `message`."""
    if status in BY_STATUS:
        return BY_STATUS[status](what, status, message, note)
    if status >= 500:
        return Unavailable(what, status, message, note)
    return ApiError(what, status, message, note)  # 405, 413, 415...: not about one request, so a bulk retry stops
