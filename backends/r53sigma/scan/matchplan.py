"""A pySigma rule's match plan: its condition tree as plain data, for :mod:`r53sigma.scan.predicates`.

Each field name is resolved through the catalogue to a record path, each Sigma value to a value plan
(forms in :mod:`r53sigma.scan.predicates`); a rule the reference engine cannot evaluate raises
:class:`EngineError` here, where it is read, never while events are matched. ``of(rule)`` gives the
rule's log source and its plan.
"""
from __future__ import annotations

import re
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
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
from r53sigma.scan.patterns import re2_part
from r53sigma.scan.results import AnyRule, EngineError, describe
from r53sigma.scan.values import field_path, log_source_of


def of(rule: SigmaRule) -> tuple[str, list]:
    """(the catalogue log source the rule applies to, its predicate plan)."""
    log_source, generic = log_source_of(rule)
    reader = _Reader(rule, log_source, generic)
    conditions = [reader.node(c.parsed) for c in rule.detection.parsed_condition]
    return log_source.source, conditions[0] if len(conditions) == 1 else ["any", conditions]


class _Reader:
    """One rule's condition tree read into a predicate plan."""

    def __init__(self, rule: SigmaRule, log_source: catalogue.LogSource, generic: bool):
        self.rule, self.log_source, self.generic = rule, log_source, generic

    def node(self, node: Any) -> list:
        if isinstance(node, ConditionAND):
            return _one_or("all", [self.node(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return _one_or("any", self._or_args(node.args))
        if isinstance(node, ConditionNOT):
            return ["not", self.node(node.args[0])]
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return ["keyword", self.value(node.value, None)]
        if node is None:  # an empty detection matches nothing
            return ["never"]
        raise EngineError(f"{describe(self.rule)}: unsupported condition element {type(node).__name__}")

    def _or_args(self, args: list[Any]) -> list[list]:
        """Or-ed string values of one field become one test (value lists of 40 domains are common)."""
        by_field: dict[str, list[SigmaString]] = {}
        others = []
        for arg in args:
            strings = _plain_strings(arg.value) if isinstance(arg, ConditionFieldEqualsValueExpression) else None
            if strings is None:
                others.append(arg)
            else:
                by_field.setdefault(arg.field, []).extend(strings)
        merged = [["field", self._path(name), strings_plan(values, self.rule, name)] for name, values in by_field.items()]
        return merged + [self.node(a) for a in others]

    def _path(self, name: str) -> list[str]:
        return list(field_path(self.rule, self.log_source, self.generic, name))

    def field(self, name: str, value: Any) -> list:
        path = self._path(name)
        if isinstance(value, SigmaNull):
            return ["null", path]
        if isinstance(value, SigmaExists):
            return ["exists", path, bool(value.exists)]
        if isinstance(value, SigmaFieldReference):
            return ["fieldref", path, self._path(value.field), bool(value.starts_with), bool(value.ends_with)]
        return ["field", path, self.value(value, name)]

    def value(self, value: Any, name: str | None) -> list:
        """The plan of a test of one event value against one rule value."""
        strings = _plain_strings(value)
        if strings is not None:
            return strings_plan(strings, self.rule, name)
        if isinstance(value, SigmaExpansion):
            return ["either", [self.value(v, name) for v in value.values]]
        if isinstance(value, SigmaBool):
            return ["bool", bool(value.boolean)]
        if isinstance(value, SigmaNumber):
            return ["number", value.number]
        if isinstance(value, SigmaCompareExpression):
            return ["compare", value.op.name, value.number.number]
        if isinstance(value, SigmaRegularExpression):
            return ["regex", str(value.regexp), sorted(flag.name for flag in value.flags)]
        if isinstance(value, SigmaCIDRExpression):
            return ["cidr", str(value.network)]
        raise EngineError(
            f"{describe(self.rule)}: field {name!r}: unsupported value type {type(value).__name__}"
        )


def _one_or(kind: str, plans: list[list]) -> list:
    return plans[0] if len(plans) == 1 else [kind, plans]


def _plain_strings(value: Any) -> list[SigmaString] | None:
    """The strings a value stands for (an expansion of strings is or-ed), or None for other types."""
    if isinstance(value, SigmaString):
        return [value]
    if isinstance(value, SigmaExpansion) and all(isinstance(v, SigmaString) for v in value.values):
        return list(value.values)
    return None


def strings_plan(values: list[SigmaString], rule: AnyRule, name: str | None) -> list:
    """The plan of or-ed Sigma strings: per case (folded, then cased), exact, prefix, suffix and substring
    texts, and the other wildcard patterns as Python and RE2 regexes matched in full."""
    groups = {cased: [cased, set(), [], [], [], [], []] for cased in (False, True)}
    for value in values:
        cased = isinstance(value, SigmaCasedString)
        _, exact, prefixes, suffixes, infixes, regexes, re2_regexes = groups[cased]
        parts = list(value.s)
        if any(isinstance(p, Placeholder) for p in parts):
            raise EngineError(f"{describe(rule)}: field {name!r}: placeholder values (|expand) need a pipeline")
        fold = (lambda x: x) if cased else str.lower
        star = SpecialChars.WILDCARD_MULTI
        if all(isinstance(p, str) for p in parts):
            exact.add(fold("".join(parts)))
        elif len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
            prefixes.append(fold(parts[0]))
        elif len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
            suffixes.append(fold(parts[1]))
        elif len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
            infixes.append(fold(parts[1]))
        else:
            regexes.append(
                "".join(".*" if p is star else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(p) for p in parts)
            )
            re2_regexes.append("".join(re2_part(p) for p in parts))
    return ["strings", [[cased, sorted(exact), *rest] for cased, exact, *rest in groups.values() if exact or any(rest)]]
