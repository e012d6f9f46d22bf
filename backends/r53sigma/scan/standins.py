"""The stand-ins of a compiled run: plain-data forms of pySigma's rules that the engines use as they use pySigma's.

:mod:`r53sigma.scan.compiledrun` builds and stores a run; these classes are what it restores. A
:class:`CachedRule` carries what each engine evaluates (its SQL, its match plan), a :class:`CachedCorrelation`
its CorrelationPlan over CachedRule stand-ins, and both what alerts print. ``isinstance`` against the names of
:mod:`r53sigma.scan.sigma_names` holds for them as for pySigma's classes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from r53sigma.scan import sigma_names


class _Location:
    """Where a rule came from, as ``describe`` prints it (pySigma's SigmaRuleLocation)."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None


class _Level:
    def __init__(self, name: str):
        self.name = name


class _LogSource:
    """A rule's ``logsource`` (pySigma's SigmaLogSource), which the catalogue resolves (first-seen rules, baselines)."""

    def __init__(self, data: dict):
        self.category, self.product, self.service = data["category"], data["product"], data["service"]


class _Described:
    def _describe_from(self, data: dict) -> None:
        self.index: int = data["index"]
        self.id: str | None = data["id"]
        self.name: str | None = data["name"]
        self.title: str = data["title"]
        self.level = _Level(data["level"]) if data["level"] else None
        self.source = _Location(data["path"])
        self._output: bool = data["output"]


class CachedRule(sigma_names.SigmaRule, _Described):
    """A single-event rule of a compiled run: its log source, SQL and what its alerts print; a first-seen rule
    also its ``first_seen`` attribute (r53sigma.first_seen reads it as from pySigma's rule)."""

    def __init__(self, data: dict):
        self._describe_from(data)
        self.logsource = _LogSource(data["logsource"])
        self.custom_attributes: dict = data["custom_attributes"]
        self.sql: str = data["sql"]
        self.unknown: bool = data["unknown"]
        self.match: list | None = data["match"]  # None: the reference engine refused it (the cold run said why)

    @property
    def log_source(self) -> str:
        """The catalogue log source its ``logsource`` resolves to (``resolver`` ...)."""
        from r53sigma.scan.values import log_source_of

        return log_source_of(self)[0].source


class CachedCondition(sigma_names.SigmaCorrelationCondition):
    def __init__(self, data: dict):
        self.op = sigma_names.SigmaCorrelationConditionOperator.named(data["op"])
        self.count, self.fieldref, self.percentile = data["count"], data["fieldref"], data["percentile"]


class CachedExtendedCondition(sigma_names.SigmaExtendedCorrelationCondition):
    def __init__(self, data: dict):
        self.expression = data["expression"]
        self._parsed = condition_tree(data["tree"])
        self.fieldref = None


class CachedCorrelation(sigma_names.SigmaCorrelationRule, _Described):
    """A correlation of a compiled run; ``plan`` is its CorrelationPlan over CachedRule stand-ins."""

    def __init__(self, data: dict):
        self._describe_from(data)
        self.type = sigma_names.SigmaCorrelationType.named(data["type"])
        condition = data["condition"]
        self.condition = CachedExtendedCondition(condition) if "expression" in condition else CachedCondition(condition)
        self.plan: Any = None


CONDITION_NODES = {"and": sigma_names.CorrelationConditionAND, "or": sigma_names.CorrelationConditionOR,
          "not": sigma_names.CorrelationConditionNOT}


def condition_tree(node: list) -> Any:
    if node[0] == "ref":
        return sigma_names.SigmaRuleReference(node[1])
    return CONDITION_NODES[node[0]]([condition_tree(a) for a in node[1]])
