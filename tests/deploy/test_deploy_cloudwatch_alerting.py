"""`r53sigma deploy cloudwatch` installs the alerting objects too: metric filters (Logs PutMetricFilter),
Contributor Insights rules (CloudWatch PutInsightRule) and their alarms (PutMetricAlarm), against
botocore Stubbers (moto implements none of these): each call is validated against botocore's service
model, so an unknown or misspelt parameter fails the test, and only the calls queued here may happen."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from deploy_fakes import deploy, dist_fixture, isolate_environment

RESOLVER = "/aws/route53/resolver-query-logs"
PUBLIC = "/aws/route53/public-hosted-zone"
CLOUDTRAIL = "aws-cloudtrail-logs"
GROUPS = (PUBLIC, RESOLVER, CLOUDTRAIL)  # the order deploy reads them in (sorted names)
TOPIC = "arn:aws:sns:us-east-1:123456789012:dns-alerts"
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
MARKER = [{"Key": "managed-by", "Value": "r53sigma"}]  # the tag deploy puts on what it creates
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return dist_fixture.build_packaged(tmp_path_factory.mktemp("alerting"))


@pytest.fixture
def dist(packaged, tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    return packaged


@pytest.fixture
def clients():
    logs, monitoring = boto3.client("logs", **CREDENTIALS), boto3.client("cloudwatch", **CREDENTIALS)
    sts = boto3.client("sts", **CREDENTIALS)
    with Stubber(logs) as logs_stub, Stubber(monitoring) as monitoring_stub, Stubber(sts) as sts_stub:
        yield {"client": logs, "monitoring": monitoring, "sts": sts}, logs_stub, monitoring_stub, sts_stub
        logs_stub.assert_no_pending_responses()
        monitoring_stub.assert_no_pending_responses()
        sts_stub.assert_no_pending_responses()


def resources(dist, kind):
    template = json.loads((dist / "cloudwatch/template.json").read_text())
    return {k: r for k, r in sorted(template["Resources"].items()) if r["Type"] == kind}


def wanted(dist, topic=None):
    """The API requests the template means, written out here by hand (not by deploy's code)."""
    filters = []
    for r in resources(dist, "AWS::Logs::MetricFilter").values():
        p = r["Properties"]
        t = p["MetricTransformations"][0]
        filters.append({"logGroupName": RESOLVER, "filterName": p["FilterName"], "filterPattern": p["FilterPattern"],
                        "metricTransformations": [{"metricNamespace": t["MetricNamespace"], "metricName": t["MetricName"],
                                                   "metricValue": t["MetricValue"], "unit": t["Unit"]}]})
    rules = []
    for r in resources(dist, "AWS::CloudWatch::InsightRule").values():
        p = r["Properties"]
        rules.append({"RuleName": p["RuleName"], "RuleState": "ENABLED",
                      "RuleDefinition": p["RuleBody"]["Fn::Sub"].replace("${ResolverLogGroupName}", RESOLVER), "Tags": MARKER})
    alarms = []
    for r in resources(dist, "AWS::CloudWatch::Alarm").values():
        p = {k: v for k, v in r["Properties"].items() if k != "AlarmActions"}
        alarms.append({**p, "AlarmActions": [topic] if topic else [], "Tags": MARKER})
    return filters, rules, alarms


def expect_reads(logs, monitoring, live_filters=(), live_rules=(), live_alarms=()):
    logs.add_response("describe_account_policies", {"accountPolicies": []}, {"policyType": "FIELD_INDEX_POLICY"})
    for _ in range(2):
        logs.add_client_error("get_transformer", "ResourceNotFoundException", "none", 400)
    logs.add_response("describe_query_definitions", {"queryDefinitions": []}, {"queryDefinitionNamePrefix": "r53sigma/", "maxResults": 1000})
    for group in GROUPS:
        logs.add_response("describe_metric_filters", {"metricFilters": [f for f in live_filters if f["logGroupName"] == group]},
                          {"logGroupName": group, "filterNamePrefix": "r53sigma "})
    monitoring.add_response("describe_insight_rules", {"InsightRules": list(live_rules)}, {})
    monitoring.add_response("describe_alarms", {"MetricAlarms": list(live_alarms)},
                            {"AlarmNamePrefix": "r53sigma ", "AlarmTypes": ["MetricAlarm"]})


def expect_ingestion_and_query_writes(logs, dist):
    logs.add_response("put_account_policy", {}, {"policyName": ANY, "policyType": "FIELD_INDEX_POLICY",
                                                 "policyDocument": ANY, "selectionCriteria": ANY, "scope": "ALL"})
    for _ in range(2):
        logs.add_response("put_transformer", {}, {"logGroupIdentifier": ANY, "transformerConfig": ANY})
    for _ in json.loads((dist / "cloudwatch/query_definitions.json").read_text()):
        logs.add_response("put_query_definition", {"queryDefinitionId": "id"}, {"name": ANY, "queryString": ANY,
                                                                                "logGroupNames": ANY, "queryLanguage": "CWLI"})


def live_state(dist, topic=None):
    """What DescribeMetricFilters / DescribeInsightRules / DescribeAlarms answer after a deploy."""
    filters, rules, alarms = wanted(dist, topic)
    live_filters = [{**f, "creationTime": 1} for f in filters]
    live_rules = [{"Name": r["RuleName"], "State": r["RuleState"], "Schema": "CloudWatchLogRule/1", "Definition": r["RuleDefinition"]}
                  for r in rules]
    live_alarms = [{**{k: v for k, v in a.items() if k != "Tags"}, "AlarmArn": alarm_arn(a["AlarmName"]), "StateValue": "OK",
                    "ActionsEnabled": True, "OKActions": [], "InsufficientDataActions": [], "Threshold": float(a["Threshold"])}
                   for a in alarms]  # DescribeAlarms shows no tags
    return live_filters, live_rules, live_alarms


def alarm_arn(name):
    return f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}"


