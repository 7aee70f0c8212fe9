"""Hostile input against the running local stack, over real HTTP (moto backend).

The stack is the database and the API processes, started as `make run` starts them (no stream
runner: nothing is processed, so the item count changes only by what a request writes). Each
case is sent as raw bytes on a socket, so malformed requests reach the server as written.

For every case: the documented status (README "The request lifecycle"; the cases it does not
name are decided below, each with why), a message that says what was wrong, never a 5xx, and
no partial write: the item count grows by one for a 202 and by nothing otherwise, and a 202's
stored `request` is the body byte for byte. The table in CASES is the record of what each
input gets; `note` says where AWS is known or suspected to differ.

Then another owner's requests, on a stack with `--auth iam`: BOB names ALICE's request with every
owner-ish id of reliability/cross_owner.py's OWNER_ISH (her owner in front, "/" raw or encoded,
"..") on both routes, and must get the refusal listed there, exactly as for an id nobody used,
and change nothing; a listing from a cursor naming her item lists only his own. (The reliability
suite's owners scenario makes the same attempts at scale, with the operator's view.)

Then a Hypothesis run: any JSON object, serialised any way, round-trips byte-exact
(tests/hypothesis_profiles.py: 100 examples under `make test`, 2,000 with STOREFIRST_PROFILE=ci);
and schemathesis against infra/openapi.py's description of the API: no 5xx, no status the
description does not document, responses as described.
"""
from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings, strategies as st

from chalicelib.ownership import ANONYMOUS, item_key
from chalicelib.requests_api import encode_cursor
from devserver.launcher import LocalStack, StackOptions
from devserver.testing.api import Api
from reliability.cross_owner import OWNER_ISH, ROUTES, STATUS, foreign, list_pages, try_owner_ish
from tests.conftest import ROOT
from tests.hypothesis_profiles import profile_name, stack_profile

pytestmark = pytest.mark.stack
MiB = 1024 * 1024
KiB = 1024


@dataclass
class Stack:
    api_url: str
    host: str
    port: int
    table: str
    dynamodb: Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("hostile"))
    with LocalStack(options) as local:
        yield Stack(local.api_url, options.host, local.port, local.table_name, local.client("dynamodb"))


# --- raw HTTP ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    headers: Dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def _chunks(body: bytes, size: int = 64 * KiB) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def send(stack: Stack, method: str, target: bytes, headers: Sequence[Tuple[bytes, bytes]] = (),
         body: Optional[bytes] = None, *, chunked: bool = False, raw_line: Optional[bytes] = None) -> Answer:
    """One request written byte for byte (Host, Content-Length or chunking and Connection added)."""
    lines = [raw_line or b"%s %s HTTP/1.1" % (method.encode(), target),
             b"Host: %s:%d" % (stack.host.encode(), stack.port)]
    lines += [name + b": " + value if value else name + b":" for name, value in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + (_chunks(body or b"") if chunked else body or b"")
    with socket.create_connection((stack.host, stack.port), timeout=120) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) before reading it all: read that answer
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def count_items(stack: Stack) -> int:
    """Every page: a Scan stops after 1 MB read even when it only counts."""
    pages = stack.dynamodb.get_paginator("scan").paginate(TableName=stack.table, Select="COUNT", ConsistentRead=True)
    return sum(page["Count"] for page in pages)


def stored_item(stack: Stack, request_id: str, owner: str = ANONYMOUS) -> Dict[str, Any]:
    item = stack.dynamodb.get_item(TableName=stack.table, Key={"id": {"S": item_key(owner, request_id)}},
                                   ConsistentRead=True).get("Item")
    assert item is not None, f"{request_id} was not stored"
    return item


# --- the cases -----------------------------------------------------------------------------------

JSON = b"application/json"


@dataclass(frozen=True)
class Case:
    """One hostile request and what it must get. `headers` come after Content-Type."""

    name: str
    status: int
    message: str  # part of the answer's body: every refusal says what is wrong
    body: Optional[bytes] = b'{"order": 1}'
    content_type: Optional[bytes] = JSON  # None: no Content-Type header at all
    headers: Tuple[Tuple[bytes, bytes], ...] = ()
    method: str = "PUT"
    target: bytes = b"/requests"
    chunked: bool = False
    raw_line: Optional[bytes] = None
    expect_id: Optional[str] = None  # the id a 202 must answer (a sent Idempotency-Key)
    note: str = ""  # where AWS is known or suspected to answer differently

    def request_headers(self) -> List[Tuple[bytes, bytes]]:
        return ([(b"Content-Type", self.content_type)] if self.content_type is not None else []) + list(self.headers)


