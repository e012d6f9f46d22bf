"""An executable model of Splunk search (SPL), for the subset pySigma's Splunk backend emits with route53_splunk.

No Splunk runs here, so conversions are checked against this model of the documented semantics. It
parses query text (it shares no code with the backend) and runs it on events as the pack's add-on
presents them (:func:`r53sigma.targets.splunk.events.event_from_raw`: field -> string, or list of
strings for a multivalue field; ``_time`` in Unix seconds; ``_raw``).

Modelled (Splunk Search Reference, Search Manual "Boolean expressions", "Backslashes"):
- the implicit ``search`` and ``| search``: ``field=value``, ``field!=value``, ``field IN (v, ...)``,
  ``field>N`` (``<``, ``<=``, ``>=``), ``field=*``, quoted field names, bare or quoted terms
  (matched in ``_raw`` as whole indexed segments, case-insensitively: see :func:`term_test`);
  ``AND``, ``OR``, ``NOT`` and parentheses with the **search command's precedence: parentheses, then
  NOT, then OR, then AND** (so ``a b OR c`` is ``a AND (b OR c)``);
- field names are case-sensitive, values case-insensitive; ``*`` is a wildcard and whole-value
  matching applies; a backslash escapes ``\\`` and ``"`` but **cannot escape the asterisk** (Splunk:
  "The backslash symbol can't be used to escape the asterisk in search strings"), so ``\\*`` is a
  literal backslash followed by a wildcard;
- a value in CIDR notation matches IP field values inside the network (IPv4 and IPv6);
- a multivalue field matches when any of its values matches; ``field!=v`` needs the field and no
  value matching (``NOT field=v`` also keeps events without the field);
- ``| regex field="re"`` / ``field!="re"`` (PCRE, case-sensitive, unanchored; any value of a
  multivalue field); ``| rex field=f "(?<name>re)"`` (first match, named groups become fields);
  ``| eval`` and ``| where`` with eval expressions (AND before OR; ``=``/``==`` exact and
  case-sensitive; ``if``, ``case``, ``isnull``, ``isnotnull``, ``like``, ``match``, ``cidrmatch``,
  ``lower``, ``upper``, ``len``, ``in``, ``coalesce``, ``min``/``max`` of numbers, ``now()`` (the
  search's start, given by :data:`SEARCH_TIME`), ``relative_time(X, "-Nunit")`` without snapping);
- ``| bin _time span=N(s|m|h|d)`` (epoch-aligned); ``| stats count, count(f), dc(f), sum(f), min,
  max, avg, first ... as name by f1 f2`` (an event without a by-field is left out; a multivalue by-field
  puts the event in each value's group; aggregates separated by commas or spaces);
  ``| sort [count] [-]field ...`` (stable; 10000 results unless a count, 0 = all);
  ``| streamstats [current=] [window=] [time_window=span] aggregates by f`` (running aggregates per
  group; time_window keeps the results within the span of the current one and needs time-sorted
  input); ``| multisearch [search ...] [search ...]`` (union);
  ``| table``/``| fields`` (kept rows unchanged); ``| mvexpand f``; ``| lookup t f AS g OUTPUT ...``
  (CSV lookups given to :func:`run` as :class:`LookupTable`); ``split``, ``mvcount``, ``mvrange``,
  ``mvindex``, ``mvjoin``, ``mvmap`` in eval.

Anything else raises :class:`QuerySyntaxError` rather than being guessed.
"""
from __future__ import annotations

import contextvars
import functools
import ipaddress
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from r53sigma.targets import querymodel
from r53sigma.targets.querymodel import Cursor, Token

Row = dict[str, Any]
SPAN_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


class QuerySyntaxError(querymodel.QuerySyntaxError):
    """The text is not a query of the modelled subset."""


class InvalidSearch(QuerySyntaxError):
    """Splunk itself rejects the text (e.g. a search starting with OR)."""


# ------------------------------------------------------------------ splitting commands


def split_pipes(text: str) -> list[str]:
    """Split on top-level ``|`` (not inside quotes or brackets)."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        raise QuerySyntaxError("unterminated quoted string")
    parts.append(text[start:])
    return [p.strip() for p in parts]


# ------------------------------------------------------------------ search expressions

SEARCH_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
  | (?P<word>[^\s"=!<>(),]+)
    """,
    re.VERBOSE,
)


Tok = Token  # kinds: string, op, word (the shared token of the models)


def search_tokens(text: str) -> list[Tok]:
    return querymodel.tokenize(SEARCH_TOKEN, text, QuerySyntaxError, "search")


def unquote_search(token: Tok) -> str:
    """The pattern text of a search value: ``\\\\`` and ``\\"`` unescaped, every other backslash literal."""
    if token.kind != "string":
        return token.text
    body, out, i = token.text[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in "\\\"":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _as_values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _wildcard_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.IGNORECASE | re.DOTALL)


def _network(pattern: str):
    if "/" not in pattern or "*" in pattern:
        return None
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


def value_test(pattern: str) -> Callable[[str], bool]:
    """Splunk's field=value test for one value: CIDR, else case-insensitive whole-value wildcard match."""
    network = _network(pattern)
    if network is not None:
        def in_network(value: str) -> bool:
            try:
                return ipaddress.ip_address(value) in network
            except ValueError:
                return False
        return in_network
    regex = _wildcard_regex(pattern)
    return lambda value: regex.fullmatch(value) is not None


# A text value reads as a number when it is decimal notation. Python's float() also reads "inf", "nan",
# "1_000" and text padded with spaces, which Splunk documents no numeric reading of (Search Reference,
# "eval" Usage: numbers are double-precision floating point), so those stay text here.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        return None
    number = float(value)
    return None if math.isinf(number) else number


_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

Predicate = Callable[[Row], bool]


