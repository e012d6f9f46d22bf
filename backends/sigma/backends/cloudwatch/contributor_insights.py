"""Sigma burst correlations to CloudWatch Contributor Insights rules plus the alarm on their metric.

Written from AWS's pages (the model, r53sigma/targets/cloudwatch/contributor_insights_model.py, cites
them): a rule body (`Schema` CloudWatchLogRule v1, `LogFormat` JSON, `Contribution` with up to four
`Keys` and four `Filters`, `AggregateOn` Count) counts the matching events of each contributor (one
combination of key values); an alarm on `INSIGHT_RULE_METRIC(rule, MaxContributorValue)` fires when
the top contributor of one alarm period passes the threshold.

What translates (everything else is refused with the reason, and the rule keeps its saved query):
- `event_count` over one rule, grouped by up to four fields, with `gt`/`gte`: Keys = the group-by
  fields, the alarm's period = the timespan. `value_count` without group-by: Keys = the counted field,
  alarmed on `UniqueContributors` (the number of distinct values in the period).
- the base rule as filters, all ANDed (the page: "evaluates them with a logical AND"): a case-
  sensitive string or a list of them (`In`, at most 10), prefixes (`StartsWith`), numbers (`EqualTo`,
  `GreaterThan`, `LessThan`) and `|exists` (`IsPresent`). Matching is case sensitive, so caseless
  values with letters translate only where the pipeline folded them to the field's one case.
  Negations are refused: the pages do not say whether `NotIn`/`NotEqualTo` match a missing field.
- each key also gets `IsPresent: true` (room permitting): the reference engine does not group an
  event that lacks a group-by value, and the pages do not say how Contributor Insights keys it.
- space-delimited lines (public hosted-zone logs) are `LogFormat: CLF` rules: the page's "a CLF log
  event can be treated as array with an index starting from 1", `Fields` naming the positions the rule
  uses after the catalogue's columns; a key whose column can hold `-` (no value) gets `NotIn: ["-"]`.

Exactness: the alarm sees fixed, clock-aligned periods of the timespan, not a sliding window. Every
alarm is a real burst (a period is a window of the timespan), and a burst of at least 2*N+1 events
within the timespan (N the `gt` count) always alarms (two periods hold it, one of them more than N).
"""
from __future__ import annotations

import json

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR
from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCasedString, SigmaCompareExpression, SigmaExists, SigmaNumber, SigmaString, CompareOperators

from . import patterns

MAX_KEYS = 4  # "a Keys array with as many as four members"
MAX_FILTERS = 4  # "an array of as many as four Filters"
MAX_VALUES = 10  # "The array can include as many as 10 string values"
MAX_ALARM_SECONDS = 86400  # an alarm evaluates at most one day
COMPARE = {CompareOperators.GT: "GreaterThan", CompareOperators.LT: "LessThan"}
ALARM_OPERATORS = {SigmaCorrelationConditionOperator.GT: "GreaterThanThreshold",
                   SigmaCorrelationConditionOperator.GTE: "GreaterThanOrEqualToThreshold"}


def refuse(message: str) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(f"CloudWatch Contributor Insights: {message}")


def selector(field: str, columns: list[str] | None = None) -> str:
    if columns is not None:  # CLF: the Fields alias of the column
        if field not in columns:
            raise refuse(f"'{field}' is not a column of the space-delimited line")
        return field
    if not all(part and all(c.isalnum() or c in "_-" for c in part) for part in field.split(".")):
        raise refuse(f"field name '{field}' cannot be written in JSON property format")
    return "$." + field


def filters_of(cond, facts_of, columns: list[str] | None = None) -> list[dict]:
    """The base rule's condition as Contributor Insights filters (ANDed), or a refusal; ``columns``:
    the space-delimited line's column names (a CLF rule), None for JSON."""
    items = cond.args if isinstance(cond, ConditionAND) else [cond]
    filters: list[dict] = []
    for item in items:
        if isinstance(item, ConditionAND):
            filters += filters_of(item, facts_of, columns)
        else:
            filters.append(_one_filter(item, facts_of, columns))
    return filters


