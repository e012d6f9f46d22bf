"""The reference engine: what a Sigma rule of this pack means, evaluated on normalised events.

Rule test cases, ``scan`` and the cross-target checks all ask this module, so the meaning of a rule
is defined once. It evaluates pySigma's parsed objects (``SigmaRule``, ``SigmaCorrelationRule`` with
references resolved) on :class:`r53sigma.scan.records.Event` values, with no processing pipeline: rules use
the catalogue's field names.

The meaning it implements is specified in ``SEMANTICS.md`` beside this module (the one specification
the DuckDB engine, the SQL compiler and the target checks follow).

Public API
----------
``Engine(rules)``; ``engine.matches(rule, event) -> bool``; ``engine.evaluate(rule, events) ->
list[Alert]``; ``engine.scan(events, rules=None) -> Iterator[Alert]`` (one pass for many rules: plain
alerts as events stream by, correlation alerts at the end); ``engine.check(rule)`` raises
:class:`EngineError` for a rule the engine cannot evaluate.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
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
    SigmaString,
    SpecialChars,
)

from r53sigma import catalogue
from r53sigma.scan import derived_fields
from r53sigma.scan.correlations import CorrelationPlan, Tracker
from r53sigma.scan.records import Event
from r53sigma.scan.patterns import fullmatch_test, re2_part, search_test
from r53sigma.scan.results import EVIDENCE_PER_GROUP, Alert, AnyRule, EngineError, describe, make_alert
from r53sigma.scan.values import LabelSuffixes, as_number, as_text, field_path, leaves, log_source_of, values_at

# the names other modules have imported from here
__all__ = ["Engine", "Alert", "EngineError", "describe", "values_at", "field_path", "EVIDENCE_PER_GROUP"]

Record = dict[str, Any]
Predicate = Callable[["_Subject"], bool]

_COMPARE = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


# ---------------------------------------------------------------- plain rules


@dataclass
class _Compiled:
    rule: SigmaRule  # kept so the id() cache key stays valid
    source: str  # catalogue log source the rule applies to
    generic_dns: bool
    predicate: Predicate


class Engine:
    def __init__(self, rules: SigmaCollection | Iterable[AnyRule] | Any = ()):
        collection = getattr(rules, "collection", rules)  # rules.LoadedRules too
        self.rules: list[AnyRule] = list(getattr(collection, "rules", collection))
        self._compiled: dict[int, _Compiled] = {}
        self._correlations: dict[int, CorrelationPlan] = {}

    def check(self, rule: AnyRule) -> None:
        """Raise EngineError if the rule cannot be evaluated."""
        if isinstance(rule, SigmaCorrelationRule):
            self.plan(rule)
        else:
            self._compile(rule)

    def matches(self, rule: SigmaRule, event: Event) -> bool:
        compiled = self._compile(rule)
        return event.source == compiled.source and compiled.predicate(_Subject(event))

    def evaluate(self, rule: AnyRule, events: Iterable[Event]) -> list[Alert]:
        return list(self.scan(events, [rule]))

    def scan(self, events: Iterable[Event], rules: Iterable[AnyRule] | None = None) -> Iterator[Alert]:
        """Alerts of the rules (default: the collection's output rules) over one pass of the events."""
        chosen = list(rules) if rules is not None else [r for r in self.rules if getattr(r, "_output", True)]
        plain = [r for r in chosen if isinstance(r, SigmaRule)]
        trackers = [Tracker(self.plan(r)) for r in chosen if isinstance(r, SigmaCorrelationRule)]
        base = {id(r): r for r in plain}
        for tracker in trackers:
            base.update((id(r), r) for r in tracker.plan.rules)
        compiled = [(key, self._compile(rule)) for key, rule in base.items()]
        for event in events:
            subject = _Subject(event)
            matched = {key for key, c in compiled if c.source == event.source and c.predicate(subject)}
            if not matched:
                continue
            for rule in plain:
                if id(rule) in matched:
                    yield make_alert(rule, event=event)
            for tracker in trackers:
                tracker.add(event, matched)
        for tracker in trackers:
            yield from tracker.alerts()

    # -- compiling

    def _compile(self, rule: SigmaRule) -> _Compiled:
        key = id(rule)
        if key not in self._compiled:
            if not isinstance(rule, SigmaRule):
                raise EngineError(f"{describe(rule)}: a correlation cannot be matched against one event")
            log_source, generic = log_source_of(rule)
            compiler = _Compiler(rule, log_source, generic)
            conditions = [compiler.node(c.parsed) for c in rule.detection.parsed_condition]
            predicate = conditions[0] if len(conditions) == 1 else _any_of(conditions)
            self._compiled[key] = _Compiled(rule, log_source.source, generic, predicate)
        return self._compiled[key]

    def plan(self, rule: SigmaCorrelationRule) -> CorrelationPlan:
        """The correlation's plan (its referenced rules compiled)."""
        key = id(rule)
        if key not in self._correlations:
            plan = CorrelationPlan.build(rule)
            for target in plan.rules:
                self._compile(target)
            self._correlations[key] = plan
        return self._correlations[key]


class _Subject:
    """The event being matched, with the values of each field path looked up once for all rules."""

    __slots__ = ("event", "record", "_cache")

    def __init__(self, event: Event):
        self.event, self.record, self._cache = event, event.record, {}

    def values(self, path: tuple[str, ...]) -> list[Any]:
        found = self._cache.get(path)
        if found is None:
            found = self._cache[path] = values_at(self.record, path)
        return found


def _any_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda subject: any(p(subject) for p in predicates)


def _all_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda subject: all(p(subject) for p in predicates)


class _Compiler:
    """Turns one rule's condition tree into a predicate over a _Subject."""

    def __init__(self, rule: SigmaRule, log_source: catalogue.LogSource, generic: bool):
        self.rule, self.log_source, self.generic = rule, log_source, generic

    def node(self, node: Any) -> Predicate:
        if isinstance(node, ConditionAND):
            return _all_of([self.node(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return _any_of(self._or_args(node.args))
        if isinstance(node, ConditionNOT):
            inner = self.node(node.args[0])
            return lambda subject: not inner(subject)
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        if node is None:  # an empty detection matches nothing
            return lambda subject: False
        raise EngineError(f"{describe(self.rule)}: unsupported condition element {type(node).__name__}")

    def _or_args(self, args: list[Any]) -> list[Predicate]:
        """Or-ed string values of one field become one test (value lists of 40 domains are common)."""
        by_field: dict[str, list[SigmaString]] = {}
        others = []
        for arg in args:
            strings = _plain_strings(arg.value) if isinstance(arg, ConditionFieldEqualsValueExpression) else None
            if strings is None:
                others.append(arg)
            else:
                by_field.setdefault(arg.field, []).extend(strings)
        merged = [self._field_test(name, _strings_test(values, self.rule, name)) for name, values in by_field.items()]
        return merged + [self.node(a) for a in others]

    def _field_test(self, name: str, test: Callable[[Any], bool]) -> Predicate:
        path = field_path(self.rule, self.log_source, self.generic, name)
        return lambda subject: any(test(v) for v in subject.values(path))

    def field(self, name: str, value: Any) -> Predicate:
        path = field_path(self.rule, self.log_source, self.generic, name)
        if isinstance(value, SigmaNull):
            return lambda subject: not subject.values(path)
        if isinstance(value, SigmaExists):
            wanted = bool(value.exists)
            return lambda subject: bool(subject.values(path)) == wanted
        if isinstance(value, SigmaFieldReference):
            other = field_path(self.rule, self.log_source, self.generic, value.field)
            return self._field_reference(path, other, value)
        return self._field_test(name, self.value(value, name))

    def keyword(self, value: Any) -> Predicate:
        test = self.value(value, None)

        def predicate(subject: _Subject) -> bool:
            raw = subject.event.raw
            if isinstance(raw, str) and test(raw):
                return True
            return any(test(v) for v in leaves(derived_fields.without_derived(subject.event.source, subject.record)))

        return predicate

    def value(self, value: Any, name: str | None) -> Callable[[Any], bool]:
        """A test of one event value against one rule value."""
        strings = _plain_strings(value)
        if strings is not None:
            return _strings_test(strings, self.rule, name)
        if isinstance(value, SigmaExpansion):
            tests = [self.value(v, name) for v in value.values]
            return lambda v: any(t(v) for t in tests)
        if isinstance(value, SigmaBool):
            wanted = bool(value.boolean)
            return lambda v: v is wanted if isinstance(v, bool) else as_text(v) == str(wanted).lower()
        if isinstance(value, SigmaNumber):
            number = value.number
            return lambda v: as_number(v) == number
        if isinstance(value, SigmaCompareExpression):
            compare, number = _COMPARE[value.op], value.number.number
            return lambda v: (n := as_number(v)) is not None and compare(n, number)
        if isinstance(value, SigmaRegularExpression):
            search = search_test(str(value.regexp), set(value.flags))
            return lambda v: (t := as_text(v)) is not None and search(t)
        if isinstance(value, SigmaCIDRExpression):
            return _cidr_test(value.network)
        raise EngineError(
            f"{describe(self.rule)}: field {name!r}: unsupported value type {type(value).__name__}"
        )

    @staticmethod
    def _field_reference(path: tuple[str, ...], other: tuple[str, ...], ref: SigmaFieldReference) -> Predicate:
        def predicate(subject: _Subject) -> bool:
            theirs = [t.lower() for t in map(as_text, subject.values(other)) if t is not None]
            for mine in map(as_text, subject.values(path)):
                if mine is None:
                    continue
                mine = mine.lower()
                for t in theirs:
                    if ref.starts_with and mine.startswith(t) or ref.ends_with and mine.endswith(t):
                        return True
                    if not (ref.starts_with or ref.ends_with) and mine == t:
                        return True
            return False

        return predicate


def _plain_strings(value: Any) -> list[SigmaString] | None:
    """The strings a value stands for (an expansion of strings is or-ed), or None for other types."""
    if isinstance(value, SigmaString):
        return [value]
    if isinstance(value, SigmaExpansion) and all(isinstance(v, SigmaString) for v in value.values):
        return list(value.values)
    return None


def _strings_test(values: list[SigmaString], rule: AnyRule, name: str | None) -> Callable[[Any], bool]:
    """One test for or-ed Sigma strings: exact, prefix, suffix and substring checks, then one regex."""
    exact: dict[bool, set[str]] = {True: set(), False: set()}  # keyed by "cased"
    prefixes: dict[bool, list[str]] = {True: [], False: []}
    suffixes: dict[bool, list[str]] = {True: [], False: []}
    infixes: dict[bool, list[str]] = {True: [], False: []}
    regexes: dict[bool, list[str]] = {True: [], False: []}
    re2_regexes: dict[bool, list[str]] = {True: [], False: []}
    for value in values:
        cased = isinstance(value, SigmaCasedString)
        parts = list(value.s)
        if any(isinstance(p, Placeholder) for p in parts):
            raise EngineError(f"{describe(rule)}: field {name!r}: placeholder values (|expand) need a pipeline")
        fold = (lambda x: x) if cased else str.lower
        star = SpecialChars.WILDCARD_MULTI
        if all(isinstance(p, str) for p in parts):
            exact[cased].add(fold("".join(parts)))
        elif len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
            prefixes[cased].append(fold(parts[0]))
        elif len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
            suffixes[cased].append(fold(parts[1]))
        elif len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
            infixes[cased].append(fold(parts[1]))
        else:
            regexes[cased].append(
                "".join(".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(p) for p in parts)
            )
            re2_regexes[cased].append("".join(re2_part(p) for p in parts))
    checks = []
    for cased in (False, True):
        ex, pre, suf, inf = exact[cased], tuple(prefixes[cased]), LabelSuffixes(suffixes[cased]), infixes[cased]
        pattern = None
        if regexes[cased]:
            python = re.compile("|".join(f"(?:{r})" for r in regexes[cased]), re.DOTALL | (0 if cased else re.IGNORECASE))
            pattern = fullmatch_test(("(?s)" if cased else "(?is)") + "|".join(f"(?:{r})" for r in re2_regexes[cased]), python)
        if not (ex or pre or suf or inf or pattern):
            continue
        checks.append((cased, ex, pre, suf, inf, pattern))

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


def _cidr_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        address = _address(value) if isinstance(value, str) else None
        return address is not None and address.version == network.version and address in network

    return test
