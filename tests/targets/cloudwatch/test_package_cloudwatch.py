"""dist/cloudwatch/: the CloudFormation template (cfn-lint), query definitions, field indexes and transformers."""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r53sigma import catalogue, package
from r53sigma.targets.cloudwatch import package as cloudwatch_package
from support import REPO
from test_package_support import bundled_build, bundled_conversions, text

TEMPLATE = "cloudwatch/template.json"


def template() -> dict:
    return json.loads(text(bundled_build(), TEMPLATE))


def definitions() -> list[dict]:
    return json.loads(text(bundled_build(), "cloudwatch/query_definitions.json"))


def cloudwatch_conversions():
    return [c for (t, _), c in bundled_conversions().items() if t == "cloudwatch" and c.ok]  # refused rules are not packaged


def cfn_lint() -> list[str] | None:
    found = shutil.which("cfn-lint") or str(Path(sys.executable).with_name("cfn-lint"))
    return [found] if os.access(found, os.X_OK) else None


def test_template_is_cfn_lint_clean(tmp_path):
    command = cfn_lint()
    if command is None:
        pytest.skip("cfn-lint is not installed (pip install '.[test]')")
    path = tmp_path / "template.json"
    path.write_bytes(bundled_build().files[TEMPLATE])
    result = subprocess.run(command + [str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_query_definition_per_rule_in_a_folder_per_log_source():
    resources = template()["Resources"]
    queries = {r["Properties"]["Name"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::QueryDefinition"}
    conversions = cloudwatch_conversions()
    assert len(queries) == len(conversions)
    for c in conversions:
        source = package.source_of(c.logsource)
        properties = queries[f"r53sigma/{source}/{c.title}"]
        assert properties["QueryString"] == c.query


def test_log_groups_are_parameters_defaulting_to_the_catalogue():
    document = template()
    parameters = document["Parameters"]
    for source, log_source in catalogue.load().items():
        assert parameters[cloudwatch_package.parameter(source)]["Default"] == log_source.targets["cloudwatch"]["log_group"]
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Logs::QueryDefinition":
            source = resource["Properties"]["Name"].split("/")[1]
            assert resource["Properties"]["LogGroupNames"] == [{"Ref": cloudwatch_package.parameter(source)}]


def test_template_carries_the_transformers_and_field_indexes():
    types = [r["Type"] for r in template()["Resources"].values()]
    assert types.count("AWS::Logs::Transformer") == len(json.loads(text(bundled_build(), "cloudwatch/transformers.json")))
    assert types.count("AWS::Logs::AccountPolicy") == len(json.loads(text(bundled_build(), "cloudwatch/field_index_policies.json")))


def test_query_definitions_json_matches_the_template():
    by_name = {r["Properties"]["Name"]: r["Properties"] for r in template()["Resources"].values()
               if r["Type"] == "AWS::Logs::QueryDefinition"}
    conversions = {c.rule_id: c for c in cloudwatch_conversions()}
    assert len(definitions()) == len(by_name)
    for definition in definitions():
        assert set(definition) == {"name", "queryString", "logGroupNames", "rule_id"}
        assert definition["queryString"] == by_name[definition["name"]]["QueryString"] == conversions[definition["rule_id"]].query
        source = definition["name"].split("/")[1]
        assert definition["logGroupNames"] == [catalogue.load()[source].targets["cloudwatch"]["log_group"]]


def test_policies_and_transformers_are_the_rendered_mappings():
    build = bundled_build()
    for dist_name, pattern in (("field_index_policies", "field-index-policy-{}.json"), ("transformers", "transformer-{}.json")):
        bodies = json.loads(text(build, f"cloudwatch/{dist_name}.json"))
        assert bodies
        for source, body in bodies.items():
            assert body == json.loads((REPO / "mappings" / "cloudwatch" / pattern.format(source)).read_text()), source


def test_hunting_rules_are_only_saved_queries(tmp_path):
    from test_package_support import EXAMPLE, build_rules, resolver_rule, text

    hunting = resolver_rule("Hunt", "selection:\n    query_name: a.example\ncondition: selection", extra="purpose: hunting")
    template = json.loads(text(build_rules(tmp_path / "rules", hunt=hunting, example=EXAMPLE), "cloudwatch/template.json"))
    about_hunt = [(rid, r) for rid, r in template["Resources"].items() if "Hunt" in json.dumps(r)]
    assert about_hunt and {r["Type"] for _, r in about_hunt} == {"AWS::Logs::QueryDefinition"}
    referring = [r for r in template["Resources"].values() if any(rid in json.dumps(r) for rid, _ in about_hunt) and r not in [x for _, x in about_hunt]]
    assert not referring  # no alarm, metric filter or scheduled query points at the hunting query


# ---------------------------------------------------------------- alerting: metric filters, alarms, dashboard

def test_every_rule_states_its_alerting_mechanism():
    document = template()
    stated = {m["rule_id"]: m for m in document["Metadata"]["r53sigma"]["alerting"]}
    assert set(stated) == {c.rule_id for c in cloudwatch_conversions()}
    assert all(m["mechanism"] in (cloudwatch_package.METRIC_FILTER, cloudwatch_package.CONTRIBUTOR_INSIGHTS, cloudwatch_package.SAVED_QUERY)
               and m["why"] for m in stated.values())
    table = text(bundled_build(), "cloudwatch/ALERTING.md")
    assert all(f"| {m['title']} |" in table for m in stated.values())


def test_each_alarm_rule_has_the_metric_filter_pattern_verify_proves():
    from r53sigma import conversion

    patterns = {c.rule_id: c.query for c in conversion.convert_paths(None, ["cloudwatch_metric_filter"])[0] if c.ok}
    resources = template()["Resources"]
    alerting = [m for m in template()["Metadata"]["r53sigma"]["alerting"] if m["mechanism"] == cloudwatch_package.METRIC_FILTER]
    filters = {r["Properties"]["MetricTransformations"][0]["MetricName"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::MetricFilter"}
    assert alerting and len(filters) == len(alerting)
    for m in alerting:
        assert filters[f"r53sigma-{m['rule_id']}"]["FilterPattern"] == patterns[m["rule_id"]]


def test_alarms_notify_the_topic_parameter_and_look_back_over_the_delivery_delay():
    from r53sigma import schedule

    document = template()
    assert document["Parameters"][cloudwatch_package.TOPIC_PARAMETER]["Default"] == ""
    rules = {c.rule_id: c for c in cloudwatch_conversions()}
    alarms = [r for r in document["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        properties = alarm["Properties"]
        assert properties["AlarmActions"]["Fn::If"][1] == [{"Ref": cloudwatch_package.TOPIC_PARAMETER}]
        conv = rules[alarm["Metadata"]["r53sigma"]["rule_id"]]
        plan = schedule.derive(conv.rule, catalogue.load()[package.source_of(conv.logsource)], via=("cloudwatch_logs",))
        period = properties["Period"] if "Period" in properties else properties["Metrics"][0]["Period"]
        assert period * properties["EvaluationPeriods"] >= min(plan.lookback * 60, cloudwatch_package.MAX_ALARM_RANGE_SECONDS)
        assert properties["DatapointsToAlarm"] == 1
        if "Metrics" not in properties:
            assert properties["Threshold"] == 1  # a metric filter alarm: one matching event


def test_burst_correlations_get_an_insight_rule_and_an_alarm_on_its_metric():
    from r53sigma import conversion

    documents = {c.rule_id: json.loads(c.query) for c in conversion.convert_paths(None, ["cloudwatch_metric_filter"])[0]
                 if c.ok and c.query.startswith("{\"RuleBody\"")}
    document = template()
    stated = [m for m in document["Metadata"]["r53sigma"]["alerting"] if m["mechanism"] == cloudwatch_package.CONTRIBUTOR_INSIGHTS]
    assert stated and {m["rule_id"] for m in stated} == set(documents)
    resources = document["Resources"]
    rules = {r["Properties"]["RuleName"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::InsightRule"}
    for m in stated:
        properties = rules[f"r53sigma-{m['rule_id']}"]
        body = re.sub(r"\$\{([A-Za-z]+)\}", lambda m: document["Parameters"][m.group(1)]["Default"], properties["RuleBody"]["Fn::Sub"])
        wanted = documents[m["rule_id"]]
        assert model_parse(body) == wanted["RuleBody"]
        alarm = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                     and r["Metadata"]["r53sigma"]["rule_id"] == m["rule_id"])
        assert alarm["Metrics"][0]["Expression"] == f"INSIGHT_RULE_METRIC('r53sigma-{m['rule_id']}', '{wanted['Alarm']['Metric']}')"
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Metrics"][0]["Period"]) == (
            wanted["Alarm"]["Threshold"], wanted["Alarm"]["ComparisonOperator"], wanted["Alarm"]["Period"])
        assert "fixed" in m["why"] and "always alarms" in m["why"]  # ALERTING.md states the guarantee


def model_parse(text: str) -> dict:
    from r53sigma.targets.cloudwatch import contributor_insights_model

    return contributor_insights_model.parse_definition(text)


def test_regex_metric_filters_stay_within_five_per_log_group():
    document = template()
    counts: dict = {}
    for r in document["Resources"].values():
        if r["Type"] == "AWS::Logs::MetricFilter" and "%" in r["Properties"]["FilterPattern"]:
            key = r["Properties"]["LogGroupName"]["Ref"]
            counts[key] = counts.get(key, 0) + 1
    assert all(n <= cloudwatch_package.MAX_REGEX_FILTERS_PER_LOG_GROUP for n in counts.values())


# "Dashboard Body Structure and Syntax" (CloudWatch API Reference, CloudWatch-Dashboard-Body-Structure):
# widgets is required; a widget has type, x (0-23), y, width (1-24), height (1-1000), properties; a log
# widget's properties need query and region; an alarm widget's need alarms (at most 100 ARNs).
DASHBOARD_SCHEMA = {
    "type": "object", "required": ["widgets"], "properties": {"widgets": {"type": "array", "items": {
        "type": "object", "required": ["type", "properties"],
        "properties": {
            "type": {"enum": ["metric", "text", "log", "alarm", "explorer"]},
            "x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0},
            "width": {"type": "integer", "minimum": 1, "maximum": 24}, "height": {"type": "integer", "minimum": 1, "maximum": 1000},
            "properties": {"type": "object"},
        },
        "allOf": [
            {"if": {"properties": {"type": {"const": "log"}}}, "then": {"properties": {"properties": {"required": ["query", "region"]}}}},
            {"if": {"properties": {"type": {"const": "alarm"}}}, "then": {"properties": {"properties": {
                "required": ["alarms"], "properties": {"alarms": {"type": "array", "maxItems": 100}}}}}},
        ],
    }}},
}


def test_dashboard_body_has_aws_structure_and_queries_the_model_reads():
    import jsonschema

    from r53sigma.targets.cloudwatch import insights_model

    document = template()
    body_text = document["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(body_text)
    jsonschema.validate(body, DASHBOARD_SCHEMA)
    titles = " ".join(w["properties"].get("title", "") for w in body["widgets"])
    for wanted in ("queries by type", "top domains", "NXDOMAIN and SERVFAIL", "DNS Firewall blocks", "Rule alarms"):
        assert wanted in titles
    for widget in body["widgets"]:
        if widget["type"] == "log":
            query = widget["properties"]["query"].split(" | ", 1)[1]
            insights_model.Query.parse("fields @message | " + query)  # raises on what the model cannot read
    references = set(re.findall(r"\$\{([A-Za-z0-9]+)(?:\.Arn)?\}", body_text)) - {"AWS"}
    assert references <= set(document["Parameters"]) | set(document["Resources"])
