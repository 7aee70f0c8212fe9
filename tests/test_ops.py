"""The operator CLI (python -m ops) through main(argv, out, err) against an in-process fake of the
API (devserver/testing/fake_api.py): the /admin routes and OWNER/ID names, help, no prompt without a
terminal, line-oriented output, bounded concurrency, retries with backoff, errors that say what to
do, exit codes. No process is started, and sleeps are recorded rather than slept.
tests/test_e2e_ops_iam.py runs it against the local stack with IAM auth."""
from __future__ import annotations

import argparse
import datetime
import io
import json
import socket
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from devserver.apigw_auth import Denied, LocalAuth
from devserver.testing.fake_api import Call, FakeApi, Scripted
from ops import __main__ as cli
from ops.arguments import build_parser
from ops.backoff import Backoff
from ops.sigv4 import signer_for

COMMANDS = ["show", "failed", "pending", "retry", "retry-failed"]


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a console's stdin or stderr would."""

    def isatty(self) -> bool:
        return True


@dataclass
class Run:
    code: int
    out: str
    err: str
    sleeps: List[float] = field(default_factory=list)

    @property
    def err_lines(self) -> List[str]:
        return self.err.splitlines()


def ops(url: str, *argv: str, stdin: Optional[io.StringIO] = None, err: Optional[io.StringIO] = None) -> Run:
    out, err = io.StringIO(), err if err is not None else io.StringIO()
    sleeps: List[float] = []
    code = cli.main(["--api-url", url, *argv], out, err, stdin=stdin if stdin is not None else io.StringIO(),
                    environ={}, sleep=sleeps.append)
    return Run(code, out.getvalue(), err.getvalue(), sleeps)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as fake:
        yield fake


@pytest.fixture
def closed_port_url() -> str:
    # A port that was free a moment ago: nothing listens there, so connecting is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def retries(api: FakeApi) -> List[str]:
    return [call.path for call in api.calls if call.method == "POST"]


# --- help ---------------------------------------------------------------------------------------

def test_every_command_and_option_says_what_it_does():
    parser = build_parser(cli.__doc__ or "", io.StringIO(), io.StringIO(), {})

    assert sorted(parser.commands) == sorted(COMMANDS)
    for command in [parser, *parser.commands.values()]:
        # argparse has no public list of a parser's arguments.
        for action in command._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help and len(action.help) > 15, (command.prog, action.dest)
    choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))._choices_actions
    assert all(choice.help for choice in choices)


def test_help_says_what_each_command_touches_and_the_exit_codes(api):
    top = ops(api.url, "--help")
    retry_failed = ops(api.url, "retry-failed", "--help")
    failed = ops(api.url, "failed", "--help")

    assert top.code == retry_failed.code == failed.code == 0
    assert "Exit codes:" in top.out and "2    usage" in top.out and "--max-attempts" in top.out
    for command in COMMANDS:
        assert f"\n    {command} " in top.out
    assert "POST /admin/requests/OWNER/ID/retry" in retry_failed.out and "errorHistory" in retry_failed.out
    assert "GET /admin/requests?status=FAILED" in retry_failed.out and "OWNER/ID" in failed.out
    assert "execute-api:Invoke on the API's /admin/* routes" in " ".join(top.out.split())
    assert "a bare ID is the anonymous owner's" in " ".join(top.out.split())
    assert "--yes" in retry_failed.out and "stdin is not a terminal" in retry_failed.out
    assert "--concurrency N" in retry_failed.out and "1-64, default 8" in retry_failed.out
    assert "read-only" in failed.out
    assert api.calls == []


# --- no terminal, no prompt ----------------------------------------------------------------------

def test_retry_failed_without_a_terminal_refuses_before_touching_anything(api):
    api.add("FAILED", "a")

    run = ops(api.url, "retry-failed", stdin=io.StringIO("y\n"))

    assert run.code == 2
    assert "stdin is not a terminal: pass --yes" in run.err and "usage: python -m ops retry-failed" in run.err
    assert api.calls == [] and api.requests == {"anonymous/a": "FAILED"}


