"""A rule's match plan made a predicate: what the reference engine evaluates on an event.

The reference engine reads a rule in two steps: :mod:`r53sigma.scan.matchplan` turns pySigma's condition
tree into a *match plan*, plain JSON data with every field already a record path; this module turns a plan
into a predicate over a :class:`Subject`. A scan's compiled run keeps each rule's plan, so a warm scan
evaluates rules without importing pySigma (:mod:`r53sigma.scan.compiledrun`).

A predicate plan is one of::

    ["all", [plan, ...]]  ["any", [plan, ...]]  ["not", plan]  ["never"]      (an empty detection)
    ["field", path, test]        some value at the path passes the test
    ["null", path]               no value at the path;  ["exists", path, wanted]
    ["fieldref", path, other, starts_with, ends_with]   |fieldref, case-insensitive
    ["keyword", test]            the raw line, or some value of the record as read

and a value test one of::

    ["strings", [[cased, exact, prefixes, suffixes, infixes, python_regexes, re2_regexes], ...]]
    ["either", [test, ...]]  ["bool", b]  ["number", n]  ["compare", "LT"|"LTE"|"GT"|"GTE"|"NEQ", n]
    ["regex", pattern, [flag name, ...]]  ["cidr", "10.0.0.0/8"]

The meaning of each element is SEMANTICS.md's, as :mod:`r53sigma.scan.matchplan` documents where it builds it.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any, Callable

from r53sigma.scan import derived_fields
from r53sigma.scan.patterns import fullmatch_test, search_test
from r53sigma.scan.records import Event
from r53sigma.scan.values import LabelSuffixes, as_double, as_number, as_text, leaves, values_at

Predicate = Callable[["Subject"], bool]
Test = Callable[[Any], bool]

_COMPARE = {
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "NEQ": lambda a, b: a != b,
}


class Subject:
    """The event being matched, with the values of each field path looked up once for all rules."""

    __slots__ = ("event", "record", "_cache")

    def __init__(self, event: Event):
        self.event, self.record, self._cache = event, event.record, {}

    def values(self, path: tuple[str, ...]) -> list[Any]:
        found = self._cache.get(path)
        if found is None:
            found = self._cache[path] = values_at(self.record, path)
        return found


def predicate(plan: list) -> Predicate:
    """The predicate of a predicate plan."""
    kind = plan[0]
    if kind == "all":
        return all_of([predicate(p) for p in plan[1]])
    if kind == "any":
        return any_of([predicate(p) for p in plan[1]])
    if kind == "not":
        inner = predicate(plan[1])
        return lambda subject: not inner(subject)
    if kind == "never":
        return lambda subject: False
    if kind == "field":
        path, test = tuple(plan[1]), value_test(plan[2])
        return lambda subject: any(test(v) for v in subject.values(path))
    if kind == "null":
        path = tuple(plan[1])
        return lambda subject: not subject.values(path)
    if kind == "exists":
        path, wanted = tuple(plan[1]), bool(plan[2])
        return lambda subject: bool(subject.values(path)) == wanted
    if kind == "fieldref":
        return _field_reference(tuple(plan[1]), tuple(plan[2]), bool(plan[3]), bool(plan[4]))
    if kind == "keyword":
        return _keyword(value_test(plan[1]))
    raise ValueError(f"unknown predicate plan {kind!r}")


def value_test(plan: list) -> Test:
    """The test of one event value that a value plan describes."""
    kind = plan[0]
    if kind == "strings":
        return _strings_test(plan[1])
    if kind == "either":
        tests = [value_test(t) for t in plan[1]]
        return lambda v: any(t(v) for t in tests)
    if kind == "bool":
        wanted = bool(plan[1])
        return lambda v: v is wanted if isinstance(v, bool) else as_text(v) == str(wanted).lower()
    if kind == "number":  # numbers compare as IEEE 754 doubles (SEMANTICS.md)
        number = as_double(plan[1])
        return lambda v: (n := _double(v)) is not None and n == number
    if kind == "compare":
        compare, number = _COMPARE[plan[1]], as_double(plan[2])
        return lambda v: (n := _double(v)) is not None and number is not None and compare(n, number)
    if kind == "regex":
        search = search_test(plan[1], set(plan[2]))
        return lambda v: (t := as_text(v)) is not None and search(t)
    if kind == "cidr":
        return _cidr_test(ipaddress.ip_network(plan[1]))
    raise ValueError(f"unknown value plan {kind!r}")


def _double(value: Any) -> float | None:
    number = as_number(value)
    return None if number is None else as_double(number)


def any_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda subject: any(p(subject) for p in predicates)


def all_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda subject: all(p(subject) for p in predicates)


def _keyword(test: Test) -> Predicate:
    def keyword(subject: Subject) -> bool:
        raw = subject.event.raw
        if isinstance(raw, str) and test(raw):
            return True
        return any(test(v) for v in leaves(derived_fields.without_derived(subject.event.source, subject.record)))

    return keyword


def _field_reference(path: tuple[str, ...], other: tuple[str, ...], starts_with: bool, ends_with: bool) -> Predicate:
    def field_reference(subject: Subject) -> bool:
        theirs = [t.lower() for t in map(as_text, subject.values(other)) if t is not None]
        for mine in map(as_text, subject.values(path)):
            if mine is None:
                continue
            mine = mine.lower()
            for t in theirs:
                if starts_with and mine.startswith(t) or ends_with and mine.endswith(t):
                    return True
                if not (starts_with or ends_with) and mine == t:
                    return True
        return False

    return field_reference


def _strings_test(groups: list) -> Test:
    """One test for or-ed Sigma strings: exact, prefix, suffix and substring checks, then one regex per case."""
    checks = []
    for cased, exact, prefixes, suffixes, infixes, regexes, re2_regexes in groups:
        pattern = None
        if regexes:
            python = re.compile("|".join(f"(?:{r})" for r in regexes), re.DOTALL | (0 if cased else re.IGNORECASE))
            pattern = fullmatch_test(("(?s)" if cased else "(?is)") + "|".join(f"(?:{r})" for r in re2_regexes), python)
        checks.append((cased, set(exact), tuple(prefixes), LabelSuffixes(suffixes), list(infixes), pattern))

    def test(value: Any) -> bool:
        text = as_text(value)
        if text is None:
            return False
        for cased, ex, pre, suf, inf, pattern in checks:
            t = text if cased else text.lower()
            if (
                t in ex
                or (pre and t.startswith(pre))
                or (suf and suf.match(t))
                or any(i in t for i in inf)
                or (pattern is not None and pattern(text))
            ):
                return True
        return False

    return test


@functools.lru_cache(maxsize=1 << 16)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _cidr_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Test:
    def test(value: Any) -> bool:
        address = _address(value) if isinstance(value, str) else None
        return address is not None and address.version == network.version and address in network

    return test
