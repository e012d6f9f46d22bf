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
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
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
from r53sigma.scan.records import Event, format_time
from r53sigma.scan import derived_fields

AnyRule = SigmaRule | SigmaCorrelationRule
Record = dict[str, Any]
Predicate = Callable[["_Subject"], bool]
EVIDENCE_PER_GROUP = 20  # events kept per correlation (window, group), to show why it fired

_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}
_COMPARE = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}
_CORRELATION_OPS = {
    SigmaCorrelationConditionOperator.LT: lambda a, b: a < b,
    SigmaCorrelationConditionOperator.LTE: lambda a, b: a <= b,
    SigmaCorrelationConditionOperator.GT: lambda a, b: a > b,
    SigmaCorrelationConditionOperator.GTE: lambda a, b: a >= b,
    SigmaCorrelationConditionOperator.EQ: lambda a, b: a == b,
    SigmaCorrelationConditionOperator.NEQ: lambda a, b: a != b,
}


class EngineError(ValueError):
    """A rule the engine cannot evaluate (unknown log source or field, unsupported construct)."""


@dataclass
class Alert:
    """One detection: a matching event of a plain rule, or a firing (window, group) of a correlation."""

    rule_id: str
    title: str
    level: str | None
    rule: AnyRule = field(repr=False, compare=False)
    event: Event | None = None
    group: dict[str, Any] | None = None
    window_start: float | None = None
    window_end: float | None = None
    value: float | int | None = None  # the correlation aggregate: events, distinct values, rules ...
    events: list[Event] = field(default_factory=list, repr=False, compare=False)

    @property
    def is_correlation(self) -> bool:
        return self.event is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "title": self.title, "level": self.level}
        if self.event is not None:
            out.update(source=self.event.source, origin=self.event.origin, event=self.event.raw)
            return out
        out.update(
            correlation=str(self.rule.type),
            group=self.group,
            window={"start": format_time(self.window_start), "end": format_time(self.window_end)},
            value=self.value,
            sample_origins=[e.origin for e in self.events[:5]],
        )
        return out


def describe(rule: AnyRule) -> str:
    where = f", {rule.source.path}" if rule.source and rule.source.path else ""
    return f"rule {rule.title!r} ({rule.id or rule.name or 'no id'}{where})"


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
        self._correlations: dict[int, _CorrelationPlan] = {}

    def check(self, rule: AnyRule) -> None:
        """Raise EngineError if the rule cannot be evaluated."""
        if isinstance(rule, SigmaCorrelationRule):
            self._plan(rule)
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
        trackers = [_Tracker(self._plan(r)) for r in chosen if isinstance(r, SigmaCorrelationRule)]
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
                    yield _alert(rule, event=event)
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
            log_source, generic = self._log_source(rule)
            compiler = _Compiler(rule, log_source, generic)
            conditions = [compiler.node(c.parsed) for c in rule.detection.parsed_condition]
            predicate = conditions[0] if len(conditions) == 1 else _any_of(conditions)
            self._compiled[key] = _Compiled(rule, log_source.source, generic, predicate)
        return self._compiled[key]

    @staticmethod
    def _log_source(rule: SigmaRule) -> tuple[catalogue.LogSource, bool]:
        ls = rule.logsource
        found = catalogue.for_logsource(ls.category, ls.product, ls.service)
        if found is None:
            spec = ", ".join(f"{k}: {v}" for k, v in (("category", ls.category), ("product", ls.product), ("service", ls.service)) if v)
            raise EngineError(f"{describe(rule)}: log source {{{spec}}} is not a Route 53 log source known to r53sigma")
        return found

    def _plan(self, rule: SigmaCorrelationRule) -> "_CorrelationPlan":
        key = id(rule)
        if key not in self._correlations:
            self._correlations[key] = _CorrelationPlan.build(rule, self)
        return self._correlations[key]


def _alert(rule: AnyRule, **kwargs: Any) -> Alert:
    level = getattr(rule.level, "name", None)
    return Alert(str(rule.id or rule.name or ""), rule.title, level.lower() if level else None, rule, **kwargs)


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


def field_path(rule: AnyRule, log_source: catalogue.LogSource, generic: bool, name: str) -> tuple[str, ...]:
    """The dotted path in the record of a rule's field name, through the catalogue."""
    found = log_source.field_for(name, generic_dns=generic)
    if found is None:
        raise EngineError(
            f"{describe(rule)}: field {name!r} is not a field of {log_source.title}; known fields: "
            + ", ".join(sorted(log_source.rule_field_names(generic_dns=generic)))
        )
    return tuple(found.name.split("."))