def test_retry_failed_with_yes_needs_no_terminal(api):
    api.add("FAILED", "a", "b")

    run = ops(api.url, "retry-failed", "--yes")

    assert (run.code, run.out, run.err) == (0, "retried 2 of 2\n", "")
    assert api.requests == {"anonymous/a": "PENDING", "anonymous/b": "PENDING"}


@pytest.mark.parametrize("answer, code, retried", [("y\n", 0, 2), ("yes\n", 0, 2), ("n\n", 1, 0), ("\n", 1, 0),
                                                   ("", 1, 0)])  # "": end of input (Ctrl-D)
def test_on_a_terminal_retry_failed_asks_first(api, answer, code, retried):
    api.add("FAILED", "a", "b")

    run = ops(api.url, "retry-failed", stdin=Terminal(answer))

    assert run.code == code
    assert run.err.startswith("retry 2 FAILED requests? [y/N] ")
    assert len(retries(api)) == retried
    if not retried:
        assert "nothing retried" in run.err


# --- output --------------------------------------------------------------------------------------

def test_without_a_terminal_the_output_is_plain_lines(api):
    api.add("FAILED", "a", "b", "c")
    api.script("POST", "/admin/requests/anonymous/b/retry", Scripted(409, {"message": "request b is PENDING"}))

    run = ops(api.url, "retry-failed", "--yes")

    assert run.code == 1
    assert run.out == "retried 2 of 3; 1 failed\n"
    assert run.err_lines == ["anonymous/b: not retried (409): only FAILED requests can be retried "
                             "(`python -m ops show anonymous/b` shows its status)"]
    assert "\r" not in run.out + run.err and "\x1b" not in run.out + run.err


def test_on_a_terminal_a_progress_bar_shows_rate_and_eta(api):
    api.add("FAILED", "a", "b", "c")
    terminal = Terminal()

    run = ops(api.url, "retry-failed", "--yes", stdin=Terminal("y\n"), err=terminal)

    assert (run.code, run.out) == (0, "retried 3 of 3\n")
    assert "retrying" in run.err and "3/3" in run.err and "/s" in run.err and "ETA" in run.err


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_retries_run_at_most_concurrency_at_once(api, concurrency):
    ids = [f"r{n:02d}" for n in range(40)]
    api.add("FAILED", *ids)
    api.gate(concurrency)  # the first ones wait for each other: exactly `concurrency` get in flight together
    for request_id in ids:
        api.hold(request_id, 0.002)

    run = ops(api.url, "retry", *ids, "--concurrency", str(concurrency))

    assert (run.code, run.out) == (0, "retried 40 of 40\n")
    assert api.max_in_flight == concurrency


def test_the_report_follows_the_order_given_not_the_order_finished(api):
    api.add("FAILED", "slow", "fast-1", "fast-2")
    api.add("PENDING", "running")
    api.hold("slow", 0.3)
    api.hold("missing", 0.2)
    api.script("POST", "/admin/requests/anonymous/bad/retry",
               Scripted(400, {"message": "a request id is 1 to 100 characters"}))
    given = ["slow", "missing", "fast-1", "running", "bad", "fast-2"]

    run = ops(api.url, "retry", *given, "--concurrency", "3")

    finished = api.finished_retries  # the scripted 400 is not counted there
    assert finished.index("anonymous/running") < finished.index("anonymous/missing")
    assert finished[0] != "anonymous/slow"
    assert run.code == 1
    assert run.out == "retried 3 of 6; 3 failed\n"
    assert [line.split(":")[0] for line in run.err_lines] == ["anonymous/missing", "anonymous/running",
                                                              "anonymous/bad"]
    assert "anonymous/missing: no request has this id (404): check the owner and the id" in run.err
    assert "anonymous/bad: refused (400: a request id is 1 to 100 characters)" in run.err


def test_a_run_stops_on_an_error_that_is_not_about_one_request(api):
    api.add("FAILED", "a", "b", "c", "d")
    api.script("POST", "/admin/requests/anonymous/a/retry", Scripted(403, {"message": "Missing Authentication Token"}))

    run = ops(api.url, "retry-failed", "--yes", "--concurrency", "1")

    assert run.code == 1
    assert run.out == "retried 0 of 4; 1 failed; 3 not attempted (the run stopped after the error above)\n"
    assert run.err_lines[0].startswith("anonymous/a: access denied (403: Missing Authentication Token): "
                                       "a stage with auth needs --sigv4")
    assert retries(api) == ["/admin/requests/anonymous/a/retry"]


