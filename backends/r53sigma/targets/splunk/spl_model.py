"""An executable model of Splunk search (SPL), for the subset pySigma's Splunk backend emits with route53_splunk.

No Splunk runs here, so conversions are checked against this model of the documented semantics. It
parses query text (it shares no code with the backend) and runs it on events as the pack's add-on
presents them (:func:`r53sigma.targets.splunk.events.event_from_raw`: field -> string, or list of
strings for a multivalue field; ``_time`` in Unix seconds; ``_raw``).

Modelled (Splunk Search Reference, Search Manual "Boolean expressions", "Backslashes"):
- the implicit ``search`` and ``| search``: ``field=value``, ``field!=value``, ``field IN (v, ...)``,
  ``field>N`` (``<``, ``<=``, ``>=``), ``field=*``, quoted field names, bare or quoted keywords
  (matched in ``_raw``, case-insensitively, as a substring: a simplification of Splunk's term index);
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
  ``lower``, ``upper``, ``len``, ``in``);
- ``| bin _time span=N(s|m|h|d)`` (epoch-aligned); ``| stats count, count(f), dc(f), sum(f), min,
  max, avg ... as name by f1 f2`` (an event without a by-field is left out; a multivalue by-field
  puts the event in each value's group); ``| multisearch [search ...] [search ...]`` (union);
  ``| table``/``| fields`` (kept rows unchanged).

Anything else raises :class:`QuerySyntaxError` rather than being guessed.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

Row = dict[str, Any]
SPAN_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


class QuerySyntaxError(ValueError):
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


@dataclass
class Tok:
    kind: str  # string, op, word
    text: str


def search_tokens(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = SEARCH_TOKEN.match(text, pos)
        if not m:
            raise QuerySyntaxError(f"cannot read search at {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append(Tok(m.lastgroup, m.group()))
    return out


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


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

Predicate = Callable[[Row], bool]


class SearchParser:
    """search := and ; and := or (AND? or)* ; or := unary (OR unary)* ; unary := NOT unary | primary."""

    def __init__(self, tokens: list[Tok]):
        self.tokens, self.pos = tokens, 0

    def peek(self, offset: int = 0) -> Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Tok:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("unexpected end of search")
        self.pos += 1
        return token

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
        regex = re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.IGNORECASE | re.DOTALL)
        return lambda row: regex.search(str(row.get("_raw", ""))) is not None


def compile_search(text: str) -> Predicate:
    return SearchParser(search_tokens(text)).parse()


# ------------------------------------------------------------------ eval expressions

EVAL_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<field>'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>==|!=|<=|>=|=|<|>|\(|\)|,|\+|-|\*|/|\.)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.{}]*)
    """,
    re.VERBOSE,
)


def eval_tokens(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = EVAL_TOKEN.match(text, pos)
        if not m:
            raise QuerySyntaxError(f"cannot read eval expression at {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append(Tok(m.lastgroup, m.group()))
    return out


def _unescape_eval(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), literal[1:-1])


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
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return any(re.fullmatch(regex, str(v), re.DOTALL) for v in _values(value))


def _cidrmatch(cidr: Any, value: Any) -> bool | None:
    if cidr is None or value is None:
        return None
    network = _network(str(cidr))
    if network is None:
        return False
    return any(value_test(str(cidr))(str(v)) for v in _values(value))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isnull": lambda v: v is None,
    "isnotnull": lambda v: v is not None,
    "like": _like,
    "match": lambda v, r: None if v is None else any(re.search(str(r), str(x)) for x in _values(v)),
    "cidrmatch": _cidrmatch,
    "lower": lambda v: None if v is None else [str(x).lower() for x in v] if isinstance(v, list) else str(v).lower(),
    "upper": lambda v: None if v is None else [str(x).upper() for x in v] if isinstance(v, list) else str(v).upper(),
    "len": lambda v: None if v is None else len(str(v)),
    "tonumber": lambda v: _number(v),
    "tostring": lambda v: None if v is None else str(v),
}


