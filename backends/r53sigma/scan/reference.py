"""The reference engine: what a Sigma rule of this pack means, evaluated on normalised events.

Rule test cases, ``scan`` and the cross-target checks all ask this module, so the meaning of a rule
is defined once. It evaluates pySigma's parsed objects (``SigmaRule``, ``SigmaCorrelationRule`` with
references resolved) on :class:`r53sigma.scan.records.Event` values, with no processing pipeline: rules use
the catalogue's field names. A rule is read into a match plan (:mod:`r53sigma.scan.matchplan`, plain
data) and the plan made a predicate (:mod:`r53sigma.scan.predicates`); a compiled run's stand-ins
(:mod:`r53sigma.scan.standins`) carry their plans, so a warm scan evaluates them without pySigma.

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

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from r53sigma.scan import predicates
from r53sigma.scan.correlations import CorrelationPlan, Tracker
from r53sigma.scan.predicates import Predicate, Subject
from r53sigma.scan.records import Event
from r53sigma.scan.results import EVIDENCE_PER_GROUP, Alert, AnyRule, EngineError, describe, make_alert
from r53sigma.scan.sigma_names import SigmaCorrelationRule, SigmaRule  # pySigma's or a stand-in's (no import)
from r53sigma.scan.standins import CachedCorrelation, CachedRule
from r53sigma.scan.values import field_path, values_at

# the names other modules have imported from here
__all__ = ["Engine", "Alert", "EngineError", "describe", "values_at", "field_path", "EVIDENCE_PER_GROUP"]


@dataclass
class _Compiled:
    rule: Any  # kept so the id() cache key stays valid
    source: str  # catalogue log source the rule applies to
    predicate: Predicate


class Engine:
    def __init__(self, rules: Any = ()):
        collection = getattr(rules, "collection", rules)  # rules.LoadedRules, a SigmaCollection, a list of rules
        self.rules: list[AnyRule] = list(getattr(collection, "rules", collection))
        self._compiled: dict[int, _Compiled] = {}
        self._correlations: dict[int, CorrelationPlan] = {}

    def check(self, rule: AnyRule) -> None:
        """Raise EngineError if the rule cannot be evaluated."""
        if isinstance(rule, SigmaCorrelationRule):
            self.plan(rule)
        else:
            self._compile(rule)

    def matches(self, rule: Any, event: Event) -> bool:
        compiled = self._compile(rule)
        return event.source == compiled.source and compiled.predicate(Subject(event))

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
            subject = Subject(event)
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

    def _compile(self, rule: Any) -> _Compiled:
        key = id(rule)
        if key not in self._compiled:
            if not isinstance(rule, SigmaRule):
                raise EngineError(f"{describe(rule)}: a correlation cannot be matched against one event")
            if isinstance(rule, CachedRule):  # a warm scan's stand-in: its plan, read by the cold run
                if rule.match is None:
                    raise EngineError(f"{describe(rule)}: its compiled run keeps no match plan")
                source, plan = rule.log_source, rule.match
            else:
                from r53sigma.scan import matchplan  # pySigma's objects: imported only for them

                source, plan = matchplan.of(rule)
            self._compiled[key] = _Compiled(rule, source, predicates.predicate(plan))
        return self._compiled[key]

    def plan(self, rule: Any) -> CorrelationPlan:
        """The correlation's plan (its referenced rules compiled)."""
        key = id(rule)
        if key not in self._correlations:
            plan = rule.plan if isinstance(rule, CachedCorrelation) else CorrelationPlan.build(rule)
            for target in plan.rules:
                self._compile(target)
            self._correlations[key] = plan
        return self._correlations[key]
