"""Correlation rules: the one definition of their windows and bursts, shared by both scan engines.

The Sigma correlation specification asks that the timespan "should not be restricted to boundaries":
a group fires when SOME interval of length ``timespan`` holds enough events (distinct values, rules).
This module states exactly what that means here; the reference engine (:class:`Tracker`) and the
DuckDB engine (its SQL window functions, then :func:`bursts`) both implement it, and the property tests
in ``tests/scan/test_correlation_windows.py`` compare them with a brute-force reading of this text.

Definitions
-----------
- **Point**: an event that matches at least one referenced rule, has a time (the log source's catalogue
  ``timestamp``), and has a value for every ``group-by`` field. Its group is that tuple of values (an
  event with several values of one field, e.g. an array, is a point of each group). An event lacking a
  group-by value or a time is left out (as Splunk's ``stats ... by``). Times are compared in whole
  microseconds.
- **Window**: for each point time ``t`` of a group, the half-open interval ``[t, t + timespan)``; its
  aggregate is computed over the group's points inside it:
  ``event_count``: the number of points; ``value_count``: the number of distinct texts of the condition's
  field; ``temporal``: the set of referenced rules matched (the condition: all of them, or the extended
  expression such as ``a and not b`` evaluated on that set); ``temporal_ordered``: how many referenced
  rules are matched one after another in their listed order (points ordered by time, then listed order);
  ``value_sum``/``value_avg``/``value_median``: over the field's numbers (texts read by
  :func:`r53sigma.scan.values.as_number`; a window without one has no aggregate and does not fire): the
  sum and the mean are exact, rounded once to a float (the sum of integers is that integer), the median is
  ``statistics.median``'s; ``value_percentile``: the
  condition's ``percentile`` (1-100) of the field's numbers, interpolated linearly between the two
  nearest ranks (the inclusive method: the smallest number is percentile 0, the largest 100). A window **fires** when its
  aggregate meets the condition (gt, gte, lt, lte, eq, neq).
- **End excluded**: two events exactly ``timespan`` apart are never in one window (``t_last - t_first <
  timespan``), the same as two events in one epoch-aligned bin ``[k*span, (k+1)*span)``, so every
  group a tumbling window fires for also fires here.
- **Exactness**: for conditions that can only become true as points are added (``gt``, ``gte``, temporal
  "all rules" or an expression without ``not``), "some window fires" is exactly "some interval of length
  timespan holds enough": any such interval can be moved to start at its first point without losing one.
  For the others (``lt``, ``lte``, ``eq``, ``neq``, expressions with ``not``) the intervals considered are
  these windows, the ones starting at a point.
- **Burst**: a maximal chain of firing windows of one group, each starting before the previous one ends
  (``start < previous start + timespan``). Bursts of a group are disjoint in time and share no event.
  **One alert per burst**: ``window_start`` is the time of the burst's first point (its first window's
  start), ``window_end`` the time of its last point (the last point of its last window), ``value`` the
  largest aggregate of its windows (the size, for a rule set), and ``events`` the group's points between
  the two times in stream order (the first :data:`EVIDENCE_PER_GROUP`). Alerts are ordered by start time,
  then group.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort_right
from collections import Counter, deque
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from r53sigma.scan.sigma_names import (  # pySigma's names, without importing pySigma (warm start)
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRule,
    SigmaRuleReference,
)

from r53sigma.scan.records import Event
from r53sigma.scan.results import EVIDENCE_PER_GROUP, Alert, EngineError, describe, make_alert
from r53sigma.scan.values import as_number, as_text, field_path, log_source_of, values_at

MICROS = 1_000_000
SUPPORTED = frozenset({
    SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED, SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG,
    SigmaCorrelationType.VALUE_MEDIAN, SigmaCorrelationType.VALUE_PERCENTILE,
})
NUMERIC = (SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG, SigmaCorrelationType.VALUE_MEDIAN,
           SigmaCorrelationType.VALUE_PERCENTILE)
COMPARE = {
    SigmaCorrelationConditionOperator.LT: lambda a, b: a < b,
    SigmaCorrelationConditionOperator.LTE: lambda a, b: a <= b,
    SigmaCorrelationConditionOperator.GT: lambda a, b: a > b,
    SigmaCorrelationConditionOperator.GTE: lambda a, b: a >= b,
    SigmaCorrelationConditionOperator.EQ: lambda a, b: a == b,
    SigmaCorrelationConditionOperator.NEQ: lambda a, b: a != b,
}


def micros(seconds: float) -> int:
    """An event time in whole microseconds (the resolution of the logs' timestamps)."""
    return round(seconds * MICROS)


# ---------------------------------------------------------------- the plan of one correlation


@dataclass
class CorrelationPlan:
    rule: SigmaCorrelationRule
    rules: list[SigmaRule]  # referenced rules, in their listed order
    names: list[set[str]]  # the names each referenced rule may be called by in a condition
    span: int  # seconds
    group_by: list[str]
    group_paths: dict[int, list[tuple[str, ...]]]  # per referenced rule (by id): one path per group field
    value_paths: dict[int, tuple[str, ...]]  # value_* types: the condition's field per referenced rule
    test: Callable[[Any], bool]  # does a window's aggregate fire

    @property
    def span_us(self) -> int:
        return self.span * MICROS

    @property
    def kind(self) -> SigmaCorrelationType:
        return self.rule.type

    @property
    def extended(self) -> bool:
        return isinstance(self.rule.condition, SigmaExtendedCorrelationCondition)

    @classmethod
    def build(cls, rule: SigmaCorrelationRule) -> "CorrelationPlan":
        if rule.type not in SUPPORTED:
            raise EngineError(f"{describe(rule)}: correlation type {rule.type} is not supported by the engine")
        if rule.type == SigmaCorrelationType.VALUE_PERCENTILE and not 1 <= (rule.condition.percentile or 0) <= 100:
            raise EngineError(f"{describe(rule)}: value_percentile needs a condition percentile from 1 to 100")
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
            log_source, generic = log_source_of(target)
            group_paths[id(target)] = [
                field_path(rule, log_source, generic, aliased(rule, name, target)) for name in group_by
            ]
            condition = rule.condition
            if isinstance(condition, SigmaCorrelationCondition) and condition.fieldref:
                fieldref = condition.fieldref if isinstance(condition.fieldref, str) else condition.fieldref[0]
                value_paths[id(target)] = field_path(rule, log_source, generic, aliased(rule, fieldref, target))
        names = [{str(t.id), t.name or "", t.title} - {""} | {r.reference for r in rule.rules if r.rule is t} for t in referenced]
        return cls(rule, referenced, names, rule.timespan.seconds, group_by, group_paths, value_paths,
                   condition_test(rule, names))

    def point_of(self, event: Event, hits: list[int]) -> tuple[list[tuple], "Point"] | None:
        """The groups an event counts in and its point (None: no time, or a group-by value missing).
        ``hits``: indexes of the referenced rules it matches, ascending, not empty."""
        if event.time is None:
            return None
        # group values come from the first matching rule (all referenced rules of one event share its source)
        key = id(self.rules[hits[0]])
        groups = [list(dict.fromkeys(t for t in map(as_text, values_at(event.record, p)) if t is not None))
                  for p in self.group_paths[key]]
        if any(not g for g in groups):
            return None
        values: tuple[str, ...] = ()
        if key in self.value_paths:
            values = tuple(t for t in map(as_text, values_at(event.record, self.value_paths[key])) if t is not None)
        return list(_product(groups)), Point(micros(event.time), 0, frozenset(hits), values, event)


def aliased(rule: SigmaCorrelationRule, name: str, target: SigmaRule) -> str:
    """The field a correlation's (possibly aliased) field name stands for in one referenced rule."""
    alias = rule.aliases.aliases.get(name)
    if alias is None:
        return name
    for ref, field_name in alias.mapping.items():
        if getattr(ref, "rule", None) is target or ref.reference in (str(target.id), target.name):
            return field_name
    raise EngineError(f"{describe(rule)}: alias {name!r} has no field for rule {target.title!r}")


def condition_test(rule: SigmaCorrelationRule, names: list[set[str]]) -> Callable[[Any], bool]:
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
    compare, count = COMPARE[condition.op], condition.count
    return lambda aggregate: aggregate is not None and compare(aggregate, count)


def _product(groups: list[list[str]]) -> Iterator[tuple]:
    if not groups:
        yield ()
        return
    for head in groups[0]:
        for rest in _product(groups[1:]):
            yield (head,) + rest


# ---------------------------------------------------------------- windows and bursts


@dataclass(frozen=True)
class Point:
    t: int  # microseconds
    seq: int  # position in the stream (ties and evidence order)
    hits: frozenset[int]  # referenced rules matched
    values: tuple[str, ...]  # texts of the condition's field (value_* types)
    event: Event | None = None


@dataclass(frozen=True)
class Window:
    start: int  # the anchoring point's time (us)
    last: int  # the last point inside [start, start + span) (us)
    value: Any  # its aggregate


@dataclass
class Burst:
    first: int  # us
    last: int  # us
    value: Any
    last_start: int = field(default=0, repr=False)


def score(value: Any) -> Any:
    """An aggregate as an alert reports it (a rule set by its size)."""
    return len(value) if isinstance(value, (set, frozenset)) else value


def bursts(windows: Iterable[Window], span_us: int) -> list[Burst]:
    """Firing windows (ascending start) chained into bursts: a window starting before the previous one
    ends joins its burst."""
    found: list[Burst] = []
    for window in windows:
        current = found[-1] if found else None
        if current is not None and window.start < current.last_start + span_us:
            current.last = max(current.last, window.last)
            current.last_start = window.start
            value = score(window.value)
            if value is not None and (current.value is None or value > current.value):
                current.value = value
        else:
            found.append(Burst(window.start, window.last, score(window.value), window.start))
    return found


class _Sliding:
    """The aggregate of the points in a window, kept as points enter and leave: counts, distinct values and
    the numbers incrementally (:class:`_Numbers`), ``temporal_ordered`` from the window's points."""

    def __init__(self, plan: CorrelationPlan):
        self.kind, self.extended, self.n_rules = plan.kind, plan.extended, len(plan.rules)
        self.percentile = getattr(plan.rule.condition, "percentile", None)
        self.count = 0
        self.values: Counter = Counter()
        self.rules: Counter = Counter()
        self.numbers = _Numbers(ordered=self.kind in ORDERED) if self.kind in NUMERIC else None

    def add(self, point: Point) -> None:
        self.count += 1
        if self.numbers is not None:
            self.numbers.add(point.values)
            return
        self.values.update(point.values)
        self.rules.update(point.hits)

    def remove(self, point: Point) -> None:
        """Remove the oldest point added (windows only ever lose their first point)."""
        self.count -= 1
        if self.numbers is not None:
            self.numbers.remove_oldest()
            return
        self.values.subtract(point.values)
        self.rules.subtract(point.hits)
        for counter, keys in ((self.values, point.values), (self.rules, point.hits)):
            for key in keys:
                if counter[key] <= 0:
                    del counter[key]

    def value(self, inside: list[Point]) -> Any:
        """The window's aggregate; ``inside`` (the window's points) is read by temporal_ordered only."""
        kind = self.kind
        if kind == SigmaCorrelationType.EVENT_COUNT:
            return self.count
        if kind == SigmaCorrelationType.VALUE_COUNT:
            return len(self.values)
        if self.numbers is not None:
            return self.numbers.aggregate(kind, self.percentile)
        if self.extended:
            return frozenset(self.rules)
        if kind == SigmaCorrelationType.TEMPORAL:
            return len(self.rules)
        return ordered_steps(((p.t, i) for p in inside for i in p.hits), self.n_rules)


ORDERED = (SigmaCorrelationType.VALUE_MEDIAN, SigmaCorrelationType.VALUE_PERCENTILE)
_FLOAT_UNIT = 1 << 1074  # every finite float is a whole multiple of 2**-1074: float sums kept exactly as integers


class _Numbers:
    """The numbers of a window's points (in point order), kept exactly as points enter and leave.

    Sums are exact (integers as they are, floats as whole multiples of 2**-1074), so a running sum never
    drifts from the sum of the window's numbers; the numbers in ascending order (ties in point order, as a
    stable sort of the window's numbers gives them) for median and percentile, by bisection."""

    __slots__ = ("count", "floats", "int_sum", "float_sum", "ordered", "added")

    def __init__(self, ordered: bool):
        self.count = self.floats = self.int_sum = self.float_sum = 0
        self.ordered: list | None = [] if ordered else None
        self.added: deque[tuple] = deque()  # each point's numbers, oldest first

    def add(self, texts: tuple[str, ...]) -> None:
        numbers = tuple(n for n in map(as_number, texts) if n is not None)
        self.added.append(numbers)
        for number in numbers:
            self._change(number, 1)
            if self.ordered is not None:
                insort_right(self.ordered, number)  # after equal numbers: ties stay in point order

    def remove_oldest(self) -> None:
        for number in self.added.popleft():
            self._change(number, -1)
            if self.ordered is not None:
                del self.ordered[bisect_left(self.ordered, number)]  # the first equal one: the oldest point's

    def _change(self, number: int | float, sign: int) -> None:
        self.count += sign
        if isinstance(number, int):
            self.int_sum += sign * number
        else:
            self.floats += sign
            numerator, denominator = number.as_integer_ratio()  # denominator: a power of two <= 2**1074
            self.float_sum += sign * numerator * (_FLOAT_UNIT // denominator)

    def aggregate(self, kind: SigmaCorrelationType, p: int | None) -> int | float | None:
        if not self.count:
            return None
        if kind == SigmaCorrelationType.VALUE_SUM:
            return self.int_sum if not self.floats else _divide(self._exact_sum(), _FLOAT_UNIT)
        if kind == SigmaCorrelationType.VALUE_AVG:
            if not self.floats:
                return _divide(self.int_sum, self.count)
            return _divide(self._exact_sum(), self.count * _FLOAT_UNIT)
        if kind == SigmaCorrelationType.VALUE_PERCENTILE:
            return percentile_of_ordered(self.ordered, p)
        return median_of_ordered(self.ordered)

    def _exact_sum(self) -> int:
        return self.int_sum * _FLOAT_UNIT + self.float_sum


def _divide(numerator: int, denominator: int) -> float:
    """numerator / denominator rounded once to a float (Python's integer division is correctly rounded);
    beyond the float range, an infinity."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if (numerator < 0) == (denominator < 0) else -math.inf


def _rounded(exact: Fraction) -> float:
    return _divide(exact.numerator, exact.denominator)


def median_of_ordered(ordered: list) -> int | float:
    """statistics.median of ascending numbers (the middle one, or the mean of the two middle ones); a
    mean beyond the float range of its two numbers is computed exactly."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    try:
        mean = (low + high) / 2
    except OverflowError:
        mean = math.nan
    return mean if math.isfinite(mean) else _rounded((Fraction(low) + Fraction(high)) / 2)


def percentile(numbers: list[float], p: int) -> float:
    """The p-th percentile, linear between the nearest ranks (numpy's default, statistics' inclusive)."""
    return percentile_of_ordered(sorted(numbers), p)


def percentile_of_ordered(ordered: list, p: int) -> float:
    """:func:`percentile` of ascending numbers. The interpolation stays between its two neighbours (where
    float arithmetic would leave them or overflow, it is computed exactly)."""
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    below, above = ordered[low], ordered[high]
    fraction = rank - low
    try:
        value = below + (above - below) * fraction
    except OverflowError:
        value = math.nan
    if below <= value <= above:
        return value
    exact = Fraction(below) + (Fraction(above) - Fraction(below)) * Fraction(fraction)
    return _rounded(min(max(exact, Fraction(below)), Fraction(above)))


def ordered_steps(matches: Iterable[tuple[int, int]], n_rules: int) -> int:
    """How many referenced rules match one after another in their listed order ((time, rule) pairs)."""
    step = 0
    for _, index in sorted(matches):
        if step < n_rules and index == step:
            step += 1
    return step


def firing_windows(plan: CorrelationPlan, points: list[Point],
                   may_fire: Callable[[int], bool] | None = None) -> Iterator[Window]:
    """The firing windows of one group's points (sorted by time, then stream position). ``may_fire``: the
    start times whose windows are evaluated (the others are known not to fire, e.g. by a bound); every
    point of an evaluated window must be in ``points``."""
    span = plan.span_us
    state = _Sliding(plan)
    ordered = plan.kind == SigmaCorrelationType.TEMPORAL_ORDERED and not plan.extended
    left = right = 0
    for i, point in enumerate(points):
        if i and points[i - 1].t == point.t:
            continue  # one window per distinct time
        while left < i:
            state.remove(points[left])
            left += 1
        while right < len(points) and points[right].t < point.t + span:
            state.add(points[right])
            right += 1
        if may_fire is not None and not may_fire(point.t):
            continue
        value = state.value(points[i:right] if ordered else [])
        if plan.test(value):
            yield Window(point.t, points[right - 1].t, value)


# ---------------------------------------------------------------- the reference engine's accumulation


class Tracker:
    """The points of one correlation per group, as events stream by; alerts at the end."""

    def __init__(self, plan: CorrelationPlan):
        self.plan = plan
        self.points: dict[tuple, list[Point]] = {}
        self.ref_keys = [id(r) for r in plan.rules]
        self.seq = 0

    def add(self, event: Event, matched: set[int]) -> None:
        hits = [i for i, key in enumerate(self.ref_keys) if key in matched]
        if not hits:
            return
        found = self.plan.point_of(event, hits)
        if found is None:
            return
        groups, point = found
        self.seq += 1
        point = Point(point.t, self.seq, point.hits, point.values, event)
        for group in groups:
            self.points.setdefault(group, []).append(point)

    def alerts(self) -> Iterator[Alert]:
        found = []
        for group, points in self.points.items():
            points.sort(key=lambda p: (p.t, p.seq))
            for burst in bursts(firing_windows(self.plan, points), self.plan.span_us):
                evidence = [p.event for p in sorted(points, key=lambda p: p.seq) if burst.first <= p.t <= burst.last]
                found.append((burst, group, evidence[:EVIDENCE_PER_GROUP]))
        found.sort(key=lambda item: (item[0].first, repr(item[1])))
        for burst, group, evidence in found:
            yield burst_alert(self.plan, group, burst, evidence)


def burst_alert(plan: CorrelationPlan, group: tuple, burst: Burst, evidence: list[Event]) -> Alert:
    return make_alert(plan.rule, group=dict(zip(plan.group_by, group)), window_start=burst.first / MICROS,
                      window_end=burst.last / MICROS, value=burst.value, events=evidence)

