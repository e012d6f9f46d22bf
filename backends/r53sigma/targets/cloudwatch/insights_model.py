"""An executable model of CloudWatch Logs Insights, for the subset of Logs Insights QL the pack emits.

No Logs Insights engine runs outside AWS, so conversions are checked against this model of the
documented semantics. It parses query text (it shares no code with the backend) and evaluates it on
raw log events.

Modelled (AWS, "CloudWatch Logs Insights language query syntax"):
- commands separated by `|`: `fields`, `filter`, `stats ... by`, `sort`, `limit`, `unnest ... into`
  ("unnest": one record per element of a LIST, none for an empty one), `#` comments; a query of at
  most 10,000 characters (StartQuery API reference, `queryString`);
- field names: letters, digits, `@`, `.`, `_`, or anything between backticks;
- JSON events are flattened: nested keys joined with `.`, array elements by index
  (`answers.0.Rdata`); `@message` is the raw text; `@timestamp` the event time. A JSON `null` is
  treated as an absent field (assumption, unconfirmed). Route 53 public hosted-zone lines are split
  into the field names Logs Insights discovers for them;
- `and`, `or`, `not`, with parentheses. Precedence is undocumented, so the model REFUSES `and` and
  `or` mixed without parentheses, and `not` followed by anything but `(` or a function call;
- `=`, `!=`, `<`, `<=`, `>`, `>=` (numbers when both sides are numeric), `in [...]`, `not in`,
  `like "substring"` (case-sensitive), `like /re/` and `=~ /re/` (regex search, unanchored);
- regexes: the subset common to RE2 and Java. `\\z` is the absolute end, `\\x{H..}` a code point;
  look-arounds and back-references are refused (RE2 has none);
- `a + b`, `a - b` on numbers ("Arithmetic operators"), left to right, in filter and fields and as
  function arguments; no value when a side is absent or not a number;
- functions: ispresent, isempty, isblank, isIpInSubnet, strlen, tolower, toupper, ltrim, rtrim, trim,
  `substr(str, startIndex [, length])` ("String functions": 0-based, `substr("xyZfooxyZ", 3, 3)` is
  "foo"; indexes in code points, as strlen counts them; a start or length outside the string is
  undocumented and REFUSED), `greatest(a, ...numbers)` and `least(a, ...numbers)` ("Numeric
  operators": "Returns the largest value" / "the smallest value", at least one argument),
  `jsonParse` (a MAP / LIST read with dot notation, "Structure types"),
  and the general function `if(condition, trueValue, falseValue)` (AWS, "Boolean, comparison, numeric,
  datetime, and other functions", General functions), both branches evaluated (AWS does not say
  whether the other branch runs, so a query must be valid either way). A bare Boolean expression as a computed field
  (`fields (a = 1) as x`) is undocumented and refused;
  stats aggregates count(*), count(f), count_distinct(f) (exact here; AWS documents it may be
  approximate for very high cardinality), sum, min, max, avg, and `bin(span)` over `@timestamp`,
  tumbling windows aligned to the epoch.
Arity: every call is checked when the query is parsed against the argument counts the pages give
("Boolean, comparison, numeric, datetime, and other functions" for the scalar functions, "Aggregation
functions in the stats command": `count(fieldName)` or `count(*)`, `sum(fieldName)` ...); a call with
too few or too many arguments (`greatest()`, `strlen(a, b)`, `count()`), a function outside the
modelled list, an aggregate outside `stats`, `*` outside `count(*)` and `bin()` outside `stats ... by`
are refused (QuerySyntaxError) instead of yielding no value or failing only on some events.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from r53sigma.targets import querymodel
from r53sigma.targets.querymodel import Cursor, Token

PUBLIC_ZONE_FIELDS = (
    "version", "queryTimestamp", "hostZoneId", "queryName", "queryType", "responseCode",
    "protocol", "edgeLocation", "resolverIp", "ednsClientSubnet",
)
SPAN_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class QuerySyntaxError(querymodel.QuerySyntaxError):
    """The text is not a query of the modelled subset."""


# ------------------------------------------------------------------ events


@dataclass
class Event:
    message: str
    timestamp: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)


def flatten(value: Any, prefix: str = "", out: dict | None = None) -> dict[str, Any]:
    out = {} if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            flatten(v, f"{prefix}.{n}" if prefix else str(n), out)
    elif value is not None:
        out[prefix] = value
    return out


def event(raw: str, timestamp: float = 0.0, dash_absent: bool = False) -> Event:
    """A log event as Logs Insights sees it: discovered fields plus @message and @timestamp.

    A public hosted-zone line writes `-` for a value it lacks (the EDNS client subnet; Route 53,
    "Public DNS query log format"). Neither "Supported logs and discovered fields" nor the parseRoute53
    processor ("Processors that you can use") says what a `-` column becomes, so the model keeps the
    literal `-` by default (what a column split yields) and `dash_absent=True` reads it as no field:
    queries are checked under both readings.
    """
    fields: dict[str, Any] = {}
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict):
        fields = flatten(document)
    else:
        columns = raw.split(" ")
        if len(columns) in (len(PUBLIC_ZONE_FIELDS), len(PUBLIC_ZONE_FIELDS) - 1):
            fields = {k: v for k, v in zip(PUBLIC_ZONE_FIELDS, columns) if not (dash_absent and v == "-")}
    fields["@message"] = raw
    fields["@timestamp"] = timestamp
    return Event(raw, timestamp, fields)


# ------------------------------------------------------------------ tokens

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<regex>/(?:[^/\\\n]|\\.)*/)
  | (?P<backtick>@?`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?(?:ms|[smhdw])?)
  | (?P<name>[A-Za-z0-9@_.]+)
  | (?P<op>=~|!=|<=|>=|=|<|>|\(|\)|\[|\]|,|\||\*|\+|-)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise QuerySyntaxError(f"unexpected character {text[pos]!r} at {pos}")
        pos = m.end()
        if m.lastgroup in ("ws", "comment"):
            continue
        tokens.append(Token(m.lastgroup, m.group()))
    return tokens


def unquote(literal: str) -> str:
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append({"n": "\n", "t": "\t"}.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def field_name(token: Token) -> str:
    if token.kind == "backtick":
        return token.text.replace("`", "")
    return token.text


# ------------------------------------------------------------------ regexes

MAX_QUERY_CHARS = 10_000  # StartQuery / PutQueryDefinition `queryString`: length 0 to 10000 (API reference)
# "limit" (CWL_QuerySyntax-Limit): "If you omit limit, the query defaults to returning up to 10,000 log
# events. You can specify a limit value of up to 100,000."
DEFAULT_LIMIT, MAX_LIMIT = 10_000, 100_000

# Constructs Python's `re` accepts that RE2 lacks (re2 "Syntax" page: no lookarounds, backreferences,
# atomic groups, possessive quantifiers, conditionals, `\Z`), so a query using them is refused.
GROUP_OPENERS = {"?=": "lookahead", "?!": "lookahead", "?<=": "lookbehind", "?<!": "lookbehind", "?>": "atomic group",
                 "?(": "conditional", "?P=": "named backreference"}


def unportable(body: str) -> str | None:
    """The first construct of `body` outside the RE2/Java common subset, or None. Escapes and
    character classes are read as units, so `\\1`, `[(?=]` or `\\*+` are not mistaken for one."""
    i, in_class, after_quantifier = 0, False, False
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1:i + 2]
            if not in_class and (nxt in "123456789" and nxt or nxt == "k" and body[i + 2:i + 3] == "<"):
                return "backreference"
            if nxt == "Z":
                return "\\Z"
            i, after_quantifier = i + 2, False
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if body[i + 1:i + 2] == "]":
                i += 1
            elif body[i + 1:i + 3] == "^]":
                i += 2
        elif c == "(":
            for opener, name in GROUP_OPENERS.items():
                if body.startswith(opener, i + 1):
                    return name
            if body.startswith("?<", i + 1) and body[i + 3:i + 4].isalpha():
                return "named group"
        elif c == "+" and after_quantifier:
            return "possessive quantifier"
        after_quantifier = not in_class and c in "*+?}" and not (c == "?" and body[i - 1:i] == "(") and not after_quantifier
        i += 1
    return None


def compile_regex(literal: str) -> re.Pattern:
    """A `/.../` literal in the RE2/Java common subset, as a Python pattern with the same meaning."""
    body = literal[1:-1]
    construct = unportable(body)
    if construct:
        raise QuerySyntaxError(f"regex construct outside the RE2/Java subset ({construct}): {literal[:80]}")
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "x" and body[i + 2:i + 3] == "{":
                end = body.index("}", i)
                out.append(re.escape(chr(int(body[i + 3:end], 16))))
                i = end + 1
                continue
            if nxt == "z":
                out.append(r"\Z")
            elif nxt == "/":
                out.append("/")
            else:
                out.append(c + nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as e:
        raise QuerySyntaxError(f"bad regex {literal[:80]}: {e}") from e


# ------------------------------------------------------------------ expressions


@dataclass
class Node:
    kind: str
    args: list = field(default_factory=list)
    value: Any = None


class Parser(Cursor):
    error = QuerySyntaxError

    def is_word(self, word: str, offset: int = 0) -> bool:
        t = self.peek(offset)
        return t is not None and t.kind == "name" and t.text.lower() == word

    def take(self, text: str | None = None) -> Token:
        t = self.peek()
        if t is None or (text is not None and t.text.lower() != text):
            raise QuerySyntaxError(f"expected {text or 'a token'}, found {t.text if t else 'end of query'}")
        self.pos += 1
        return t

    # boolean structure; refuses and/or mixed without parentheses
    def expression(self) -> Node:
        first = self.negation()
        connective, args = None, [first]
        while self.is_word("and") or self.is_word("or"):
            word = self.take().text.lower()
            if connective and word != connective:
                raise QuerySyntaxError("`and` and `or` mixed without parentheses (precedence is undocumented)")
            connective = word
            args.append(self.negation())
        return first if connective is None else Node(connective, args)

    def negation(self) -> Node:
        if self.is_word("not"):
            self.take()
            nxt, after = self.peek(), self.peek(1)
            is_call = nxt is not None and nxt.kind == "name" and after is not None and after.text == "("
            if not (nxt is not None and nxt.text == "(") and not is_call:
                raise QuerySyntaxError("`not` must be followed by a parenthesised group or a function call")
            return Node("not", [self.negation()])
        return self.comparison()

    def comparison(self) -> Node:
        left = self.arithmetic()
        t = self.peek()
        if t is None:
            return left
        if t.kind == "op" and t.text in ("=", "!=", "<", "<=", ">", ">=", "=~"):
            self.take()
            return Node(t.text, [left, self.arithmetic()])
        negated = False
        if self.is_word("not") and (self.is_word("in", 1) or self.is_word("like", 1)):
            self.take()
            negated = True
        if self.is_word("in"):
            self.take()
            self.take("[")
            items = [self.operand()]
            while self.peek() is not None and self.peek().text == ",":
                self.take()
                items.append(self.operand())
            self.take("]")
            node = Node("in", [left, *items])
            return Node("not", [node]) if negated else node
        if self.is_word("like"):
            self.take()
            node = Node("like", [left, self.operand()])
            return Node("not", [node]) if negated else node
        return left

    def arithmetic(self) -> Node:
        """`a + b`, `a - b` ("Arithmetic operators"), left to right."""
        node = self.operand()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            node = Node("arith", [node, self.operand()], op)
        return node

    def operand(self) -> Node:
        t = self.take()
        if t.text == "(":
            node = self.expression()
            self.take(")")
            return node
        if t.kind == "string":
            return Node("lit", value=unquote(t.text))
        if t.kind == "number":
            return Node("lit", value=float(t.text) if "." in t.text else int(t.text)) if t.text.lstrip("-").replace(".", "").isdigit() else Node("span", value=t.text)
        if t.kind == "regex":
            return Node("regex", value=compile_regex(t.text))
        if t.kind == "op" and t.text == "*":
            return Node("star")
        if t.kind in ("name", "backtick"):
            if t.kind == "name" and self.peek() is not None and self.peek().text == "(":
                self.take("(")
                args = []
                while self.peek() is not None and self.peek().text != ")":
                    args.append(self.expression())
                    if self.peek() is not None and self.peek().text == ",":
                        self.take()
                self.take(")")
                return Node("call", args, t.text.lower())
            return Node("field", value=field_name(t))
        raise QuerySyntaxError(f"unexpected {t.text!r}")


# ------------------------------------------------------------------ evaluation


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            n = float(v)
        except ValueError:
            return None
        return n if math.isfinite(n) else None
    return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not (isinstance(a, str) and isinstance(b, str)):
        return na == nb
    return _text(a) == _text(b)


def _trim(s: Any, chars: str | None, left: bool, right: bool) -> str | None:
    s = _text(s)
    if s is None:
        return None
    chars = chars if chars is not None else " \t\n\r"
    if left:
        s = s.lstrip(chars)
    if right:
        s = s.rstrip(chars)
    return s


_NO_LENGTH = object()


def _substr(s: Any, start: Any, length: Any = _NO_LENGTH) -> str | None:
    """substr ("String functions"): from the 0-based code-point index `start`, `length` characters or
    to the end. AWS documents no result for indexes outside the string, so the model refuses them."""
    s = _text(s)
    if s is None or start is None or length is None:  # an absent argument: no value
        return None
    begin = _number(start)
    count = len(s) - (begin or 0) if length is _NO_LENGTH else _number(length)
    if begin is None or count is None or begin != int(begin) or count != int(count) \
            or not 0 <= begin <= len(s) or not 0 <= count <= len(s) - begin:
        raise QuerySyntaxError(f"substr({s!r}, {start!r}, {length!r}) reaches outside the string: Logs Insights documents no result")
    return s[int(begin):int(begin + count)]


def _extreme(pick):
    def extreme(*values: Any) -> float | None:
        numbers = [_number(v) for v in values]  # arity (at least one) is checked at parse time
        return None if any(n is None for n in numbers) else pick(numbers)
    return extreme


def _in_subnet(value: Any, cidr: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


FUNCTIONS = {
    "ispresent": lambda v: v is not None,
    "isempty": lambda v: v is None or _text(v) == "",
    "isblank": lambda v: v is None or (_text(v) or "").strip() == "",
    "isipinsubnet": lambda v, c: v is not None and _in_subnet(v, c),
    "strlen": lambda v: None if v is None else len(_text(v)),
    "tolower": lambda v: None if v is None else _text(v).lower(),
    "toupper": lambda v: None if v is None else _text(v).upper(),
    "ltrim": lambda v, c=None: _trim(v, c, True, False),
    "rtrim": lambda v, c=None: _trim(v, c, False, True),
    "trim": lambda v, c=None: _trim(v, c, True, True),
    "substr": _substr,
    "greatest": _extreme(max),
    "least": _extreme(min),
    "if": lambda condition, when_true, when_false: when_true if bool(condition) else when_false,
    "jsonparse": lambda v: _json_parse(v),
}


# (least, most) arguments of each call, from the pages' signatures; None: any number more
ARITY = {
    "ispresent": (1, 1), "isempty": (1, 1), "isblank": (1, 1), "isipinsubnet": (2, 2), "strlen": (1, 1),
    "tolower": (1, 1), "toupper": (1, 1), "ltrim": (1, 2), "rtrim": (1, 2), "trim": (1, 2), "substr": (2, 3),
    "greatest": (1, None), "least": (1, None), "if": (3, 3), "jsonparse": (1, 1),
}
AGGREGATE_ARITY = {"count": (1, 1), "count_distinct": (1, 1), "sum": (1, 1), "avg": (1, 1), "min": (1, 1), "max": (1, 1)}


def _check_arity(name: str, count: int, table: dict) -> None:
    least, most = table[name]
    if count < least or (most is not None and count > most):
        wanted = f"{least}" if least == most else f"at least {least}" if most is None else f"{least} to {most}"
        raise QuerySyntaxError(f"{name}() takes {wanted} argument(s), not {count}")


BOOLEAN_CALLS = {"ispresent", "isempty", "isblank", "isipinsubnet"}  # the functions whose result type is Boolean


def is_boolean(node: Node) -> bool:
    return node.kind in {"and", "or", "not", "=", "!=", "<", "<=", ">", ">=", "in", "=~", "like"} or (
        node.kind == "call" and node.value in BOOLEAN_CALLS)


def check_operands(node: Node, where: str) -> None:
    """Refuse, at parse time, operands the pages give no meaning to, so that a query is refused whether
    or not an event ever reaches the part that holds them (`and` stops at its first false argument):
    `and`/`or`/`not` and if()'s condition take Booleans ("Boolean operators": "only in functions that
    return a value of TRUE or FALSE"; if(condition: Boolean, ...)), `=~` a /regex/, `like` a string or a
    /regex/ ("Regular expressions" / `like`), `=`/`!=`/`in` no regex, arithmetic no Boolean."""
    kind, args = node.kind, node.args
    if kind in ("and", "or", "not") and not all(is_boolean(a) for a in args):
        raise QuerySyntaxError(f"`{kind}` on a value that is not a Boolean ({where})")
    if kind == "call" and node.value == "if" and args and not is_boolean(args[0]):
        raise QuerySyntaxError(f"if() with a condition that is not a Boolean ({where})")
    if kind == "=~" and args[1].kind != "regex":
        raise QuerySyntaxError(f"=~ needs a /regex/ ({where})")
    if kind == "like" and not (args[1].kind == "regex" or (args[1].kind == "lit" and isinstance(args[1].value, str))):
        raise QuerySyntaxError(f"like needs a string or a /regex/ ({where})")
    if kind in ("=", "!=", "in", "<", "<=", ">", ">=") and any(a.kind == "regex" for a in args):
        raise QuerySyntaxError(f"a /regex/ with {kind}: use =~ or like ({where})")
    if kind == "arith" and any(is_boolean(a) for a in args):
        raise QuerySyntaxError(f"arithmetic on a Boolean ({where})")
    for arg in args:
        check_operands(arg, where)


def check_calls(node: Node, where: str) -> None:
    """Refuse, at parse time, what `check_operands` and `_check_calls` refuse."""
    check_operands(node, where)
    _check_calls(node, where)


def _check_calls(node: Node, where: str) -> None:
    """Calls the pages do not give in this place or with this many arguments."""
    if node.kind == "call":
        if node.value in AGGREGATE_ARITY and node.value not in FUNCTIONS:
            raise QuerySyntaxError(f"the aggregate {node.value}() outside stats ({where})")
        if node.value not in FUNCTIONS:
            raise QuerySyntaxError(f"function {node.value}() is not modelled ({where})")
        _check_arity(node.value, len(node.args), ARITY)
    elif node.kind == "star":
        raise QuerySyntaxError(f"`*` outside count(*) ({where})")
    elif node.kind == "span":
        raise QuerySyntaxError(f"a time span {node.value} outside bin() ({where})")
    for arg in node.args:
        _check_calls(arg, where)


def _json_parse(value: Any) -> Any:
    """jsonParse (AWS, "Structure types" / JSON functions): a JSON string as MAP / LIST; else no value."""
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def lookup(row: dict[str, Any], name: str) -> Any:
    """A field's value: a discovered or computed field by its whole name, else keys of a MAP (or
    indexes of a LIST) computed by jsonParse, with dot notation (`js.answers`, `a.Rdata`). A name
    under a JSON array that Logs Insights flattened by index (`answers.Rdata`) exists in neither
    form: it has no value, as in Logs Insights."""
    if name in row:
        return row[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        value = row.get(".".join(parts[:cut]))
        if isinstance(value, (dict, list)):
            for key in parts[cut:]:
                if isinstance(value, dict):
                    value = value.get(key)
                elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                    value = value[int(key)]
                else:
                    return None
            return None if isinstance(value, (dict, list)) and not value else value
    return None

# What `fields ... as name` may compute. A bare Boolean expression there (`(a = 1) as x`) is not
# documented, so the model refuses it; `if(condition, 1, 0)` is (General functions).
BOOLEAN_NODES = {"and", "or", "not", "=", "!=", "<", "<=", ">", ">=", "in", "=~", "like"}


def evaluate(node: Node, row: dict[str, Any]) -> Any:
    k = node.kind
    if k == "lit":
        return node.value
    if k == "field":
        return lookup(row, node.value)
    if k == "and":
        return all(bool(evaluate(a, row)) for a in node.args)
    if k == "or":
        return any(bool(evaluate(a, row)) for a in node.args)
    if k == "not":
        return not bool(evaluate(node.args[0], row))
    if k == "arith":
        a, b = (_number(evaluate(x, row)) for x in node.args)
        if a is None or b is None:
            return None
        return a + b if node.value == "+" else a - b
    if k == "call":
        if node.value not in FUNCTIONS:
            raise QuerySyntaxError(f"function {node.value} is not modelled")
        return FUNCTIONS[node.value](*(evaluate(a, row) for a in node.args))
    if k in ("=", "!="):
        left, right = node.args
        if right.kind == "regex":
            raise QuerySyntaxError("use =~ or like with a regex")
        eq = _equal(evaluate(left, row), evaluate(right, row))
        return eq if k == "=" else (evaluate(left, row) is not None and not eq)
    if k in ("<", "<=", ">", ">="):
        a, b = (_number(evaluate(x, row)) for x in node.args)
        if a is None or b is None:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[k]
    if k == "in":
        value = evaluate(node.args[0], row)
        return any(_equal(value, evaluate(item, row)) for item in node.args[1:])
    if k in ("=~", "like"):
        left, right = node.args
        value = _text(evaluate(left, row))
        if value is None:
            return False
        if right.kind == "regex":
            return right.value.search(value) is not None
        if k == "like" and right.kind == "lit":
            return str(right.value) in value
        raise QuerySyntaxError("=~ needs a /regex/")
    raise QuerySyntaxError(f"cannot evaluate {k}")


# ------------------------------------------------------------------ commands


@dataclass
class Command:
    name: str
    parser: Parser


def split_commands(text: str) -> list[list[Token]]:
    commands, current, depth = [], [], 0
    for t in tokenize(text):
        if t.text in ("(", "["):
            depth += 1
        elif t.text in (")", "]"):
            depth -= 1
        if t.text == "|" and depth == 0:
            commands.append(current)
            current = []
        else:
            current.append(t)
    commands.append(current)
    return [c for c in commands if c]


def _span_seconds(span: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|[smhdw])", span)
    if not m:
        raise QuerySyntaxError(f"bad time span {span}")
    return int(m.group(1)) * SPAN_SECONDS[m.group(2)]


@dataclass
class Query:
    text: str
    steps: list = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Query":
        if len(text) > MAX_QUERY_CHARS:
            raise QuerySyntaxError(f"the query is {len(text)} characters; Logs Insights accepts at most {MAX_QUERY_CHARS}")
        query = cls(text)
        for tokens in split_commands(text):
            name = tokens[0].text.lower()
            p = Parser(tokens[1:])
            if name == "fields":
                projection = cls._projection(p)
                for _, node in projection:
                    check_calls(node, "fields")
                query.steps.append(("fields", projection))
            elif name == "filter":
                condition = p.expression()
                if not is_boolean(condition):
                    raise QuerySyntaxError("filter on a value that is not a Boolean (a comparison or a Boolean function)")
                check_calls(condition, "filter")
                query.steps.append(("filter", condition))
            elif name == "stats":
                query.steps.append(("stats", cls._stats(p)))
            elif name == "sort":
                key = field_name(p.take())
                order = p.take().text.lower() if not p.done() else "desc"
                if order not in ("asc", "desc"):
                    raise QuerySyntaxError(f"sort order {order}")
                query.steps.append(("sort", (key, order)))
            elif name == "unnest":
                source = field_name(p.take())
                p.take("into")
                query.steps.append(("unnest", (source, field_name(p.take()))))
            elif name == "limit":
                count = p.take().text
                if not count.isdigit() or not 1 <= int(count) <= MAX_LIMIT:
                    raise QuerySyntaxError(f"limit {count}: a count of 1 to {MAX_LIMIT} (CWL_QuerySyntax-Limit)")
                query.steps.append(("limit", int(count)))
            else:
                raise QuerySyntaxError(f"command {name!r} is not modelled")
            if not p.done():
                raise QuerySyntaxError(f"unexpected {p.peek().text!r} in {name}")
        return query

    @staticmethod
    def _projection(p: Parser) -> list[tuple[str, Node]]:
        out = []
        while True:
            node = p.expression()
            name = node.value if node.kind == "field" else None
            if p.is_word("as"):
                p.take()
                name = field_name(p.take())
            if name is None:
                raise QuerySyntaxError("a computed field needs `as name`")
            if node.kind in BOOLEAN_NODES:
                raise QuerySyntaxError(f"a Boolean expression as the field {name!r} is undocumented; use if(condition, 1, 0)")
            out.append((name, node))
            if p.peek() is None or p.peek().text != ",":
                return out
            p.take()

    @staticmethod
    def _stats(p: Parser) -> tuple[list, list]:
        aggregates = []
        while True:
            call = p.operand()
            if call.kind != "call" or call.value not in AGGREGATE_ARITY:
                raise QuerySyntaxError(f"stats needs aggregate functions, not {call.value if call.kind == 'call' else call.kind}")
            _check_arity(call.value, len(call.args), AGGREGATE_ARITY)
            for arg in call.args:
                if not (arg.kind == "star" and call.value == "count"):
                    check_calls(arg, f"{call.value}()")
            name = f"{call.value}(...)"
            if p.is_word("as"):
                p.take()
                name = field_name(p.take())
            aggregates.append((name, call))
            if p.peek() is None or p.peek().text != ",":
                break
            p.take()
        groups = []
        if p.is_word("by"):
            p.take()
            while True:
                node = p.operand()
                if node.kind == "call" and node.value == "bin":
                    if len(node.args) != 1 or node.args[0].kind != "span":
                        raise QuerySyntaxError("bin() takes one time span")
                else:
                    check_calls(node, "stats ... by")
                name = node.value if node.kind == "field" else None
                if p.is_word("as"):
                    p.take()
                    name = field_name(p.take())
                groups.append((name or f"group{len(groups)}", node))
                if p.peek() is None or p.peek().text != ",":
                    break
                p.take()
        return aggregates, groups

    # -------------------------------------------------------------- running

    def run(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        rows = [dict(e.fields) for e in events]
        for step, arg in self.steps:
            if step == "fields":
                for row in rows:
                    for name, node in arg:
                        value = evaluate(node, row)
                        if value is not None:
                            row[name] = value
            elif step == "filter":
                rows = [row for row in rows if bool(evaluate(arg, row))]
            elif step == "unnest":
                rows = self._unnest(rows, *arg)
            elif step == "stats":
                rows = self._aggregate(rows, *arg)
            elif step == "sort":
                key, order = arg
                present = [r for r in rows if r.get(key) is not None]
                missing = [r for r in rows if r.get(key) is None]
                present.sort(key=lambda r: (_number(r[key]) is None, _number(r[key]) or 0, _text(r[key])), reverse=order == "desc")
                rows = present + missing
            elif step == "limit":
                rows = rows[:arg]
        return rows if any(step == "limit" for step, _ in self.steps) else rows[:DEFAULT_LIMIT]

    @staticmethod
    def _unnest(rows: list[dict], source: str, into: str) -> list[dict]:
        """`unnest list into name` (AWS, "unnest"): one record per element of the LIST jsonParse made, the
        other fields from the original record; an empty list gives none; any other value is a list of
        one item. A record with no value at all gives none here (undocumented; the backend's queries
        give the same answer either way: such a record has no value to count or group by)."""
        out = []
        for row in rows:
            value = lookup(row, source)
            if value is None:
                continue
            for element in value if isinstance(value, list) else [value]:
                out.append({**row, into: element})
        return out

    @staticmethod
    def _aggregate(rows: list[dict], aggregates: list, groups: list) -> list[dict]:
        buckets: dict[tuple, list[dict]] = {}
        for row in rows:
            key = []
            for _, node in groups:
                if node.kind == "call" and node.value == "bin":
                    span = _span_seconds(node.args[0].value)
                    key.append(math.floor(row["@timestamp"] / span) * span)
                else:
                    value = evaluate(node, row)
                    if value is None:
                        break
                    key.append(value)
            else:
                buckets.setdefault(tuple(key), []).append(row)
        out = []
        for key, members in buckets.items():
            result = {name: value for (name, _), value in zip(groups, key)}
            for name, call in aggregates:
                arg = call.args[0] if call.args else None
                values = [] if arg is None or arg.kind == "star" else [v for v in (evaluate(arg, r) for r in members) if v is not None]
                fn = call.value
                if fn == "count":
                    result[name] = len(members) if arg is None or arg.kind == "star" else len(values)
                elif fn == "count_distinct":
                    result[name] = len({_text(v) for v in values})
                elif fn in ("sum", "avg", "min", "max"):
                    numbers = [int(v) if isinstance(v, bool) else n for v, n in ((v, _number(v)) for v in values) if isinstance(v, bool) or n is not None]
                    result[name] = {"sum": sum, "min": min, "max": max, "avg": lambda x: sum(x) / len(x)}[fn](numbers) if numbers else None
                else:
                    raise QuerySyntaxError(f"aggregate {fn} is not modelled")
            out.append(result)
        return out


def parse(text: str) -> Query:
    """The models' one entry point: ``parse(text).run(rows)``."""
    return Query.parse(text)


def run(query: str, events: Iterable[Event | str]) -> list[dict[str, Any]]:
    """Parse `query` and run it on events (raw strings are taken as events at time 0)."""
    return Query.parse(query).run(e if isinstance(e, Event) else event(e) for e in events)


def selects(query: str, raw: str) -> bool:
    """Whether a non-aggregating query returns this one raw event."""
    return bool(run(query, [raw]))
