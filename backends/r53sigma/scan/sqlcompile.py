"""Sigma rules as SQL boolean expressions over a flat table of catalogue fields (DuckDB and Trino/Athena).

The meaning is the one specified in ``SEMANTICS.md`` beside this module (the reference engine's):
case-insensitive strings are ``lower()`` on both sides, wildcards ``LIKE`` patterns against the whole
value, and a field under a JSON array a list column that matches when ANY element matches.

A dialect says how to write what the two SQLs write differently (lambdas over lists, regex functions,
finite-number test, CIDR); a ``ColumnOf`` callable says where a catalogue field lives in the table:
a scalar expression holding the value as text (``NULL`` when absent), or a list expression and how to
get one element's text. ``|re`` is RE2 with the translation of :func:`r53sigma.scan.patterns.python_regex_to_re2`,
as the reference engine evaluates it; a pattern RE2 cannot compile (look-around, back-references) is
left to the dialect's fallback (DuckDB: the reference engine decides the row).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from r53sigma import catalogue
from r53sigma.scan import nameindex, rowcolumns
from r53sigma.scan.patterns import IPV4, IPV6, OCTET as _OCTET, python_regex_to_re2, re2_part, search_core
from r53sigma.scan.results import EngineError, describe
from r53sigma.scan.sqltext import quote, strip_dot  # shared with the scan's read SQL (no pySigma there)
from r53sigma.scan.values import NUMBER_SPACE, PLAIN_NUMBER

_COMPARE = {CompareOperators.LT: "<", CompareOperators.LTE: "<=", CompareOperators.GT: ">",
            CompareOperators.GTE: ">=", CompareOperators.NEQ: "<>"}
UNKNOWN = "NULL::BOOLEAN"  # an atom SQL cannot decide; the DuckDB engine asks the reference engine


def ipv6_hex(value: str) -> str:
    """The 32 hex digits of an IPv6 address written in hex groups (``::`` expanded), for range checks (DuckDB)."""
    def groups(part: str) -> str:
        return f"(CASE WHEN {part} = '' THEN []::VARCHAR[] ELSE string_split({part}, ':') END)"

    left, right = groups(f"split_part({value}, '::', 1)"), groups(f"split_part({value}, '::', 2)")
    expanded = (
        f"(CASE WHEN contains({value}, '::') THEN {left} || list_transform(range(8 - len({left}) - len({right})), lambda i: '0') || {right}"
        f" ELSE string_split({value}, ':') END)"
    )
    return f"lower(array_to_string(list_transform({expanded}, lambda g: lpad(g, 4, '0')), ''))"


@dataclass(frozen=True)
class Column:
    """Where a field's values are: a scalar text expression, or a list and one element's text."""

    expr: str
    element: Callable[[str], str] | None = None  # list column: element variable -> its text
    lowered: str | None = None  # scalar column: an expression holding lower(expr), computed once a row

    @property
    def is_list(self) -> bool:
        return self.element is not None


ColumnOf = Callable[[catalogue.Field], Column]


class Dialect:
    name = "duckdb"
    finite = "isfinite"

    def any(self, column: Column, test: Callable[[str], str], var: str = "v", unknown: bool = False) -> str:
        results = f"list_transform({column.expr}, lambda {var}: {test(column.element(var))})"
        if not unknown:
            return f"coalesce(list_bool_or({results}), false)"
        # three-valued: true if an element matches, unknown if an element's test is unknown, else false
        return self.let_list(results, "r", "CASE WHEN list_bool_or(r) THEN true WHEN list_count(r) < len(r) THEN NULL ELSE false END")

    def conjunction(self, parts: list[tuple[str, bool]]) -> str:
        """``AND`` of (SQL, may be NULL) parts, the later parts evaluated only in rows where the earlier
        are true: in a projection DuckDB computes both sides of an ``AND`` in every row, a ``CASE`` its
        branch only in the rows that take it. ``CASE WHEN a THEN b ELSE false END`` is ``a AND b`` when
        ``a`` is never NULL, so the parts that are never NULL come first (``AND`` is commutative in
        three-valued logic too) and the others stay a plain ``AND``, last."""
        tail = " AND ".join(sql for sql, null in parts if null) or None
        for sql in reversed([sql for sql, null in parts if not null]):
            tail = sql if tail is None else f"CASE WHEN {sql} THEN {tail} ELSE false END"
        return f"({tail})"

    def let_list(self, expr: str, name: str, body: str) -> str:
        return f"(list_transform([{expr}], lambda {name}: {body}))[1]"

    def count(self, column: Column) -> str:
        return f"coalesce(len({column.expr}), 0)"  # a list absent from the line (NULL) has no values

    def regex(self, value: str, pattern: str) -> str:
        return f"regexp_matches({value}, {quote(pattern)})"

    def search(self, value: str, pattern: str, shortest: int) -> str:
        """A ``|re`` search (RE2 ``pattern``, no match shorter than ``shortest`` characters): a literal
        (cased) as ``contains``, else the regex, not run on a value too short to hold a match (its
        length in bytes, at least its length in characters)."""
        literal = search_literal(pattern)
        if literal is not None:
            return f"contains({value}, {quote(literal)})"
        if shortest > 1:
            return f"(CASE WHEN strlen({value}) < {shortest} THEN false ELSE {self.regex(value, pattern)} END)"
        return self.regex(value, pattern)

    def like_any(self, subject: str, patterns: list[list[Any]]) -> list[str]:
        """Whole-value wildcard patterns (Sigma parts): one RE2 regex for many (one pass over the value,
        where each LIKE is one pass of its own), LIKE for one or two."""
        if len(patterns) <= 2:
            return [_like(subject, like_pattern(p)) for p in patterns]
        alternatives = "|".join("".join(re2_part(part) for part in p) for p in patterns)
        return [f"regexp_full_match({subject}, {quote('(?s)(?:' + alternatives + ')')})"]

    def regex_fallback(self, value: str, pattern: str, flags: int) -> str:
        raise EngineError(f"regular expression {pattern!r} is not supported by {self.name}")

    def cidr(self, value: str, networks: list) -> str:
        """IPv4 as integer ranges over a strict dotted quad, IPv6 as ranges of its 32 hex digits; other forms ``cidr_other``."""
        v4 = [n for n in networks if n.version == 4]
        terms = []
        if v4:  # the dotted quads of the networks as one regex: no per-value arithmetic
            terms.append(f"regexp_full_match({value}, {quote('|'.join(ipv4_network_regex(n) for n in v4))})")
        v6 = [n for n in networks if n.version == 6]
        if v6:
            terms.append(self._cidr6(value, v6, strict=False))
        other = self.cidr_other(value, networks)
        if other:
            terms.append(other)
        return "(" + " OR ".join(terms) + ")"

    def _cidr6(self, value: str, v6: list, strict: bool) -> str:
        """IPv6 networks over a value (``strict``: already known to be an IPv6 address in hex groups)."""
        digits = ipv6_hex(value)
        ranges = " OR ".join(
            f"h BETWEEN '{int(n.network_address):032x}' AND '{int(n.broadcast_address):032x}'" for n in v6
        )
        # the first group of 16 bits, as written, must be in a network's range before the address is
        # expanded (expanding "::" is list work per value; most addresses fail this first test)
        first = f"lpad(lower(split_part({value}, ':', 1)), 4, '0')"
        heads = " OR ".join(
            f"{first} BETWEEN '{int(n.network_address) >> 112:04x}' AND '{int(n.broadcast_address) >> 112:04x}'" for n in v6
        )
        shape = "" if strict else f"{self.regex(value, IPV6)} AND "
        return f"(CASE WHEN {shape}({heads}) THEN {self.let(digits, 'h', ranges)} ELSE false END)"

    def cidr_list(self, field: str, networks: list, elementwise: str) -> str | None:
        """``|cidr`` over a list field from its addresses read once a row (``r53sigma.scan.rowcolumns``):
        integer ranges over the dotted quads; for IPv6, integer ranges over the first groups of the
        IPv6 texts (most rows end there), and the IPv6 test over the texts only in a row where one of
        those is in a network's range; ``elementwise`` (the per-element test, with its unknown branch)
        only for a row holding another form."""
        quads, heads, others = rowcolumns.address_columns(field)
        fast = []
        v4 = [n for n in networks if n.version == 4]
        if v4:
            ranges = " OR ".join(f"x BETWEEN {int(n.network_address)} AND {int(n.broadcast_address)}" for n in v4)
            fast.append(f"coalesce(list_bool_or(list_transform({quads}, lambda x: {ranges})), false)")
        v6 = [n for n in networks if n.version == 6]
        if v6:
            first = " OR ".join(f"w BETWEEN {int(n.network_address) >> 112} AND {int(n.broadcast_address) >> 112}" for n in v6)
            sixes = f"list_filter(\"f:{field}\", lambda v: contains(v, ':') AND {self.regex('v', IPV6)})"  # as rowcolumns reads them
            exact = f"coalesce(list_bool_or(list_transform({sixes}, lambda s: {self._cidr6('s', v6, strict=True)})), false)"
            fast.append(f"(CASE WHEN coalesce(list_bool_or(list_transform({heads}, lambda w: {first})), false) THEN {exact} ELSE false END)")
        return f"(CASE WHEN {others} THEN {elementwise} ELSE {' OR '.join(fast) or 'false'} END)"

    def let(self, expr: str, name: str, body: str) -> str:
        """``body`` with ``name`` bound to ``expr`` evaluated once (a one-element list and a lambda)."""
        return f"list_bool_or(list_transform([{expr}], lambda {name}: {body}))"

    def cidr_other(self, value: str, networks: list) -> str | None:
        """Values that are not a plain dotted quad (IPv6, padded text): exact where the dialect can be."""
        return None

    def keyword(self, rule: SigmaRule, value: Any) -> str:
        raise EngineError(f"{describe(rule)}: keywords (values without a field) are not supported by {self.name}")

    def check_regex(self, pattern: str) -> bool:
        return True

    def name_index(self) -> "nameindex.NameIndex | None":
        """Name lists as set lookups (DuckDB); None: IN lists and patterns."""
        return None


class TrinoDialect(Dialect):
    name = "athena"
    finite = "is_finite"

    def like_any(self, subject: str, patterns: list[list[Any]]) -> list[str]:
        return [_like(subject, like_pattern(p)) for p in patterns]

    def any(self, column: Column, test: Callable[[str], str], var: str = "v", unknown: bool = False) -> str:
        return f"coalesce(any_match({column.expr}, {var} -> {test(column.element(var))}), false)"

    def count(self, column: Column) -> str:
        return f"coalesce(cardinality(filter({column.expr}, v -> {column.element('v')} IS NOT NULL)), 0)"

    def regex(self, value: str, pattern: str) -> str:
        return f"regexp_like({value}, {quote(pattern)})"

    def search(self, value: str, pattern: str, shortest: int) -> str:
        return self.regex(value, pattern)

    def cidr(self, value: str, networks: list) -> str:
        return "(" + " OR ".join(f"coalesce(contains({quote(str(n))}, TRY_CAST({value} AS IPADDRESS)), false)" for n in networks) + ")"

    def conjunction(self, parts: list[tuple[str, bool]]) -> str:
        return "(" + " AND ".join(sql for sql, _ in parts) + ")"

    def cidr_list(self, field: str, networks: list, elementwise: str) -> str | None:
        return None


def _like(subject: str, pattern: str) -> str:
    return f"{subject} LIKE {quote(pattern)}" + (" ESCAPE '\\'" if "\\" in pattern else "")


def ipv4_network_regex(network: Any) -> str:
    """The dotted quads inside an IPv4 network, as a regex over strict dotted decimal (no leading zeros)."""
    octets = network.network_address.packed
    fixed, rest = divmod(network.prefixlen, 8)
    parts = [str(o) for o in octets[:fixed]]
    if fixed < 4:
        if rest:
            low = octets[fixed]
            parts.append("(?:" + "|".join(str(v) for v in range(low, low + (1 << (8 - rest)))) + ")")
        else:
            parts.append(_OCTET)
        parts.extend([_OCTET] * (4 - len(parts)))
    return "(?:" + "\\.".join(parts) + ")"


def shortest_match(pattern: str, flags: int) -> int:
    """The fewest characters a match of a Python pattern holds, where Python reads the pattern as RE2
    does (0 when it cannot tell: a pattern Python rejects, or a POSIX class ``[[:alpha:]]``, which
    Python reads as a class and a ``]``)."""
    if "[:" in pattern:
        return 0
    try:
        return max(0, int(re._parser.parse(pattern, flags).getwidth()[0]))
    except Exception:  # noqa: BLE001 - a pattern Python's parser rejects: no bound
        return 0


_LITERAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=/:@#%&',;<>!~\" ")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def search_literal(pattern: str) -> str | None:
    """The text a search for an RE2 pattern looks for, when the pattern is one cased literal (after an
    inline-flag group without ``i``, and around optional ``.*`` at either end, which any text has): a
    search for it is ``contains``. None for anything else."""
    if pattern.startswith("(?"):
        end = pattern.find(")")
        if end < 0 or any(c not in "ims-" for c in pattern[2:end]) or "i" in pattern[2:end].split("-")[0]:
            return None
        pattern = pattern[end + 1:]
    if pattern.startswith(".*"):
        pattern = pattern[2:]
    if pattern.endswith(".*") and (len(pattern) - len(pattern[:-2].rstrip("\\")) - 2) % 2 == 0:
        pattern = pattern[:-2]
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in _ASCII_PUNCTUATION:
            out.append(pattern[i + 1])
            i += 2
        elif char in _LITERAL_CHARS:
            out.append(char)
            i += 1
        else:
            return None
    return "".join(out) or None


def like_pattern(parts: list[Any]) -> str:
    out = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append("%")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append("_")
        else:
            out.append(part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return "".join(out)


class RuleCompiler:
    """One rule's condition as a SQL boolean (several conditions are or-ed)."""

    def __init__(self, rule: SigmaRule, column_of: ColumnOf, dialect: Dialect):
        self.rule, self.column_of, self.dialect = rule, column_of, dialect
        self.lowered: dict[str, str] = {}  # column expression -> its precomputed lower() column
        ls = rule.logsource
        found = catalogue.for_logsource(ls.category, ls.product, ls.service)
        if found is None:
            raise EngineError(f"{describe(rule)}: log source is not a Route 53 log source known to r53sigma")
        self.log_source, self.generic = found
        self.unknowns = 0  # atoms SQL cannot decide (NULL): the engine decides those rows with the reference engine
        self.nullable = 0  # other atoms that may be NULL (the length of a list column that may be NULL)

    def compile(self) -> str:
        conditions = [self.node(c.parsed) for c in self.rule.detection.parsed_condition]
        return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"

    def field(self, name: str) -> catalogue.Field:
        found = self.log_source.field_for(name, generic_dns=self.generic)
        if found is None:
            raise EngineError(
                f"{describe(self.rule)}: field {name!r} is not a field of {self.log_source.title}; known fields: "
                + ", ".join(sorted(self.log_source.rule_field_names(generic_dns=self.generic)))
            )
        return found

    def node(self, node: Any) -> str:
        if isinstance(node, ConditionAND):
            parts = []
            for arg in node.args:
                before = self.unknowns + self.nullable
                sql = self.node(arg)
                parts.append((sql, self.unknowns + self.nullable > before))
            return self.dialect.conjunction(parts)
        if isinstance(node, ConditionOR):
            return "(" + " OR ".join(self._or_args(node.args)) + ")"
        if isinstance(node, ConditionNOT):
            return f"(NOT {self.node(node.args[0])})"
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            self.unknowns += 1
            return self.dialect.keyword(self.rule, node.value)
        if node is None:
            return "false"
        raise EngineError(f"{describe(self.rule)}: unsupported condition element {type(node).__name__}")

    def _or_args(self, args: list[Any]) -> list[str]:
        """Or-ed values of one field become one test: plain strings one IN list or regex, networks one
        ``|cidr`` test, and for a list field one pass over its elements (any element matching one value
        is one element matching any value, in three-valued logic too)."""
        by_field: dict[str, list[Any]] = {}
        others = []
        for arg in args:
            if isinstance(arg, ConditionFieldEqualsValueExpression) and not isinstance(
                arg.value, (SigmaNull, SigmaExists, SigmaFieldReference)
            ):
                by_field.setdefault(arg.field, []).append(arg.value)
            else:
                others.append(arg)
        merged = [self._test(name, self._values(values, name)) for name, values in by_field.items()]
        return merged + [self.node(a) for a in others]

    def _values(self, values: list[Any], name: str) -> Callable[[str], str]:
        """One element test for or-ed values of one field."""
        strings: list[SigmaString] = []
        networks: list = []
        rest: list[Any] = []
        for value in values:
            plain = _plain_strings(value)
            if plain is not None:
                strings.extend(plain)
            elif isinstance(value, SigmaCIDRExpression):
                networks.append(value.network)
            else:
                rest.append(value)
        tests = ([self._strings(strings, name)] if strings else []) + ([self._cidr(networks)] if networks else [])
        tests += [self.value(v, name) for v in rest]
        if len(tests) == 1:
            return tests[0]
        return lambda x: "(" + " OR ".join(t(x) for t in tests) + ")"

    def _test(self, name: str, test: Callable[[str], str]) -> str:
        field = self.field(name)
        column = self.column_of(field)
        if column.lowered:
            self.lowered[column.expr] = column.lowered
        body = test(column.element("v") if column.is_list else column.expr)
        if column.is_list:
            elementwise = self.dialect.any(column, test, unknown=UNKNOWN in body)
            networks = getattr(test, "networks", None)
            if networks and column.expr == f'"f:{field.name}"':
                return self.dialect.cidr_list(field.name, networks, elementwise) or elementwise
            return elementwise
        return f"(CASE WHEN {column.expr} IS NULL THEN false ELSE {body} END)"

    def field_value(self, name: str, value: Any) -> str:
        column = self.column_of(self.field(name))
        if column.is_list and isinstance(value, (SigmaNull, SigmaExists)):
            self.nullable += 1
        if isinstance(value, SigmaNull):
            return f"({self.dialect.count(column)} = 0)" if column.is_list else f"({column.expr} IS NULL)"
        if isinstance(value, SigmaExists):
            present = f"({self.dialect.count(column)} > 0)" if column.is_list else f"({column.expr} IS NOT NULL)"
            return present if value.exists else f"(NOT {present})"
        if isinstance(value, SigmaFieldReference):
            return self._field_reference(column, self.column_of(self.field(value.field)), value)
        return self._test(name, self.value(value, name))

    def value(self, value: Any, name: str) -> Callable[[str], str]:
        strings = _plain_strings(value)
        if strings is not None:
            return self._strings(strings, name)
        if isinstance(value, SigmaExpansion):
            tests = [self.value(v, name) for v in value.values]
            return lambda x: "(" + " OR ".join(t(x) for t in tests) + ")"
        if isinstance(value, SigmaBool):
            return lambda x: f"({x} = {quote('true' if value.boolean else 'false')})"
        if isinstance(value, SigmaNumber):
            return lambda x: self._number_test(x, "=", value.number)
        if isinstance(value, SigmaCompareExpression):
            return lambda x: self._number_test(x, _COMPARE[value.op], value.number.number)
        if isinstance(value, SigmaRegularExpression):
            return self._regex(str(value.regexp), set(value.flags))
        if isinstance(value, SigmaCIDRExpression):
            return self._cidr([value.network])
        raise EngineError(f"{describe(self.rule)}: field {name!r}: unsupported value type {type(value).__name__}")

    def _number_test(self, x: str, op: str, number: Any) -> str:
        """A number as r53sigma.scan.values.as_number reads one (plain ASCII notation, white space around it
        ignored, a finite double), compared as a double."""
        trimmed = f"trim({x}, {quote(NUMBER_SPACE)})"
        cast = f"TRY_CAST({trimmed} AS DOUBLE)"
        plain = self.dialect.regex(trimmed, f"^({PLAIN_NUMBER})$")
        return f"coalesce({plain} AND {cast} {op} {float(number)!r} AND {self.dialect.finite}({cast}), false)"

    def _strings(self, values: list[SigmaString], name: str) -> Callable[[str], str]:
        exact: dict[bool, list[str]] = {True: [], False: []}
        patterns: dict[bool, list[list[Any]]] = {True: [], False: []}
        for value in values:
            cased = isinstance(value, SigmaCasedString)
            parts = list(value.s)
            if any(isinstance(p, Placeholder) for p in parts):
                raise EngineError(f"{describe(self.rule)}: field {name!r}: placeholder values (|expand) need a pipeline")
            fold = (lambda s: s) if cased else str.lower
            parts = [fold(p) if isinstance(p, str) else p for p in parts]
            if all(isinstance(p, str) for p in parts):
                exact[cased].append("".join(parts))
            else:
                patterns[cased].append(parts)

        def test(x: str) -> str:
            terms = []
            names, rest = dict(exact), dict(patterns)
            indexed = self._name_index(self.lowered.get(x), exact[False], patterns[False])
            if indexed is not None:
                terms.append(indexed[0])
                names[False], rest[False] = indexed[1], indexed[2]
            for cased in (False, True):
                subject = x if cased else self.lowered.get(x, f"lower({x})")
                if len(names[cased]) == 1:
                    terms.append(f"{subject} = {quote(names[cased][0])}")
                elif names[cased]:
                    terms.append(f"{subject} IN ({', '.join(quote(v) for v in dict.fromkeys(names[cased]))})")
                if rest[cased]:
                    terms.extend(self.dialect.like_any(subject, rest[cased]))
            return "(" + " OR ".join(terms) + ")" if len(terms) > 1 else terms[0]

        return test

    def _name_index(self, lowered: str | None, exact: list[str], patterns: list[list[Any]]):
        """Names and ``*.domain`` suffixes of a lowered scalar field as one set lookup of the name and its
        parent domains (:mod:`r53sigma.scan.nameindex`): the SQL, and the values it leaves to the other tests."""
        index = self.dialect.name_index()
        field = nameindex.field_of(lowered) if lowered and index is not None else None
        if field is None:
            return None
        suffixes = [s for s in map(nameindex.label_suffix, patterns) if s is not None]
        found = index.test(field, exact, suffixes)
        if found is None:
            return None
        sql, unknown = found
        self.unknowns += unknown
        return sql, [], [p for p in patterns if nameindex.label_suffix(p) is None]

    def _regex(self, pattern: str, flags: set) -> Callable[[str], str]:
        translated = search_core(python_regex_to_re2(pattern, flags))
        python_flags = 0
        for flag, bit in ((SigmaRegularExpressionFlag.IGNORECASE, re.IGNORECASE),
                          (SigmaRegularExpressionFlag.MULTILINE, re.MULTILINE),
                          (SigmaRegularExpressionFlag.DOTALL, re.DOTALL)):
            if flag in flags:
                python_flags |= bit
        if self.dialect.check_regex(translated):
            shortest = shortest_match(pattern, python_flags)
            return lambda x: self.dialect.search(x, translated, shortest)
        self.unknowns += 1
        return lambda x: self.dialect.regex_fallback(x, pattern, python_flags)

    def _cidr(self, networks: list) -> Callable[[str], str]:
        if self.dialect.cidr_other("x", networks) is not None:
            self.unknowns += 1

        def test(x: str) -> str:
            return self.dialect.cidr(x, networks)

        test.networks = networks  # a list field's |cidr tests read its addresses once a row (cidr_list)
        return test

    def _field_reference(self, mine: Column, theirs: Column, ref: SigmaFieldReference) -> str:
        def compare(a: str, b: str) -> str:
            if ref.starts_with:
                return f"starts_with(lower({a}), lower({b}))"
            if ref.ends_with:
                return f"ends_with(lower({a}), lower({b}))"
            return f"(lower({a}) = lower({b}))"

        def over(column: Column, test: Callable[[str], str], var: str) -> str:
            return self.dialect.any(column, test, var) if column.is_list else f"coalesce({test(column.expr)}, false)"

        return over(mine, lambda a: over(theirs, lambda b: compare(a, b), "w"), "v")


def _plain_strings(value: Any) -> list[SigmaString] | None:
    if isinstance(value, SigmaString):
        return [value]
    if isinstance(value, SigmaExpansion) and all(isinstance(v, SigmaString) for v in value.values):
        return list(value.values)
    return None


def compile_rule(rule: SigmaRule, column_of: ColumnOf, dialect: Dialect) -> str:
    if not isinstance(rule, SigmaRule):
        raise EngineError(f"{describe(rule)}: a correlation cannot be matched against one event")
    return RuleCompiler(rule, column_of, dialect).compile()