def key(value: bytes, name: bytes = b"Idempotency-Key") -> Tuple[Tuple[bytes, bytes], ...]:
    return ((name, value),)


def sized(total: int) -> bytes:
    """A JSON object of exactly `total` bytes."""
    head, tail = b'{"blob": "', b'"}'
    return head + b"x" * (total - len(head) - len(tail)) + tail


EMPTY = "request body is empty (no body, or {}); send a JSON object with at least one member"
NOT_JSON = "Invalid JSON in request body"
NOT_UTF8 = "Invalid UTF-8 in request body"
TOO_LARGE = "request body too large: a stored request must fit in one 400 KB DynamoDB item"
MEDIA = "Content-Type must be application/json"
BAD_KEY = "Idempotency-Key must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"
BAD_FORCED_ID = "X-Amzn-RequestId must be 1 to 100 characters"
BAD_ID = "a request id is 1 to 100 characters of A-Z a-z 0-9 . _ : -"
NO_ROUTE = "Missing Authentication Token"
EVERY_ESCAPE = rb'{"e": "\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u00E9 \u2028 \u2029 \ud83d\ude00 \u0000 \u001f \u007f"}'
DEEP = 10_000

CASES: List[Case] = [
    # Bodies that are JSON objects: stored as sent.
    Case("smallest object with a member", 202, '"id"', body=b'{"":0}'),
    Case("object with whitespace around it", 202, '"id"', body=b' \t\r\n{"a": [1, 2]}\n\n '),
    Case("duplicate keys", 202, '"id"', body=b'{"a": 1, "a": 2}',
         note="valid JSON (RFC 8259 says names SHOULD be unique); stored as sent, the processor reads the last"),
    Case("every JSON escape", 202, '"id"', body=EVERY_ESCAPE),
    Case("apostrophes and backslash-quote", 202, '"id"', body=b'{"q": "it\'s \\\\\' \\\\\\\\\' \'\' \\\\"}',
         note="the escapeJavaScript + replaceAll workaround (docs: APIGW-7) keeps each one"),
    Case("escaped NUL in a string", 202, '"id"', body=b'{"n": "a\\u0000b"}',
         note="the escape is stored as its six characters; DynamoDB never sees a NUL"),
    Case("lone high surrogate, escaped", 202, '"id"', body=b'{"s": "\\ud800"}',
         note="valid JSON text, not valid Unicode once decoded; stored byte-exact as the escape"),
    Case("lone low surrogate and a reversed pair", 202, '"id"', body=b'{"s": "\\udc00 \\ude00\\ud83d"}'),
    Case("raw non-ASCII UTF-8", 202, '"id"',
         body='{"u": "café ☕ 😀 עברית \u2028\u2029 \ufeff"}'.encode("utf-8")),
    Case("raw DEL and C1 characters", 202, '"id"', body='{"c": "\x7f\u0080\u009f"}'.encode("utf-8"),
         note="JSON forbids only U+0000-U+001F raw in strings"),
    Case("JSON injection into the item", 202, '"id"',
         body=b'{"x": "\\"}, \\"status\\": {\\"S\\": \\"SUCCEEDED\\"}, \\"id\\": {\\"S\\": \\"victim"}'),
    Case("VTL and CloudFormation syntax", 202, '"id"',
         body=b'{"v": "$context.requestId $input.body #set($x = 1) #end ${RequestsTable} '
              b'$util.escapeJavaScript(\'x\')"}'),
    Case("nested 500 levels", 202, '"id"', body=b'{"a": ' * 500 + b"1" + b"}" * 500,
         note="under the 1,000 levels at which Jackson 2.15+ (and Python's parser) stop"),
    Case("no Content-Type header", 202, '"id"', content_type=None,
         note="a missing Content-Type counts as application/json (docs: APIGW-13)"),
    Case("Content-Type with charset=utf-8", 202, '"id"', content_type=b"application/json; charset=utf-8"),
    Case("Content-Type with charset=utf-8, no space", 202, '"id"', content_type=b"application/json;charset=utf-8"),
    Case("empty Content-Type header", 202, '"id"', content_type=b"",
         note="an empty value is read as none at all"),
    Case("chunked body", 202, '"id"', chunked=True),
    Case("399 KB body (399,000 bytes)", 202, '"id"', body=sized(399_000)),
    Case("8 KiB extra header", 202, '"id"', headers=((b"X-Padding", b"p" * 8 * KiB),),
         note="within API Gateway's 10,240-byte quota for header values"),
    # Not JSON objects: 400 from the request validator (BAD_REQUEST_BODY), nothing written.
    Case("array", 400, "instance type (array) does not match", body=b"[1, 2]"),
    Case("string", 400, "instance type (string) does not match", body=b'"text"'),
    Case("number", 400, "instance type (integer) does not match", body=b"42"),
    Case("boolean", 400, "instance type (boolean) does not match", body=b"true"),
    Case("null", 400, "instance type (null) does not match", body=b"null"),
    # An empty request: no body is {} to the validator and the template (docs: APIGW-2, APIGW-15).
    Case("empty body", 400, EMPTY, body=b"",
         note="validated as {}, then refused by the template's empty-key marker, as {} is"),
    Case("empty object", 400, EMPTY, body=b"{}"),
    Case("empty object with whitespace inside and around", 400, EMPTY, body=b" { \r\n } "),
    Case("whitespace only", 400, NOT_JSON, body=b" \r\n\t "),
    Case("malformed", 400, NOT_JSON, body=b"{not json"),
    Case("trailing comma", 400, NOT_JSON, body=b'{"a": 1,}'),
    Case("two documents", 400, NOT_JSON, body=b'{"a": 1} {"b": 2}'),
    Case("single quotes", 400, NOT_JSON, body=b"{'a': 1}"),
    Case("NaN", 400, "NaN is not JSON", body=b'{"a": NaN}'),
    Case("Infinity", 400, "Infinity is not JSON", body=b'{"a": -Infinity}'),
    Case("leading zero", 400, NOT_JSON, body=b'{"a": 01}'),
    Case("invalid escape", 400, NOT_JSON, body=b'{"a": "\\x41"}'),
    Case("short \\u escape", 400, NOT_JSON, body=b'{"a": "\\u12"}'),
    Case("raw NUL byte in a string", 400, "Invalid control character", body=b'{"n": "a\x00b"}'),
    Case("raw NUL byte after the object", 400, NOT_JSON, body=b"{}\x00"),
    Case("raw tab in a string", 400, "Invalid control character", body=b'{"t": "a\tb"}'),
    Case("UTF-8 byte order mark", 400, NOT_JSON, body=b"\xef\xbb\xbf{}",
         note="RFC 8259 §8.1: senders MUST NOT add one; parsers MAY ignore it (AWS unverified)"),
    Case("5,000-digit number", 400, NOT_JSON, body=b'{"n": ' + b"9" * 5000 + b"}",
         note="valid JSON, beyond Python's 4,300-digit int limit; Jackson 2.15+ stops at 1,000 digits too "
              "(AWS unverified)"),
    Case(f"arrays nested {DEEP:,} levels", 400, NOT_JSON, body=b"[" * DEEP + b"]" * DEEP),
    Case(f"objects nested {DEEP:,} levels", 400, NOT_JSON, body=b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    # Not UTF-8 text: 400 (the validator cannot read it as JSON text).
    Case("invalid UTF-8 byte", 400, NOT_UTF8, body=b'{"a": "\xff"}',
         note="LocalStack answers 500 (docs: LOCAL-3); AWS unverified"),
    Case("overlong UTF-8", 400, NOT_UTF8, body=b'{"a": "\xc0\xaf"}'),
    Case("UTF-8-encoded surrogate (CESU-8)", 400, NOT_UTF8, body=b'{"a": "\xed\xa0\x80"}'),
    Case("truncated UTF-8 sequence", 400, NOT_UTF8, body=b'{"a": "\xe2\x82"}'),
    Case("UTF-16 body", 400, NOT_UTF8, body="{}".encode("utf-16")),
    Case("gzip body, Content-Encoding: gzip", 400, NOT_UTF8, body=gzip.compress(b'{"a": 1}'),
         headers=((b"Content-Encoding", b"gzip"),),
         note="API Gateway decompresses only with minimumCompressionSize set; this API has none"),
    # Too large: 413.
    Case("399 KiB body (408,576 bytes)", 413, TOO_LARGE, body=sized(399 * KiB),
         note="moto caps items at 405,000 bytes, AWS at 409,600 (400 KiB): AWS stores this one (202)"),
    Case("401 KiB body (410,624 bytes)", 413, TOO_LARGE, body=sized(401 * KiB)),
    Case("10 MiB body (10,485,760 bytes)", 413, TOO_LARGE, body=sized(10 * MiB),
         note="under API Gateway's payload limit, so DynamoDB refuses it: the template's 413"),
    Case("10 MiB + 1 byte", 413, TOO_LARGE, body=sized(10 * MiB + 1),
         note="REQUEST_TOO_LARGE before the body is read"),
    Case("10 MiB + 1 byte, chunked (no Content-Length)", 413, TOO_LARGE, body=sized(10 * MiB + 1), chunked=True),
    # Content types without a template: 415 (passthroughBehavior never).
    Case("text/plain", 415, MEDIA, content_type=b"text/plain"),
    Case("form-encoded", 415, MEDIA, content_type=b"application/x-www-form-urlencoded"),
    Case("application/octet-stream (a Chalice binary type)", 415, MEDIA, content_type=b"application/octet-stream"),
    Case("multipart", 415, MEDIA, content_type=b"multipart/form-data; boundary=x"),
    Case("charset=UTF-8 (upper case)", 415, MEDIA, content_type=b"application/json; charset=UTF-8",
         note="exact template-key lookup, AWS unverified (docs: APIGW-13, LOCAL-3): only the two utf-8 "
              "spellings have templates"),
    Case("charset=latin-1", 415, MEDIA, content_type=b"application/json; charset=latin-1"),
    Case("APPLICATION/JSON", 415, MEDIA, content_type=b"APPLICATION/JSON",
         note="exact lookup again; media types are case-insensitive in HTTP (AWS unverified)"),
    Case("two media types", 415, MEDIA, content_type=b"application/json, text/plain"),
    # Huge headers: refused by the HTTP server before any route runs.
    Case("70 KiB header", 431, "Line too long", headers=((b"X-Padding", b"p" * 70 * KiB),),
         note="over the server's 64 KiB line; AWS refuses over 10,240 bytes of header values (status unverified)"),
    Case("150 headers", 431, "Too many headers",
         headers=tuple((b"X-H%d" % i, b"v") for i in range(150))),
    # Idempotency-Key and X-Amzn-RequestId: the id of the item.
    Case("Idempotency-Key of every allowed character", 202, '"id"', headers=key(b"Az09._:-key"),
         expect_id="Az09._:-key"),
    Case("Idempotency-Key of 100 characters", 202, '"id"', headers=key(b"k" * 99 + b"1"), expect_id="k" * 99 + "1"),
    Case("IDEMPOTENCY-KEY in upper case", 202, '"id"', headers=key(b"upper-1", b"IDEMPOTENCY-KEY"),
         expect_id="upper-1"),
    Case("Idempotency-Key with leading spaces", 202, '"id"', headers=key(b"   lead-1"), expect_id="lead-1"),
    Case("Idempotency-Key with trailing spaces", 202, '"id"', headers=key(b"trail-1   "), expect_id="trail-1"),
    Case("Idempotency-Key ../../etc/passwd", 400, BAD_KEY, headers=key(b"../../etc/passwd")),
    Case("Idempotency-Key of 101 characters", 400, BAD_KEY, headers=key(b"k" * 101)),
    Case("Idempotency-Key of 10 KiB", 400, BAD_KEY, headers=key(b"k" * 10 * KiB)),
    Case("Idempotency-Key in Cyrillic (UTF-8 bytes)", 400, BAD_KEY, headers=key("ключ".encode("utf-8"))),
    Case("Idempotency-Key %00", 400, BAD_KEY, headers=key(b"%00"), note="percent-encoding is not decoded in headers"),
    Case("Idempotency-Key percent-encoded", 400, BAD_KEY, headers=key(b"order%2D1")),
    Case("Idempotency-Key with a space", 400, BAD_KEY, headers=key(b"a b")),
    Case("Idempotency-Key with a raw NUL byte", 400, BAD_KEY, headers=key(b"a\x00b")),
    Case("Idempotency-Key empty", 400, BAD_KEY, headers=key(b"")),
    Case("Idempotency-Key with a quote", 400, BAD_KEY, headers=key(b'a"b')),
    Case("Idempotency-Key $context.requestId", 400, BAD_KEY, headers=key(b"$context.requestId")),
    Case("Idempotency-Key #set($id = 1)", 400, BAD_KEY, headers=key(b"#set($id = 1)")),
    Case("Idempotency-Key sent twice", 400, BAD_KEY, headers=key(b"twice-a") + key(b"twice-b"),
         note="the server joins repeated headers with ','; AWS may take the last value (unverified)"),
    Case("X-Amzn-RequestId ../x", 400, BAD_FORCED_ID, headers=key(b"../x", b"X-Amzn-RequestId")),
    Case("X-Amzn-RequestId of 10 KiB", 400, BAD_FORCED_ID, headers=key(b"r" * 10 * KiB, b"X-Amzn-RequestId")),
    # Path ids and query strings of the Chalice routes: 400, 404 or API Gateway's 403; nothing written.
    Case("GET an unknown id", 404, "no request with id no-such-request", method="GET",
         target=b"/requests/no-such-request", body=None, content_type=None),
    Case("GET .. percent-encoded as %2e%2e", 404, "no request with id ..", method="GET",
         target=b"/requests/%2e%2e", body=None, content_type=None,
         note="'..' is a valid id; HTTP clients normalise /requests/.. away, so %2e%2e is how to reach it"),
    Case("GET ../etc", 403, NO_ROUTE, method="GET", target=b"/requests/../etc", body=None, content_type=None),
    Case("GET ..%2Fetc", 400, BAD_ID, method="GET", target=b"/requests/..%2Fetc", body=None, content_type=None,
         note="%2F stays in the {request_id} segment (the path is routed as sent, as AWS's REST APIs keep "
              "it); decoded by the route it is no id"),
    Case("GET an id of 10 KiB", 400, BAD_ID, method="GET", target=b"/requests/" + b"x" * 10 * KiB,
         body=None, content_type=None),
    Case("GET a unicode id", 400, BAD_ID, method="GET",
         target=b"/requests/" + urllib.parse.quote("ключ").encode(), body=None, content_type=None),
    Case("GET %00", 400, BAD_ID, method="GET", target=b"/requests/%00", body=None, content_type=None),
    Case("GET a%20b", 400, BAD_ID, method="GET", target=b"/requests/a%20b", body=None, content_type=None),
    Case("GET a raw space in the path", 400, "Bad request syntax", method="GET", body=None, content_type=None,
         raw_line=b"GET /requests/a b HTTP/1.1"),
    Case("GET a bad percent-escape %ZZ", 400, BAD_ID, method="GET", target=b"/requests/%ZZ",
         body=None, content_type=None),
    Case("GET %FF (not UTF-8)", 400, BAD_ID, method="GET", target=b"/requests/%FF", body=None, content_type=None),
    Case("POST retry of an unknown id", 404, "no request with id nobody", method="POST",
         target=b"/requests/nobody/retry", body=None, content_type=None),
    Case("POST retry /requests/../retry", 404, "no request with id ..", method="POST", target=b"/requests/../retry",
         body=None, content_type=None, note="not normalised: the retry route with the id '..', which is unknown"),
    Case("POST retry of a 10 KiB id", 400, BAD_ID, method="POST", target=b"/requests/" + b"x" * 10 * KiB + b"/retry",
         body=None, content_type=None),
    Case("POST retry %00", 400, BAD_ID, method="POST", target=b"/requests/%00/retry", body=None, content_type=None),
    Case("GET list with status %00", 400, "status must be one of PENDING, FAILED", method="GET",
         target=b"/requests?status=%00", body=None, content_type=None),
    Case("GET list with a 20-digit limit", 400, "limit must be a whole number from 1 to 100", method="GET",
         target=b"/requests?status=FAILED&limit=99999999999999999999", body=None, content_type=None),
    Case("GET list with a forged cursor", 400, "cursor is not valid", method="GET",
         target=b"/requests?status=FAILED&cursor=" + urllib.parse.quote('{"id": {"S": "../x"}}').encode(),
         body=None, content_type=None),
    Case("DELETE a request", 405, "Unsupported method: DELETE", method="DELETE", target=b"/requests/some-id",
         body=None, content_type=None,
         note="Chalice's local gateway answers 405; AWS answers an undefined method with 403 "
              "Missing Authentication Token"),
]


def _params(cases: List[Case]) -> List[Any]:
    return [pytest.param(case, id=case.name) for case in cases]


def test_there_are_at_least_forty_cases_with_unique_names():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", _params(CASES))
def test_hostile_input_gets_its_documented_answer_and_writes_nothing_partial(stack, case):
    before = count_items(stack)

    answer = send(stack, case.method, case.target, case.request_headers(), case.body,
                  chunked=case.chunked, raw_line=case.raw_line)

    assert answer.status == case.status, f"{answer.status} {answer.text[:300]}"
    assert case.message in answer.text, answer.text[:300]
    if case.method == "PUT" and answer.status == 202:
        request_id = answer.json()["id"]
        assert case.expect_id in (None, request_id)
        item = stored_item(stack, request_id)
        assert item["request"]["S"].encode("utf-8", "surrogatepass") == case.body
        assert item["status"] == {"S": "PENDING"}
        assert count_items(stack) == before + 1
    else:
        assert count_items(stack) == before


def test_a_repeated_key_never_overwrites_even_with_a_hostile_body(stack):
    first = send(stack, "PUT", b"/requests", [(b"Content-Type", JSON), (b"Idempotency-Key", b"once-only")],
                 b'{"order": "first"}')
    before = count_items(stack)

    again = send(stack, "PUT", b"/requests", [(b"Content-Type", JSON), (b"Idempotency-Key", b"once-only")],
                 b'{"x": "\\"}, \\"status\\": {\\"S\\": \\"SUCCEEDED\\"}}"}')

    assert (first.status, again.status) == (202, 409)
    assert again.json() == {"id": "once-only", "message": "a request with this id already exists; it was not changed"}
    assert stored_item(stack, "once-only")["request"]["S"] == '{"order": "first"}'
    assert count_items(stack) == before


def test_a_forced_request_id_cannot_overwrite_another_request(stack):
    # A client can set $context.requestId through X-Amzn-RequestId (docs: APIGW-1).
    victim = send(stack, "PUT", b"/requests", [(b"Content-Type", JSON)], b'{"order": "victim"}').json()["id"]
    before = count_items(stack)

    forced = send(stack, "PUT", b"/requests", [(b"Content-Type", JSON), (b"X-Amzn-RequestId", victim.encode())],
                  b'{"order": "attacker"}')

    assert forced.status == 409 and forced.json()["id"] == victim
    assert stored_item(stack, victim)["request"]["S"] == '{"order": "victim"}'
    assert count_items(stack) == before


# --- another owner's requests (a stack with --auth iam) ------------------------------------------

ALICE, BOB = "iam-ALICE", "iam-BOB"
UNKNOWN_DISH = {"table": 1, "items": [{"dish": "durian", "qty": 1}]}


@pytest.fixture(scope="module")
def owners_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("owners"), auth="iam", operators=frozenset({"OPS"}))
    with LocalStack(options) as local:
        yield Stack(local.api_url, options.host, local.port, local.table_name, local.client("dynamodb"))