# --- retries of an API call ----------------------------------------------------------------------

def test_429_and_503_are_tried_again_with_backoff_honouring_retry_after(api):
    api.add("FAILED", "a")
    api.script("GET", "/admin/requests/anonymous/a",
               Scripted(503, {"message": "storage unavailable"}, {"Retry-After": "2"}),
               Scripted(429, {"message": "Too Many Requests"}))

    run = ops(api.url, "show", "a")

    assert run.code == 0 and '"status": "FAILED"' in run.out
    assert len(api.calls) == 3
    after_503, after_429 = run.sleeps
    assert 2 <= after_503 < 2.25  # what Retry-After asked, plus a little jitter
    assert 0 <= after_429 <= 0.5  # the second backoff: up to 2 x 0.25 s


def test_a_retry_post_is_tried_again_and_a_409_after_a_503_may_be_its_own(api):
    api.add("PENDING", "a")  # as if the 503'd attempt had landed after all
    api.script("POST", "/admin/requests/anonymous/a/retry", Scripted(503, {"message": "storage unavailable"}))

    run = ops(api.url, "retry", "a")

    assert run.code == 1 and len(run.sleeps) == 1 and len(retries(api)) == 2
    assert "an earlier attempt (unanswered, or answered 503) may have retried it already" in run.err


def test_still_throttled_after_max_attempts_fails_with_advice(api):
    api.script("GET", "/admin/requests", *[Scripted(429, {"message": "Too Many Requests"})] * 3)

    run = ops(api.url, "--max-attempts", "3", "failed")

    assert run.code == 1 and len(run.sleeps) == 2 and len(api.calls) == 3
    assert run.err == ("error: listing FAILED requests: unavailable (429: Too Many Requests): the API is throttled "
                       "or its storage unavailable: try again later, or raise --max-attempts\n")


@pytest.mark.parametrize("answer", [Scripted(503, {}, {"Retry-After": "3600"}),  # longer than it may wait
                                    Scripted(500, {"message": "Internal Server Error"}),
                                    Scripted(404, {"message": "no request with id a"})])
def test_other_answers_are_final(api, answer):
    api.script("GET", "/admin/requests/anonymous/a", answer)

    run = ops(api.url, "show", "a")

    assert run.code == 1 and run.sleeps == [] and len(api.calls) == 1


def test_backoff_grows_exponentially_with_full_jitter_up_to_a_cap():
    backoff = Backoff(attempts=8, base=0.25, cap=2.0, random=lambda: 1.0)

    assert [backoff.wait(attempt) for attempt in range(1, 9)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, None]
    assert Backoff(random=lambda: 0.5).wait(3) == 0.5  # a random share of 1 s


def test_retry_after_is_read_as_seconds_or_an_http_date():
    backoff = Backoff(random=lambda: 0.0, clock=lambda: 1_790_000_000.0, max_wait=30)

    assert backoff.wait(1, "7") == 7
    assert backoff.wait(1, "Mon, 21 Sep 2026 14:13:30 GMT") == 10
    assert backoff.wait(1, "Mon, 21 Sep 2026 14:13:10 GMT") == 0  # already past
    assert backoff.wait(1, "31") is None
    assert backoff.wait(1, "soon") == 0  # unreadable: the usual backoff


# --- errors that say what to do, and exit codes --------------------------------------------------

@pytest.mark.parametrize("command", [["show", "a"], ["failed"], ["retry-failed", "--yes"]])
def test_an_unreachable_api_says_which_url_and_how_to_start_it(closed_port_url, command):
    run = ops(closed_port_url, "--max-attempts", "2", *command)

    assert run.code == 1 and len(run.sleeps) == 1  # refused connections are tried again too
    assert run.err == (f"error: cannot reach the API at {closed_port_url} ([Errno 111] Connection refused; "
                       "2 attempts): start the local stack with `make run`, or point --api-url / "
                       "STOREFIRST_API_URL at a stage's URL\n")