def run(dist, clients, *extra):
    return deploy(["cloudwatch", "--dist", str(dist), "--region", "us-east-1", *extra], targets=clients[0])


def test_first_deploy_puts_metric_filters_insight_rules_and_alarms(dist, clients, capsys):
    _, logs, monitoring, _ = clients
    filters, rules, alarms = wanted(dist)
    assert len(filters) == 1 and len(rules) == 1 and len(alarms) == 2  # the paste-site rule, the TXT burst
    expect_reads(logs, monitoring)
    expect_ingestion_and_query_writes(logs, dist)
    for f in filters:
        logs.add_response("put_metric_filter", {}, f)
    for r in rules:
        monitoring.add_response("put_insight_rule", {}, r)
    for a in alarms:
        monitoring.add_response("put_metric_alarm", {}, a)
    assert run(dist, clients) == 0
    out = capsys.readouterr().out
    assert "applied: create metric filter" in out and "applied: create insight rule" in out and out.count("applied: create alarm") == 2
    assert "stack only" in out and "Dashboard" in out  # the dashboard alone is left to CloudFormation


def test_insight_rule_definition_is_the_model_valid_rule_for_the_log_group(dist):
    from r53sigma.targets.cloudwatch import contributor_insights_model

    _, rules, _ = wanted(dist)
    body = contributor_insights_model.parse_definition(rules[0]["RuleDefinition"])
    assert body["LogGroupNames"] == [RESOLVER] and body["Contribution"]["Keys"] == ["$.srcaddr"]


def test_redeploy_of_alerting_plans_zero_changes(dist, clients, capsys):
    _, logs, monitoring, _ = clients
    live_filters, live_rules, live_alarms = live_state(dist)
    expect_reads(logs, monitoring, live_filters, live_rules, live_alarms)
    expect_ingestion_and_query_writes(logs, dist)  # the fixture's ingestion objects are absent each time
    assert run(dist, clients) == 0  # the monitoring Stubber fails any write: none was queued
    out = capsys.readouterr().out
    applied = [line for line in out.splitlines() if line.startswith("applied: ")]
    assert applied and not [line for line in applied if any(k in line for k in ("alarm", "insight rule", "metric filter"))]
    assert len([line for line in out.splitlines() if line.lstrip().startswith("unchanged")]) == 4


def test_alarm_topic_adds_the_action_as_an_update(dist, clients, capsys):
    _, logs, monitoring, _ = clients
    live_filters, live_rules, live_alarms = live_state(dist)
    expect_reads(logs, monitoring, live_filters, live_rules, live_alarms)
    expect_ingestion_and_query_writes(logs, dist)
    for a in wanted(dist, TOPIC)[2]:
        monitoring.add_response("put_metric_alarm", {}, a)
    assert run(dist, clients, "--alarm-topic", TOPIC) == 0
    assert capsys.readouterr().out.count("changed: AlarmActions") == 2


def test_alarm_topic_must_be_an_sns_arn(dist, clients, capsys):
    assert run(dist, clients, "--alarm-topic", "dns-alerts") == 2
    assert "not an SNS topic ARN" in capsys.readouterr().err


def test_changed_insight_rule_is_put_again(dist, clients, capsys):
    _, logs, monitoring, _ = clients
    live_filters, live_rules, live_alarms = live_state(dist)
    live_rules[0]["Definition"] = live_rules[0]["Definition"].replace('"TXT"', '"NULL"')
    expect_reads(logs, monitoring, live_filters, live_rules, live_alarms)
    expect_ingestion_and_query_writes(logs, dist)
    monitoring.add_response("put_insight_rule", {}, wanted(dist)[1][0])
    assert run(dist, clients) == 0
    assert "changed: RuleDefinition" in capsys.readouterr().out