@pytest.fixture(scope="module")
def alices(owners_stack: Stack) -> str:
    """ALICE's request, FAILED: the state in which a retry would change it."""
    alice = Api(owners_stack.api_url, "ALICE")
    request_id = alice.accepted(UNKNOWN_DISH, {"Idempotency-Key": "alices-order"})
    assert alice.finished(request_id, timeout=30)["status"] == "FAILED"
    return request_id


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("shape", [pytest.param(shape, id=shape.name) for shape in OWNER_ISH])
def test_an_owner_ish_id_never_reaches_another_owners_request(owners_stack, alices, shape, route):
    before, count = stored_item(owners_stack, alices, ALICE), count_items(owners_stack)

    status, problem = try_owner_ish(Api(owners_stack.api_url, "BOB"), shape, route, ALICE, alices)

    assert problem is None  # refused as the table says, exactly as the same shape naming an unused id
    assert status == STATUS[shape.expected(route)]
    assert stored_item(owners_stack, alices, ALICE) == before and count_items(owners_stack) == count


def test_a_cursor_naming_another_owners_item_lists_only_the_callers_own(owners_stack, alices):
    # After the cursor's item the index holds ALICE's later request, then BOB's: only BOB's may show.
    alice, bob = Api(owners_stack.api_url, "ALICE"), Api(owners_stack.api_url, "BOB")
    alices_later = alice.accepted(UNKNOWN_DISH, {"Idempotency-Key": "alices-later-order"})
    assert alice.finished(alices_later, timeout=30)["status"] == "FAILED"
    bobs = bob.accepted(UNKNOWN_DISH)
    assert bob.finished(bobs, timeout=30)["status"] == "FAILED"
    item = stored_item(owners_stack, alices, ALICE)
    cursor = encode_cursor({"id": item["id"], "listStatus": {"S": "FAILED"}, "createdAt": item["createdAt"]})

    items, statuses, problems = list_pages(bob, "FAILED", limit=1, cursor=cursor)

    assert (problems, set(statuses)) == ([], {200})
    assert bobs in {i["id"] for i in items} and foreign(items, {bobs}) == []


