"""An executable model of Elasticsearch ES|QL, for the subset pySigma's ESQLBackend emits.

No ES|QL parser installs here (the PyPI parsers need Python >= 3.12/3.13) and no Elasticsearch runs,
so this module parses the query text itself (it shares no code with the backend), type-checks every
field it reads against an index mapping, and evaluates the query on documents as Elasticsearch
indexes them (dotted field -> list of values, see ``documents.indexed_fields``).

Modelled (Elastic, "ES|QL reference": commands, functions and operators, "Multivalued fields",
"ES|QL and flattened fields"):
- ``FROM pattern[, ...] [METADATA ...]``, ``WHERE``, ``EVAL name = expr[, ...]``,
  ``STATS name = agg(...)[, ...] BY field[, ...]``, ``SORT``, ``LIMIT``, ``KEEP``; keywords are
  case-insensitive;
- string literals exactly as the grammar has them (elastic/elasticsearch
  x-pack/plugin/esql/src/main/antlr/EsqlBaseLexer.g4 ``STRING``; "ES|QL syntax reference",
  https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-syntax.html: ``"..."`` with the
  escapes ``\\t \\n \\r \\" \\\\`` only and no raw newline, or ``\"\"\"...\"\"\"`` without escapes); anything else is
  a syntax error, as Elasticsearch reports it;
- operators ``+``, ``-``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``IN (...)``, ``IS NULL``, ``IS NOT NULL``,
  ``LIKE`` (``*`` and ``?`` wildcards, a backslash makes the next character literal and a trailing one is
  a backslash, as Lucene's WildcardQuery reads it; whole value, case-sensitive; "ES|QL operators", LIKE:
  https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-functions-operators.html),
  ``RLIKE`` (Lucene regular
  expression, whole value), ``NOT LIKE``/``NOT RLIKE``/``NOT IN``, ``AND``, ``OR``, ``NOT`` (NOT binds
  tightest, then AND, then OR) with three-valued logic: a null operand makes a comparison null and
  ``WHERE`` keeps only rows where the condition is true;
- **multivalued fields**: single-value functions and comparisons on a multivalued field return null
  (Elasticsearch adds a warning), so ``dns.answers.data == "x"`` does NOT mean "any answer";
- functions ``starts_with``, ``ends_with``, ``cidr_match``, ``to_lower``, ``to_upper``, ``length``,
  ``case``, ``date_trunc(interval, @timestamp)`` (epoch-aligned), ``mv_count``;
- aggregates ``count()``/``count(*)`` (rows), ``count(f)`` (values), ``count_distinct(f)``
  (exact here; Elasticsearch documents it as approximate above its precision threshold), ``sum``,
  ``min``, ``max``, ``avg``, ``values``; **``STATS ... BY`` groups null keys together** into a
  null group, and a row with a multivalued key is counted in every value's group;
- type checks: a field the mapping does not have is an error (ES|QL: "Unknown column"); a
  sub-field of a ``flattened`` field is an error (ES|QL reads a flattened field only whole, with
  ``FIELD_EXTRACT`` for its keys); ``cidr_match`` needs an ``ip`` field; string functions and
  ``LIKE``/``RLIKE`` need a keyword (or text) field.

Anything else raises :class:`QuerySyntaxError`; a type error raises :class:`QueryTypeError`.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from r53sigma.targets import querymodel
from r53sigma.targets.querymodel import Cursor, Token

Document = Mapping[str, list]
Row = dict[str, Any]
STRING_TYPES = ("keyword", "text", "match_only_text", "wildcard", "constant_keyword")
INTERVALS = {
    "millisecond": 0.001, "milliseconds": 0.001, "second": 1, "seconds": 1, "minute": 60, "minutes": 60,
    "hour": 3600, "hours": 3600, "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
}


class QuerySyntaxError(querymodel.QuerySyntaxError):
    """The text is not a query of the modelled subset."""


class QueryTypeError(ValueError):
    """Elasticsearch would reject the query for this mapping (unknown field, wrong type)."""


# ------------------------------------------------------------------ tokens

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\r\n]*)
  | (?P<string>\"\"\"[^\r\n]*?\"\"\"\"{0,2}|"(?:[^"\\\r\n]|\\[tnr"\\])*")
  | (?P<badstring>")
  | (?P<interval>\d+\s*(?:milliseconds?|seconds?|minutes?|hours?|days?|weeks?)\b)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_@][A-Za-z0-9_@.\-*]*|`[^`]+`)
  | (?P<op>==|!=|<=|>=|<|>|=|\(|\)|,|\||\*|\+|-|/)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    # EsqlBaseLexer.g4: LINE_COMMENT ``//`` to the end of the line is on the hidden channel.
    return querymodel.tokenize(TOKEN, text, QuerySyntaxError, "ES|QL", skip=("ws", "comment"), reject={"badstring": (
        "string literal outside the ES|QL grammar: only \\t \\n \\r \\\" \\\\ are escapes, and a newline "
        "must be escaped (EsqlBaseLexer.g4, STRING)")})


def _string(literal: str) -> str:
    if literal.startswith('"""'):  # no escapes; up to two quotes before the closing ones belong to the value
        return literal[3:-3]
    return re.sub(r"\\([tnr\"\\])", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), literal[1:-1])