class SearchParser(Cursor):
    """search := and ; and := or (AND? or)* ; or := unary (OR unary)* ; unary := NOT unary | primary."""

    error = QuerySyntaxError
    end_message = "unexpected end of search"

    def _is(self, text: str, kind: str = "word") -> bool:
        token = self.peek()
        return token is not None and token.kind == kind and token.text == text

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda row: True
        predicate = self.conjunction()
        if self.peek() is not None:
            raise QuerySyntaxError(f"unexpected {self.peek().text!r} in search")
        return predicate

    def conjunction(self) -> Predicate:
        parts = [self.disjunction()]
        while self.peek() is not None and not self._is(")", "op"):
            if self._is("AND"):
                self.take()
            parts.append(self.disjunction())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def disjunction(self) -> Predicate:
        parts = [self.unary()]
        while self._is("OR"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def unary(self) -> Predicate:
        if self._is("NOT"):
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        if self._is("(", "op"):
            self.take()
            inner = self.conjunction()
            if not self._is(")", "op"):
                raise QuerySyntaxError("missing ) in search")
            self.take()
            return inner
        return self.term()

    def term(self) -> Predicate:
        first = self.take()
        if first.kind == "word" and first.text in ("OR", "AND"):
            raise InvalidSearch(f"{first.text} with no search term before it")
        if first.kind == "op":
            raise QuerySyntaxError(f"unexpected {first.text!r} in search")
        following = self.peek()
        if following is not None and following.kind == "op" and following.text in ("=", "!=", "<", "<=", ">", ">="):
            self.take()
            return self.comparison(unquote_search(first), following.text, self.take())
        if following is not None and following.kind == "word" and following.text == "IN" and self._peek_is_paren(1):
            self.take()
            return self.in_list(unquote_search(first))
        return self.keyword(unquote_search(first))

    def _peek_is_paren(self, offset: int) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "op" and token.text == "("

    def in_list(self, field: str) -> Predicate:
        self.take()  # (
        tests = []
        while True:
            token = self.take()
            if token.kind == "op":
                raise QuerySyntaxError(f"unexpected {token.text!r} in IN list")
            tests.append(value_test(unquote_search(token)))
            separator = self.take()
            if separator.text == ")":
                break
            if separator.text != ",":
                raise QuerySyntaxError("IN values are separated by commas")
        return lambda row: any(t(v) for v in _as_values(row.get(field)) for t in tests)

    @staticmethod
    def comparison(field: str, op: str, value_token: Tok) -> Predicate:
        if value_token.kind == "op":
            raise QuerySyntaxError(f"missing value after {field}{op}")
        pattern = unquote_search(value_token)
        if op in _COMPARE:
            bound = _number(pattern)
            if bound is None:
                raise QuerySyntaxError(f"{field}{op}{pattern}: only numeric comparisons are modelled")
            return lambda row: any(_COMPARE[op](n, bound) for n in map(_number, _as_values(row.get(field))) if n is not None)
        if pattern == "*":
            present = lambda row: any(v != "" for v in _as_values(row.get(field)))  # noqa: E731
            return present if op == "=" else (lambda row: False)
        test = value_test(pattern)
        if op == "=":
            return lambda row: any(test(v) for v in _as_values(row.get(field)))
        return lambda row: bool(_as_values(row.get(field))) and not any(test(v) for v in _as_values(row.get(field)))

    @staticmethod
    def keyword(pattern: str) -> Predicate:
        return term_test(pattern)


# A bare (or quoted) search term matches indexed segments of _raw, not a substring (Search Manual,
# "Event segmentation and searching"; segmenters.conf, [default] MAJOR and MINOR): _raw is cut at
# the major breakers, then at the minor breakers, and a term matches where it covers whole segments:
# each end of the matched text lies on a breaker (or the start/end of _raw), unless the term itself
# begins/ends with a breaker. Case-insensitive. A `*` at either end of a term matches segment
# prefixes/suffixes; one inside a term is refused: the page says it "might return inconsistent
# results if the term contains punctuation", so no model of it would be a proof.
MAJOR_BREAKERS = tuple("[]<>(){}|!;,'\"*&?+ \t\n\r") + (
    "%21", "%26", "%2526", "%3B", "%7C", "%20", "%2B", "%3D", "--", "%2520", "%5D", "%5B", "%3A", "%0A", "%2C", "%28", "%29")
MINOR_BREAKERS = tuple("/:=@.-$#%\\_")
_BREAKER_TEXT = re.compile("|".join(re.escape(b) for b in sorted(MAJOR_BREAKERS + MINOR_BREAKERS, key=len, reverse=True))
                           + "|\\s", re.IGNORECASE)


def _boundaries(raw: str) -> set[int]:
    """Offsets of _raw where a segment starts or ends (either side of every breaker)."""
    edges = {0, len(raw)}
    for match in _BREAKER_TEXT.finditer(raw):
        edges.update((match.start(), match.end()))
    return edges


def _is_breaker(char: str) -> bool:
    return char.isspace() or char in MAJOR_BREAKERS or char in MINOR_BREAKERS


def term_test(pattern: str) -> Predicate:
    lead, core, trail = pattern.startswith("*"), pattern.strip("*"), pattern.endswith("*") and len(pattern) > 1
    if "*" in core:
        raise QuerySyntaxError(f"search term {pattern!r}: a wildcard inside a term is not modelled "
                               "(Splunk: inconsistent results when the term contains punctuation)")
    if not core:
        return lambda row: True
    needle = re.compile(re.escape(core), re.IGNORECASE)
    open_start, open_end = lead or _is_breaker(core[0]), trail or _is_breaker(core[-1])

    def test(row: Row) -> bool:
        raw = str(row.get("_raw", ""))
        edges = None
        for start in range(len(raw)):
            match = needle.match(raw, start)
            if match is None:
                continue
            edges = _boundaries(raw) if edges is None else edges
            if (open_start or match.start() in edges) and (open_end or match.end() in edges):
                return True
        return False

    return test


def compile_search(text: str) -> Predicate:
    return SearchParser(search_tokens(text)).parse()


# ------------------------------------------------------------------ PCRE, as Splunk reads it

# Splunk's regular expressions are PCRE (Search Manual, "SPL and regular expressions"). PCRE and
# Python's `re` read some text differently, so a pattern is translated by the rules of the PCRE2
# pattern documentation (pcre2pattern(3)); constructs Python cannot express raise QuerySyntaxError.
# - An option setting such as (?i) in mid-pattern applies to the rest of its group, later
#   alternatives included ("(a(?i)b|c)" matches "aB" and "C"); Python only allows it at the start.
# - \z is the very end (Python \Z); \Z is the end or before a final newline; \h \H \v \V \R \N \e
#   \cX \x{hh} \o{oo} \Q...\E are PCRE escapes (Python's \v is the VT character only).
# - \d \s \w match ASCII only unless PCRE2_UCP, which Splunk's documentation does not claim.
# - POSIX classes [[:alpha:]] exist only in PCRE; in Python "[[:" is a set of ":[" characters.
# - "{" that does not start {n}, {n,} or {n,m} is a literal ("x{,3}" is Python's {0,3}).
# - (?<name> (?'name' and \k<name> \k'name' \k{name} \g{n} name groups and back-references.
_ASCII_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "s": "\\t\\n\\x0b\\f\\r "}
_PCRE_CLASSES = {
    "h": "\\t \\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000",
    "v": "\\n\\x0b\\f\\r\\x85\\u2028\\u2029",
    **_ASCII_CLASSES,
}
_POSIX_CLASSES = {
    "alpha": "A-Za-z", "digit": "0-9", "alnum": "A-Za-z0-9", "upper": "A-Z", "lower": "a-z",
    "space": "\\t\\n\\x0b\\f\\r ", "blank": "\\t ", "punct": "!-/:-@\\[-`{-~", "xdigit": "0-9A-Fa-f",
    "word": "A-Za-z0-9_", "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~", "ascii": "\\x00-\\x7f",
}
_PCRE_FLAGS = set("imsx")  # what Python shares with PCRE; n, U, J, xx, ^ have no Python equivalent
_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def _unsupported(what: str, pattern: str) -> QuerySyntaxError:
    return QuerySyntaxError(f"PCRE {what} in {pattern!r} is not modelled")