def _one_filter(item, facts_of, columns=None) -> dict:
    if isinstance(item, ConditionNOT):
        raise refuse("a negation: the pages do not say whether NotIn/NotEqualTo match an event without the field")
    tests = item.args if isinstance(item, ConditionOR) else [item]
    if not all(isinstance(t, ConditionFieldEqualsValueExpression) for t in tests) or len({t.field for t in tests}) != 1:
        raise refuse("an OR across fields or of sub-conditions (filters are ANDed, each tests one field)")
    field = tests[0].field
    facts = facts_of(field)
    if facts.get("derived"):
        raise refuse(f"'{field}' is computed from {facts['derived']['from']} (not in the record): a rule computes nothing")
    if facts.get("array"):
        raise refuse(f"'{field}' is a member of the JSON array '{facts['array']}' (JSON property format reaches elements only by index)")
    match = selector(field, columns)
    values = [t.value for t in tests]
    if len(values) == 1 and isinstance(values[0], SigmaExists):
        return {"Match": match, "IsPresent": bool(values[0].exists)}
    if len(values) == 1 and isinstance(values[0], SigmaNumber):
        return {"Match": match, "EqualTo": values[0].number}
    if len(values) == 1 and isinstance(values[0], SigmaCompareExpression):
        if values[0].op not in COMPARE:
            raise refuse(f"'{field}' compared with {values[0].op.name}: the filters have GreaterThan and LessThan only")
        return {"Match": match, COMPARE[values[0].op]: values[0].number.number}
    if not all(isinstance(v, SigmaString) for v in values):
        raise refuse(f"{type(values[0]).__name__} values on '{field}' have no filter operator")
    exact, prefixes = [], []
    for value in values:
        items = patterns.items_of(value)
        letters = any(isinstance(i, patterns.Lit) and i.char.isalpha() for i in items)
        if letters and not isinstance(value, SigmaCasedString):
            raise refuse(f"a caseless value on '{field}': rule matching is case sensitive and the field has no single case")
        literal = [i for i in items if isinstance(i, patterns.Lit)]
        if len(literal) == len(items):
            text = "".join(i.char for i in literal)
            exact += [text, text + "."] if facts.get("strip_trailing_dot") and not text.endswith(".") else [text]
        elif len(literal) == len(items) - 1 and items[-1] == patterns.STAR:
            prefixes.append("".join(i.char for i in literal))
        else:
            raise refuse(f"a value on '{field}' with a wildcard other than a trailing '*' (filters offer In and StartsWith)")
    if exact and prefixes:
        raise refuse(f"exact values and prefixes on '{field}' in one list (one operator per filter)")
    values_out = list(dict.fromkeys(exact or prefixes))
    if len(values_out) > MAX_VALUES:
        raise refuse(f"{len(values_out)} values on '{field}', a filter holds {MAX_VALUES}")
    return {"Match": match, "In" if exact else "StartsWith": values_out}


def rule_document(rule: SigmaCorrelationRule, base_filters: list, group_fields: list[str], value_field: str | None,
                  log_groups: list[str], facts_of, columns: list[str] | None = None) -> dict:
    """{"RuleBody": the CloudWatchLogRule, "Alarm": what the alarm on its metric compares}."""
    kind = rule.type.name.lower()
    if kind not in ("event_count", "value_count"):
        raise refuse(f"correlation type {kind} (a rule counts contributors; it cannot order or pair rules)")
    if len(rule.rules) != 1:
        raise refuse("several rules in one correlation (one rule's filters are ANDed; rules would need an OR)")
    if isinstance(base_filters, Exception):
        raise refuse(f"its rule: {str(base_filters).replace('CloudWatch Contributor Insights: ', '')}")
    op = rule.condition.op
    if op not in ALARM_OPERATORS:
        raise refuse(f"the condition {op.name.lower()}: an absent contributor reports nothing, so only gt/gte bursts alarm")
    seconds = int(rule.timespan.seconds)
    if seconds % 60 or seconds > MAX_ALARM_SECONDS:
        raise refuse(f"a timespan of {seconds}s: an alarm period is a multiple of 60 seconds, at most one day")
    if kind == "value_count":
        if group_fields:
            raise refuse("value_count per group: UniqueContributors counts the distinct keys of all groups together")
        keys, metric = [value_field], "UniqueContributors"
    else:
        if not group_fields:
            raise refuse("event_count without group-by: no contributor to key on (a threshold on a metric filter's count would do; not generated)")
        keys, metric = list(group_fields), "MaxContributorValue"
    if len(keys) > MAX_KEYS:
        raise refuse(f"{len(keys)} keys, a rule has at most {MAX_KEYS}")
    for key in keys:
        if facts_of(key).get("array"):
            raise refuse(f"the key '{key}' is a member of a JSON array")
        if facts_of(key).get("derived"):
            raise refuse(f"the key '{key}' is computed from {facts_of(key)['derived']['from']} (not in the record): a rule computes nothing")
    filters = list(base_filters)
    if columns is None:
        present = [{"Match": selector(k), "IsPresent": True} for k in keys
                   if {"Match": selector(k), "IsPresent": True} not in filters]
    else:  # every column is there; `-` is the line's "no value"
        present = [{"Match": selector(k, columns), "NotIn": ["-"]} for k in keys if facts_of(k).get("dash_absent")]
    if len(filters) + len(present) > MAX_FILTERS:
        raise refuse(f"{len(filters)} filters and {len(present)} key presence tests, a rule holds {MAX_FILTERS}")
    body = {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
        "LogGroupNames": list(log_groups),
        "LogFormat": "JSON" if columns is None else "CLF",
        "Contribution": {"Keys": [selector(k, columns) for k in keys], "Filters": filters + present},
        "AggregateOn": "Count",
    }
    if columns is not None:
        used = {k for k in keys} | {f["Match"] for f in filters}
        body = {**body, "Fields": {str(n): name for n, name in enumerate(columns, 1) if name in used}}
        body = {k: body[k] for k in ("Schema", "LogGroupNames", "LogFormat", "Fields", "Contribution", "AggregateOn")}
    alarm = {"Metric": metric, "Period": seconds, "ComparisonOperator": ALARM_OPERATORS[op],
             "Threshold": rule.condition.count}
    return {"RuleBody": body, "Alarm": alarm}


def render(document: dict) -> str:
    return json.dumps(document, sort_keys=False, separators=(",", ":"))
