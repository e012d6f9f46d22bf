"""An executable model of CloudWatch Contributor Insights rules on JSON logs and of an alarm on their
metric, written from AWS's documentation only, as strict as the pages say the service is.

Pages (Amazon CloudWatch User Guide and API Reference):
- RS  "Contributor Insights rule syntax in CloudWatch"
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/ContributorInsights-RuleSyntax.html
- GR  "GetInsightRuleReport" (UniqueContributors, MaxContributorValue: "the value of the top
      contributor for each data point ... If this rule aggregates by COUNT, the top contributor for
      each data point is the contributor with the most occurrences in that period")
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetInsightRuleReport.html
- PA  "PutInsightRule" (RuleName 1..128 characters `[\\x20-\\x7E]+`, RuleDefinition 1..8192, RuleState)
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutInsightRule.html
- DP  "InsightRuleMetricDatapoint" (MaxContributorValue: "The maximum value provided by one contributor
      during this timestamp. Each timestamp is evaluated separately")
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_InsightRuleMetricDatapoint.html
- MA  "PutMetricAlarm" (Period: 10, 20, 30 or a multiple of 60; evaluation range at most one day;
      TreatMissingData omitted: "the default behavior of missing is used")
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html

Rejections (RejectedRule, the service's "invalid rule"), each from RS unless marked:
- `Schema` must be {"Name": "CloudWatchLogRule", "Version": 1}; `LogGroupNames` or `LogGroupARNs`,
  not both; `LogFormat` JSON or CLF (`Fields` only with CLF); `AggregateOn` Count or Sum, `ValueOf`
  only with Sum; `Keys` 1..4 members; `Filters` at most 4, each a `Match` and one operator among
  In, NotIn, StartsWith (1..10 strings), GreaterThan, LessThan, EqualTo, NotEqualTo (one number),
  IsPresent (true/false); fields in JSON property format (`$.a.b`, `$.a[0]`); the definition is at most
  8192 characters (PA); no other key (the pages list these and only these).
Evaluation: matching is case sensitive (RS); filters are ANDed, an operator's strings ORed (RS); a
key's value is the JSON value's text. Not documented, and so the model's choice, which our rules
never depend on (each key carries an `IsPresent: true` filter): an event without a key's value is
not counted.
Operand types (RS: In, NotIn, StartsWith are "followed by an array of string values to check for";
GreaterThan, LessThan, EqualTo, NotEqualTo by "a single numerical value to compare with"): a string
operator tests a JSON string (a CLF field is text); a number operator tests a JSON number, or a CLF
field whose text is a number (RS's own CLF example filters `"StatusCode"` with `"EqualTo": 200`).
Anything else is on no page and raises Undocumented (the model cannot say) rather than guessing:
a string operator on a JSON number, boolean or null (is `In: ["5"]` true for `5`?), a number
operator on a JSON string or on CLF text that is no number, and NotIn / NotEqualTo on a field the
event lacks (the backend's own reason to refuse negations). In, StartsWith and the ordering
operators do not select an event without the field.
CLF rules (RS, "Additional field in rules for CLF logs"): a log event is an array of fields indexed
from 1 (`"1"`, `"2"`, ...), `Fields` gives positions aliases usable in `Keys`, `ValueOf` and `Filters`;
the model splits a line into fields as space-delimited filter patterns do (filter_pattern_model:
spaces, `[...]` and `"..."` one field each) — the pages do not define CLF splitting further.
Periods: the alarm's metric is evaluated over fixed periods of `Period` seconds aligned to the epoch
(MA: a data point per period). The alarm compares ONE value per period with the threshold (MA):
MaxContributorValue = the top contributor's count in that period (GR, DP), UniqueContributors = the
number of contributors. So `LessThanThreshold` on MaxContributorValue breaches only when EVERY
contributor is below it (not when some contributor is). A period without a counted event has no
data point, which the default TreatMissingData `missing` does not evaluate (MA): it never breaches.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

# the same JSON selectors as metric filter patterns (`$.a.b[0]`), read the same way
from r53sigma.targets.cloudwatch.filter_pattern_model import MISSING, _select

MAX_DEFINITION = 8192  # PA
MAX_KEYS = 4
MAX_FILTERS = 4
MAX_STRINGS = 10
STRING_OPERATORS = ("In", "NotIn", "StartsWith")
NUMBER_OPERATORS = ("GreaterThan", "LessThan", "EqualTo", "NotEqualTo")
OPERATORS = STRING_OPERATORS + NUMBER_OPERATORS + ("IsPresent",)
TOP_KEYS = {"Schema", "LogGroupNames", "LogGroupARNs", "LogFormat", "Fields", "Contribution", "AggregateOn"}
# RS "JSON property format notation": `$`, then a period and "an alphanumeric string with the name of the
# subproperty" (`-`: RS's own `c-count`; `_`: as filter-pattern selectors), indexes `[0]`; nothing else
PROPERTY = re.compile(r"\$(?:\.[A-Za-z0-9_-]+(?:\[[0-9]+\])*)+$")
ALARM_METRICS = ("UniqueContributors", "MaxContributorValue", "SampleCount", "Sum", "Minimum", "Maximum", "Average")
ALARM_OPERATORS = {"GreaterThanThreshold": lambda v, t: v > t, "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
                   "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}


class RejectedRule(ValueError):
    """CloudWatch would reject this rule definition or alarm."""


class Undocumented(NotImplementedError):
    """The pages do not say how CloudWatch evaluates this (the model will not guess)."""


CLF_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?$")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise RejectedRule(message)


def _property(text: Any, what: str) -> str:
    _require(isinstance(text, str) and bool(PROPERTY.match(text)), f"{what} {text!r} is not in JSON property format")
    return text


def check_rule(body: dict) -> None:
    """Raise RejectedRule where the documented syntax is not met."""
    _require(isinstance(body, dict), "the rule definition is not a JSON object")
    _require(len(json.dumps(body)) <= MAX_DEFINITION, f"the rule definition is longer than {MAX_DEFINITION} characters")
    _require(set(body) <= TOP_KEYS, f"unknown keys {sorted(set(body) - TOP_KEYS)}")
    _require(body.get("Schema") == {"Name": "CloudWatchLogRule", "Version": 1}, "Schema must be CloudWatchLogRule version 1")
    _require(("LogGroupNames" in body) != ("LogGroupARNs" in body), "exactly one of LogGroupNames and LogGroupARNs")
    groups = body.get("LogGroupNames", body.get("LogGroupARNs"))
    _require(isinstance(groups, list) and groups and all(isinstance(g, str) and g for g in groups), "log groups must be a non-empty list of names")
    # RS: "you can optionally use * at the end of a string" (LogGroupNames); ARNs take it "in some cases"
    _require("LogGroupNames" not in body or all("*" not in g[:-1] for g in groups), "a * in a log group name only at its end")
    _require(body.get("LogFormat") in ("JSON", "CLF"), "LogFormat must be JSON or CLF")
    _require("Fields" not in body or body["LogFormat"] == "CLF", "Fields is for CLF rules")
    _require(body.get("AggregateOn") in ("Count", "Sum"), "AggregateOn must be Count or Sum")
    contribution = body.get("Contribution")
    _require(isinstance(contribution, dict) and set(contribution) <= {"Keys", "ValueOf", "Filters"}, "Contribution holds Keys, ValueOf, Filters")
    keys = contribution.get("Keys")
    _require(isinstance(keys, list) and 1 <= len(keys) <= MAX_KEYS, f"Keys must hold 1 to {MAX_KEYS} fields")
    aliases = body.get("Fields", {})
    if body["LogFormat"] == "CLF":
        _require(isinstance(aliases, dict) and all(isinstance(k, str) and k.isdigit() and int(k) >= 1 and isinstance(v, str) and v
                                                   for k, v in aliases.items()), "Fields maps positions (\"1\", \"2\", ...) to names")
    for key in keys:
        _field(body, key, "key")
    _require(("ValueOf" in contribution) == (body["AggregateOn"] == "Sum"), "ValueOf is given exactly when AggregateOn is Sum")
    filters = contribution.get("Filters", [])
    _require(isinstance(filters, list) and len(filters) <= MAX_FILTERS, f"at most {MAX_FILTERS} filters")
    for item in filters:
        _require(isinstance(item, dict) and "Match" in item, "a filter needs a Match field")
        _field(body, item["Match"], "Match")
        operators = [k for k in item if k != "Match"]
        _require(len(operators) == 1 and operators[0] in OPERATORS, f"a filter takes one operator of {', '.join(OPERATORS)}, not {operators}")
        op, value = operators[0], item[operators[0]]
        if op in STRING_OPERATORS:
            _require(isinstance(value, list) and 1 <= len(value) <= MAX_STRINGS and all(isinstance(v, str) for v in value),
                     f"{op} takes 1 to {MAX_STRINGS} strings")
        elif op in NUMBER_OPERATORS:
            _require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{op} takes one number")
        else:
            _require(isinstance(value, bool), "IsPresent takes true or false")


def _field(body: dict, name: Any, what: str) -> None:
    if body["LogFormat"] == "JSON":
        _property(name, what)
    else:
        _require(isinstance(name, str) and (name in body.get("Fields", {}).values() or (name.isdigit() and int(name) >= 1)),
                 f"{what} {name!r} is neither a position nor a Fields alias")


def parse_definition(text: str) -> dict:
    """A RuleDefinition as PutInsightRule takes it: ASCII text (PA) holding a valid rule."""
    _require(isinstance(text, str) and 1 <= len(text) <= MAX_DEFINITION, f"RuleDefinition is 1 to {MAX_DEFINITION} characters")
    _require(all(ord(c) < 0x80 for c in text), "RuleDefinition holds ASCII characters only")
    try:
        body = json.loads(text)
    except ValueError as error:
        raise RejectedRule(f"RuleDefinition is not JSON: {error}") from None
    check_rule(body)
    return body


def _text(value: Any) -> str | None:
    if value is MISSING or value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _passes(item: dict, record: Any, select, clf: bool = False) -> bool:
    value = select(record, item["Match"])
    op = next(k for k in item if k != "Match")
    wanted = item[op]
    if op == "IsPresent":
        return (value is not MISSING) == wanted
    if value is MISSING:
        if op in ("NotIn", "NotEqualTo"):
            raise Undocumented(f"{op} on {item['Match']}, which the event lacks: the pages do not say whether it matches")
        return False
    if op in STRING_OPERATORS:
        if not isinstance(value, str):
            raise Undocumented(f"{op} (strings) on {item['Match']} = {json.dumps(value)}: the pages compare strings only")
        if op == "In":
            return value in wanted
        if op == "NotIn":
            return value not in wanted
        return any(value.startswith(prefix) for prefix in wanted)
    if clf and isinstance(value, str) and CLF_NUMBER.match(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Undocumented(f"{op} (a number) on {item['Match']} = {json.dumps(value)}: the pages compare numbers only")
    return {"GreaterThan": value > wanted, "LessThan": value < wanted,
            "EqualTo": value == wanted, "NotEqualTo": value != wanted}[op]


@dataclass
class Rule:
    body: dict

    @classmethod
    def parse(cls, body: dict) -> "Rule":
        check_rule(body)
        if body["AggregateOn"] != "Count":
            raise NotImplementedError("the model evaluates rules aggregated on Count")
        return cls(body)

    def contributor(self, message: str) -> tuple | None:
        """The contributor (key values) a log event counts for, or None where it is not counted."""
        if self.body["LogFormat"] == "CLF":
            from r53sigma.targets.cloudwatch.filter_pattern_model import line_fields

            record, select = line_fields(message), self._clf_select
        else:
            try:
                record = json.loads(message)
            except ValueError:
                return None  # a JSON rule reads JSON log events
            select = _select
        contribution = self.body["Contribution"]
        clf = self.body["LogFormat"] == "CLF"
        if not all(_passes(item, record, select, clf) for item in contribution.get("Filters", [])):
            return None
        values = tuple(_text(select(record, key)) for key in contribution["Keys"])
        return None if None in values else values

    def _clf_select(self, fields: list[str], name: str) -> Any:
        position = next((int(k) for k, v in self.body.get("Fields", {}).items() if v == name), None)
        position = position if position is not None else int(name)
        return fields[position - 1] if position <= len(fields) else MISSING

    def report(self, events: Iterable[tuple[float, str]], period: int) -> dict[float, dict[tuple, int]]:
        """Per aligned period start: each contributor's count."""
        periods: dict[float, dict[tuple, int]] = {}
        for time, message in events:
            who = self.contributor(message)
            if who is not None:
                start = float(int(time // period) * period)
                counts = periods.setdefault(start, {})
                counts[who] = counts.get(who, 0) + 1
        return periods


def check_alarm(alarm: dict) -> None:
    _require(alarm.get("Metric") in ALARM_METRICS, f"metric {alarm.get('Metric')!r} is not a Contributor Insights rule metric")
    period = alarm.get("Period")
    _require(isinstance(period, int) and (period in (10, 20, 30) or (period > 0 and period % 60 == 0)), "Period: 10, 20, 30 or a multiple of 60")
    _require(period <= 86400, "an alarm evaluates at most one day")
    _require(alarm.get("ComparisonOperator") in ALARM_OPERATORS, f"comparison {alarm.get('ComparisonOperator')!r}")
    _require(isinstance(alarm.get("Threshold"), (int, float)), "Threshold is a number")


def alarms(document: dict, events: Iterable[tuple[float, str]]) -> list[dict]:
    """The periods in which the alarm breaches: {"period": start, "contributor": ...}. The breach is the
    period's one metric value against the threshold (MA, DP); for a GreaterThan* alarm on
    MaxContributorValue each contributor past the threshold is listed (the report's contributors the
    analyst is sent to; the top one is among them), otherwise one entry with contributor None."""
    rule = Rule.parse(document["RuleBody"])
    alarm = document["Alarm"]
    check_alarm(alarm)
    if alarm["Metric"] not in ("MaxContributorValue", "UniqueContributors"):
        raise NotImplementedError("the model evaluates MaxContributorValue and UniqueContributors")
    compare = ALARM_OPERATORS[alarm["ComparisonOperator"]]
    breaching = []
    greater = alarm["ComparisonOperator"].startswith("Greater")
    for start, counts in sorted(rule.report(events, alarm["Period"]).items()):  # periods with a data point
        top = alarm["Metric"] == "MaxContributorValue"
        value = max(counts.values()) if top else len(counts)
        if not compare(value, alarm["Threshold"]):
            continue
        if top and greater:  # max > t exactly when some contributor > t: those are the ones to look at
            breaching += [{"period": start, "contributor": who} for who, count in sorted(counts.items())
                          if compare(count, alarm["Threshold"])]
        else:
            breaching.append({"period": start, "contributor": None})
    return breaching