class EvalParser:
    """or := and (OR and)* ; and := not (AND not)* ; not := NOT not | cmp ; cmp := add (op add)?"""

    def __init__(self, tokens: list[Tok]):
        self.tokens, self.pos = tokens, 0

    def peek(self) -> Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Tok:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("unexpected end of eval expression")
        self.pos += 1
        return token

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

    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self._is("OR"):
            self.take()
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda row: any(bool(p(row)) for p in parts)

    def conjunction(self) -> Expr:
        parts = [self.negation()]
        while self._is("AND"):
            self.take()
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        return lambda row: all(bool(p(row)) for p in parts)

    def negation(self) -> Expr:
        if self._is("NOT"):
            self.take()
            inner = self.negation()
            return lambda row: not bool(inner(row))
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            op = self.take().text
            right = self.operand()
            if op in ("=", "=="):
                return lambda row: bool(_equal(left(row), right(row)))
            if op == "!=":
                return lambda row: _equal(left(row), right(row)) is False
            def ordered(row: Row) -> bool:
                a, b = left(row), right(row)
                pairs = [(x, y) for x in _values(a) for y in _values(b)]
                for x, y in pairs:
                    nx, ny = _number(x), _number(y)
                    if nx is not None and ny is not None and _COMPARE[op](nx, ny):
                        return True
                    if (nx is None or ny is None) and _COMPARE[op](str(x), str(y)):
                        return True
                return False
            return ordered
        if token is not None and token.kind == "word" and token.text.lower() == "in":
            self.take()
            self.expect("(")
            options = self.arguments()
            return lambda row: any(bool(_equal(left(row), o(row))) for o in options)
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
        if token.kind == "op" and token.text == "(":
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token.kind == "word":
            name = token.text
            if self._is("("):
                self.take()
                return self.call(name.lower(), self.arguments())
            if name in ("true", "false"):
                return lambda row: name == "true"
            if name == "null":
                return lambda row: None
            return lambda row: row.get(name)
        raise QuerySyntaxError(f"unexpected {token.text!r} in eval expression")

    @staticmethod
    def call(name: str, args: list[Expr]) -> Expr:
        if name == "if":
            if len(args) != 3:
                raise QuerySyntaxError("if(condition, then, else)")
            cond, then, otherwise = args
            return lambda row: then(row) if bool(cond(row)) else otherwise(row)
        if name == "case":
            if len(args) % 2:
                raise QuerySyntaxError("case(condition, value, ...)")
            pairs = list(zip(args[::2], args[1::2]))
            def first_true(row: Row) -> Any:
                for cond, value in pairs:
                    if bool(cond(row)):
                        return value(row)
                return None
            return first_true
        if name not in FUNCTIONS:
            raise QuerySyntaxError(f"eval function {name}() is not modelled")
        fn = FUNCTIONS[name]
        return lambda row: fn(*(a(row) for a in args))


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
    pattern = re.compile(_pcre(_unescape_quoted(m.group("re"))))

    def keep(row: Row) -> bool:
        values = _as_values(row.get(field))
        matched = any(pattern.search(v) for v in values)
        return not matched if negate else matched
    return lambda rows: [r for r in rows if keep(r)]


def _unescape_quoted(literal: str) -> str:
    """A quoted command argument: only ``\\"`` and ``\\\\`` are unescaped (the regex sees the rest)."""
    return re.sub(r'\\([\\"])', r"\1", literal[1:-1])


