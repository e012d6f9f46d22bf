"""`r53sigma deploy cloudwatch` with botocore's Stubber: every call checked against the Logs service model."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from deploy_fakes import Sleeps, deploy, dist_fixture, isolate_environment

RESOLVER = "/aws/route53/resolver-query-logs"
PUBLIC = "/aws/route53/public-hosted-zone"
FIELD_INDEX = "FIELD_INDEX_POLICY"
TRANSFORMERS = {PUBLIC: [{"parseRoute53": {}}], RESOLVER: [{"parseJSON": {}}]}  # plan reads in this order


@pytest.fixture
def dist(tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    return dist_fixture.build(tmp_path)


@pytest.fixture
def logs():
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def run(dist, logs, *extra, sleeps=None):
    client, _ = logs
    return deploy(["cloudwatch", "--dist", str(dist), "--region", "us-east-1", *extra], sleeps=sleeps, targets={"client": client})


def packaged_queries(dist):
    return json.loads((dist / "cloudwatch/query_definitions.json").read_text())


def resolver_policy(dist, group=RESOLVER):
    props = json.loads((dist / "cloudwatch/template.json").read_text())["Resources"]["ResolverFieldIndexPolicy"]["Properties"]
    return {"policyName": "r53sigma-resolver-field-index", "policyType": FIELD_INDEX, "policyDocument": props["PolicyDocument"],
            "selectionCriteria": f'LogGroupNamePrefix IN ["{group}"]', "scope": "ALL"}


def expect_reads(stubber, policies=(), transformers=None, queries=(), groups=(PUBLIC, RESOLVER)):
    stubber.add_response("describe_account_policies", {"accountPolicies": list(policies)}, {"policyType": FIELD_INDEX})
    for group in groups:
        if transformers and group in transformers:
            stubber.add_response("get_transformer", {"logGroupIdentifier": group, "transformerConfig": transformers[group]},
                                 {"logGroupIdentifier": group})
        else:
            stubber.add_client_error("get_transformer", "ResourceNotFoundException", "no transformer", 400,
                                     expected_params={"logGroupIdentifier": group})
    expect_query_reads(stubber, queries)


def expect_query_reads(stubber, queries=()):
    stubber.add_response("describe_query_definitions", {"queryDefinitions": list(queries)},
                         {"queryDefinitionNamePrefix": "r53sigma/", "maxResults": 1000})


def expect_put_query(stubber, row, definition_id, existing_id=None, groups=None):
    params = {"name": row["name"], "queryString": row["queryString"], "logGroupNames": groups or row["logGroupNames"],
              "queryLanguage": "CWLI", **({"queryDefinitionId": existing_id} if existing_id else {})}
    stubber.add_response("put_query_definition", {"queryDefinitionId": definition_id}, params)


def deployed_state(dist):
    """What CloudWatch holds after a full first deploy of the fixture."""
    policy = resolver_policy(dist)
    policies = [{"policyName": policy["policyName"], "policyType": FIELD_INDEX, "policyDocument": policy["policyDocument"],
                 "selectionCriteria": policy["selectionCriteria"], "scope": "ALL", "accountId": "123456789012"}]
    queries = [{"queryDefinitionId": f"id-{i}", "name": row["name"], "queryString": row["queryString"],
                "logGroupNames": row["logGroupNames"], "queryLanguage": "CWLI"} for i, row in enumerate(packaged_queries(dist))]
    return policies, queries


def expect_first_deploy_writes(stubber, dist):
    stubber.add_response("put_account_policy", {}, resolver_policy(dist))
    for group, config in TRANSFORMERS.items():
        stubber.add_response("put_transformer", {}, {"logGroupIdentifier": group, "transformerConfig": config})
    for i, row in enumerate(packaged_queries(dist)):
        expect_put_query(stubber, row, f"id-{i}")


def test_first_deploy_puts_policies_transformers_and_queries(dist, logs, capsys):
    _, stubber = logs
    expect_reads(stubber)
    expect_first_deploy_writes(stubber, dist)
    assert run(dist, logs) == 0
    assert "5 of 5 changes applied" in capsys.readouterr().out


def test_redeploy_plans_zero_changes(dist, logs, capsys):
    _, stubber = logs
    policies, queries = deployed_state(dist)
    expect_reads(stubber, policies, TRANSFORMERS, queries)
    assert run(dist, logs) == 0  # the Stubber fails any write: none was queued
    assert "0 to create, 0 to update, 0 to delete, 5 unchanged" in capsys.readouterr().out


def test_changed_query_updates_the_definition_in_place(dist, logs, tmp_path):
    _, stubber = logs
    policies, queries = deployed_state(dist)
    changed = dist_fixture.RULE_TXT.replace("query_type: TXT", "query_type: ANY")
    dist_fixture.build(tmp_path, {"txt_paste.yml": changed, "metadata_name.yml": dist_fixture.RULE_METADATA})
    rows = {row["name"]: row for row in packaged_queries(dist)}
    expect_reads(stubber, policies, TRANSFORMERS, queries)
    txt = next(q for q in queries if "TXT" in q["name"])
    assert "ANY" in rows[txt["name"]]["queryString"]
    expect_put_query(stubber, rows[txt["name"]], txt["queryDefinitionId"], existing_id=txt["queryDefinitionId"])
    assert run(dist, logs) == 0


def test_log_group_override_applies_to_policies_transformers_and_queries(dist, logs):
    _, stubber = logs
    mine = "/org/dns/resolver"
    expect_reads(stubber, groups=(PUBLIC, mine))
    stubber.add_response("put_account_policy", {}, resolver_policy(dist, mine))
    stubber.add_response("put_transformer", {}, {"logGroupIdentifier": PUBLIC, "transformerConfig": TRANSFORMERS[PUBLIC]})
    stubber.add_response("put_transformer", {}, {"logGroupIdentifier": mine, "transformerConfig": TRANSFORMERS[RESOLVER]})
    for i, row in enumerate(packaged_queries(dist)):
        expect_put_query(stubber, row, f"id-{i}", groups=[mine])
    assert run(dist, logs, "--log-group", f"resolver={mine}") == 0


def test_prune_deletes_dropped_queries_and_policies_of_the_pack_only(dist, logs, tmp_path):
    client, stubber = logs
    policies, queries = deployed_state(dist)
    policies += [{"policyName": "r53sigma-retired-field-index", "policyType": FIELD_INDEX, "policyDocument": "{}"},
                 {"policyName": "team-policy", "policyType": FIELD_INDEX, "policyDocument": "{}"}]
    dist_fixture.build(tmp_path, {"txt_paste.yml": dist_fixture.RULE_TXT})
    expect_reads(stubber, policies, TRANSFORMERS, queries)
    # pruning reads the pack's alerting objects too (none here: the fixture's template has no alarms)
    for group in (PUBLIC, RESOLVER, "aws-cloudtrail-logs"):
        stubber.add_response("describe_metric_filters", {"metricFilters": []}, {"logGroupName": group, "filterNamePrefix": "r53sigma "})
    monitoring = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    monitoring_stub = Stubber(monitoring)
    monitoring_stub.add_response("describe_insight_rules", {"InsightRules": []}, {})
    monitoring_stub.add_response("describe_alarms", {"MetricAlarms": []}, {"AlarmNamePrefix": "r53sigma ", "AlarmTypes": ["MetricAlarm"]})
    monitoring_stub.activate()
    stubber.add_response("delete_account_policy", {}, {"policyName": "r53sigma-retired-field-index", "policyType": FIELD_INDEX})
    dropped = next(q for q in queries if "metadata" in q["name"])
    stubber.add_response("delete_query_definition", {"success": True}, {"queryDefinitionId": dropped["queryDefinitionId"]})
    assert deploy(["cloudwatch", "--dist", str(dist), "--region", "us-east-1", "--prune"],
                  targets={"client": client, "monitoring": monitoring}) == 0
    monitoring_stub.assert_no_pending_responses()


def test_dry_run_reads_only(dist, logs, capsys):
    _, stubber = logs
    expect_reads(stubber)
    assert run(dist, logs, "--dry-run") == 0
    assert "5 to create" in capsys.readouterr().out


def test_access_denied_is_an_auth_failure(dist, logs, capsys):
    _, stubber = logs
    stubber.add_client_error("describe_account_policies", "AccessDeniedException",
                             "User is not authorized to perform: logs:DescribeAccountPolicies", 400)
    assert run(dist, logs) == 1
    err = capsys.readouterr().err
    assert "AccessDeniedException" in err and "IAM policy" in err and "nothing was changed" in err


def test_throttling_is_retried_with_backoff(dist, logs):
    _, stubber = logs
    policies, queries = deployed_state(dist)
    stubber.add_client_error("describe_account_policies", "ThrottlingException", "Rate exceeded", 400)
    expect_reads(stubber, policies, TRANSFORMERS, queries[:1])
    row = packaged_queries(dist)[1]
    stubber.add_client_error("put_query_definition", "ServiceUnavailableException", "try later", 503)
    expect_put_query(stubber, row, "id-1")
    sleeps = Sleeps()
    assert run(dist, logs, sleeps=sleeps) == 0
    assert sleeps == [1.0, 1.0]


def test_partial_failure_reports_what_was_applied(dist, logs, capsys):
    _, stubber = logs
    stubber.add_response("describe_account_policies", {"accountPolicies": []}, {"policyType": FIELD_INDEX})
    stubber.add_client_error("get_transformer", "ResourceNotFoundException", "no transformer", 400)
    stubber.add_client_error("get_transformer", "ResourceNotFoundException", "no transformer", 400)
    expect_query_reads(stubber)
    stubber.add_response("put_account_policy", {}, resolver_policy(dist))
    stubber.add_client_error("put_transformer", "ResourceNotFoundException", "The specified log group does not exist.", 400)
    stubber.add_response("put_transformer", {}, {"logGroupIdentifier": RESOLVER, "transformerConfig": TRANSFORMERS[RESOLVER]})
    for i, row in enumerate(packaged_queries(dist)):
        expect_put_query(stubber, row, f"id-{i}")
    assert run(dist, logs) == 1
    captured = capsys.readouterr()
    assert f"FAILED: create transformer {PUBLIC}: CloudWatch Logs PutTransformer: ResourceNotFoundException" in captured.err
    assert f"applied: create transformer {RESOLVER}" in captured.out
    assert "4 of 5 changes applied, 1 failed, 0 not attempted" in captured.err


def test_only_touches_just_the_named_query(dist, logs):
    _, stubber = logs
    row = next(r for r in packaged_queries(dist) if "TXT" in r["name"])
    expect_query_reads(stubber)
    expect_put_query(stubber, row, "id-0")
    assert run(dist, logs, "--only", row["rule_id"]) == 0


def test_unknown_log_source_in_override_is_a_settings_error(dist, logs, capsys):
    assert run(dist, logs, "--log-group", "vpcflow=/x") == 2
    assert "unknown log source" in capsys.readouterr().err
