"""Deploying the real `r53sigma package` output (all bundled rules) to the three fake targets."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from deploy_fakes import deploy, isolate_environment
from deploy_fakes.servers import FakeElasticsearch, FakeKibana, FakeSplunk

package = pytest.importorskip("r53sigma.package", reason="the package command is not in this tree")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    build = package.build()
    assert not build.problems, build.problems
    out = tmp_path_factory.mktemp("pack") / "dist"
    package.write(out, build.files)
    return out


@pytest.fixture
def dist(built, tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    return built


def kibana_rules(dist):
    return [json.loads(line) for line in (dist / "elastic/rules.ndjson").read_text().splitlines() if line.strip()]


def test_packaged_pack_deploys_to_elastic_and_redeploys_as_no_change(dist, monkeypatch, capsys):
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        argv = ["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url]
        assert deploy(argv) == 0
        shipped = kibana_rules(dist)
        assert set(kibana.rules) == {r["rule_id"] for r in shipped}
        assert {r["language"] for r in kibana.rules.values()} == {r["language"] for r in shipped} >= {"lucene", "esql"}
        capsys.readouterr()
        assert deploy(argv) == 0
        assert "0 to create, 0 to update, 0 to delete" in capsys.readouterr().out


def test_packaged_pack_deploys_to_splunk_and_redeploys_as_no_change(dist, monkeypatch, capsys):
    from r53sigma.deploy.dist import conf_stanzas

    monkeypatch.setenv("R53SIGMA_SPLUNK_PASSWORD", "changeme")
    app = next((dist / "splunk").glob("*/default/savedsearches.conf")).parent.parent.name
    with FakeSplunk(app=app) as splunk:
        argv = ["splunk", "--dist", str(dist), "--url", splunk.url, "--username", "admin"]
        assert deploy(argv) == 0
        stanzas = conf_stanzas(dist / "splunk" / app / "default" / "savedsearches.conf")
        stanzas.pop("default", None)
        live = {name: content for name, (owner_app, content) in splunk.searches.items() if owner_app == app}
        assert set(live) == set(stanzas)
        assert all(live[name]["search"] == stanza["search"] for name, stanza in stanzas.items())
        assert all(content["disabled"] == "1" for content in live.values())  # [default] applies: shipped disabled
        capsys.readouterr()
        assert deploy(argv) == 0
        assert "0 to create, 0 to update, 0 to delete" in capsys.readouterr().out


def test_packaged_pack_deploys_every_cloudwatch_object_through_the_apis(dist, capsys):
    """The real package's objects, alarms included, each call validated by botocore's service models."""
    template = json.loads((dist / "cloudwatch/template.json").read_text())
    queries = json.loads((dist / "cloudwatch/query_definitions.json").read_text())
    kinds = [r["Type"] for r in template["Resources"].values()]
    policies, transformers = kinds.count("AWS::Logs::AccountPolicy"), kinds.count("AWS::Logs::Transformer")
    filters, rules, alarms = (kinds.count(k) for k in ("AWS::Logs::MetricFilter", "AWS::CloudWatch::InsightRule", "AWS::CloudWatch::Alarm"))
    assert filters and rules and alarms == filters + rules
    groups = sorted(v["Default"] for k, v in template["Parameters"].items() if k.endswith("LogGroupName"))
    credentials = {"region_name": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
    client, monitoring = boto3.client("logs", **credentials), boto3.client("cloudwatch", **credentials)
    with Stubber(client) as stubber, Stubber(monitoring) as monitoring_stub:
        stubber.add_response("describe_account_policies", {"accountPolicies": []}, {"policyType": "FIELD_INDEX_POLICY"})
        for _ in range(transformers):
            stubber.add_client_error("get_transformer", "ResourceNotFoundException", "none", 400)
        stubber.add_response("describe_query_definitions", {"queryDefinitions": []}, {"queryDefinitionNamePrefix": "r53sigma/", "maxResults": 1000})
        for group in groups:
            stubber.add_response("describe_metric_filters", {"metricFilters": []}, {"logGroupName": group, "filterNamePrefix": "r53sigma "})
        monitoring_stub.add_response("describe_insight_rules", {"InsightRules": []}, {})
        monitoring_stub.add_response("describe_alarms", {"MetricAlarms": []}, {"AlarmNamePrefix": "r53sigma ", "AlarmTypes": ["MetricAlarm"]})
        for _ in range(policies):
            stubber.add_response("put_account_policy", {}, {"policyName": ANY, "policyType": "FIELD_INDEX_POLICY",
                                                             "policyDocument": ANY, "selectionCriteria": ANY, "scope": "ALL"})
        for _ in range(transformers):
            stubber.add_response("put_transformer", {}, {"logGroupIdentifier": ANY, "transformerConfig": ANY})
        for row in queries:
            stubber.add_response("put_query_definition", {"queryDefinitionId": "id"}, {
                "name": row["name"], "queryString": row["queryString"], "logGroupNames": row["logGroupNames"], "queryLanguage": "CWLI"})
        for _ in range(filters):
            stubber.add_response("put_metric_filter", {}, {"logGroupName": ANY, "filterName": ANY, "filterPattern": ANY, "metricTransformations": ANY})
        for _ in range(rules):
            monitoring_stub.add_response("put_insight_rule", {}, {"RuleName": ANY, "RuleState": "ENABLED", "RuleDefinition": ANY,
                                                                  "Tags": [{"Key": "managed-by", "Value": "r53sigma"}]})
        alarm_keys = {"AlarmName", "AlarmDescription", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                      "TreatMissingData", "AlarmActions"}
        for name, resource in sorted(template["Resources"].items()):  # deploy applies them by logical id
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                keys = alarm_keys | ({"Metrics"} if "Metrics" in resource["Properties"] else {"Namespace", "MetricName", "Statistic", "Period"})
                monitoring_stub.add_response("put_metric_alarm", {}, {**{k: ANY for k in keys},
                                                                      "Tags": [{"Key": "managed-by", "Value": "r53sigma"}]})
        assert deploy(["cloudwatch", "--dist", str(dist), "--region", "us-east-1"], targets={"client": client, "monitoring": monitoring}) == 0
        stubber.assert_no_pending_responses()
        monitoring_stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    total = policies + transformers + len(queries) + filters + rules + alarms
    assert f"{total} of {total} changes applied" in out
    # only the dashboard is left to the stack (its body refers to the alarms' ARNs), and the plan says so
    assert out.count("stack only") == kinds.count("AWS::CloudWatch::Dashboard") == 1
