"""What both scan engines report: alerts, the rule errors they raise, and how a rule is named in messages."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from r53sigma.scan.records import Event, format_time

# a pySigma SigmaRule or SigmaCorrelationRule, or a compiled run's stand-in of one (r53sigma.scan.compiledrun):
# no pySigma import here, so that a warm scan needs none
AnyRule = Any
EVIDENCE_PER_GROUP = 20  # events kept per correlation alert, to show why it fired


class EngineError(ValueError):
    """A rule the engine cannot evaluate (unknown log source or field, unsupported construct)."""


@dataclass
class Alert:
    """One detection: a matching event of a plain rule, or one burst of a correlation for one group
    (``window_start``/``window_end``: the times of the burst's first and last events; see
    :mod:`r53sigma.scan.correlations`)."""

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


def make_alert(rule: AnyRule, **kwargs: Any) -> Alert:
    level = getattr(rule.level, "name", None)
    return Alert(str(rule.id or rule.name or ""), rule.title, level.lower() if level else None, rule, **kwargs)


def describe(rule: AnyRule) -> str:
    where = f", {rule.source.path}" if rule.source and rule.source.path else ""
    return f"rule {rule.title!r} ({rule.id or rule.name or 'no id'}{where})"
