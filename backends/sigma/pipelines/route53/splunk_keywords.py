"""Sigma keywords on Splunk: one PCRE over `_raw` that selects exactly the events the pack's engine
selects (r53sigma/scan/SEMANTICS.md: a keyword matches a whole value anywhere in the record, as the
catalogue normalises it, or the whole raw line).

A bare Splunk search term cannot say this: it matches indexed segments of `_raw` (Search Manual,
"Event segmentation and searching"), so `evil.com` also finds `x.evil.com`, and `evil` finds
`evil.com`. The regex is built from the raw format the catalogue names for the log source:

- JSON records (Resolver, CloudTrail): a walk from the start over whole JSON strings (so every match
  starts at a string boundary) to an object member's value, an array element, or a number/true/false
  token. Each literal character is any of its JSON spellings (itself, `\\uXXXX` in either hex case,
  a short escape such as `\\/`); `*` is any run of JSON string characters and `?` exactly one
  (a surrogate pair counts once, as Python decodes it). Values of keys the catalogue compares
  without their trailing dot (`query_name`, `Rdata`) are matched so. Assumes those keys occur only at
  their catalogued paths (true of the AWS formats), and numbers are compared as written.
- Space-separated lines (public hosted zones): the whole line, or one whitespace-delimited column
  at its position (`-` is an absent column; `queryName` without its trailing dot). Wildcards stay
  inside the column.

Case-insensitive unless `|cased` (`(?i)`, plus the escaped spellings of the other case).

Known limits (none met by the AWS formats): a number written in a non-canonical form (`1.50`,
`1e3`) is compared as written, not as the engine's text of the number; an escaped character is
matched in its own, lower, upper and case-folded forms only (not e.g. the Kelvin sign for `k`); a
public hosted-zone record delivered as JSON is searched as a line.
"""
from __future__ import annotations

import re

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCasedString, SigmaString, SpecialChars

from r53sigma.catalogue import LogSource

# What Python's str.split() (the engine's column split) takes as white space, as PCRE class text.
SPACE_CHARS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_WS = "[" + "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else c for c in SPACE_CHARS) + "]"
_NOT_WS = "[^" + _WS[1:]
_ANY = "."  # the regex is (?s): any character, line breaks too
_END = "(?!.)"
_COLUMN_END = f"(?={_WS}|{_END})"

_JSON_SPACE = "[ \\t\\n\\r]*"
_JSON_STRING_CHAR = '(?:[^"\\\\]|\\\\.)'
_JSON_ONE_CHAR = (  # exactly one decoded character of a JSON string
    '(?:[^"\\\\]|\\\\[^u]|\\\\u[dD][89abAB][0-9a-fA-F]{2}\\\\u[dD][c-fC-F][0-9a-fA-F]{2}'
    "|\\\\u(?![dD][89abAB][0-9a-fA-F]{2}\\\\u[dD][c-fC-F])[0-9a-fA-F]{4})"
)
# Structural text and whole strings from the start: ends only before a `[`, `:`, `,` or a string's
# opening quote. Possessive runs keep one backtracking point per JSON token, not per character
# (PCRE's backtracking depth is bounded in Splunk: limits.conf [rex] depth_limit).
_WALK = '^(?:[^"\\[:,]++|[\\[:,]|"(?:[^"\\\\]++|\\\\.)*+")*'
_JSON_DOT = "(?:\\.|\\\\u002[eE])"
_SCALAR_CHAR = "[-+.0-9a-zA-Z]"
_SCALAR = "(?:-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false)"
_SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


def refuse(why: str) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(f"Splunk: a keyword {why}")


def keyword_regex(value, log_source: LogSource) -> str:
    """The PCRE (inline flags included) that selects the events a keyword value matches."""
    if not isinstance(value, SigmaString):
        raise refuse(f"of type {type(value).__name__} (numbers, booleans and regular expressions compare with every "
                     "value of the record as the engine reads it, which a search over the raw text cannot state)")
    parts = list(value.s)
    if any(not isinstance(p, str) and p not in (SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE) for p in parts):
        raise refuse("with a placeholder (resolve it with the pipeline's placeholder handling first)")
    cased = isinstance(value, SigmaCasedString)
    if log_source.format == "json":
        body = _json(parts, cased, _strip_keys(log_source))
    else:
        body = _line(parts, cased, log_source)
    return ("(?s)" if cased else "(?is)") + body


def _strip_keys(log_source: LogSource) -> list[str]:
    return sorted({name.split(".")[-1] for name, f in log_source.fields.items() if f.strip_trailing_dot})


def _case_forms(char: str, cased: bool) -> list[str]:
    if cased:
        return [char]
    forms = {char, char.lower(), char.upper(), char.swapcase(), char.casefold()}
    return sorted(f for f in forms if len(f) == 1)


def _hex(code: int) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{code:04x}")


def _json_char(char: str, cased: bool) -> str:
    """Every JSON spelling of one character (and of its other case)."""
    spellings = []
    for form in _case_forms(char, cased):
        code = ord(form)
        if form not in '"\\' and code >= 0x20 and (form == char or not form.isascii()):  # (?i) folds ASCII
            spellings.append(re.escape(form))
        if form in _SHORT_ESCAPES:
            spellings.append("\\\\" + re.escape(_SHORT_ESCAPES[form]))
        if code > 0xFFFF:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            spellings.append(f"\\\\u{_hex(high)}\\\\u{_hex(low)}")
        else:
            spellings.append(f"\\\\u{_hex(code)}")
    return "(?:" + "|".join(spellings) + ")"