def values_at(record: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at a dotted path, a list at any step giving one value per element (nulls dropped)."""
    nodes = [record]
    for step in path:
        next_nodes = []
        for node in nodes:
            if isinstance(node, dict) and step in node:
                value = node[step]
                if isinstance(value, list):
                    next_nodes.extend(_flatten(value))
                else:
                    next_nodes.append(value)
        nodes = next_nodes
    return [n for n in nodes if n is not None]


def _flatten(nodes: list[Any]) -> list[Any]:
    out = []
    for node in nodes:
        if isinstance(node, list):
            out.extend(_flatten(node))
        else:
            out.append(node)
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    elif node is not None:
        yield node


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
            return any(test(v) for v in _leaves(derived_fields.without_derived(subject.event.source, subject.record)))

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
            return lambda v: v is wanted if isinstance(v, bool) else _text(v) == str(wanted).lower()
        if isinstance(value, SigmaNumber):
            number = value.number
            return lambda v: _number(v) == number
        if isinstance(value, SigmaCompareExpression):
            compare, number = _COMPARE[value.op], value.number.number
            return lambda v: (n := _number(v)) is not None and compare(n, number)
        if isinstance(value, SigmaRegularExpression):
            flags = 0
            for flag in value.flags:
                flags |= _RE_FLAGS[flag]
            pattern = re.compile(str(value.regexp), flags)
            return lambda v: (t := _text(v)) is not None and pattern.search(t) is not None
        if isinstance(value, SigmaCIDRExpression):
            return _cidr_test(value.network)
        raise EngineError(
            f"{describe(self.rule)}: field {name!r}: unsupported value type {type(value).__name__}"
        )

    @staticmethod
    def _field_reference(path: tuple[str, ...], other: tuple[str, ...], ref: SigmaFieldReference) -> Predicate:
        def predicate(subject: _Subject) -> bool:
            theirs = [t.lower() for t in map(_text, subject.values(other)) if t is not None]
            for mine in map(_text, subject.values(path)):
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
    checks = []
    for cased in (False, True):
        ex, pre, suf, inf = exact[cased], tuple(prefixes[cased]), tuple(suffixes[cased]), infixes[cased]
        pattern = (
            re.compile("|".join(f"(?:{r})" for r in regexes[cased]), re.DOTALL | (0 if cased else re.IGNORECASE))
            if regexes[cased] else None
        )
        if not (ex or pre or suf or inf or pattern):
            continue
        checks.append((cased, ex, pre, suf, inf, pattern))

    def test(value: Any) -> bool:
        text = _text(value)
        if text is None:
            return False
        for cased, ex, pre, suf, inf, pattern in checks:
            t = text if cased else text.lower()
            if (
                t in ex
                or (pre and t.startswith(pre))
                or (suf and t.endswith(suf))
                or any(i in t for i in inf)
                or (pattern is not None and pattern.fullmatch(text) is not None)
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


# ---------------------------------------------------------------- correlations


@dataclass
class _CorrelationPlan:
    rule: SigmaCorrelationRule
    rules: list[SigmaRule]  # referenced rules, in their listed order
    names: list[set[str]]  # the names each referenced rule may be called by in a condition
    span: int
    group_by: list[str]
    group_paths: dict[int, list[tuple[str, ...]]]  # per referenced rule (by id): one path per group field
    value_paths: dict[int, tuple[str, ...]]  # value_* types: the condition's field per referenced rule
    test: Callable[[Any], bool]  # is the (window, group) aggregate an alert

    @classmethod
    def build(cls, rule: SigmaCorrelationRule, engine: Engine) -> "_CorrelationPlan":
        supported = {
            SigmaCorrelationType.EVENT_COUNT,
            SigmaCorrelationType.VALUE_COUNT,
            SigmaCorrelationType.TEMPORAL,
            SigmaCorrelationType.TEMPORAL_ORDERED,
            SigmaCorrelationType.VALUE_SUM,
            SigmaCorrelationType.VALUE_AVG,
            SigmaCorrelationType.VALUE_MEDIAN,
        }
        if rule.type not in supported:
            raise EngineError(f"{describe(rule)}: correlation type {rule.type} is not supported by the engine")
        referenced: list[SigmaRule] = []
        for ref in rule.rules or []:
            target = getattr(ref, "rule", None)
            if target is None:
                raise EngineError(f"{describe(rule)}: referenced rule {ref.reference!r} was not found")
            if not isinstance(target, SigmaRule):
                raise EngineError(f"{describe(rule)}: correlations of correlations are not supported by the engine")
            referenced.append(target)
        if not referenced:
            raise EngineError(f"{describe(rule)}: a correlation needs at least one referenced rule")
        group_by = list(rule.group_by or [])
        group_paths, value_paths = {}, {}
        for target in referenced:
            log_source, generic = engine._log_source(target)
            engine._compile(target)
            group_paths[id(target)] = [
                field_path(rule, log_source, generic, _aliased(rule, name, target)) for name in group_by
            ]
            condition = rule.condition
            if isinstance(condition, SigmaCorrelationCondition) and condition.fieldref:
                fieldref = condition.fieldref if isinstance(condition.fieldref, str) else condition.fieldref[0]
                value_paths[id(target)] = field_path(rule, log_source, generic, _aliased(rule, fieldref, target))
        names = [{str(t.id), t.name or "", t.title} - {""} | {r.reference for r in rule.rules if r.rule is t} for t in referenced]
        return cls(rule, referenced, names, rule.timespan.seconds, group_by, group_paths, value_paths, _condition_test(rule, names))


def _aliased(rule: SigmaCorrelationRule, name: str, target: SigmaRule) -> str:
    alias = rule.aliases.aliases.get(name)
    if alias is None:
        return name
    for ref, field_name in alias.mapping.items():
        if getattr(ref, "rule", None) is target or ref.reference in (str(target.id), target.name):
            return field_name
    raise EngineError(f"{describe(rule)}: alias {name!r} has no field for rule {target.title!r}")


def _condition_test(rule: SigmaCorrelationRule, names: list[set[str]]) -> Callable[[Any], bool]:
    condition = rule.condition
    if isinstance(condition, SigmaExtendedCorrelationCondition):
        tree = condition._parsed if hasattr(condition, "_parsed") else condition.parse(condition.expression)

        def holds(node: Any, matched: set[int]) -> bool:
            if isinstance(node, SigmaRuleReference):
                return any(node.reference in names[i] for i in matched)
            if isinstance(node, CorrelationConditionAND):
                return all(holds(a, matched) for a in node.args)
            if isinstance(node, CorrelationConditionOR):
                return any(holds(a, matched) for a in node.args)
            if isinstance(node, CorrelationConditionNOT):
                return not holds(node.args[0], matched)
            raise EngineError(f"{describe(rule)}: unsupported condition element {type(node).__name__}")

        return lambda matched: holds(tree, matched)
    compare, count = _CORRELATION_OPS[condition.op], condition.count
    return lambda aggregate: aggregate is not None and compare(aggregate, count)


@dataclass
class _Bucket:
    count: int = 0
    values: set = field(default_factory=set)
    numbers: list = field(default_factory=list)
    matches: list = field(default_factory=list)  # (time, referenced rule index) for temporal types
    events: list = field(default_factory=list)


class _Tracker:
    """Aggregates of one correlation per (window start, group values)."""

    def __init__(self, plan: _CorrelationPlan):
        self.plan = plan
        self.buckets: dict[tuple[float, tuple], _Bucket] = {}
        self.ref_keys = [id(r) for r in plan.rules]

    def add(self, event: Event, matched: set[int]) -> None:
        if event.time is None:
            return
        hits = [i for i, key in enumerate(self.ref_keys) if key in matched]
        if not hits:
            return
        window = math.floor(event.time / self.plan.span) * self.plan.span
        # Group values come from the first matching rule (all referenced rules of one event share its source).
        paths = self.plan.group_paths[self.ref_keys[hits[0]]]
        groups = [values_at(event.record, p) for p in paths]
        if any(not g for g in groups):
            return
        for group in _product(groups):
            bucket = self.buckets.setdefault((window, group), _Bucket())
            bucket.count += 1
            if len(bucket.events) < EVIDENCE_PER_GROUP:
                bucket.events.append(event)
            value_path = self.plan.value_paths.get(self.ref_keys[hits[0]])
            if value_path is not None:
                found = values_at(event.record, value_path)
                bucket.values.update(_hashable(v) for v in found)
                bucket.numbers.extend(n for n in map(_number, found) if n is not None)
            bucket.matches.extend((event.time, i) for i in hits)

    def alerts(self) -> Iterator[Alert]:
        plan = self.plan
        for (window, group), bucket in sorted(self.buckets.items(), key=lambda kv: (kv[0][0], repr(kv[0][1]))):
            aggregate = self._aggregate(bucket)
            if plan.test(aggregate):
                yield _alert(
                    plan.rule,
                    group=dict(zip(plan.group_by, group)),
                    window_start=window,
                    window_end=window + plan.span,
                    value=aggregate if not isinstance(aggregate, set) else len(aggregate),
                    events=list(bucket.events),
                )

    def _aggregate(self, bucket: _Bucket) -> Any:
        kind = self.plan.rule.type
        if kind == SigmaCorrelationType.EVENT_COUNT:
            return bucket.count
        if kind == SigmaCorrelationType.VALUE_COUNT:
            return len(bucket.values)
        if kind == SigmaCorrelationType.VALUE_SUM:
            return sum(bucket.numbers) if bucket.numbers else None
        if kind == SigmaCorrelationType.VALUE_AVG:
            return statistics.fmean(bucket.numbers) if bucket.numbers else None
        if kind == SigmaCorrelationType.VALUE_MEDIAN:
            return statistics.median(bucket.numbers) if bucket.numbers else None
        matched = {i for _, i in bucket.matches}
        if isinstance(self.plan.rule.condition, SigmaExtendedCorrelationCondition):
            return matched  # the condition test evaluates the expression on it
        if kind == SigmaCorrelationType.TEMPORAL:
            return len(matched)
        # temporal_ordered: how many referenced rules matched one after another in their listed order
        step = 0
        for _, index in sorted(bucket.matches):
            if step < len(self.plan.rules) and index == step:
                step += 1
        return step


def _product(groups: list[list[Any]]) -> Iterator[tuple]:
    if not groups:
        yield ()
        return
    seen = set()
    for head in dict.fromkeys(map(_hashable, groups[0])):
        for rest in _product(groups[1:]):
            combo = (head,) + rest
            if combo not in seen:
                seen.add(combo)
                yield combo


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return repr(value)
    return value