def _escape_char(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """Python text for the escape at ``pattern[i] == '\\\\'``, and the index after it."""
    if i + 1 >= len(pattern):
        raise QuerySyntaxError(f"regex {pattern!r} ends with a backslash")
    c = pattern[i + 1]
    braced = re.match(r"\{([^}]*)\}", pattern[i + 2:])
    if c in "xo" and braced:
        code = int(braced.group(1), 16 if c == "x" else 8)
        return re.escape(chr(code)), i + 4 + len(braced.group(1))
    if c == "c" and i + 2 < len(pattern):
        return re.escape(chr(ord(pattern[i + 2].upper()) ^ 0x40)), i + 3
    if c == "e":
        return "\\x1b", i + 2
    if c.lower() in _PCRE_CLASSES:
        chars = _PCRE_CLASSES[c.lower()]
        if in_class:
            if c.isupper():
                raise _unsupported(f"\\{c} inside a character class", pattern)
            return chars, i + 2
        return (f"[^{chars}]" if c.isupper() else f"[{chars}]"), i + 2
    if in_class:
        if c in "bB":  # \b in a class is a backspace in PCRE
            if c == "B":
                raise _unsupported("\\B inside a character class", pattern)
            return "\\x08", i + 2
        return pattern[i:i + 2], i + 2
    if c == "z":
        return "\\Z", i + 2
    if c == "Z":
        return "(?=\\n?\\Z)", i + 2
    if c == "R":
        return "(?:\\r\\n|[\\n\\x0b\\f\\r\\x85\\u2028\\u2029])", i + 2
    if c == "N" and not pattern.startswith("{", i + 2):
        return "[^\\n]", i + 2
    if c in "kg":
        m = re.match(rf"[kg](?:<({_NAME})>|'({_NAME})'|\{{({_NAME}|\d+)\}}|(\d+))", pattern[i + 1:])
        if not m:
            raise _unsupported(f"\\{c} reference", pattern)
        name = next(g for g in m.groups() if g is not None)
        return (f"(?:\\{name})" if name.isdigit() else f"(?P={name})"), i + 1 + m.end()
    if c in "GKXCpPQE" or (c == "N"):
        raise _unsupported(f"\\{c}", pattern)
    return pattern[i:i + 2], i + 2


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """A PCRE character class starting at ``pattern[i] == '['``, as Python text."""
    out, j = ["["], i + 1
    if pattern.startswith("^", j):
        out.append("^")
        j += 1
    first = True
    while j < len(pattern):
        ch = pattern[j]
        if ch == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        first = False
        posix = re.match(r"\[:(\^?)([a-z]+):\]", pattern[j:])
        if posix:
            if posix.group(2) not in _POSIX_CLASSES or posix.group(1):
                raise _unsupported(f"class {posix.group()}", pattern)
            out.append(_POSIX_CLASSES[posix.group(2)])
            j += posix.end()
        elif ch == "\\":
            text, j = _escape_char(pattern, j, in_class=True)
            out.append(text)
        elif ch in "[&~|]":  # literal here; Python reserves "[", "&&", "~~", "||" for set operations
            out.append("\\" + ch)
            j += 1
        else:
            out.append(ch)
            j += 1
    raise QuerySyntaxError(f"regex {pattern!r}: missing ] of a character class")


def pcre_to_python(pattern: str) -> str:
    """Python ``re`` text that means what ``pattern`` means to PCRE (see the rules above)."""
    out: list[str] = []
    wrappers: list[list[str]] = [[]]  # per open group: option settings opened in mid-group
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("\\Q", i):  # literal text up to \E
            end = pattern.find("\\E", i + 2)
            end = len(pattern) if end < 0 else end
            out.append(re.escape(pattern[i + 2:end]))
            i = end + 2
            continue
        if pattern.startswith("\\E", i):  # a lone \E is ignored
            i += 2
            continue
        if ch == "\\":
            text, i = _escape_char(pattern, i, in_class=False)
            out.append(text)
            continue
        if ch == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            continue
        if ch == "{":
            m = _QUANTIFIER.match(pattern, i)
            out.append(m.group() if m else "\\{")
            i = m.end() if m else i + 1
            continue
        if ch == "|":
            opened = wrappers[-1]
            out.append(")" * len(opened) + "|" + "".join(opened))
            i += 1
            continue
        if ch == ")":
            if len(wrappers) == 1:
                raise QuerySyntaxError(f"regex {pattern!r}: unbalanced )")
            out.append(")" * len(wrappers.pop()) + ")")
            i += 1
            continue
        if ch != "(":
            out.append(ch)
            i += 1
            continue
        rest = pattern[i:]
        if rest.startswith("(*"):
            raise _unsupported("verb (*...)", pattern)
        if rest.startswith("(?#"):
            end = pattern.find(")", i)
            if end < 0:
                raise QuerySyntaxError(f"regex {pattern!r}: unterminated comment")
            i = end + 1
            continue
        named = re.match(rf"\(\?(?:P?<({_NAME})>|'({_NAME})')", rest)
        option = re.match(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])", rest)
        if named:
            out.append(f"(?P<{named.group(1) or named.group(2)}>")
            wrappers.append([])
            i += named.end()
        elif option and (option.group(1) or option.group(2) is not None):
            on, off, end = option.group(1), option.group(2) or "", option.group(3)
            if set(on + off) - _PCRE_FLAGS:
                raise _unsupported(f"option setting {option.group()}", pattern)
            setting = f"(?{on}" + (f"-{off}" if off else "")
            if end == ":":
                out.append(setting + ":")
                wrappers.append([])
            elif i == 0 and not off:
                out.append(setting + ")")  # a leading setting: Python's global flags
            else:
                out.append(setting + ":")  # the rest of the group, up to its end or next "|"
                wrappers[-1].append(setting + ":")
            i += option.end()
        elif re.match(r"\(\?(?:[:=!>]|<[=!])", rest):
            length = 3 if rest[2] in ":=!>" else 4
            out.append(rest[:length])
            wrappers.append([])
            i += length
        elif re.match(rf"\(\?\((?:\d+|<{_NAME}>|'{_NAME}'|{_NAME})\)", rest) and not rest.startswith(("(?(R", "(?(DEFINE")):
            m = re.match(rf"\(\?\((?:(\d+)|<({_NAME})>|'({_NAME})'|({_NAME}))\)", rest)
            out.append(f"(?({next(g for g in m.groups() if g is not None)})")
            wrappers.append([])
            i += m.end()
        elif rest.startswith("(?P="):
            end = pattern.find(")", i)
            out.append(pattern[i:end + 1])
            i = end + 1
        elif rest.startswith("(?"):
            raise _unsupported(f"group {rest[:4]!r}", pattern)
        else:
            out.append("(")
            wrappers.append([])
            i += 1
    if len(wrappers) != 1:
        raise QuerySyntaxError(f"regex {pattern!r}: missing )")
    out.append(")" * len(wrappers[0]))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_pcre(pattern: str) -> re.Pattern:
    try:
        return re.compile(pcre_to_python(pattern))
    except re.error as error:
        raise QuerySyntaxError(f"regex {pattern!r}: {error}") from None


# ------------------------------------------------------------------ eval expressions

EVAL_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<field>'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>==|!=|<=|>=|=|<|>|\(|\)|,|\+|-|\*|/|\.)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
# A bare eval word is letters, digits and "_": Search Reference, "eval" (Usage): a field name with
# any other character must be in single quotes ('answers{}.Rdata'); "." is eval's concatenation
# operator (not modelled), so an unquoted answers{}.Rdata or requestParameters.name is refused.


def eval_tokens(text: str) -> list[Tok]:
    return querymodel.tokenize(EVAL_TOKEN, text, QuerySyntaxError, "eval expression")


def _unescape_eval(literal: str) -> str:
    """An eval string literal: ``\\\\`` is one backslash and ``\\"`` a quote; any other backslash stays
    (Search Manual, "SPL and regular expressions": ``match(ip, "^\\d{1,3}...")`` reaches PCRE as written,
    a doubled backslash reaches it as one)."""
    return re.sub(r'\\([\\"])', r"\1", literal[1:-1])


Expr = Callable[[Row], Any]


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _equal(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    for x in _values(a):
        for y in _values(b):
            nx, ny = _number(x), _number(y)
            if (nx == ny) if nx is not None and ny is not None else str(x) == str(y):
                return True
    return False


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in _text("like", pattern))
    return re.fullmatch(regex, _text("like", value), re.DOTALL) is not None


def _cidrmatch(cidr: Any, value: Any) -> bool | None:
    if cidr is None or value is None:
        return None
    network = _network(_text("cidrmatch", cidr))
    if network is None:
        return False
    return value_test(str(cidr))(_text("cidrmatch", value))


# now(): "the time that the search was started"; a model run is given it (None: the clock).
SEARCH_TIME: contextvars.ContextVar[float | None] = contextvars.ContextVar("spl_search_time", default=None)


def _search_time() -> float:
    given = SEARCH_TIME.get()
    return time.time() if given is None else given


def _single(name: str, value: Any) -> Any:
    """The argument of a function the Search Reference documents on one value: a multivalue one is refused
    (no documented reading of, say, lower() or split() of a multivalue field)."""
    if isinstance(value, list):
        if len(value) > 1:
            raise QuerySyntaxError(f"{name}() of a multivalue field is not modelled")
        return value[0] if value else None  # a field of one value is that value
    return value


def _text(name: str, value: Any) -> str:
    """A value as the text a string function reads. Event fields are text; an integer prints as Splunk
    prints it; a fractional number or a boolean is refused (Python's "1.0"/"True" are not Splunk's text)."""
    value = _single(name, value)
    if isinstance(value, (bool, float)):
        raise QuerySyntaxError(f"{name}(): the text of {value!r} is not modelled")
    return str(value)


def _split(value: Any, delimiter: Any) -> Any:
    if value is None or delimiter is None:
        return None  # Search Reference, "Evaluation functions": a null argument gives a null result
    text, cut = _text("split", value), _text("split", delimiter)
    if not cut:
        raise QuerySyntaxError("split() with an empty delimiter is not modelled")
    return _one_or_many(text.split(cut))


def _mvjoin(values: Any, delimiter: Any) -> Any:
    if values is None or delimiter is None:
        return None
    return _text("mvjoin", delimiter).join(_text("mvjoin", v) for v in _values(values))


def _extreme(pick, values) -> Any:
    """min()/max() (Search Reference, "Statistical eval functions"): the values of multivalue arguments
    count one by one ("you can use ... max and min on multivalue fields"); numbers only here: strings
    order after numbers by a rule the page does not spell out, and a null argument is not documented."""
    numbers = [_number(v) for value in values for v in (value if isinstance(value, list) else [value])]
    if not numbers or any(n is None for n in numbers):
        raise QuerySyntaxError("min()/max() over a null or non-number is not modelled")
    return pick(numbers)


# Search Reference, "Date and Time functions": relative_time(<time>, <specifier>) applies a relative time
# modifier ("Time modifiers": [+|-]<integer><unit>[@<snap unit>]). Seconds are plain arithmetic; a day,
# week, month or year is calendar arithmetic in the user's time zone ("-1d" across a daylight-saving
# change is not 86,400 s) and "@unit" snaps to the unit's start there, so only second offsets (what the
# pack's searches use) are modelled and every other specifier is refused.
_SECONDS_OFFSET = re.compile(r"([+-])(\d+)(?:s|sec|secs|second|seconds)")


