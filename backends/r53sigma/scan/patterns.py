"""Regular expressions in linear time: ``|re`` values and wildcard patterns evaluated with RE2.

``|re`` means an unanchored search with Python's syntax as RE2 reads it (``r53sigma.scan.sqlcompile`` gives
DuckDB the same translation, so both engines agree): Python's ``$`` (end, or before a final newline)
is translated, inline flags carry ``i``/``m``/``s``, and ``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII
classes. RE2 runs in time linear in the value, so no value can make a rule slow (a backtracking
matcher took 34 s on a 40 KB name and minutes on 10 MB). A pattern RE2 cannot compile (look-around,
back-references) runs with Python's backtracking ``re``: the only case without that bound.
"""
from __future__ import annotations

import re
import string
from typing import Any, Callable

import re2

OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = f"^{OCTET}(\\.{OCTET}){{3}}$"  # strict dotted decimal, as ipaddress reads it (no leading zeros)
_HEX = "[0-9a-fA-F]{1,4}"
# hex groups, or at most seven of them around one "::" (as ipaddress reads them: "::" stands for a group at least)
_COMPRESSED = "|".join(
    (f"{_HEX}(:{_HEX}){{{left - 1}}}" if left else "") + "::" + (f"({_HEX}(:{_HEX}){{0,{6 - left}}})?" if left < 7 else "")
    for left in range(8)
)
IPV6 = f"^(({_HEX}:){{7}}{_HEX}|{_COMPRESSED})$"

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a pattern RE2 rejects is not an error here: Python's re takes it
_PYTHON_FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL}  # by pySigma flag name


def compile_re2(pattern: str):
    """The RE2 program of an RE2 pattern, or None if RE2 rejects it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error:
        return None


def search_test(pattern: str, flags: set) -> Callable[[str], bool]:
    """Does a text contain a match of a Sigma ``|re`` value (with its flags)."""
    python_flags = 0
    for name in _flag_names(flags):
        python_flags |= _PYTHON_FLAGS[name]
    fallback = re.compile(pattern, python_flags)
    program = compile_re2(search_core(python_regex_to_re2(pattern, flags)))
    if program is None:
        return lambda text: fallback.search(text) is not None
    return _with_fallback(program.search, fallback.search)


def fullmatch_test(re2_pattern: str, python_pattern: "re.Pattern[str]") -> Callable[[str], bool]:
    """Does a whole text match a wildcard pattern (given as RE2 text and as Python's compiled form)."""
    program = compile_re2(re2_pattern)
    if program is None:
        return lambda text: python_pattern.fullmatch(text) is not None
    return _with_fallback(program.fullmatch, python_pattern.fullmatch)


def _with_fallback(fast: Callable, slow: Callable) -> Callable[[str], bool]:
    def test(text: str) -> bool:
        try:
            return fast(text) is not None
        except UnicodeEncodeError:  # a lone surrogate (JSON "\\ud800") has no UTF-8 form for RE2
            return slow(text) is not None

    return test


def _flag_names(flags: set) -> set[str]:
    """pySigma's regex flags by name (``IGNORECASE``, ``MULTILINE``, ``DOTALL``): members or their names
    (a warm scan's plans keep names, and it does not import pySigma)."""
    return {getattr(flag, "name", flag) for flag in flags}


def python_regex_to_re2(pattern: str, flags: set) -> str:
    """Inline flags, and Python's ``$`` (end or before a final newline) where RE2 would mean end only."""
    names = _flag_names(flags)
    multiline = "MULTILINE" in names
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\z" if nxt == "Z" and not in_class else char + nxt)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]" or pattern[i + 1:i + 3] == "^]":  # a literal ] first in a class
                out.append(pattern[i:i + (2 if pattern[i + 1] == "]" else 3)])
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif char == "$" and not multiline:
            out.append("(?:\\n?\\z)")
            i += 1
            continue
        out.append(char)
        i += 1
    prefix = "".join(f for flag, f in (("IGNORECASE", "i"), ("MULTILINE", "m"), ("DOTALL", "s")) if flag in names)
    off = "".join(f for flag, f in (("MULTILINE", "m"), ("DOTALL", "s")) if flag not in names)
    head = f"(?{prefix}-{off})" if off else f"(?{prefix})"
    return head + "".join(out)


_ANY_LABELS_BEFORE, _ANY_LABELS_AFTER = "(.*\\.)?", "(\\..*)?"


def search_core(pattern: str) -> str:
    """A search pattern without optional ``(.*\\.)?`` before and ``(\\..*)?`` after its core ``x``: both
    groups may match empty, so a text holds a match of the whole exactly when it holds a match of ``x``
    (and RE2 has no leading ``.*`` to try at every position). ``pattern`` may begin with an inline-flag
    group ``(?...)``; anything else is returned unchanged."""
    head = ""
    if pattern.startswith("(?") and ")" in pattern and ":" not in pattern[:pattern.index(")")]:
        head, pattern = pattern[:pattern.index(")") + 1], pattern[pattern.index(")") + 1:]
    core = pattern
    if core.startswith(_ANY_LABELS_BEFORE):
        core = core[len(_ANY_LABELS_BEFORE):]
    if core.endswith(_ANY_LABELS_AFTER):
        core = core[:-len(_ANY_LABELS_AFTER)]
    trailing_backslashes = len(core) - len(core.rstrip("\\"))
    if (core == pattern or not core or core[0] in "?*+{" or trailing_backslashes % 2
            or compile_re2(head + core) is None):
        return head + pattern
    return head + core


def re2_part(part: Any) -> str:
    """One part of a Sigma string (text or a wildcard) as RE2 text."""
    from sigma.types import SpecialChars  # here: a warm scan imports this module, not pySigma

    if part is SpecialChars.WILDCARD_MULTI:
        return ".*"
    if part is SpecialChars.WILDCARD_SINGLE:
        return "."
    return "".join("\\" + c if c in string.punctuation else c for c in part)
