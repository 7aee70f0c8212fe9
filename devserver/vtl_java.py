"""Java-flavoured values for the VTL engine: what API Gateway's Velocity templates see.

Velocity calls Java methods on whatever a template touches (`$s.trim()`, `$m.keySet()`).
airspeed resolves `$x.name(...)` by item lookup, then by attribute, so `str`/`dict`/`list`
subclasses that carry the Java method names give every value those methods without
touching airspeed's process-global `__additional_methods__` table.

Java semantics that differ from Python and are reproduced here:
- String indices and `length()` count UTF-16 code units (an emoji is 2).
- `trim()` strips only characters <= U+0020.
- `replaceAll`/`replaceFirst` take a Java regex and a Java replacement (`$1`, `${name}`, `\\$`).
- `split(regex)` drops trailing empty strings and never yields a leading empty string for a
  zero-width match at index 0 (Java 8+).
- Printing a Map gives `{k=v, ...}`, a List `[a, b]`, null `null`, booleans `true`/`false`;
  `toString()` gives the same text.
- A list that came out of a JSON document (`$input.path`, `$util.parseJson`) prints as compact
  JSON instead, also inside a map (`{foo=[{"nested":"bar"}]}`), as AWS prints them (docs: APIGW-4).
Regexes are compiled with Python's `re` after translating Java's named-group spelling; that
covers the Java syntax templates use in practice, and Java-only constructs such as
`\\p{Alpha}` raise `re.error` (the template fails) rather than silently matching differently.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, SupportsIndex

_UTF16 = "utf-16-le"
_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?![=!])")
_JAVA_BACKREFERENCE = re.compile(r"\\k<([A-Za-z][A-Za-z0-9]*)>")


def _units(text: str) -> bytes:
    return text.encode(_UTF16, "surrogatepass")


def _from_units(data: bytes) -> str:
    return data.decode(_UTF16, "surrogatepass")


def _find_units(haystack: bytes, needle: bytes, start: int, reverse: bool = False) -> int:
    """Index (in UTF-16 units) of needle, searching only at code-unit boundaries."""
    if reverse:
        position = haystack.rfind(needle, 0, start * 2 + len(needle))
        while position > 0 and position % 2:
            position = haystack.rfind(needle, 0, position + len(needle) - 1)
    else:
        position = haystack.find(needle, max(start, 0) * 2)
        while position > 0 and position % 2:
            position = haystack.find(needle, position + 1)
    return -1 if position < 0 else position // 2


def java_regex(regex: str) -> re.Pattern[str]:
    """Compile a java.util.regex pattern; Java spells named groups (?<name>...) and \\k<name>."""
    translated = _JAVA_BACKREFERENCE.sub(r"(?P=\1)", _JAVA_NAMED_GROUP.sub("(?P<", regex))
    return re.compile(translated)


def java_replacement(pattern: re.Pattern[str], replacement: str) -> Callable[[re.Match[str]], str]:
    """Compile a java.util.regex.Matcher replacement string into a re.sub callable."""
    pieces: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(replacement):
        char = replacement[i]
        if char == "\\":
            if i + 1 == len(replacement):
                raise ValueError("character to be escaped is missing")
            literal.append(replacement[i + 1])
            i += 2
            continue
        if char != "$":
            literal.append(char)
            i += 1
            continue
        pieces.append("".join(literal))
        literal = []
        i += 1
        if i < len(replacement) and replacement[i] == "{":
            end = replacement.find("}", i)
            if end < 0:
                raise ValueError("named capturing group is missing trailing '}'")
            name = replacement[i + 1 : end]
            if name not in pattern.groupindex:
                raise IndexError(f"No group with name {{{name}}}")
            pieces.append(pattern.groupindex[name])
            i = end + 1
            continue
        if i == len(replacement) or not replacement[i].isdigit():
            raise ValueError("Illegal group reference")
        # Java keeps consuming digits while the number still names an existing group.
        group = int(replacement[i])
        i += 1
        while i < len(replacement) and replacement[i].isdigit():
            candidate = group * 10 + int(replacement[i])
            if candidate > pattern.groups:
                break
            group = candidate
            i += 1
        if group > pattern.groups:
            raise IndexError(f"No group {group}")
        pieces.append(group)
    pieces.append("".join(literal))

    def expand(match: re.Match[str]) -> str:
        return "".join(piece if isinstance(piece, str) else (match.group(piece) or "") for piece in pieces)

    return expand


class JavaString(str):
    """A str that also answers java.lang.String's methods."""

    def length(self) -> int:
        return len(_units(self)) // 2

    def isEmpty(self) -> bool:
        return not self

    def trim(self) -> JavaString:
        return JavaString(self.strip("".join(map(chr, range(0x21)))))

    def toLowerCase(self) -> JavaString:
        return JavaString(self.lower())

    def toUpperCase(self) -> JavaString:
        return JavaString(self.upper())

    def toString(self) -> JavaString:
        return self

    def contains(self, other: str) -> bool:
        return str(other) in self

    def startsWith(self, prefix: str, offset: int = 0) -> bool:
        return _units(self).startswith(_units(prefix), offset * 2)

    def endsWith(self, suffix: str) -> bool:
        return self.endswith(suffix)

    def equals(self, other: object) -> bool:
        return isinstance(other, str) and str(self) == str(other)

    def equalsIgnoreCase(self, other: object) -> bool:
        return isinstance(other, str) and self.casefold() == other.casefold()

    def concat(self, other: str) -> JavaString:
        return JavaString(self + other)

    def indexOf(self, needle: str, start: int = 0) -> int:
        return _find_units(_units(self), _units(needle), start)

    def lastIndexOf(self, needle: str, start: int | None = None) -> int:
        return _find_units(_units(self), _units(needle), self.length() if start is None else start, reverse=True)

    def substring(self, begin: int, end: int | None = None) -> JavaString:
        units = _units(self)
        end = len(units) // 2 if end is None else end
        if not 0 <= begin <= end <= len(units) // 2:
            raise IndexError(f"begin {begin}, end {end}, length {len(units) // 2}")
        return JavaString(_from_units(units[begin * 2 : end * 2]))

    def charAt(self, index: int) -> JavaString:
        return self.substring(index, index + 1)

    def matches(self, regex: str) -> bool:
        return java_regex(regex).fullmatch(self) is not None

    def replace(self, old: str, new: str, count: SupportsIndex = -1) -> JavaString:
        return JavaString(str.replace(self, str(old), str(new), count))

    def replaceAll(self, regex: str, replacement: str) -> JavaString:
        pattern = java_regex(regex)
        return JavaString(pattern.sub(java_replacement(pattern, replacement), self))

    def replaceFirst(self, regex: str, replacement: str) -> JavaString:
        pattern = java_regex(regex)
        return JavaString(pattern.sub(java_replacement(pattern, replacement), self, count=1))

    # Ignored (override): Java's split(regex, limit), not str's; VTL templates call the Java method.
    def split(self, regex: str, limit: int = 0) -> JavaList:  # type: ignore[override]
        parts: list[str] = []
        start = 0
        for match in java_regex(regex).finditer(self):
            if 0 < limit <= len(parts) + 1:
                break
            if match.end() == 0:
                continue
            parts.append(self[start : match.start()])
            start = match.end()
        if not parts:
            return JavaList([self])
        parts.append(self[start:])
        if limit == 0:
            while parts and parts[-1] == "":
                parts.pop()
        return JavaList(JavaString(part) for part in parts)