def test_missing_credentials_for_sigv4_say_how_to_provide_them(api, monkeypatch, tmp_path):
    # botocore reads the process environment: leave it nothing to find, and no instance metadata to ask.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    run = ops(api.url, "--sigv4", "show", "a")

    assert run.code == 1 and api.calls == []
    assert run.err.startswith("error: no AWS credentials found for --sigv4: ")
    assert "set AWS_PROFILE" in run.err and "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in run.err


def test_a_missing_id_and_a_request_not_failed_say_so(api):
    api.add("SUCCEEDED", "done")

    show = ops(api.url, "show", "gone")
    retry = ops(api.url, "retry", "gone", "done")

    assert show.code == retry.code == 1
    assert show.err == ("error: anonymous/gone: no request has this id (404): check the owner and the id, as "
                        "`failed` and `pending` print them (a bare ID is the anonymous owner's; a SUCCEEDED "
                        "request is deleted once its ttl passes)\n")
    assert retry.err_lines[1] == ("anonymous/done: not retried (409): only FAILED requests can be retried "
                                  "(`python -m ops show anonymous/done` shows its status)")


@pytest.mark.parametrize("argv", [[], ["nope"], ["show"], ["retry"], ["retry-failed", "--concurrency", "0"],
                                  ["retry", "a", "--concurrency", "65"], ["--max-attempts", "0", "show", "a"],
                                  ["failed", "--limit", "many"], ["pending", "--limit", "-1"],
                                  ["--api-url", "localhost:8000", "show", "a"], ["show", "nobody/a"],
                                  ["retry", "a", "iam-BOB/a b"]])
def test_usage_errors_exit_2_and_touch_nothing(api, argv):
    run = ops(api.url, *argv)

    assert run.code == 2 and "usage: python -m ops" in run.err and ": error: " in run.err
    assert api.calls == []


# --- requests named OWNER/ID, through the /admin routes ------------------------------------------

def test_listings_name_every_owners_requests_and_the_other_commands_take_those_names(api):
    api.add("FAILED", "iam-AIDAEXAMPLE/k1", "key-abc123/k1", "k1", "iam-AIDAEXAMPLE/k2")

    failed = ops(api.url, "failed")
    show = ops(api.url, "show", "key-abc123/k1")
    retry = ops(api.url, "retry", "iam-AIDAEXAMPLE/k1", "k1")  # a bare id: the anonymous owner's
    retry_failed = ops(api.url, "retry-failed", "--yes")

    assert [line.split("\t")[0] for line in failed.out.splitlines()] == [
        "iam-AIDAEXAMPLE/k1", "key-abc123/k1", "anonymous/k1", "iam-AIDAEXAMPLE/k2"]
    assert (show.code, json.loads(show.out)["owner"], json.loads(show.out)["id"]) == (0, "key-abc123", "k1")
    assert (retry.code, retry.out, retry_failed.code, retry_failed.out) == (0, "retried 2 of 2\n",
                                                                            0, "retried 2 of 2\n")
    assert [call.path for call in api.calls if call.method == "GET"] == [
        "/admin/requests?status=FAILED&limit=100", "/admin/requests/key-abc123/k1",
        "/admin/requests?status=FAILED&limit=100"]
    assert sorted(retries(api)) == ["/admin/requests/anonymous/k1/retry", "/admin/requests/iam-AIDAEXAMPLE/k1/retry",
                                    "/admin/requests/iam-AIDAEXAMPLE/k2/retry", "/admin/requests/key-abc123/k1/retry"]
    assert set(api.requests.values()) == {"PENDING"}


def test_both_parts_of_a_name_are_percent_encoded(api):
    name = "iam-AROAEXAMPLE+ops=1,x@y.z:s/table-5:order.1"  # every character an owner or an id may hold
    api.add("FAILED", name)

    show = ops(api.url, "show", name)
    retry = ops(api.url, "retry", name)

    assert (show.code, retry.code) == (0, 0) and api.requests == {name: "PENDING"}
    assert [call.path for call in api.calls] == [
        "/admin/requests/iam-AROAEXAMPLE%2Bops%3D1%2Cx%40y.z%3As/table-5%3Aorder.1",
        "/admin/requests/iam-AROAEXAMPLE%2Bops%3D1%2Cx%40y.z%3As/table-5%3Aorder.1/retry"]