def _pcre(pattern: str) -> str:
    """PCRE named groups ``(?<name>`` are Python's ``(?P<name>``."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)


def _rex_step(text: str) -> Step:
    options, rest = _options(text)
    if not (rest.startswith('"') and rest.endswith('"')):
        raise QuerySyntaxError(f"rex {text!r}: expected a quoted regex")
    field = options.get("field", "_raw")
    pattern = re.compile(_pcre(_unescape_quoted(rest)))

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
        m = re.fullmatch(r"\s*('?[A-Za-z_][A-Za-z0-9_.{}]*'?)\s*=(?!=)(.*)", part, re.DOTALL)
        if not m:
            raise QuerySyntaxError(f"eval {part!r}: expected name=expression")
        assignments.append((m.group(1).strip("'"), compile_eval(m.group(2))))

    def evaluate(rows: list[Row]) -> list[Row]:
        out = []
        for row in rows:
            row = dict(row)
            for name, expr in assignments:
                value = expr(row)
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
    return lambda rows: [r for r in rows if bool(expr(r))]


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


AGGREGATE = re.compile(r"\s*(?P<fn>count|dc|distinct_count|sum|min|max|avg)\s*(?:\(\s*(?P<arg>[^)]*?)\s*\))?(?:\s+as\s+(?P<name>\S+))?\s*$")


def _stats_step(text: str) -> Step:
    m = re.fullmatch(r"(?P<aggs>.*?)(?:\s+by\s+(?P<by>.*))?", text.strip(), re.DOTALL)
    aggregates = []
    for part in _split_commas(m.group("aggs")):
        a = AGGREGATE.match(part)
        if not a:
            raise QuerySyntaxError(f"stats aggregate {part.strip()!r} is not modelled")
        arg = (a.group("arg") or "").strip("'\"") or None
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
                else:
                    numbers = [n for n in map(_number, values) if n is not None]
                    if numbers:
                        result[name] = {"sum": sum, "min": min, "max": max, "avg": lambda x: sum(x) / len(x)}[fn](numbers)
            out.append(result)
        return out
    return aggregate


def _subsearches(text: str) -> list[str]:
    """The top-level ``[...]`` of a multisearch; brackets inside quoted strings (a regex's character
    classes) are text, as in Splunk."""
    found, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch == '"':
            quote = ch
        elif ch == "[":
            depth += 1
            if depth == 1:
                start = i + 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                found.append(text[start:i])
            elif depth < 0:
                raise QuerySyntaxError("unbalanced ] in multisearch")
        i += 1
    if quote or depth:
        raise QuerySyntaxError("unterminated subsearch in multisearch")
    return found


def _multisearch_step(text: str) -> Step:
    subsearches = _subsearches(text.strip())
    if not subsearches:
        raise QuerySyntaxError("multisearch needs [subsearches]")
    pipelines = [Query.parse(s.strip()) for s in subsearches]

    def union(rows: list[Row]) -> list[Row]:
        out: list[Row] = []
        for pipeline in pipelines:
            out.extend(pipeline.run(rows))
        return out
    return union


COMMANDS: dict[str, Callable[[str], Step]] = {
    "search": _search_step,
    "regex": _regex_step,
    "rex": _rex_step,
    "eval": _eval_step,
    "where": _where_step,
    "bin": _bin_step,
    "bucket": _bin_step,
    "stats": _stats_step,
    "multisearch": _multisearch_step,
    "table": lambda text: (lambda rows: rows),
    "fields": lambda text: (lambda rows: rows),
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
            name, rest = (re.split(r"\s+", segment, maxsplit=1) + [""])[:2]
            if index == 0 and name != "search":
                name, rest = "search", segment
            if name not in COMMANDS:
                raise QuerySyntaxError(f"command {name!r} is not modelled")
            steps.append(COMMANDS[name](rest.strip()))
        return cls(text, steps)

    def run(self, rows: Iterable[Row]) -> list[Row]:
        rows = [dict(r) for r in rows]
        for step in self.steps:
            rows = step(rows)
        return rows


def run(query: str, events: Iterable[Row]) -> list[Row]:
    """Parse ``query`` and run it on events (field -> str or list of str)."""
    return Query.parse(query).run(events)


def selects(query: str, event: Row) -> bool:
    return bool(run(query, [event]))