class JavaList(list[Any]):
    """A list that also answers java.util.List's methods."""

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def get(self, index: int) -> Any:
        return self[index]

    def contains(self, value: object) -> bool:
        return value in self

    def add(self, value: object) -> bool:
        self.append(value)
        return True

    def toString(self) -> JavaString:
        return JavaString(str(self))

    def __str__(self) -> str:
        return "[" + ", ".join(java_str(item) for item in self) + "]"


class JsonList(JavaList):
    """A list parsed from JSON: prints as compact JSON, maps and lists inside it included.

    Only `[{"foo":"bar"}]`-shaped output is recorded on AWS; escaping inside strings follows
    json.dumps without ASCII escapes, unverified beyond that."""

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False, separators=(",", ":"))


class JavaMap(dict[Any, Any]):
    """A dict that also answers java.util.Map's methods."""

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def keySet(self) -> JavaList:
        return JavaList(self.keys())

    def entrySet(self) -> JavaList:
        return JavaList(JavaMap(key=key, value=value) for key, value in self.items())

    def containsKey(self, key: object) -> bool:
        return key in self

    def put(self, key: object, value: object) -> Any:
        previous = self.get(key)
        self[key] = value
        return previous

    def putAll(self, other: dict[Any, Any]) -> None:
        self.update(other)

    def remove(self, key: object) -> Any:
        return self.pop(key, None)

    def toString(self) -> JavaString:
        return JavaString(str(self))

    def __str__(self) -> str:
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in self.items()) + "}"


def to_java(value: Any) -> Any:
    """Deep-convert plain Python data into the Java-flavoured equivalents (copies containers)."""
    if isinstance(value, str):
        return value if isinstance(value, JavaString) else JavaString(value)
    if isinstance(value, dict):
        return JavaMap((to_java(k), to_java(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return JavaList(to_java(item) for item in value)
    return value


def from_json(value: Any) -> Any:
    """Parsed JSON (dicts, lists, str...) as the values a template sees: lists become JsonList.

    Without recursion: a body may nest as deep as AWS's parser allows (1,000 levels), which would
    take Python past its own recursion limit three frames a level."""
    root = _shell(value)
    todo = [(value, root)] if isinstance(value, (dict, list)) else []
    while todo:
        source, target = todo.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            converted = _shell(item)
            if isinstance(target, dict):
                target[_shell(key)] = converted
            else:
                target.append(converted)
            if isinstance(item, (dict, list)):
                todo.append((item, converted))
    return root


def _shell(value: Any) -> Any:
    """A leaf as a template sees it, or an empty container of the right kind for a dict or list."""
    if isinstance(value, str):
        return value if isinstance(value, JavaString) else JavaString(value)
    if isinstance(value, dict):
        return JavaMap()
    if isinstance(value, list):
        return JsonList()
    return value


def java_str(value: Any) -> str:
    """String.valueOf(value) as Velocity prints it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and not isinstance(value, JavaMap):
        return str(JavaMap(value))
    if isinstance(value, (list, tuple)) and not isinstance(value, JavaList):
        return str(JavaList(value))
    return str(value)