# ------------------------------------------------------------------ expressions


@dataclass
class Node:
    kind: str  # field, literal, interval, call, op, not, and, or, in, isnull, like, rlike, star
    value: Any = None
    args: list["Node"] = field(default_factory=list)


class Parser(Cursor):
    error = QuerySyntaxError
    end_message = "unexpected end of ES|QL expression"

    def is_word(self, *words: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "name" and token.text.lower() in words

    def is_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise QuerySyntaxError(f"expected {op!r}")
        self.take()

    def expression(self) -> Node:
        node = self.conjunction()
        while self.is_word("or"):
            self.take()
            node = Node("or", args=[node, self.conjunction()])
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.is_word("and"):
            self.take()
            node = Node("and", args=[node, self.negation()])
        return node

    def negation(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Node("not", args=[self.negation()])
        return self.predicate()

    def additive(self) -> Node:
        node = self.operand()
        while self.is_op("+", "-"):
            node = Node("arith", self.take().text, [node, self.operand()])
        return node

    def predicate(self) -> Node:
        left = self.additive()
        negate = False
        if self.is_word("not") and self.is_word("like", "rlike", "in", offset=1):
            self.take()
            negate = True
        if self.is_word("like", "rlike"):
            kind = self.take().text.lower()
            pattern = self.take()
            if pattern.kind != "string":
                raise QuerySyntaxError(f"{kind.upper()} needs a string pattern")
            node = Node(kind, _string(pattern.text), [left])
        elif self.is_word("in"):
            self.take()
            self.expect_op("(")
            node = Node("in", args=[left] + self.arguments())
        elif self.is_word("is"):
            self.take()
            if self.is_word("not"):
                self.take()
                negate = not negate
            if not self.is_word("null"):
                raise QuerySyntaxError("expected IS [NOT] NULL")
            self.take()
            node = Node("isnull", args=[left])
        elif self.is_op("==", "!=", "<", "<=", ">", ">="):
            node = Node("op", self.take().text, [left, self.additive()])
        else:
            return left
        return Node("not", args=[node]) if negate else node

    def arguments(self) -> list[Node]:
        args: list[Node] = []
        if self.is_op(")"):
            self.take()
            return args
        while True:
            if self.is_op("*"):
                self.take()
                args.append(Node("star"))
            else:
                args.append(self.expression())
            token = self.take()
            if token.text == ")":
                return args
            if token.text != ",":
                raise QuerySyntaxError("arguments are separated by commas")

    def operand(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return Node("literal", _string(token.text))
        if token.kind == "number":
            return Node("literal", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "interval":
            number, unit = re.match(r"(\d+)\s*(\w+)", token.text).groups()
            return Node("interval", int(number) * INTERVALS[unit.lower()])
        if token.kind == "op" and token.text == "(":
            node = self.expression()
            self.expect_op(")")
            return node
        if token.kind == "op" and token.text == "-" and self.peek() is not None and self.peek().kind == "number":
            return Node("literal", -float(self.take().text))
        if token.kind == "name":
            lowered = token.text.lower()
            if self.is_op("("):
                self.take()
                return Node("call", lowered, self.arguments())
            if lowered in ("true", "false"):
                return Node("literal", lowered == "true")
            if lowered == "null":
                return Node("literal", None)
            return Node("field", token.text.strip("`"))
        raise QuerySyntaxError(f"unexpected {token.text!r}")


# ------------------------------------------------------------------ evaluation

MULTI = object()  # a multivalued field where a single value is expected: the result is null


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        if not value:
            return None
        return value[0] if len(value) == 1 else MULTI
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _compare(op: str, a: Any, b: Any) -> bool | None:
    a, b = _scalar(a), _scalar(b)
    if a is None or b is None or a is MULTI or b is MULTI:
        return None
    if isinstance(a, ipaddress._BaseAddress) or isinstance(b, ipaddress._BaseAddress):
        try:
            a, b = ipaddress.ip_address(str(a)), ipaddress.ip_address(str(b))
        except ValueError:
            return None
    elif _number(a) is not None and _number(b) is not None:
        a, b = _number(a), _number(b)
    else:
        a, b = str(a), str(b)
    if type(a) is not type(b) and not (isinstance(a, ipaddress._BaseAddress) and isinstance(b, ipaddress._BaseAddress)):
        return None
    try:
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:  # IPv4 against IPv6
        return op == "!="


def _like_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def lucene_regex(pattern: str) -> re.Pattern:
    """A Lucene regular expression (whole value) as a Python one (Elasticsearch, "Regular expression
    syntax", https://www.elastic.co/guide/en/elasticsearch/reference/current/regexp-syntax.html): ``\\`` escapes any character; ``.`` matches any character; ``^`` and ``$`` are plain
    characters except ``^`` first in a class (negation); there is no ``\\d``/``\\w``/``\\s``, no anchors
    and no lazy quantifiers. Lucene's optional operators (``@ & ~ # < >``, ``"..."``) are not modelled."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise QuerySyntaxError(f"regular expression {pattern!r} ends with a lone backslash")
            if pattern[i + 1].isascii() and pattern[i + 1].isalnum():  # \d, \w, \s ... are classes since Lucene 8.6
                raise QuerySyntaxError(f"Lucene regex shorthand \\{pattern[i + 1]} in {pattern!r} is not modelled")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append(ch)
            elif ch == "^" and out[-1] == "[":
                out.append("^")
            elif ch in "[&~\\":
                out.append("\\" + ch)
            else:
                out.append(ch if ch == "-" else re.escape(ch))
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch in "^$":
            out.append(re.escape(ch))
        elif ch in "@&~#<>\"":
            raise QuerySyntaxError(f"Lucene regex operator {ch!r} in {pattern!r} is not modelled")
        else:
            out.append(ch)
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _time(value: Any) -> float | None:
    value = _scalar(value)
    if value is None or value is MULTI:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _string_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        values = [_scalar(a) for a in args]
        if any(v is None or v is MULTI for v in values):
            return None
        return fn(*(str(v) for v in values))
    return wrapped


def _cidr_match(address: Any, *networks: Any) -> bool | None:
    address = _scalar(address)
    if address is None or address is MULTI:
        return None
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return None
    return any(ip.version == n.version and ip in n for n in (ipaddress.ip_network(str(_scalar(x)), strict=False) for x in networks))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "starts_with": _string_fn(lambda s, p: s.startswith(p)),
    "ends_with": _string_fn(lambda s, p: s.endswith(p)),
    "to_lower": _string_fn(str.lower),
    "to_upper": _string_fn(str.upper),
    "length": _string_fn(len),
    "cidr_match": _cidr_match,
    # ES|QL "MV_APPEND(field1, field2)": the values of both, as one multivalued value.
    "mv_append": lambda a, b: None if a is None or b is None else (a if isinstance(a, list) else [a]) + (b if isinstance(b, list) else [b]),
    "mv_count": lambda v: None if v is None or v == [] else (len(v) if isinstance(v, list) else 1),
}
STRING_ARGUMENT = {"starts_with", "ends_with", "to_lower", "to_upper", "length"}
AGGREGATES = {"count", "count_distinct", "sum", "min", "max", "avg", "values"}


def evaluate(node: Node, row: Row) -> Any:
    kind = node.kind
    if kind == "field":
        return row.get(node.value)
    if kind in ("literal", "interval"):
        return node.value
    if kind == "arith":  # null if either side is null (or not a number)
        a, b = _number(_scalar(evaluate(node.args[0], row))), _number(_scalar(evaluate(node.args[1], row)))
        if a is None and node.args[1].kind == "interval":  # date +/- time_duration ("ES|QL operators", Add/Subtract)
            a = _time(_scalar(evaluate(node.args[0], row)))
        if a is None or b is None:
            return None
        result = a + b if node.value == "+" else a - b
        return int(result) if result.is_integer() else result
    if kind == "op":
        return _compare(node.value, evaluate(node.args[0], row), evaluate(node.args[1], row))
    if kind == "not":
        value = evaluate(node.args[0], row)
        return None if value is None else not value
    if kind == "and":
        a, b = evaluate(node.args[0], row), evaluate(node.args[1], row)
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if kind == "or":
        a, b = evaluate(node.args[0], row), evaluate(node.args[1], row)
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if kind == "isnull":
        value = evaluate(node.args[0], row)
        return value is None or value == []
    if kind == "in":
        results = [_compare("==", evaluate(node.args[0], row), evaluate(o, row)) for o in node.args[1:]]
        if True in results:
            return True
        return None if None in results else False
    if kind in ("like", "rlike"):
        value = _scalar(evaluate(node.args[0], row))
        if value is None or value is MULTI:
            return None
        regex = _like_regex(node.value) if kind == "like" else lucene_regex(node.value)
        return regex.fullmatch(str(value)) is not None
    if kind == "call":
        if node.value == "case":
            for condition, value in zip(node.args[::2], node.args[1::2]):
                if evaluate(condition, row) is True:
                    return evaluate(value, row)
            return evaluate(node.args[-1], row) if len(node.args) % 2 else None
        if node.value == "date_trunc":
            span, stamp = evaluate(node.args[0], row), _time(evaluate(node.args[1], row))
            return None if stamp is None else math.floor(stamp / span) * span
        if node.value in FUNCTIONS:
            return FUNCTIONS[node.value](*(evaluate(a, row) for a in node.args))
        raise QuerySyntaxError(f"function {node.value}() is not modelled")
    raise QuerySyntaxError(f"cannot evaluate {kind}")


def _fields(node: Node) -> Iterable[Node]:
    if node.kind == "field":
        yield node
    for arg in node.args:
        yield from _fields(arg)


# ------------------------------------------------------------------ commands


@dataclass
class Query:
    text: str
    indices: list[str] = field(default_factory=list)
    steps: list[tuple[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Query":
        tokens = tokenize(text)
        commands: list[list[Token]] = [[]]
        for token in tokens:
            if token.kind == "op" and token.text == "|":
                commands.append([])
            else:
                commands[-1].append(token)
        query = cls(text)
        for number, command in enumerate(commands):
            if not command:
                raise QuerySyntaxError("empty command")
            name = command[0].text.lower()
            p = Parser(command[1:])
            if number == 0:
                if name != "from":
                    raise QuerySyntaxError("an ES|QL query starts with FROM")
                query.indices = cls._from(p)
            elif name == "where":
                query.steps.append(("where", p.expression()))
            elif name == "eval":
                query.steps.append(("eval", cls._assignments(p, aggregates=False)))
            elif name == "stats":
                query.steps.append(("stats", cls._stats(p)))
            elif name == "sort":
                query.steps.append(("sort", cls._sort(p)))
            elif name == "limit":
                query.steps.append(("limit", int(p.take().text)))
            elif name == "keep":
                names = [p.take().text]
                while p.is_op(","):
                    p.take()
                    names.append(p.take().text)
                query.steps.append(("keep", names))
            else:
                raise QuerySyntaxError(f"command {name!r} is not modelled")
            if not p.done():
                raise QuerySyntaxError(f"unexpected {p.peek().text!r} in {name}")
        if number == 0 and not query.indices:
            raise QuerySyntaxError("FROM needs an index pattern")
        return query

    @staticmethod
    def _from(p: Parser) -> list[str]:
        indices = [p.take().text]
        while p.is_op(","):
            p.take()
            indices.append(p.take().text)
        if p.is_word("metadata"):
            p.take()
            p.take()
            while p.is_op(","):
                p.take()
                p.take()
        return indices

    @staticmethod
    def _assignments(p: Parser, aggregates: bool) -> list[tuple[str, Node]]:
        out = []
        while True:
            node = p.expression() if not aggregates else p.operand()
            name = None
            if p.is_op("="):
                if node.kind != "field":
                    raise QuerySyntaxError("assignment to a non-name")
                p.take()
                name, node = node.value, (p.expression() if not aggregates else p.operand())
            if aggregates and (node.kind != "call" or node.value not in AGGREGATES):
                raise QuerySyntaxError("STATS needs aggregate functions")
            out.append((name or f"{node.value}(...)", node))
            if not p.is_op(","):
                return out
            p.take()

    @classmethod
    def _stats(cls, p: Parser) -> tuple[list, list[str]]:
        aggregates = cls._assignments(p, aggregates=True)
        groups: list[str] = []
        if p.is_word("by"):
            p.take()
            groups.append(p.take().text)
            while p.is_op(","):
                p.take()
                groups.append(p.take().text)
        return aggregates, groups

    @staticmethod
    def _sort(p: Parser) -> list[tuple[str, bool]]:
        keys = []
        while True:
            name = p.take().text
            descending = False
            if p.is_word("asc", "desc"):
                descending = p.take().text.lower() == "desc"
            if p.is_word("nulls"):
                p.take()
                p.take()
            keys.append((name, descending))
            if not p.is_op(","):
                return keys
            p.take()

    # -------------------------------------------------------------- checking

    def check(self, mapping: Mapping[str, str]) -> None:
        """Raise QueryTypeError where Elasticsearch would reject the query on an index with ``mapping``
        (dotted field name -> type; ``flattened`` for a flattened field)."""
        known = dict(mapping)
        for step, arg in self.steps:
            nodes: list[tuple[str | None, Node]] = []
            if step == "where":
                nodes = [(None, arg)]
            elif step == "eval":
                nodes = arg
            elif step == "stats":
                nodes = list(arg[0])
                for group in arg[1]:
                    self._check_field(group, known)
            for _, node in nodes:
                self._check_node(node, known)
            if step == "eval":
                known.update({name: "computed" for name, _ in arg})
            elif step == "stats":
                known = {name: "computed" for name, _ in arg[0]}
                known.update({g: mapping.get(g, "computed") for g in arg[1]})

    def _check_node(self, node: Node, known: Mapping[str, str]) -> None:
        for f in _fields(node):
            self._check_field(f.value, known)
        kind_of = lambda n: known.get(n.value) if n.kind == "field" else None  # noqa: E731
        if node.kind == "call" and node.value == "cidr_match" and node.args and kind_of(node.args[0]) not in ("ip", "computed"):
            raise QueryTypeError(f"cidr_match needs an ip field, {node.args[0].value} is {kind_of(node.args[0])}")
        if (node.kind in ("like", "rlike") or node.kind == "call" and node.value in STRING_ARGUMENT) and node.args:
            kind = kind_of(node.args[0])
            if kind is not None and kind not in STRING_TYPES + ("computed",):
                raise QueryTypeError(f"{node.value if node.kind == 'call' else node.kind.upper()} needs a string field, {node.args[0].value} is {kind}")
        for arg in node.args:
            if arg.kind != "field":
                self._check_node(arg, known)

    @staticmethod
    def _check_field(name: str, known: Mapping[str, str]) -> None:
        if name in known:
            return
        for other, kind in known.items():
            if kind == "flattened" and name.startswith(other + "."):
                raise QueryTypeError(
                    f"{name} is a key inside the flattened field {other}: ES|QL reads a flattened field only "
                    f"whole (FIELD_EXTRACT({other}, \"{name[len(other) + 1:]}\") is needed)")
        raise QueryTypeError(f"Unknown column [{name}]: the index mapping has no such field")

    # -------------------------------------------------------------- running

    def run(self, documents: Iterable[Document]) -> list[Row]:
        rows: list[Row] = []
        for document in documents:
            row: Row = {}
            for name, values in document.items():
                values = list(values) if isinstance(values, (list, tuple)) else [values]
                row[name] = values[0] if len(values) == 1 else values
            rows.append(row)
        for step, arg in self.steps:
            if step == "where":
                rows = [r for r in rows if evaluate(arg, r) is True]
            elif step == "eval":
                new_rows = []
                for r in rows:
                    r = dict(r)
                    for name, node in arg:
                        r[name] = evaluate(node, r)
                    new_rows.append(r)
                rows = new_rows
            elif step == "stats":
                rows = self._aggregate(rows, *arg)
            elif step == "sort":
                for name, descending in reversed(arg):
                    present = [r for r in rows if _scalar(r.get(name)) not in (None, MULTI)]
                    missing = [r for r in rows if _scalar(r.get(name)) in (None, MULTI)]
                    present.sort(key=lambda r: r[name], reverse=descending)
                    rows = present + missing
            elif step == "limit":
                rows = rows[:arg]
            elif step == "keep":
                rows = [{k: r.get(k) for k in arg} for r in rows]
        return rows

    @staticmethod
    def _aggregate(rows: list[Row], aggregates: list, groups: list[str]) -> list[Row]:
        buckets: dict[tuple, list[Row]] = {}
        for row in rows:
            keys: list[tuple] = [()]
            for name in groups:
                value = row.get(name)
                values = value if isinstance(value, list) and value else [None if value == [] else value]
                keys = [k + (v,) for k in keys for v in dict.fromkeys(values)]
            for key in keys:
                buckets.setdefault(key, []).append(row)
        out = []
        for key, members in buckets.items():
            result: Row = dict(zip(groups, key))
            for name, call in aggregates:
                arg = call.args[0] if call.args else None
                values: list = []
                if arg is not None and arg.kind != "star":
                    for member in members:
                        value = evaluate(arg, member)
                        values.extend(value if isinstance(value, list) else [] if value is None else [value])
                fn = call.value
                if fn == "count":
                    result[name] = len(members) if arg is None or arg.kind == "star" else len(values)
                elif fn == "count_distinct":
                    result[name] = len({str(v) for v in values})
                elif fn == "values":
                    result[name] = sorted({str(v) for v in values})
                else:
                    numbers = [n for n in map(_number, values) if n is not None]
                    result[name] = ({"sum": sum, "min": min, "max": max, "avg": lambda x: sum(x) / len(x)}[fn](numbers)
                                    if numbers else None)
            out.append(result)
        return out


def parse(text: str, mapping: Mapping[str, str] | None = None) -> Query:
    """Parse ``text``; with ``mapping`` (field -> type), also type-check it."""
    query = Query.parse(text)
    if mapping is not None:
        query.check(mapping)
    return query


def run(text: str, documents: Iterable[Document], mapping: Mapping[str, str] | None = None) -> list[Row]:
    return parse(text, mapping).run(documents)
