"""JSON from the outside, parsed safely: nesting bounded before parsing, strings storable in both
databases (no NUL, which PostgreSQL refuses in text, and no lone surrogate, which is not Unicode).

The checks cost almost nothing on ordinary input: the depth is measured on the text with C-speed
regular expressions, and strings are walked only when the text holds a `\\u0000` or `\\uD8xx` escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]', re.S)
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SHOWN_PATH = 160


class JsonError(ValueError):
    """Parsed JSON that is refused; the text names the path ("properties.a", "batch[3].userId")."""


def loads(
    raw: bytes | str,
    *,
    max_depth: int = MAX_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """Parse `raw` (UTF-8): json.JSONDecodeError / UnicodeDecodeError for malformed input,
    JsonError for nesting deeper than `max_depth` or a string no database can store."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    if text.count("[") + text.count("{") > max_depth:
        too_deep = _deep_path(text, max_depth) if _deeper_than(text, max_depth) else None
        if too_deep is not None:
            raise JsonError(f"{too_deep}: nested deeper than {max_depth} levels")
    value = json.loads(text, parse_float=parse_float)
    if _SUSPECT_ESCAPE.search(text):
        check_strings(value)
    return value


def check_strings(value: Any, where: str = "") -> None:
    """JsonError naming the first string (or object key) holding a NUL or a lone surrogate."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if (problem := _problem(item)) is not None:
                raise JsonError(f"{path or 'body'}: {problem}")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (problem := _problem(key)) is not None:
                    raise JsonError(f"{path or 'body'}: key {_shown(key)} {problem}")
                stack.append((_join(path, str(key)), child))
        elif isinstance(item, list):
            stack.extend((f"{path or 'body'}[{n}]", child) for n, child in enumerate(item))


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def _shown(key: str) -> str:
    return json.dumps(key, ensure_ascii=True)[:60]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _deeper_than(text: str, max_depth: int) -> bool:
    """Whether some container is nested deeper than `max_depth` (or the brackets do not balance):
    strings removed, then empty pairs removed once per level, all in C."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        brackets, removed = _EMPTY_PAIR.subn("", brackets)
        if not brackets or not removed:
            break
    return bool(brackets)


def _deep_path(text: str, max_depth: int) -> str | None:
    """The path of the first container nested deeper than `max_depth`, or None if there is none."""
    # One frame per open container: [opener, index or key, whether a key comes next].
    stack: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == '"':
            if stack and stack[-1][0] == "{" and stack[-1][2]:
                stack[-1][1] = _key(token)
        elif first in "[{":
            if len(stack) >= max_depth:
                return _path(stack)
            stack.append([first, 0 if first == "[" else "", first == "{"])
        elif first in "]}":
            if not stack:
                return None
            stack.pop()
        elif stack and first == ",":
            if stack[-1][0] == "[":
                stack[-1][1] += 1
            else:
                stack[-1][2] = True
        elif stack and first == ":":
            stack[-1][2] = False
    return None


def _key(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1]


def _path(stack: list[list[Any]]) -> str:
    path = ""
    for opener, label, _ in stack:
        path = f"{path or 'body'}[{label}]" if opener == "[" else _join(path, str(label))
    return path if len(path) <= _SHOWN_PATH else path[:_SHOWN_PATH] + "..."