def test_prune_deletes_only_the_retired_alerting_objects_carrying_the_packs_tag(dist, clients, capsys):
    _, logs, monitoring, sts = clients
    live_filters, live_rules, live_alarms = live_state(dist)
    live_filters.append({"logGroupName": PUBLIC, "filterName": "r53sigma Retired rule", "filterPattern": "x",
                         "metricTransformations": [{"metricName": "r53sigma-retired", "metricNamespace": "r53sigma/Route53", "metricValue": "1"}]})
    live_rules += [{"Name": name, "State": "ENABLED", "Schema": "CloudWatchLogRule/1", "Definition": "{}"}
                   for name in ("r53sigma-retired", "r53sigma-hand-made", "team-top-talkers")]
    live_alarms += [{**live_alarms[0], "AlarmName": name, "AlarmArn": alarm_arn(name)}
                    for name in ("r53sigma Retired rule", "r53sigma Hand made")]
    expect_reads(logs, monitoring, live_filters, live_rules, live_alarms)
    expect_ingestion_and_query_writes(logs, dist)
    # the tags, as ListTagsForResource answers them (alarms first: deploy plans them first)
    monitoring.add_response("list_tags_for_resource", {"Tags": [{"Key": "team", "Value": "dns"}]},
                            {"ResourceARN": alarm_arn("r53sigma Hand made")})
    monitoring.add_response("list_tags_for_resource", {"Tags": MARKER}, {"ResourceARN": alarm_arn("r53sigma Retired rule")})
    sts.add_response("get_caller_identity", {"UserId": "AIDA", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer"}, {})
    rule_arn = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:insight-rule/"
    monitoring.add_response("list_tags_for_resource", {"Tags": []}, {"ResourceARN": rule_arn + "r53sigma-hand-made"})
    monitoring.add_response("list_tags_for_resource", {"Tags": MARKER}, {"ResourceARN": rule_arn + "r53sigma-retired"})
    monitoring.add_response("delete_alarms", {}, {"AlarmNames": ["r53sigma Retired rule"]})
    logs.add_response("delete_metric_filter", {}, {"logGroupName": PUBLIC, "filterName": "r53sigma Retired rule"})
    monitoring.add_response("delete_insight_rules", {"Failures": []}, {"RuleNames": ["r53sigma-retired"]})
    assert run(dist, clients, "--prune") == 0  # team-top-talkers: not the pack's name, never even read
    out = capsys.readouterr().out
    kept = [line.split()[:2] for line in out.splitlines() if line.strip().startswith("kept")]
    assert len(kept) == 2 and "no r53sigma marker tag" in out  # the untagged alarm and rule
    assert "applied: delete alarm r53sigma Hand made" not in out and "applied: delete insight rule r53sigma-hand-made" not in out


def test_the_apis_take_the_marker_tag_on_insight_rules_and_alarms_only():
    """PutInsightRule and PutMetricAlarm take `Tags`; PutMetricFilter does not (botocore's models)."""
    import botocore.session

    cloudwatch, logs = (botocore.session.get_session().get_service_model(s) for s in ("cloudwatch", "logs"))
    assert "Tags" in cloudwatch.operation_model("PutInsightRule").input_shape.members
    assert "Tags" in cloudwatch.operation_model("PutMetricAlarm").input_shape.members
    assert "Tags" not in logs.operation_model("PutMetricFilter").input_shape.members
    assert "Tags" not in logs.operation_model("PutQueryDefinition").input_shape.members
    assert "Tags" not in logs.operation_model("PutAccountPolicy").input_shape.members
    # that deploy sends the tag: the first-deploy test's Stubber expects `Tags` in each Put request


def test_only_one_rule_touches_its_alarm_and_filter_only(dist, clients):
    _, logs, monitoring, _ = clients
    filters, _, alarms = wanted(dist)
    logs.add_response("describe_query_definitions", {"queryDefinitions": []}, {"queryDefinitionNamePrefix": "r53sigma/", "maxResults": 1000})
    for group in GROUPS:
        logs.add_response("describe_metric_filters", {"metricFilters": []}, {"logGroupName": group, "filterNamePrefix": "r53sigma "})
    monitoring.add_response("describe_alarms", {"MetricAlarms": []}, {"AlarmNamePrefix": "r53sigma ", "AlarmTypes": ["MetricAlarm"]})
    logs.add_response("put_query_definition", {"queryDefinitionId": "id"}, {"name": ANY, "queryString": ANY, "logGroupNames": ANY, "queryLanguage": "CWLI"})
    logs.add_response("put_metric_filter", {}, filters[0])
    monitoring.add_response("put_metric_alarm", {}, next(a for a in alarms if "paste" in a["AlarmName"]))
    assert run(dist, clients, "--only", "0b7d3c2a-1111-4aaa-8bbb-000000000001") == 0


def test_alarm_api_errors_are_reported_as_cloudwatch_errors(dist, clients, capsys):
    _, logs, monitoring, _ = clients
    expect_reads(logs, monitoring)
    expect_ingestion_and_query_writes(logs, dist)
    filters, rules, alarms = wanted(dist)
    logs.add_response("put_metric_filter", {}, filters[0])
    monitoring.add_client_error("put_insight_rule", "LimitExceededException", "too many rules", 400)
    for a in alarms:
        monitoring.add_response("put_metric_alarm", {}, a)
    assert run(dist, clients) == 1
    assert "CloudWatch PutInsightRule: LimitExceededException" in capsys.readouterr().err