@pytest.mark.parametrize("name, message", [
    ("nobody/k1", "'nobody/k1': 'nobody' is not an owner: name a request OWNER/ID as `failed` and `pending` "
                  "print it, OWNER being anonymous, iam-<principal id> or key-<API key id> (a bare ID is the "
                  "anonymous owner's)"),
    ("/k1", "'/k1': '' is not an owner"),
    ("key-a_b/k1", "'key-a_b/k1': 'key-a_b' is not an owner"),
    ("iam-BOB/k1/retry", "'iam-BOB/k1/retry': 'k1/retry' is not a request id: 1 to 100 characters of "
                         "A-Z a-z 0-9 . _ : -"),
    ("anonymous/", "'anonymous/': '' is not a request id"),
    ("k 1", "'k 1': 'k 1' is not a request id"),
    ("x" * 101, "is not a request id"),
])
def test_a_name_the_routes_would_refuse_is_a_usage_error(api, name, message):
    show = ops(api.url, "show", name)
    retry = ops(api.url, "retry", "k1", name)

    for run, argument in ((show, "OWNER/ID"), (retry, "OWNER/ID")):
        assert run.code == 2 and f"error: argument {argument}: " in run.err and message in run.err
    assert api.calls == []


ROUTE_CALLS = [("GET", "/admin/requests/nobody/k1"), ("GET", "/admin/requests/iam-BOB/bad!id"),
               ("GET", f"/admin/requests/iam-BOB/{'x' * 101}"), ("GET", "/admin/requests/iam-BOB/missing"),
               ("GET", "/admin/requests/anonymous/k1"),  # another owner's key: not found
               ("POST", "/admin/requests/key-abc/k1/retry"), ("POST", "/admin/requests/nobody/k1/retry"),
               ("POST", "/admin/requests/anonymous/k2/retry"),  # PENDING: 409
               ("POST", "/admin/requests/iam-BOB/k1/retry"),  # FAILED: 202
               ("GET", "/admin/requests?status=SUCCEEDED"), ("GET", "/admin/requests?status=FAILED&limit=0"),
               ("GET", "/admin/requests?status=FAILED&limit=101")]


@pytest.fixture
def chalice_routes(dynamodb):
    """The real routes (chalicelib/requests_api.py) through Chalice's test client, against moto, with
    what the fake is given in test_the_fake_answers_as_the_routes_do."""
    from chalice.test import Client

    import app as app_module
    from chalicelib import runtime
    from chalicelib.store import RequestStore
    from devserver.testing.events import pending_item
    from tests.conftest import TABLE

    dynamodb.put_item(TableName=TABLE, Item=pending_item("k1", {}, owner="iam-BOB"))
    dynamodb.put_item(TableName=TABLE, Item=pending_item("k2", {}, owner="anonymous"))
    RequestStore(dynamodb, TABLE).finish_failed("iam-BOB/k1", {"type": "RejectedRequest", "message": "no"}, now_ms=1)
    runtime.reset()
    with Client(app_module.app, stage_name="dev") as client:
        yield client.http
    runtime.reset()


def test_the_fake_answers_as_the_routes_do(api, chalice_routes):
    api.add("FAILED", "iam-BOB/k1")
    api.add("PENDING", "k2")

    for path in ("/admin/requests/iam-BOB/k1", "/admin/requests?status=PENDING"):  # the views: the same fields
        real, fake = json.loads(chalice_routes.get(path).body), api.answer("GET", path, {}).body
        assert set(real) == set(fake) and set(real.get("items", [{}])[0]) == set(fake.get("items", [{}])[0])
    for method, path in ROUTE_CALLS:
        real = getattr(chalice_routes, method.lower())(path, headers={"Content-Type": "application/json"})
        fake = api.answer(method, path, {})
        assert (fake.status, fake.body) == (real.status_code, json.loads(real.body)), (method, path)


# --- what each command did before, still ---------------------------------------------------------