def _relative_time(moment: Any, spec: Any) -> float | None:
    if moment is None or spec is None:
        return None
    found = _SECONDS_OFFSET.fullmatch(_text("relative_time", spec))
    if not found:
        raise QuerySyntaxError(f"relative_time specifier {spec!r} is not modelled (only [+-]N seconds)")
    base = _number(_single("relative_time", moment))
    if base is None:
        return None
    offset = int(found.group(2))
    return base - offset if found.group(1) == "-" else base + offset


def _match(value: Any, regex: Any) -> bool | None:
    value, regex = _single("match", value), _single("match", regex)
    if value is None or regex is None:
        return None
    return compile_pcre(_text("match", regex)).search(_text("match", value)) is not None


def _mvfind(values: Any, regex: Any) -> Any:
    if values is None or regex is None:
        return None
    pattern = compile_pcre(_text("mvfind", regex))
    return next((i for i, x in enumerate(_values(values)) if pattern.search(_text("mvfind", x))), None)


def _mvrange(start: Any, end: Any) -> Any:
    a, b = _number(_single("mvrange", start)), _number(_single("mvrange", end))
    if a is None or b is None:
        return None
    if not (a.is_integer() and b.is_integer()):
        raise QuerySyntaxError("mvrange() of fractional numbers is not modelled")
    return _one_or_many(list(range(int(a), int(b))))


def _tostring(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):  # Search Reference, "Conversion functions": a Boolean gives "True"/"False"
        return "True" if value else "False"
    return _text("tostring", value)


# name -> (function, fewest arguments, most arguments). Splunk rejects a call with another number of
# arguments ("The arguments to the 'x' function are invalid"), so the count is checked when parsing.
# Search Reference, "Evaluation functions" and its pages per kind (Comparison and Conditional, Conversion,
# Date and Time, Multivalue, Statistical, Text): a null argument gives a null result unless the function
# is about nulls (isnull, isnotnull, coalesce).
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "true": (lambda: True, 0, 0),
    "false": (lambda: False, 0, 0),
    "null": (lambda: None, 0, 0),
    "isnull": (lambda v: v is None, 1, 1),
    "isnotnull": (lambda v: v is not None, 1, 1),
    "like": (lambda v, p: _like(v, p), 2, 2),
    "match": (_match, 2, 2),
    # mvfind(mv, regex): the index of the first value matching the regex, or NULL when none does (a
    # single value is a one-value field).
    "mvfind": (_mvfind, 2, 2),
    "cidrmatch": (lambda c, v: _cidrmatch(c, v), 2, 2),
    "lower": (lambda v: None if v is None else _text("lower", v).lower(), 1, 1),
    "upper": (lambda v: None if v is None else _text("upper", v).upper(), 1, 1),
    "len": (lambda v: None if v is None else len(_text("len", v)), 1, 1),
    "tonumber": (lambda v: _number(_single("tonumber", v)), 1, 1),  # the optional base is not modelled
    "tostring": (_tostring, 1, 1),  # the optional format is not modelled
    # split(str, delim) cuts a string into a multivalue field; mvcount(mv) is the number of values (NULL
    # for a null field); mvrange(start, end) the numbers from start up to end excluded (the optional step
    # is not modelled); mvindex(mv, start, end) the values from start to end, both included, negative
    # indexes counting from the last (-1); mvjoin(mv, delim) joins the values (one value: that value).
    "split": (_split, 2, 2),
    "mvcount": (lambda v: None if v is None else len(_values(v)), 1, 1),
    "mvrange": (_mvrange, 2, 2),
    "mvindex": (lambda v, a, b=None: _mvindex(v, a, b), 2, 3),
    "mvjoin": (_mvjoin, 2, 2),
    "coalesce": (lambda *vs: next((v for v in vs if v is not None), None), 1, 100),
    "min": (lambda *vs: _extreme(min, vs), 1, 100),
    "max": (lambda *vs: _extreme(max, vs), 1, 100),
    "now": (lambda: _search_time(), 0, 0),
    "relative_time": (_relative_time, 2, 2),
}


def _one_or_many(values: list) -> Any:
    return None if not values else values[0] if len(values) == 1 else values


def _mvindex(value: Any, start: Any, end: Any) -> Any:
    values = _values(value)
    if value is None or _number(_single("mvindex", start)) is None:
        return None
    n = len(values)
    first = int(_number(start))
    first = first + n if first < 0 else first
    if end is not None and _number(_single("mvindex", end)) is None:
        return None
    last = first if end is None else int(_number(end))
    last = last + n if last < 0 else last
    if not 0 <= first < n or last < first:
        return None
    return _one_or_many(values[first:min(last, n - 1) + 1])


class EvalParser(Cursor):
    """or := and (OR and)* ; and := not (AND not)* ; not := NOT not | cmp ; cmp := add (op add)?"""

    error = QuerySyntaxError
    end_message = "unexpected end of eval expression"

    def _is(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in ("op", "word") and token.text == text

    def expect(self, text: str) -> None:
        if not self._is(text):
            raise QuerySyntaxError(f"expected {text!r} in eval expression")
        self.take()

    def parse(self) -> Expr:
        expr = self.disjunction()
        if self.peek() is not None:
            raise QuerySyntaxError(f"unexpected {self.peek().text!r} in eval expression")
        return expr

    # Boolean logic (Search Manual, "Types of expressions": the only Boolean values are true and false):
    # a comparison with a null operand is null, OR is true when an operand is true, AND false when one is
    # false, otherwise a null operand makes them null; `where` keeps only true. What NOT, if() or case()
    # do with a null is not documented, so those refuse. A non-Boolean operand fails Splunk's type check.
    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self._is("OR"):
            self.take()
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]

        def either(row: Row) -> bool | None:
            unknown = False
            for part in parts:
                value = _truth(part(row), "OR")
                if value:
                    return True
                unknown = unknown or value is None
            return None if unknown else False
        return either

    def conjunction(self) -> Expr:
        parts = [self.negation()]
        while self._is("AND"):
            self.take()
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]

        def both(row: Row) -> bool | None:
            unknown = False
            for part in parts:
                value = _truth(part(row), "AND")
                if value is False:
                    return False
                unknown = unknown or value is None
            return None if unknown else True
        return both

    def negation(self) -> Expr:
        if self._is("NOT"):
            self.take()
            inner = self.negation()

            def negate(row: Row) -> bool:
                value = _truth(inner(row), "NOT")
                if value is None:
                    raise QuerySyntaxError("NOT of a null (a comparison with a missing field) is not modelled")
                return not value
            return negate
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            op = self.take().text
            right = self.operand()
            if op in ("=", "=="):
                return lambda row: _equal(left(row), right(row))
            if op == "!=":
                def differ(row: Row) -> bool | None:
                    same = _equal(left(row), right(row))
                    return None if same is None else not same
                return differ
            return lambda row: _ordered(op, left(row), right(row))
        if token is not None and token.kind == "word" and token.text.lower() == "in":
            self.take()
            self.expect("(")
            options = self.arguments()

            def member(row: Row) -> bool | None:
                value = left(row)
                return None if value is None else any(bool(_equal(value, o(row))) for o in options)
            return member
        return left

    def arguments(self) -> list[Expr]:
        args: list[Expr] = []
        if self._is(")"):
            self.take()
            return args
        while True:
            args.append(self.disjunction())
            token = self.take()
            if token.text == ")":
                return args
            if token.text != ",":
                raise QuerySyntaxError("function arguments are separated by commas")

    def operand(self) -> Expr:
        token = self.take()
        if token.kind == "string":
            value = _unescape_eval(token.text)
            return lambda row: value
        if token.kind == "number":
            value = float(token.text) if "." in token.text else int(token.text)
            return lambda row: value
        if token.kind == "field":
            name = _unescape_eval(token.text)
            return lambda row: row.get(name)
        if token.kind == "op" and token.text == "-" and self.peek() is not None and self.peek().kind == "number":
            number = self.take().text  # a negative literal, as mvindex(mv, 0, -1) in the Search Reference
            value = -(float(number) if "." in number else int(number))
            return lambda row: value
        if token.kind == "op" and token.text == "(":
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token.kind == "word":
            name = token.text
            if self._is("(") and name == "mvmap":
                self.take()
                return self.mvmap()
            if self._is("("):
                self.take()
                # Function names are lower case as the Search Reference lists them ("IF" is
                # "unsupported or undefined"); true(), false() and null() are functions, so a
                # bare true, false or null is a field name.
                return self.call(name, self.arguments())
            return lambda row: row.get(name)
        raise QuerySyntaxError(f"unexpected {token.text!r} in eval expression")

    def mvmap(self) -> Expr:
        """Search Reference, "mvmap(<mv>, <expression>)": iterates over the values of the multivalue
        field and evaluates the expression on each, the field's name standing for the value."""
        token = self.take()
        if token.kind not in ("word", "field"):
            raise QuerySyntaxError("mvmap(field, expression): the first argument must be a field name")
        name = _unescape_eval(token.text) if token.kind == "field" else token.text
        self.expect(",")
        expr = self.disjunction()
        self.expect(")")

        def each(row: Row) -> Any:
            if row.get(name) is None:
                return None
            out = []
            for value in _values(row[name]):
                result = expr({**row, name: value})
                out.extend(_values(result) if result is not None else [])
            return _one_or_many(out)
        return each

    @staticmethod
    def call(name: str, args: list[Expr]) -> Expr:
        if name == "if":
            if len(args) != 3:
                raise InvalidSearch("if(condition, then, else) takes three arguments")
            cond, then, otherwise = args
            return lambda row: then(row) if _decided(cond(row), "if") else otherwise(row)
        if name == "case":
            if not args or len(args) % 2:
                raise InvalidSearch("case(condition, value, ...) takes its arguments in condition/value pairs")
            pairs = list(zip(args[::2], args[1::2]))

            def first_true(row: Row) -> Any:
                for cond, value in pairs:
                    if _decided(cond(row), "case"):
                        return value(row)
                return None
            return first_true
        if name not in FUNCTIONS:
            raise QuerySyntaxError(f"eval function {name}() is not modelled")
        fn, fewest, most = FUNCTIONS[name]
        if not fewest <= len(args) <= most:
            raise InvalidSearch(f"{name}() takes {fewest}" + (f" to {most}" if most != fewest else "")
                                + f" argument(s), not {len(args)}")
        return lambda row: fn(*(_field_value(a(row)) for a in args))