# --- any JSON object round-trips byte-exact ----------------------------------------------------

_STRINGS = st.text(st.characters(codec=None, exclude_categories=()), max_size=24)  # surrogates included
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _STRINGS
_VALUES = st.recursive(_SCALARS,
                       lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_STRINGS, inner, max_size=5),
                       max_leaves=30)
_WHITESPACE = st.text(st.sampled_from(" \t\r\n"), max_size=3)


@st.composite
def json_object_texts(draw: st.DrawFn) -> bytes:
    """A JSON object as some client might send it: escaped or raw UTF-8, compact or indented,
    `/` escaped or not, whitespace around it."""
    value = draw(st.dictionaries(_STRINGS, _VALUES, min_size=1, max_size=6))  # {} is an empty request
    ensure_ascii = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ensure_ascii, sort_keys=draw(st.booleans()),
                      indent=draw(st.sampled_from([None, 0, 2, "\t"])),
                      separators=draw(st.sampled_from([None, (",", ":"), (", ", ": ")])))
    if draw(st.booleans()):
        text = text.replace("/", "\\/")  # outside strings JSON has no "/", so only strings change
    text = draw(_WHITESPACE) + text + draw(_WHITESPACE)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: send it escaped
        return json.dumps(value).encode("ascii")


def test_any_json_object_round_trips_byte_exact(stack):
    before = count_items(stack)
    accepted: List[str] = []

    @settings(stack_profile())
    @given(body=json_object_texts())
    def round_trip(body: bytes) -> None:
        answer = send(stack, "PUT", b"/requests", [(b"Content-Type", JSON)], body)
        assert answer.status == 202, f"{answer.status} {answer.text[:300]}"
        request_id = answer.json()["id"]
        assert stored_item(stack, request_id)["request"]["S"].encode("utf-8", "surrogatepass") == body
        accepted.append(request_id)

    round_trip()

    assert len(accepted) >= stack_profile().max_examples
    assert len(set(accepted)) == len(accepted)
    assert count_items(stack) == before + len(accepted)


# --- schemathesis against the API's description -------------------------------------------------

SCHEMATHESIS_EXAMPLES = {"dev": 30, "ci": 300}  # per operation and phase
SCHEMATHESIS_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(stack, tmp_path):
    bin_dir = Path(sys.executable).parent
    spec = tmp_path / "openapi-dev.json"
    subprocess.run([sys.executable, str(ROOT / "infra" / "openapi.py"), "--stage", "dev", str(spec)],
                   cwd=ROOT, check=True, capture_output=True)

    run = subprocess.run(
        [str(bin_dir / "schemathesis"), "run", str(spec), "--url", stack.api_url, "--checks", SCHEMATHESIS_CHECKS,
         "--max-examples", str(SCHEMATHESIS_EXAMPLES[profile_name()]), "--seed", "20261126",
         "--generation-database", "none", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )

    summary = run.stdout[run.stdout.find("SUMMARY"):]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) >= 100, summary
    print(summary)  # shown with -s: the phases, warnings and counts
