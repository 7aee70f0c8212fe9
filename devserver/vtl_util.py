"""`$util` for API Gateway mapping templates (docs: APIGW-8).

escapeJavaScript follows Apache Commons Lang 2 `StringEscapeUtils.escapeJavaScript` (docs: APIGW-7):
it emits `\\'`, which is not valid JSON, so a template that embeds
`$util.escapeJavaScript($input.body)` in a JSON string without the documented
`.replaceAll("\\\\'", "'")` fails here exactly as it fails on AWS. (LocalStack JSON-encodes
instead and so hides that bug, docs: LOCAL-3.)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from typing import Any

from devserver.vtl_java import JavaString, from_json

_SHORT_ESCAPES = {
    "\b": "\\b",
    "\n": "\\n",
    "\t": "\\t",
    "\f": "\\f",
    "\r": "\\r",
    "'": "\\'",
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
}
# java.net.URLEncoder leaves exactly these bytes alone (space becomes "+").
_URL_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class VtlFunctionError(ValueError):
    """A $util function rejected its input; Velocity would raise, so the template fails."""


def escape_javascript(text: str) -> str:
    """Commons Lang 2 escapeJavaScript over UTF-16 code units (astral chars become two escapes)."""
    out: list[str] = []
    units = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(units), 2):
        code = units[index] | units[index + 1] << 8
        char = chr(code)
        if code > 0x7F:
            out.append(f"\\u{code:04X}")
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


def url_encode(text: str) -> str:
    """java.net.URLEncoder.encode(text, "UTF-8"): unlike quote_plus, `~` is encoded and `*` is not."""
    return "".join(
        "+" if byte == 0x20 else chr(byte) if byte in _URL_SAFE else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def url_decode(text: str) -> str:
    """java.net.URLDecoder.decode(text, "UTF-8"), which rejects a malformed % escape."""
    if _PERCENT_ESCAPE.search(text):
        raise VtlFunctionError(f"URLDecoder: Illegal hex characters in escape (%) pattern: {text!r}")
    try:
        return urllib.parse.unquote_plus(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise VtlFunctionError(f"URLDecoder: not UTF-8: {exc}") from exc


class Util:
    """The `$util` object; method names are the VTL names."""

    def escapeJavaScript(self, text: Any) -> JavaString | None:
        return None if text is None else JavaString(escape_javascript(str(text)))

    def parseJson(self, text: Any) -> Any:
        try:
            return from_json(parse_json(str(text)))
        except ValueError as exc:
            raise VtlFunctionError(f"parseJson: {exc}") from exc

    def base64Encode(self, text: Any) -> JavaString:
        return JavaString(base64.b64encode(str(text).encode("utf-8")).decode("ascii"))

    def base64Decode(self, text: Any) -> JavaString:
        try:
            return JavaString(base64.b64decode(str(text), validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise VtlFunctionError(f"base64Decode: {exc}") from exc

    def urlEncode(self, text: Any) -> JavaString:
        # Of a null: "" (recorded on AWS, docs: APIGW-8), not "None".
        return JavaString("" if text is None else url_encode(str(text)))

    def urlDecode(self, text: Any) -> JavaString:
        return JavaString(url_decode(str(text)))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """Strict JSON as a Java parser reads it: no NaN/Infinity (Python's json accepts them)."""
    return json.loads(text, parse_constant=_reject_constant)