def _field_value(value: Any) -> Any:
    """A list of one value is that value, an empty one no value (Splunk has no one- or zero-value lists)."""
    if isinstance(value, list) and len(value) < 2:
        return value[0] if value else None
    return value


def _truth(value: Any, context: str) -> bool | None:
    """A Boolean operand: true, false or null; anything else fails Splunk's type check."""
    if value is None or isinstance(value, bool):
        return value
    raise InvalidSearch(f"{context} needs a Boolean, not {value!r}")


def _decided(value: Any, context: str) -> bool:
    truth = _truth(value, context)
    if truth is None:
        raise QuerySyntaxError(f"{context}() on a null condition is not modelled")
    return truth


def _ordered(op: str, a: Any, b: Any) -> bool | None:
    """<, <=, >, >= (Search Reference, "eval" operators): numbers compare as numbers and strings
    lexicographically; how a number orders against a non-number string is not documented (refused).
    A multivalue operand: true when any value satisfies it."""
    if a is None or b is None:
        return None
    for x in _values(a):
        for y in _values(b):
            nx, ny = _number(x), _number(y)
            if nx is not None and ny is not None:
                if _COMPARE[op](nx, ny):
                    return True
            elif nx is None and ny is None and isinstance(x, str) and isinstance(y, str):
                if _COMPARE[op](x, y):
                    return True
            else:
                raise QuerySyntaxError(f"{x!r} {op} {y!r}: ordering a number against a string is not modelled")
    return False


def compile_eval(text: str) -> Expr:
    return EvalParser(eval_tokens(text)).parse()


# ------------------------------------------------------------------ commands

Step = Callable[[list[Row]], list[Row]]


def _options(text: str) -> tuple[dict[str, str], str]:
    """Leading ``name=value`` options of a command, and the rest of its text."""
    options: dict[str, str] = {}
    while True:
        m = re.match(r'\s*([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|\S+)\s*', text)
        if not m:
            return options, text.strip()
        value = m.group(2)
        options[m.group(1)] = _unescape_eval(value) if value.startswith('"') else value
        text = text[m.end():]


def _search_step(text: str) -> Step:
    predicate = compile_search(text)
    return lambda rows: [r for r in rows if predicate(r)]


def _regex_step(text: str) -> Step:
    m = re.fullmatch(r'\s*(?:(?P<field>[^\s!=]+)\s*(?P<op>!?=)\s*)?(?P<re>"(?:[^"\\]|\\.)*")\s*', text)
    if not m:
        raise QuerySyntaxError(f"regex {text!r}: expected field=\"regex\"")
    field, negate = m.group("field") or "_raw", m.group("op") == "!="
    pattern = compile_pcre(_unescape_quoted(m.group("re")))

    def keep(row: Row) -> bool:
        values = _as_values(row.get(field))
        matched = any(pattern.search(v) for v in values)
        return not matched if negate else matched
    return lambda rows: [r for r in rows if keep(r)]


def _unescape_quoted(literal: str) -> str:
    """A quoted command argument: only ``\\"`` and ``\\\\`` are unescaped (the regex sees the rest)."""
    return re.sub(r'\\([\\"])', r"\1", literal[1:-1])