def _render(parts: list, literal, many: str, one: str) -> str:
    out = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append(many)
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(one)
        else:
            out.extend(literal(c) for c in part)
    return "".join(out)


def _fullmatch_python(parts: list, cased: bool, text: str) -> bool:
    pattern = _render(parts, re.escape, ".*", ".")
    return re.fullmatch(pattern, text, re.DOTALL | (0 if cased else re.IGNORECASE)) is not None


def _literals(parts: list) -> str:
    return "".join(p for p in parts if isinstance(p, str))


def _json(parts: list, cased: bool, strip_keys: list[str]) -> str:
    value = _render(parts, lambda c: _json_char(c, cased), f"{_JSON_STRING_CHAR}*", _JSON_ONE_CHAR)
    keys = "|".join(re.escape(k) for k in strip_keys)
    member_key = f'"(?!(?-i:{keys})")' if keys else '"'
    branches = [
        f'{member_key}{_JSON_STRING_CHAR}*"{_JSON_SPACE}:{_JSON_SPACE}"{value}"{_JSON_SPACE}[,}}]',
        f'[\\[,]{_JSON_SPACE}"{value}"{_JSON_SPACE}[,\\]]',
    ]
    if keys:  # the engine compares these values without one trailing dot (values longer than ".")
        stripped = [f"(?={_JSON_ONE_CHAR}{_JSON_ONE_CHAR}){value}{_JSON_DOT}", f"{value}(?<!\\.)(?<!\\\\u002[eE])"]
        if _fullmatch_python(parts, cased, "."):
            stripped.append(_JSON_DOT)
        branches.append(f'"(?-i:{keys})"{_JSON_SPACE}:{_JSON_SPACE}"(?:{"|".join(stripped)})"{_JSON_SPACE}[,}}]')
    if re.fullmatch(f"{_SCALAR_CHAR}*", _literals(parts)):  # numbers and true/false as JSON writes them
        scalar = _render(parts, re.escape, f"{_SCALAR_CHAR}*", _SCALAR_CHAR)
        branches.append(f"[\\[:,]{_JSON_SPACE}(?={_SCALAR}{_JSON_SPACE}[,}}\\]]){scalar}{_JSON_SPACE}[,}}\\]]")
    return _WALK + "(?:" + "|".join(branches) + ")"


def _line(parts: list, cased: bool, log_source: LogSource) -> str:
    whole = "^" + _render(parts, re.escape, f"{_ANY}*", _ANY) + _END
    if any(c.isspace() for c in _literals(parts)):
        return whole  # a column never holds white space
    column = _render(parts, re.escape, f"{_NOT_WS}*", _NOT_WS)
    stripped = {n for n, name in enumerate(log_source.columns) if log_source.fields[name].strip_trailing_dot}
    plain = [n for n in range(len(log_source.columns)) if n not in stripped]
    branches = [f"{_skip(plain)}(?!-{_COLUMN_END}){column}{_COLUMN_END}"]
    if stripped:
        forms = [f"(?={_NOT_WS}{_NOT_WS}){column}\\.", f"{column}(?<!\\.)"]
        if _fullmatch_python(parts, cased, "."):
            forms.append("\\.")
        branches.append(f"{_skip(sorted(stripped))}(?!-{_COLUMN_END})(?:{'|'.join(forms)}){_COLUMN_END}")
    return "(?:" + whole + "|" + "|".join(branches) + ")"


def _skip(positions: list[int]) -> str:
    """From the line start to the start of the column at any of the positions."""
    runs, start = [], None
    for n, position in enumerate(positions):
        if start is None:
            start = position
        if n + 1 == len(positions) or positions[n + 1] != position + 1:
            runs.append((start, position))
            start = None
    column = f"{_NOT_WS}+{_WS}+"
    counts = "|".join(f"(?:{column}){{{a}}}" if a == b else f"(?:{column}){{{a},{b}}}" for a, b in runs)
    return f"^{_WS}*(?:{counts})"


# Segment breakers (Search Manual, "Event segmentation and searching"; segmenters.conf [default]).
_MAJOR = set("[]<>(){}|!;,'\"*&?+") | set(SPACE_CHARS)
_MINOR = set("/:=@.-$#%\\_")


def prefilter_term(value) -> str | None:
    """A search term that every event the keyword matches contains, or None.

    Only a literal value (no wildcard) of printable ASCII without major breakers, a quote, a
    backslash or a slash (characters a JSON writer may escape), that begins and ends with a
    non-breaker: the value then stands verbatim in _raw between breakers (quotes, white space, a
    trailing dot, `:` or `,`), so its segments are indexed and the term finds it.
    """
    if not isinstance(value, SigmaString) or not all(isinstance(p, str) for p in value.s):
        return None
    text = "".join(value.s)
    if not text or not all(0x20 < ord(c) < 0x7F for c in text) or any(c in _MAJOR or c in '"\\/' for c in text):
        return None
    if text[0] in _MINOR or text[-1] in _MINOR:
        return None
    return text
