"""JSON text as the readers take it: ``json.loads`` and ``json.dumps`` for values of any depth (an explicit
stack past Python's recursion limit), and the unpaired surrogate escapes no record may hold."""
from __future__ import annotations

import json
import re
from typing import Any


def load_json(text: str) -> Any:
    """``json.loads``, also for documents nested deeper than its recursion allows (read with an explicit
    stack, same values and errors): no line can raise RecursionError. A key written twice in one object
    keeps its first value (:func:`first_wins`)."""
    try:
        return json.loads(text, object_pairs_hook=first_wins)
    except RecursionError:
        return _load_deep(text)


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose key is written twice keeps the first value, as DuckDB's JSON reader (yyjson, through
    ``json_transform``) reads it, so both engines see one record (``json.loads`` alone keeps the last;
    RFC 8259 section 4 leaves it to the reader; Elasticsearch's json processor refuses such a text)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        record = {}
        for key, value in pairs:
            record.setdefault(key, value)
    return record


# An unpaired surrogate escape ("\\ud800" alone) names no Unicode character (I-JSON, RFC 7493 section 2.1,
# forbids it): json.loads keeps it, DuckDB's JSON refuses it, no UTF-8 text holds it. A record holding one
# is malformed (reported, the file's other records read). The escape's text (hex digits of either case)
# says where to look; json.loads joins a high-low pair into one character, so only the value says whether
# one was unpaired.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
UNPAIRED_SURROGATE = "an unpaired surrogate escape (\\ud800 to \\udfff alone names no character)"


def may_hold_surrogate(text: str) -> bool:
    return "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None


def holds_surrogate(value: Any) -> bool:
    work = [value]  # an explicit stack: values of any depth
    while work:
        item = work.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            work.extend(item)
            work.extend(item.values())
        elif isinstance(item, list):
            work.extend(item)
    return False


def dump_json(value: Any) -> str:
    """``json.dumps(value, default=str)``, also for values nested deeper than its recursion allows
    (written with an explicit stack, same text): an alert on such a record can always be written."""
    try:
        return json.dumps(value, default=str)
    except RecursionError:
        return _dump_deep(value)


def _dump_deep(value: Any) -> str:
    out: list[str] = []
    work: list[Any] = [value]  # values to write, and the literal separators/closers between them
    while work:
        item = work.pop()
        if isinstance(item, _Literal):
            out.append(item)
        elif isinstance(item, dict):
            work.append(_Literal("}"))
            for i, (key, member) in enumerate(reversed(list(item.items()))):
                work.append(member)
                work.append(_Literal(json.dumps(key if isinstance(key, str) else str(key)) + ": "))
                if i < len(item) - 1:
                    work.append(_Literal(", "))
            work.append(_Literal("{"))
        elif isinstance(item, list):
            work.append(_Literal("]"))
            for i, member in enumerate(reversed(item)):
                work.append(member)
                if i < len(item) - 1:
                    work.append(_Literal(", "))
            work.append(_Literal("["))
        else:
            out.append(json.dumps(item, default=str))
    return "".join(out)


class _Literal(str):
    """JSON punctuation on dump_json's stack (not a value to encode)."""


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CONSTANTS = {"null": None, "true": True, "false": False, "NaN": float("nan"), "Infinity": float("inf"),
              "-Infinity": float("-inf")}


def _load_deep(text: str) -> Any:
    skip = lambda at: _WHITESPACE.match(text, at).end()  # noqa: E731
    stack: list[list[Any]] = []  # [container, pending key]

    def key_at(at: int) -> tuple[str, int]:
        if text[at:at + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
        key, at = json.decoder.scanstring(text, at + 1, True)
        at = skip(at)
        if text[at:at + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
        return key, skip(at + 1)

    pos = skip(0)
    while True:
        char = text[pos:pos + 1]
        if char in ("{", "["):
            pos = skip(pos + 1)
            if text[pos:pos + 1] == ("}" if char == "{" else "]"):
                value, pos = ({} if char == "{" else []), pos + 1
            elif char == "{":
                key, pos = key_at(pos)
                stack.append([{}, key])
                continue
            else:
                stack.append([[], None])
                continue
        elif char == '"':
            value, pos = json.decoder.scanstring(text, pos + 1, True)
        else:
            number = _NUMBER.match(text, pos)
            constant = next((c for c in _CONSTANTS if text.startswith(c, pos)), None)
            if number:
                integer, fraction, exponent = number.groups()
                value = float(integer + (fraction or "") + (exponent or "")) if fraction or exponent else int(integer)
                pos = number.end()
            elif constant is not None:
                value, pos = _CONSTANTS[constant], pos + len(constant)
            else:
                raise json.JSONDecodeError("Expecting value", text, pos)
        while True:  # attach the value; close the containers it completes
            if not stack:
                end = skip(pos)
                if end != len(text):
                    raise json.JSONDecodeError("Extra data", text, end)
                return value
            container, key = stack[-1]
            if isinstance(container, dict):
                container.setdefault(key, value)  # the first value of a key written twice (first_wins)
            else:
                container.append(value)
            pos = skip(pos)
            char = text[pos:pos + 1]
            if char == ",":
                pos = skip(pos + 1)
                if isinstance(container, dict):
                    stack[-1][1], pos = key_at(pos)
                break
            if char == ("}" if isinstance(container, dict) else "]"):
                value, pos = container, pos + 1
                stack.pop()
                continue
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