def _rex_step(text: str) -> Step:
    options, rest = _options(text)
    if not (rest.startswith('"') and rest.endswith('"')):
        raise QuerySyntaxError(f"rex {text!r}: expected a quoted regex")
    field = options.get("field", "_raw")
    pattern = compile_pcre(_unescape_quoted(rest))

    def extract(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            for value in _as_values(row.get(field)):
                match = pattern.search(value)
                if match:
                    row.update({k: v for k, v in match.groupdict().items() if v is not None})
                    break
            out.append(row)
        return out
    return extract


def _eval_step(text: str) -> Step:
    assignments = []
    for part in _split_commas(text):
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*|'[^']+')\s*=(?!=)(.*)", part, re.DOTALL)
        if not m:
            raise QuerySyntaxError(f"eval {part!r}: expected name=expression")
        assignments.append((m.group(1).strip("'"), compile_eval(m.group(2))))

    def evaluate(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            for name, expr in assignments:
                value = expr(row)
                if isinstance(value, bool):
                    # Splunk: "Fields cannot be assigned a boolean result. Instead, try
                    # if([bool expr], [expr], [expr])" (Search Reference, "eval").
                    raise InvalidSearch(f"eval {name}=...: a field cannot be assigned a boolean result")
                if value is None:
                    row.pop(name, None)
                else:
                    row[name] = value
            out.append(row)
        return out
    return evaluate


def _split_commas(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _where_step(text: str) -> Step:
    expr = compile_eval(text)
    return lambda rows: [r for r in rows if _truth(expr(r), "where") is True]


def _span(text: str) -> float:
    m = re.fullmatch(r"(\d+)(s|sec|m|min|h|hr|d)", text)
    if not m:
        raise QuerySyntaxError(f"span {text!r} is not modelled")
    return int(m.group(1)) * SPAN_SECONDS[m.group(2)]


def _bin_step(text: str) -> Step:
    m = re.fullmatch(r"\s*(\S+)\s+span=(\S+)\s*", text)
    if not m:
        raise QuerySyntaxError(f"bin {text!r}: expected `bin field span=N`")
    field, span = m.group(1), _span(m.group(2))

    def bucket(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            number = _number(row.get(field))
            if number is not None:
                row[field] = math.floor(number / span) * span
            out.append(row)
        return out
    return bucket


AGGREGATE = re.compile(r"\s*(?P<fn>count|dc|distinct_count|sum|min|max|avg|first)\s*(?:\(\s*(?P<arg>[^)]*?)\s*\))?(?:\s+as\s+(?P<name>\S+))?\s*$")


def _aggregate_argument(fn: str, arg: str | None) -> str | None:
    """Search Reference, "Statistical and charting functions": only count may omit its field
    (``count`` or ``count(<field>)``); every other function takes one (``first(<value>)``, ``dc(<value>)``
    ...), and Splunk rejects ``stats first`` or ``dc()`` with no field."""
    field = (arg or "").strip().strip("'\"")
    if not field and fn != "count":
        raise InvalidSearch(f"{fn} needs a field: {fn}(<field>)")
    if arg is not None and not field:
        raise InvalidSearch(f"{fn}(): an empty argument")
    return field or None


def _min_max(fn: str, values: list) -> Any:
    """stats/streamstats min and max (Search Reference, "Statistical and charting functions"): numeric
    when the values are numbers, "if the values in the field are non-numeric, the minimum value is found
    using lexicographical ordering"; a mix of both orders by a rule the page does not give (refused)."""
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        return (min if fn == "min" else max)(numbers) if numbers else None
    if any(n is not None for n in numbers):
        raise QuerySyntaxError(f"{fn}() over numbers and text together is not modelled")
    return (min if fn == "min" else max)(str(v) for v in values)


def _stats_step(text: str) -> Step:
    m = re.fullmatch(r"(?P<aggs>.*?)(?:\s+by\s+(?P<by>.*))?", text.strip(), re.DOTALL)
    aggregates = []
    for part in _split_commas(m.group("aggs")) if "," in m.group("aggs") else _split_aggregates(m.group("aggs")):
        a = AGGREGATE.match(part)
        if not a:
            raise QuerySyntaxError(f"stats aggregate {part.strip()!r} is not modelled")
        arg = _aggregate_argument(a.group("fn"), a.group("arg"))
        fn = a.group("fn")
        name = a.group("name") or (f"{fn}({arg})" if arg else fn)
        aggregates.append((name, fn, arg))
    by = [f.strip("'\"") for f in re.split(r"[\s,]+", m.group("by") or "") if f]

    def aggregate(rows: list[Row]) -> list[Row]:
        groups: dict[tuple, list[Row]] = {}
        for row in rows:
            keys: list[tuple] = [()]
            for field in by:
                values = _as_values(row.get(field)) if field != "_time" else ([row["_time"]] if row.get("_time") is not None else [])
                keys = [k + (v,) for k in keys for v in dict.fromkeys(values)]
            for key in keys:
                groups.setdefault(key, []).append(row)
        out = []
        for key, members in groups.items():
            result: Row = dict(zip(by, key))
            for name, fn, arg in aggregates:
                values = [v for r in members for v in _as_values(r.get(arg))] if arg else []
                if fn == "count":
                    result[name] = len(values) if arg else len(members)
                elif fn in ("dc", "distinct_count"):
                    result[name] = len(set(values))
                elif fn == "first":  # the first value in input order (Search Reference, "first")
                    if values:
                        result[name] = values[0]
                elif fn in ("min", "max"):
                    if values:
                        result[name] = _min_max(fn, values)
                else:
                    numbers = [n for n in map(_number, values) if n is not None]
                    if numbers:
                        result[name] = {"sum": sum, "avg": lambda x: sum(x) / len(x)}[fn](numbers)
            out.append(result)
        return out
    return aggregate


SORT_DEFAULT_LIMIT = 10000  # Search Reference, "sort": <count> defaults to 10000 results; 0 means all


def _sort_step(text: str) -> Step:
    """``sort [<count>] [+|-]field ...`` (Search Reference, "sort"): ``-`` descending; numbers compare
    numerically, other values as text; results without the field come last; the sort is stable; only
    the first ``count`` results are kept (10000 when omitted, all for 0)."""
    parts = text.split()
    limit = SORT_DEFAULT_LIMIT
    if parts and parts[0].isdigit():
        limit = int(parts.pop(0))
    if not parts:
        raise QuerySyntaxError("sort needs a field")
    keys = []
    for part in parts:
        m = re.fullmatch(r"([+-]?)([A-Za-z_@][\w.{}]*)", part)
        if not m:
            raise QuerySyntaxError(f"sort {part!r} is not modelled")
        keys.append((m.group(2), m.group(1) == "-"))

    def order(rows: list[Row]) -> list[Row]:
        rows = list(rows)
        for name, descending in reversed(keys):
            present = [r for r in rows if r.get(name) is not None]
            absent = [r for r in rows if r.get(name) is None]
            numeric = all(_number(r[name]) is not None for r in present)
            present.sort(key=(lambda r: _number(r[name])) if numeric else (lambda r: str(r[name])), reverse=descending)
            rows = present + absent
        return rows[:limit] if limit else rows
    return order


STREAM_AGGREGATE = re.compile(r"\s*(?P<fn>count|dc|distinct_count|values|sum|avg|min|max|last|first)\s*"
                              r"(?:\(\s*(?P<arg>[^)]*?)\s*\))?(?:\s+as\s+(?P<name>\S+))?\s*$")


def _streamstats_step(text: str) -> Step:
    """``streamstats [current=<bool>] [window=<int>] [time_window=<span>] <aggregates> [by <fields>]``
    (Search Reference, "streamstats"): each result gets the aggregates of the results seen so far in
    its group, the current one included unless ``current=false``; ``window=N`` keeps the last N results;
    ``time_window=<span>`` keeps the results whose ``_time`` lies within the span of the current
    result's, and the Search Reference requires the results to be sorted by time for it (ascending or
    descending), so an unsorted input is refused here. Where the span ends exactly is not stated;
    modelled half-open (a result exactly one span away is outside), the reference engine's window.
    A result without a by-field value gets no aggregates; multivalue by-fields are not modelled."""
    m = re.fullmatch(r"(?P<options>(?:\s*\w+=\S+)*)\s*(?P<aggs>.*?)(?:\s+by\s+(?P<by>.*))?", " " + text.strip(), re.DOTALL)
    options = dict(re.findall(r"(\w+)=(\S+)", m.group("options")))
    unknown = set(options) - {"current", "window", "time_window"}
    if unknown:
        raise QuerySyntaxError(f"streamstats option(s) {sorted(unknown)} are not modelled")
    current = options.get("current", "true").lower() not in ("f", "false", "0")
    window = int(options["window"]) if "window" in options else 0
    span = _span(options["time_window"]) if "time_window" in options else None
    aggregates = []
    for part in _split_commas(m.group("aggs")) if "," in m.group("aggs") else _split_aggregates(m.group("aggs")):
        a = STREAM_AGGREGATE.match(part)
        if not a:
            raise QuerySyntaxError(f"streamstats aggregate {part.strip()!r} is not modelled")
        arg = _aggregate_argument(a.group("fn"), a.group("arg"))
        aggregates.append((a.group("name") or (f"{a.group('fn')}({arg})" if arg else a.group("fn")), a.group("fn"), arg))
    by = [f.strip("'\"") for f in re.split(r"[\s,]+", m.group("by") or "") if f]

    def stream(rows: list[Row]) -> list[Row]:
        if span is not None:
            times = [_number(r.get("_time")) for r in rows]
            if None in times or not (times == sorted(times) or times == sorted(times, reverse=True)):
                raise InvalidSearch("streamstats time_window: the results must be sorted by _time")
        seen: dict[tuple, list[Row]] = {}
        out = []
        for row in rows:
            row = dict(row)
            key = []
            for name in by:
                values = _as_values(row.get(name))
                if len(values) > 1:
                    raise QuerySyntaxError(f"streamstats by a multivalue field ({name}) is not modelled")
                key.append(values[0] if values else None)
            if None in key:
                out.append(row)
                continue
            history = seen.setdefault(tuple(key), [])
            members = history + [row] if current else list(history)
            if window:
                members = members[-window:]
            if span is not None:
                now = _number(row["_time"])
                members = [r for r in members if abs(_number(r["_time"]) - now) < span]
            history.append(dict(row))
            for name, fn, arg in aggregates:
                values = [v for r in members for v in _as_values(r.get(arg))] if arg else []
                result: Any = None
                if fn == "count":
                    result = len(values) if arg else len(members)
                elif fn in ("dc", "distinct_count"):
                    result = len(set(values))
                elif fn == "values":
                    result = sorted(set(values)) or None
                elif fn in ("last", "first"):
                    result = (values[-1] if fn == "last" else values[0]) if values else None
                elif fn in ("min", "max"):
                    result = _min_max(fn, values)
                else:
                    numbers = [n for n in map(_number, values) if n is not None]
                    if numbers:
                        # Search Reference, "Statistical and charting functions": sum/avg read the field's
                        # numeric values only; a result without one gets no value
                        result = {"sum": sum, "avg": lambda x: sum(x) / len(x)}[fn](numbers)
                if result is None:
                    row.pop(name, None)
                else:
                    row[name] = result
            out.append(row)
        return out
    return stream


def _split_aggregates(text: str) -> list[str]:
    """Aggregates separated by spaces: ``count as n max(_time) as t``."""
    pattern = r"\w+(?:\([^)]*\))?(?:\s+as\s+[^\s(]+)?"
    if re.sub(pattern, "", text).strip():
        raise QuerySyntaxError(f"aggregates {text.strip()!r} are not modelled")
    return [m.group(0) for m in re.finditer(pattern, text)]


def _subsearches(text: str) -> list[str]:
    """The bracketed subsearches of ``multisearch``; brackets inside quoted strings are text."""
    out, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
            if depth == 1:
                start = i + 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                out.append(text[start:i])
            elif depth < 0:
                raise QuerySyntaxError("multisearch: unbalanced ]")
        elif depth == 0 and not ch.isspace():
            raise QuerySyntaxError(f"multisearch: {ch!r} outside a [subsearch]")
        i += 1
    if depth or quote:
        raise QuerySyntaxError("multisearch: unterminated [subsearch]")
    return out


def _multisearch_step(text: str) -> Step:
    subsearches = _subsearches(text.strip())
    if not subsearches:
        raise QuerySyntaxError("multisearch needs [subsearches]")
    pipelines = []
    for subsearch in subsearches:
        # Search Reference, "multisearch": the subsearches may contain only purely streaming commands.
        for segment in split_pipes(subsearch.strip())[1:]:
            command = segment.split(None, 1)[0] if segment else ""
            if command not in STREAMING:
                raise InvalidSearch(f"multisearch: {command!r} is not a streaming command")
        pipelines.append(Query.parse(subsearch.strip()))

    def union(rows: list[Row]) -> list[Row]:
        out: list[Row] = []
        for pipeline in pipelines:
            out.extend(pipeline.run(rows))
        return out
    return union


def _rename_step(text: str) -> Step:
    """`rename A AS B, C AS D`, left to right. Splunk's rename page (search-commands/rename): renaming
    a field that is absent onto one that exists empties the existing one; wildcards are not modelled."""
    pairs = []
    for part in _split_commas(text):
        m = re.fullmatch(r"\s*(\S+)\s+(?i:as)\s+(\S+)\s*", part)
        if not m:
            raise QuerySyntaxError(f"rename {part!r}: expected <field> AS <field>")
        source, target = (name.strip("\"'") for name in m.groups())
        if "*" in source or "*" in target:
            raise QuerySyntaxError(f"rename {part!r}: wildcard renames are not modelled")
        pairs.append((source, target))

    def rename(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            for source, target in pairs:
                if source in row:
                    row[target] = row.pop(source)
                else:
                    row.pop(target, None)
            out.append(row)
        return out
    return rename


# ------------------------------------------------------------------ data models (tstats)

# Splunk CIM manual, "Network Resolution (DNS)": the dataset's constraint (its tags) and its fields;
# a data model's summaries hold these fields only, named <dataset>.<field>, plus _time.
DATA_MODELS = {
    "Network_Resolution.DNS": ("DNS", ("network", "resolution", "dns"), frozenset({
        "additional_answer_count", "answer", "answer_count", "authority_answer_count", "dest", "dest_port",
        "duration", "message_type", "name", "query", "query_count", "query_type", "record_type",
        "reply_code", "reply_code_id", "response_time", "src", "transaction_id", "transport", "ttl",
        "vendor_product"})),
}
TSTATS = re.compile(
    r"(?P<options>(?:\s*\w+=(?:\"[^\"]*\"|\S+))*)\s+(?P<aggs>.*?)\s+from\s+datamodel=(?P<model>\S+)"
    r"(?:\s+where\s+(?P<where>.*?))?(?:\s+by\s+(?P<by>[^|]*?))?\s*$", re.DOTALL)
TSTATS_AGGREGATE = re.compile(r"(?P<fn>count|dc|min|max|values)(?:\((?P<arg>[^)]*)\))?(?:\s+as\s+(?P<name>\w+))?")


def _tstats_step(text: str) -> Step:
    """Search Reference, "tstats": statistics over a data model's fields (named <dataset>.<field>);
    the where clause is search syntax; ``fillnull_value`` gives a missing by-field that value
    (without it, such events are left out)."""
    m = TSTATS.fullmatch(" " + text)
    if not m:
        raise QuerySyntaxError(f"tstats {text[:60]!r}: expected [options] aggregates from datamodel=X [where ...] [by ...]")
    options = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', m.group("options")))
    fill = options.get("fillnull_value")
    fill = fill.strip('"') if fill is not None else None
    if m.group("model") not in DATA_MODELS:
        raise QuerySyntaxError(f"data model {m.group('model')!r} is not modelled")
    dataset, tags, fields = DATA_MODELS[m.group("model")]
    aggregates = []
    for a in TSTATS_AGGREGATE.finditer(m.group("aggs")):
        aggregates.append((a.group("name") or a.group(0), a.group("fn"), _aggregate_argument(a.group("fn"), a.group("arg"))))
    if not aggregates or TSTATS_AGGREGATE.sub("", m.group("aggs")).strip():
        raise QuerySyntaxError(f"tstats aggregates {m.group('aggs')!r} are not modelled")
    where = compile_search(m.group("where") or "")
    by = (m.group("by") or "").split()
    for name in by:
        if name != "_time" and not (name.startswith(dataset + ".") and name[len(dataset) + 1:] in fields):
            raise InvalidSearch(f"tstats by {name!r}: not a field of data model {m.group('model')}")

    def summarise(events: list[Row]) -> list[Row]:
        groups: dict[tuple, list[Row]] = {}
        for event in events:
            if not set(tags) <= set(_as_values(event.get("tag"))):
                continue  # outside the dataset's constraint
            row = {f"{dataset}.{f}": event[f] for f in fields if f in event}
            if "_time" in event:
                row["_time"] = event["_time"]
            if not where(row):
                continue
            keys: list[tuple] = [()]
            for name in by:
                values = _as_values(row.get(name)) or ([fill] if fill is not None else [])
                keys = [k + (v,) for k in keys for v in dict.fromkeys(values)]
            for key in keys:
                groups.setdefault(key, []).append(row)
        out = []
        for key, members in groups.items():
            result: Row = dict(zip(by, key))
            for name, fn, arg in aggregates:
                values = [v for r in members for v in _as_values(r.get(arg))] if arg else []
                if fn == "count":
                    result[name] = len(values) if arg else len(members)
                elif fn == "dc":
                    result[name] = len(set(values))
                elif fn == "values":
                    result[name] = sorted(set(values))
                elif values:
                    result[name] = _min_max(fn, values)
            out.append(result)
        return out
    return summarise


def _convert_step(text: str) -> Step:
    """``convert timeformat="..." ctime(field) [as name]``: epoch seconds to text (UTC here)."""
    options, rest = _options(text)
    m = re.fullmatch(r"ctime\((\w+)\)(?:\s+as\s+(\w+))?", rest)
    if not m:
        raise QuerySyntaxError(f"convert {text!r} is not modelled")
    fmt, field, name = options.get("timeformat", "%m/%d/%Y %H:%M:%S"), m.group(1), m.group(2) or m.group(1)

    def convert(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            number = _number(row.get(field))
            if number is not None:
                row[name] = datetime.fromtimestamp(number, timezone.utc).strftime(fmt)
            out.append(row)
        return out
    return convert


def _drop_dm_object_name(argument: str) -> Step:
    """Splunk_SA_CIM's macro `drop_dm_object_name(object)`: ``rename <object>.* AS *``."""
    prefix = argument.strip() + "."
    return lambda rows: [{(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in r.items()} for r in rows]


def _mvexpand_step(text: str) -> Step:
    """``mvexpand <field> [limit=<int>]`` (Search Reference, "mvexpand"): for each result, one result per
    value of the field (the first ``limit`` values; 0, the default, is all), each a copy with that one
    value; the command "can't be applied to internal fields". The page says nothing of a result that lacks
    the field, so such a result is refused rather than guessed kept or dropped."""
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_.]*)(?:\s+limit=(\d+))?", text.strip())
    if not m:
        raise QuerySyntaxError(f"mvexpand {text!r}: only `mvexpand <field> [limit=<int>]` is modelled")
    name, limit = m.group(1), int(m.group(2) or 0)
    if name.startswith("_"):
        raise InvalidSearch(f"mvexpand {name}: mvexpand can't be applied to internal fields")

    def expand(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            values = _as_values(row.get(name))
            if not values:
                raise QuerySyntaxError(f"mvexpand {name}: a result without the field is not documented (not modelled)")
            out.extend({**row, name: v} for v in (values[:limit] if limit else values))
        return out
    return expand


# transforms.conf max_matches when a lookup definition does not set it: the Knowledge Manager Manual ("Add
# field matching rules to your lookup configuration") gives 100 for a lookup without time_field, while
# limits.conf [lookup] max_matches is 1000. Up to 100 matching rows both agree; beyond that the model
# refuses rather than pick one page. Several matching rows give multivalue output fields, in file order.
DOCUMENTED_MAX_MATCHES = 100


def matching_rows(matches: list, max_matches: int | None, name: str) -> list:
    """The rows a lookup uses for one input value: the first ``max_matches`` in file order."""
    if max_matches is None:
        if len(matches) > DOCUMENTED_MAX_MATCHES:
            raise QuerySyntaxError(f"lookup {name}: more than {DOCUMENTED_MAX_MATCHES} matching rows with no "
                                   "max_matches set (the documented defaults disagree beyond that)")
        return matches
    return matches[:max_matches]


@dataclass
class LookupTable:
    """A CSV lookup as transforms.conf defines it (Admin Manual, transforms.conf: ``case_sensitive_match``
    defaults to true; ``max_matches`` unset: see :data:`DOCUMENTED_MAX_MATCHES`). ``columns``: the CSV's
    header (default: the rows' fields)."""

    rows: list[dict[str, str]]
    case_sensitive: bool = True
    max_matches: int | None = None
    columns: tuple[str, ...] | None = None

    def header(self) -> set[str] | None:
        if self.columns is not None:
            return set(self.columns)
        return {k for r in self.rows for k in r} if self.rows else None


def _lookup_step(text: str) -> Step:
    """``lookup <table> <lookup-field> [AS <event-field>] OUTPUT <dest> [AS <event-dest>] ...``
    (Search Reference, "lookup"): each result whose event field equals a row's lookup field gets that
    row's output fields (several matching rows: a multivalue field, in file order); OUTPUT overwrites.
    A field the table does not have is an error in Splunk ("Could not find all of the specified lookup
    fields / destination fields in the lookup table"). One input field of one value per result is
    modelled (a multivalue input is refused)."""
    m = re.fullmatch(r"(\w+)\s+(\w+)(?:\s+AS\s+(\w+))?\s+OUTPUT\s+(.+)", text.strip(), re.IGNORECASE | re.DOTALL)
    if not m:
        raise QuerySyntaxError(f"lookup {text!r}: only `lookup <table> <field> [AS <field>] OUTPUT ...` is modelled")
    table, key, event_key = m.group(1), m.group(2), m.group(3) or m.group(2)
    output_text = m.group(4)
    outputs = re.findall(r"(\w+)(?:\s+AS\s+(\w+))?\s*,?", output_text, re.IGNORECASE)
    if re.sub(r"(\w+)(?:\s+AS\s+(\w+))?\s*,?", "", output_text, flags=re.IGNORECASE).strip():
        raise QuerySyntaxError(f"lookup OUTPUT {output_text!r} is not modelled")
    outputs = [(src, dest or src) for src, dest in outputs]

    def look(rows: list[Row], lookups: dict[str, LookupTable]) -> list[Row]:
        if table not in lookups:
            raise InvalidSearch(f"lookup {table}: no such lookup table definition")
        definition = lookups[table]
        header = definition.header()
        if header is not None and key not in header:
            raise InvalidSearch(f"lookup {table}: could not find the lookup field {key} in the lookup table")
        if header is not None and any(src not in header for src, _ in outputs):
            raise InvalidSearch(f"lookup {table}: could not find all of the destination fields in the lookup table")
        fold = (lambda v: v) if definition.case_sensitive else (lambda v: v.lower())
        index: dict[str, list[dict]] = {}
        for entry in definition.rows:
            if entry.get(key) is not None:
                index.setdefault(fold(str(entry[key])), []).append(entry)
        out = []
        for row in rows:
            row = dict(row)
            values = _as_values(row.get(event_key))
            if len(values) > 1:
                raise QuerySyntaxError(f"lookup on a multivalue field ({event_key}) is not modelled")
            matches = matching_rows(index.get(fold(values[0]), []), definition.max_matches, table) if values else []
            for src, dest in outputs:
                found = [e[src] for e in matches if e.get(src) not in (None, "")]
                if found:
                    row[dest] = _one_or_many(found)
                else:
                    row.pop(dest, None)
            out.append(row)
        return out
    look.needs_lookups = True
    return look


def _field_patterns(command: str, text: str) -> list[re.Pattern]:
    names = [n.strip("'\"") for n in re.split(r"[\s,]+", text.strip()) if n]
    if not names:
        raise InvalidSearch(f"{command} needs a list of fields")
    return [re.compile("".join(".*" if c == "*" else re.escape(c) for c in n), re.DOTALL) for n in names]


def _fields_step(text: str) -> Step:
    """``fields [+|-] <wc-field-list>`` (Search Reference, "fields"): ``+`` (the default) keeps only the
    listed fields (``*`` a wildcard), ``-`` removes them. "The fields command does not remove these internal
    fields [_raw, _time] unless you explicitly specify" it, so ``+`` keeps the leading-underscore fields."""
    sign, rest = (text.strip()[0], text.strip()[1:]) if text.strip()[:1] in ("+", "-") else ("+", text)
    patterns = _field_patterns("fields", rest)

    def listed(name: str) -> bool:
        return any(p.fullmatch(name) for p in patterns)
    if sign == "-":
        return lambda rows: [{k: v for k, v in r.items() if not listed(k)} for r in rows]
    return lambda rows: [{k: v for k, v in r.items() if listed(k) or k.startswith("_")} for r in rows]


def _table_step(text: str) -> Step:
    """``table <wc-field-list>`` (Search Reference, "table"): a table of only the listed fields, in the
    order listed. (A row keeps the verifier's own ``_r53sigma_event`` marker, which is no Splunk field.)"""
    patterns = _field_patterns("table", text)

    def tabulate(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            kept = {k: row[k] for p in patterns for k in row if p.fullmatch(k)}
            if "_r53sigma_event" in row:
                kept["_r53sigma_event"] = row["_r53sigma_event"]
            out.append(kept)
        return out
    return tabulate


MACROS: dict[str, Callable[[str], Step]] = {"drop_dm_object_name": _drop_dm_object_name}
GENERATING = {"tstats", "multisearch"}  # must start the search (Search Reference: generating commands)

STREAMING = {"search", "eval", "where", "regex", "rex", "fields", "rename"}

COMMANDS: dict[str, Callable[[str], Step]] = {
    "search": _search_step,
    "regex": _regex_step,
    "rex": _rex_step,
    "eval": _eval_step,
    "where": _where_step,
    "bin": _bin_step,
    "bucket": _bin_step,
    "stats": _stats_step,
    "streamstats": _streamstats_step,
    "sort": _sort_step,
    "multisearch": _multisearch_step,
    "rename": _rename_step,
    "table": _table_step,
    "fields": _fields_step,
    "tstats": _tstats_step,
    "convert": _convert_step,
    "mvexpand": _mvexpand_step,
    "lookup": _lookup_step,
}


@dataclass
class Query:
    text: str
    steps: list[Step]

    @classmethod
    def parse(cls, text: str) -> "Query":
        segments = split_pipes(text)
        steps: list[Step] = []
        for index, segment in enumerate(segments):
            if index == 0 and not segment:
                continue  # a query starting with `| multisearch`
            macro = re.fullmatch(r"`(\w+)\((.*)\)`", segment)
            if macro:
                if macro.group(1) not in MACROS:
                    raise QuerySyntaxError(f"macro {macro.group(1)!r} is not modelled")
                steps.append(MACROS[macro.group(1)](macro.group(2)))
                continue
            name, rest = (re.split(r"\s+", segment, maxsplit=1) + [""])[:2]
            if index == 0 and name != "search":
                name, rest = "search", segment
            if name in GENERATING and not (index == 1 and not segments[0]):
                raise InvalidSearch(f"{name} is a generating command: it must come first, after a leading |")
            if name not in COMMANDS:
                raise QuerySyntaxError(f"command {name!r} is not modelled")
            steps.append(COMMANDS[name](rest.strip()))
        return cls(text, steps)

    def run(self, rows: Iterable[Row], lookups: dict[str, LookupTable] | None = None) -> list[Row]:
        rows = [dict(r) for r in rows]
        for step in self.steps:
            rows = step(rows, lookups or {}) if getattr(step, "needs_lookups", False) else step(rows)
        return rows


def parse(text: str) -> Query:
    """The models' one entry point: ``parse(text).run(rows)``."""
    return Query.parse(text)


def run(query: str, events: Iterable[Row], lookups: dict[str, LookupTable] | None = None) -> list[Row]:
    """Parse ``query`` and run it on events (field -> str or list of str), with the lookup tables given."""
    return Query.parse(query).run(events, lookups)


def selects(query: str, event: Row) -> bool:
    return bool(run(query, [event]))
