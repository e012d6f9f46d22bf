"""Burst correlations as Contributor Insights rules (the metric-filter format's correlations): the rule
body meets the documented syntax (the model rejects what the page rules out), selects the events the
reference engine counts, and its alarm holds the fixed-period guarantee the package states."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule

from cw_support import resolver
from r53sigma.scan import records as event_reading
from r53sigma.scan.reference import Engine
from r53sigma.targets.cloudwatch import contributor_insights_model as model
from sigma.backends.cloudwatch import CloudWatchMetricFilterBackend
from sigma.pipelines.route53 import pipelines

BASE = """title: base
id: 11111111-2222-4333-8444-000000000001
name: base
logsource: {product: aws, service: route53resolver}
detection:
%s
"""
CORRELATION = """---
title: burst
id: 11111111-2222-4333-8444-000000000002
correlation:
    type: %s
    rules: [base]
%s
    timespan: %s
    condition: %s
"""


def convert(detection: str, kind="event_count", group="    group-by: [srcaddr]", timespan="1m", condition="{gt: 3}"):
    text = BASE % detection + CORRELATION % (kind, group, timespan, condition)
    backend = CloudWatchMetricFilterBackend(pipelines["route53_cloudwatch"](), collect_errors=True)
    queries = backend.convert(SigmaCollection.from_yaml(text))
    refusals = [str(e) for r, e in backend.errors if isinstance(r, SigmaCorrelationRule)]
    return text, (json.loads(queries[-1]) if not refusals else None), refusals


def at(seconds: float, **fields) -> tuple[float, str]:
    return seconds, resolver(**fields)


def engine_bursts(text: str, events: list[tuple[float, str]]) -> int:
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    correlation = next(r for r in collection.rules if isinstance(r, SigmaCorrelationRule))
    parsed = []
    for time, raw in events:
        parsed.append(dataclasses.replace(event_reading.parse_record(raw), time=time))
    return len(Engine(collection).evaluate(correlation, parsed))


def test_event_count_by_source_is_a_rule_keyed_on_the_source_with_the_base_rule_as_filters():
    _, document, refusals = convert("  sel: {query_type: [TXT, 'NULL']}\n  condition: sel")
    assert not refusals
    body = model.parse_definition(json.dumps(document["RuleBody"]))
    assert body["Contribution"] == {"Keys": ["$.srcaddr"], "Filters": [
        {"Match": "$.query_type", "In": ["TXT", "NULL"]}, {"Match": "$.srcaddr", "IsPresent": True}]}
    assert document["Alarm"] == {"Metric": "MaxContributorValue", "Period": 60, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 3}
    rule = model.Rule.parse(body)
    assert rule.contributor(resolver(query_type="TXT", srcaddr="10.1.1.1")) == ("10.1.1.1",)
    assert rule.contributor(resolver(query_type="A")) is None
    assert rule.contributor(resolver(query_type="txt")) is None  # the pipeline folds the rule's value; AWS writes upper case


def test_filters_select_what_the_reference_engine_selects():
    detection = "  sel: {firewall_rule_action: BLOCK, srcids.instance|exists: true, query_name|cased|startswith: ['evil', 'bad']}\n  condition: sel"
    text, document, refusals = convert(detection, group="    group-by: [srcids.instance]", timespan="10m", condition="{gte: 2}")
    assert not refusals
    rule = model.Rule.parse(document["RuleBody"])
    base = SigmaCollection.from_yaml(text).rules[0]
    raws = [resolver("evil.example.", firewall_rule_action="BLOCK"), resolver("evil.example.", firewall_rule_action="ALERT"),
            resolver("Evil.example.", firewall_rule_action="BLOCK"), resolver("bad.example.", firewall_rule_action="BLOCK", srcids={}),
            resolver("bad.example.", firewall_rule_action="BLOCK")]
    for raw in raws:
        assert (rule.contributor(raw) is not None) is Engine([base]).matches(base, event_reading.parse_record(raw)), raw


def test_trailing_dot_fields_match_both_spellings():
    _, document, _ = convert("  sel: {query_name|cased: 'dns.google'}\n  condition: sel")
    rule = model.Rule.parse(document["RuleBody"])
    assert rule.contributor(resolver("dns.google.")) and rule.contributor(resolver("dns.google"))


@pytest.mark.parametrize("detection, kind, group, condition, reason", [
    ("  sel: {query_name|endswith: '.evil.com'}\n  condition: sel", "event_count", "    group-by: [srcaddr]", "{gt: 3}", "caseless value"),
    ("  sel: {query_type: TXT}\n  f: {rcode: NXDOMAIN}\n  condition: sel and not f", "event_count", "    group-by: [srcaddr]", "{gt: 3}", "negation"),
    ("  sel: {query_type: TXT}\n  condition: sel", "event_count", "    group-by: [srcaddr]", "{lt: 3}", "condition lt"),
    ("  sel: {query_type: TXT}\n  condition: sel", "value_count", "    group-by: [srcaddr]", "{field: query_name, gt: 3}", "value_count per group"),
    ("  a: {query_type: TXT}\n  b: {rcode: NXDOMAIN}\n  condition: a or b", "event_count", "    group-by: [srcaddr]", "{gt: 3}", "OR across fields"),
    ("  sel: {query_type: [A, AAAA, MX, NS, TXT, SOA, SRV, PTR, CNAME, CAA, ANY]}\n  condition: sel", "event_count", "    group-by: [srcaddr]", "{gt: 3}", "11 values"),
])
def test_what_a_rule_cannot_state_is_refused_with_the_reason(detection, kind, group, condition, reason):
    _, document, refusals = convert(detection, kind, group, condition=condition)
    assert document is None and refusals and reason in refusals[0], refusals


def test_value_count_without_group_by_alarms_on_unique_contributors():
    text, document, refusals = convert("  sel: {query_type: TXT}\n  condition: sel", "value_count", "", condition="{field: srcaddr, gt: 2}")
    assert not refusals and document["Alarm"]["Metric"] == "UniqueContributors"
    assert document["RuleBody"]["Contribution"]["Keys"] == ["$.srcaddr"]
    events = [at(5 + i, query_type="TXT", srcaddr=f"10.0.0.{i % 4}") for i in range(8)]
    assert len(model.alarms(document, events)) == 1 == engine_bursts(text, events)


@pytest.mark.parametrize("body, why", [
    ({"Contribution": {"Keys": ["$.a"] * 5}}, "Keys"),
    ({"Contribution": {"Keys": ["$.a"], "Filters": [{"Match": "$.a", "IsPresent": True}] * 5}}, "at most 4 filters"),
    ({"Contribution": {"Keys": ["$.a"], "Filters": [{"Match": "$.a", "In": [str(i) for i in range(11)]}]}}, "1 to 10 strings"),
    ({"Contribution": {"Keys": ["$.a"], "Filters": [{"Match": "$.a", "In": ["x"], "StartsWith": ["y"]}]}}, "one operator"),
    ({"Contribution": {"Keys": ["$.a"], "Filters": [{"Match": "$.a", "EqualTo": "200"}]}}, "one number"),
    ({"Contribution": {"Keys": ["$.a"], "ValueOf": "$.b"}}, "ValueOf"),
    ({"Contribution": {"Keys": ["a"]}}, "JSON property format"),
    ({"Fields": {"4": "ip"}}, "Fields is for CLF"),
    ({"Schema": {"Name": "CloudWatchLogRule", "Version": 2}}, "Schema"),
    ({"LogGroupARNs": ["arn:aws:logs:us-east-1:123456789012:log-group:x"]}, "exactly one of"),
    ({"AggregateOn": "Max"}, "AggregateOn"),
    ({"Description": "x"}, "unknown keys"),
    ({"LogGroupNames": ["a*b"]}, "only at its end"),  # RS: `*` at the end of a string
    ({"Contribution": {"Keys": ["$.@a"]}}, "JSON property format"),  # RS: an alphanumeric subproperty name
])
def test_model_rejects_what_the_syntax_page_rules_out(body, why):
    valid = {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": ["g"], "LogFormat": "JSON",
             "Contribution": {"Keys": ["$.a"]}, "AggregateOn": "Count"}
    model.check_rule(valid)
    with pytest.raises(model.RejectedRule, match=why):
        model.check_rule({**valid, **body})


def test_rule_definition_is_ascii_within_8192_characters():
    valid = {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": ["g"], "LogFormat": "JSON",
             "Contribution": {"Keys": ["$.a"], "Filters": [{"Match": "$.a", "In": ["café"]}]}, "AggregateOn": "Count"}
    model.parse_definition(json.dumps(valid))  # \\u escapes: ASCII
    with pytest.raises(model.RejectedRule, match="ASCII"):
        model.parse_definition(json.dumps(valid, ensure_ascii=False))


def test_fixed_periods_never_alarm_falsely_and_always_catch_2n_minus_1():
    """Random bursts against the reference engine's sliding window: every alarm is a real burst, and
    every burst of 2N-1 (the `gt: 3` rule needs N = 4, so 7) within the timespan alarms."""
    text, document, _ = convert("  sel: {query_type: TXT}\n  condition: sel")
    strict = text.replace("condition: {gt: 3}", "condition: {gt: 6}")
    generator = random.Random(14)
    seen = {"alarm": 0, "large burst": 0, "no burst": 0, "burst without alarm": 0}
    for _ in range(150):
        events = sorted(at(generator.uniform(0, 400), query_type=generator.choice(["TXT", "TXT", "A"]),
                           srcaddr=generator.choice(["10.0.0.1", "10.0.0.2"])) for _ in range(generator.randint(3, 30)))
        fired = {(b["period"], b["contributor"]) for b in model.alarms(document, events)}
        for start, who in fired:  # the period itself is a window of the timespan holding more than 3
            inside = [e for e in events if start <= e[0] < start + 60 and f'"srcaddr": "{who[0]}"' in e[1] and '"TXT"' in e[1]]
            assert len(inside) > 3
        if engine_bursts(strict, events):
            assert fired, events
            seen["large burst"] += 1
        if not engine_bursts(text, events):
            assert not fired, events
            seen["no burst"] += 1
        elif not fired:
            seen["burst without alarm"] += 1  # the fixed periods' documented miss
        seen["alarm"] += bool(fired)
    assert all(seen.values()), seen  # the random cases reach every branch


PUBLIC_BASE = BASE.replace("logsource: {product: aws, service: route53resolver}", "logsource: {product: aws, service: route53}")


def test_public_zone_lines_are_clf_rules_on_the_catalogues_positions():
    from cw_support import public_line

    text = PUBLIC_BASE % "  sel: {responseCode: NXDOMAIN}\n  condition: sel" + CORRELATION % ("event_count", "    group-by: [hostZoneId]", "1m", "{gt: 2}")
    backend = CloudWatchMetricFilterBackend(pipelines["route53_cloudwatch"](), collect_errors=True)
    document = json.loads(backend.convert(SigmaCollection.from_yaml(text))[-1])
    body = model.parse_definition(json.dumps(document["RuleBody"]))
    assert body["LogFormat"] == "CLF" and body["Fields"] == {"3": "hostZoneId", "6": "responseCode"}
    assert body["Contribution"]["Keys"] == ["hostZoneId"]
    rule = model.Rule.parse(body)
    assert rule.contributor(public_line(rcode="NXDOMAIN")) == ("Z123412341234",)
    assert rule.contributor(public_line(rcode="NOERROR")) is None
    lines = [(10 + i, public_line(f"n{i}.example.com", rcode="NXDOMAIN")) for i in range(4)]
    assert len(model.alarms(document, lines)) == 1 == engine_bursts(text, lines)


@pytest.mark.parametrize("change, why", [
    ({"Fields": {"x": "name"}}, "Fields maps positions"),
    ({"Contribution": {"Keys": ["$.name"]}}, "neither a position nor a Fields alias"),
])
def test_model_checks_clf_rules_as_the_page_describes(change, why):
    valid = {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": ["g"], "LogFormat": "CLF",
             "Fields": {"4": "name"}, "Contribution": {"Keys": ["name"], "Filters": [{"Match": "2", "In": ["x"]}]}, "AggregateOn": "Count"}
    model.check_rule(valid)
    with pytest.raises(model.RejectedRule, match=why):
        model.check_rule({**valid, **change})


def _document(filters, comparison="GreaterThanThreshold", threshold=2, log_format="JSON", keys=("$.srcaddr",), fields=None):
    body = {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": ["g"], "LogFormat": log_format,
            "Contribution": {"Keys": list(keys), "Filters": filters}, "AggregateOn": "Count"}
    if fields:
        body = {**body, "Fields": fields}
    return {"RuleBody": body, "Alarm": {"Metric": "MaxContributorValue", "Period": 60,
                                        "ComparisonOperator": comparison, "Threshold": threshold}}


def test_max_contributor_value_is_the_top_contributors_count_so_less_than_needs_every_contributor_below():
    # GR / InsightRuleMetricDatapoint: ONE value per period, the top contributor's; the alarm compares that
    events = [at(1, srcaddr="10.0.0.1"), at(2, srcaddr="10.0.0.1"), at(3, srcaddr="10.0.0.1"),  # top: 3
              at(4, srcaddr="10.0.0.2"),  # a contributor below 2, but the period's value is 3
              at(61, srcaddr="10.0.0.3")]  # next period: value 1
    below = model.alarms(_document([], "LessThanThreshold"), events)
    assert [b["period"] for b in below] == [60.0]  # only the period whose top contributor is below 2
    assert [b["period"] for b in model.alarms(_document([], "LessThanOrEqualToThreshold", 1), events)] == [60.0]
    above = model.alarms(_document([], "GreaterThanThreshold"), events)
    assert [(b["period"], b["contributor"]) for b in above] == [(0.0, ("10.0.0.1",))]
    assert model.alarms(_document([], "LessThanThreshold"), []) == []  # no data point: TreatMissingData missing


@pytest.mark.parametrize("value", [5, 5.0, True, None])
def test_string_operators_on_a_json_non_string_are_not_guessed(value):
    # RS: In / NotIn / StartsWith take "an array of string values"; whether "5" matches the number 5 is on no page
    for operator in ("In", "NotIn", "StartsWith"):
        rule = model.Rule.parse(_document([{"Match": "$.rcode", operator: ["5", "true"]}])["RuleBody"])
        with pytest.raises(model.Undocumented):
            rule.contributor(resolver(rcode=value))


def test_number_operators_read_json_numbers_and_clf_numeric_text_only():
    rule = model.Rule.parse(_document([{"Match": "$.port", "GreaterThan": 100}])["RuleBody"])
    assert rule.contributor(resolver(port=200)) == ("10.0.0.5",)
    assert rule.contributor(resolver(port=50)) is None
    with pytest.raises(model.Undocumented):
        rule.contributor(resolver(port="200"))  # a JSON string: RS compares "a single numerical value"
    clf = model.Rule.parse(_document([{"Match": "StatusCode", "EqualTo": 200}], log_format="CLF", keys=["1"],
                                     fields={"2": "StatusCode"})["RuleBody"])
    assert clf.contributor("10.0.0.1 200 x") == ("10.0.0.1",)  # RS's own CLF example: "EqualTo": 200
    assert clf.contributor("10.0.0.1 404 x") is None
    with pytest.raises(model.Undocumented):
        clf.contributor("10.0.0.1 - x")


def test_negated_operators_on_a_missing_field_are_not_guessed():
    for item in ({"Match": "$.nothere", "NotIn": ["x"]}, {"Match": "$.nothere", "NotEqualTo": 1}):
        rule = model.Rule.parse(_document([item])["RuleBody"])
        with pytest.raises(model.Undocumented):
            rule.contributor(resolver())