def test_show_failed_pending_and_retry_work_as_before(api):
    api.add("FAILED", *[f"f{n:03d}" for n in range(250)])
    api.add("PENDING", "p1", "p2")

    assert json.loads(ops(api.url, "show", "f000").out)["id"] == "f000"
    failed = ops(api.url, "failed", "--limit", "250")
    first_three = ops(api.url, "failed", "--limit", "3")
    pending = ops(api.url, "pending")
    retry = ops(api.url, "retry", "f001", "f002")

    lines = failed.out.splitlines()
    assert len(lines) == 250
    assert lines[0].startswith("anonymous/f000\tFAILED\t2026-12-01T19:00:00.000Z\tattempts=1\t")
    assert lines[0].endswith("\tunknown dish: durian") and lines[-1].startswith("anonymous/f249\t")
    assert [line.split("\t")[0] for line in first_three.out.splitlines()] == ["anonymous/f000", "anonymous/f001",
                                                                              "anonymous/f002"]
    assert [line.split("\t")[:2] for line in pending.out.splitlines()] == [["anonymous/p1", "PENDING"],
                                                                           ["anonymous/p2", "PENDING"]]
    assert (retry.code, retry.out) == (0, "retried 2 of 2\n")
    listings = [call.path for call in api.calls if call.path.startswith("/admin/requests?status=FAILED")]
    assert sum("limit=100" in path for path in listings) == 3  # 250 in pages of 100
    assert any("limit=3" in path for path in listings)


def test_sigv4_signs_every_attempt_for_the_api_region(api):
    api.add("FAILED", "a")
    api.script("GET", "/admin/requests/anonymous/a", Scripted(503, {}))

    run = ops(api.url, "--sigv4", "--region", "eu-central-1", "show", "a")

    assert run.code == 0 and len(api.calls) == 2
    for call in api.calls:
        authorization = call.headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/eu-central-1/execute-api/aws4_request" in authorization
        assert call.headers["X-Amz-Security-Token"] == "testing"


def checked_by_the_local_gateway(api: FakeApi, call: Call, region: str) -> object:
    """What devserver/apigw_auth.py, the local stack's `--auth iam`, makes of this call's signature:
    the caller's identity, or why it is refused. It checks the path as it came in (RAW_URI)."""
    path, _, query = call.path.partition("?")
    environ = EnvironBuilder(path=path, query_string=query, base_url=api.url, method=call.method,
                             headers=list(call.headers.items()), environ_overrides={"RAW_URI": call.path}).get_environ()
    auth = LocalAuth(mode="iam", operators=frozenset({"testing"}), region=region)  # conftest's access key id
    return auth.caller(Request(environ), b"", datetime.datetime.now(datetime.timezone.utc))


def test_sigv4_signs_the_path_exactly_as_sent(api):
    name = "iam-AIDAEXAMPLE/table-5:order.1"
    api.add("FAILED", name)

    run = ops(api.url, "--sigv4", "--region", "us-east-1", "show", name)

    assert run.code == 0
    (call,) = api.calls
    assert call.path == "/admin/requests/iam-AIDAEXAMPLE/table-5%3Aorder.1"
    identity = checked_by_the_local_gateway(api, call, "us-east-1")
    assert isinstance(identity, dict) and identity["user"] == "testing"
    # The same signature over the path decoded, or for another region, does not hold.
    decoded = Call(call.method, "/admin/requests/iam-AIDAEXAMPLE/table-5:order.1", call.headers)
    for refused in (checked_by_the_local_gateway(api, decoded, "us-east-1"),
                    checked_by_the_local_gateway(api, call, "eu-west-1")):
        assert isinstance(refused, Denied) and refused.response_type == "INVALID_SIGNATURE"


def test_sigv4_signs_for_the_region_of_the_execute_api_url_unless_told():
    stage = "https://abc123.execute-api.ap-south-1.amazonaws.com/api"

    assert signer_for(stage).region == "ap-south-1"
    assert signer_for(stage, "eu-west-1").region == "eu-west-1"
    assert signer_for("https://ops.example.com/api", default_region="eu-north-1").region == "eu-north-1"
    headers = signer_for(stage).headers("POST", stage + "/admin/requests/anonymous/x/retry", b"{}")
    assert "/ap-south-1/execute-api/aws4_request" in headers["Authorization"] and "X-Amz-Date" in headers
