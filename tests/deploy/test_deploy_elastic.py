"""`r53sigma deploy elastic` against in-process fake Elasticsearch and Kibana servers (real client libraries)."""
from __future__ import annotations

import json

import pytest

from deploy_fakes import Sleeps, deploy, dist_fixture, isolate_environment
from deploy_fakes.servers import FakeElasticsearch, FakeKibana

TXT_RULE = "0b7d3c2a-1111-4aaa-8bbb-000000000001"
METADATA_RULE = "0b7d3c2a-1111-4aaa-8bbb-000000000002"


@pytest.fixture
def dist(tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    return dist_fixture.build(tmp_path)


@pytest.fixture
def servers():
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        yield es, kibana


def argv(dist, servers, *extra):
    es, kibana = servers
    return ["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url, *extra]


def packaged(dist, folder):
    return {p.stem: json.loads(p.read_text()) for p in (dist / "elastic" / folder).glob("*.json")}


def test_first_deploy_creates_every_packaged_object(dist, servers, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers)) == 0
    assert set(es.pipelines) == set(packaged(dist, "ingest_pipelines"))
    assert set(es.component_templates) == set(packaged(dist, "component_templates"))
    assert set(es.index_templates) == set(packaged(dist, "index_templates"))
    assert es.pipelines["r53sigma-resolver"] == packaged(dist, "ingest_pipelines")["r53sigma-resolver"]
    shipped = {json.loads(line)["rule_id"]: json.loads(line) for line in (dist / "elastic/rules.ndjson").read_text().splitlines()}
    assert set(kibana.rules) == set(shipped) == {TXT_RULE, METADATA_RULE}
    live = kibana.rules[TXT_RULE]
    assert live["query"] == shipped[TXT_RULE]["query"] and live["enabled"] is False
    assert "r53sigma" in live["tags"] and "Route 53" in live["tags"]
    assert "12 of 12 changes applied" in capsys.readouterr().out


def test_redeploy_plans_zero_changes_and_writes_nothing(dist, servers, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers)) == 0
    before = len(es.changes()) + len(kibana.changes())
    capsys.readouterr()
    assert deploy(argv(dist, servers)) == 0
    out = capsys.readouterr().out
    assert "0 to create, 0 to update, 0 to delete, 12 unchanged" in out
    assert len(es.changes()) + len(kibana.changes()) == before


def test_rule_change_updates_the_rule_and_keeps_the_users_enabled_state(dist, servers, tmp_path, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers)) == 0
    kibana.rules[TXT_RULE]["enabled"] = True  # the analyst turned it on in Kibana
    kibana.rules[TXT_RULE]["exceptions_list"] = [{"id": "fp-list", "list_id": "fp", "type": "detection", "namespace_type": "single"}]
    changed = dist_fixture.RULE_TXT.replace("query_type: TXT", "query_type: ANY")
    dist_fixture.build(tmp_path, {"txt_paste.yml": changed, "metadata_name.yml": dist_fixture.RULE_METADATA})
    capsys.readouterr()
    assert deploy(argv(dist, servers)) == 0
    out = capsys.readouterr().out
    assert "update     detection rule" in out and "changed: query" in out and "keeps enabled=true" in out
    live = kibana.rules[TXT_RULE]
    assert "ANY" in live["query"] and "TXT" not in live["query"]
    assert live["enabled"] is True and live["exceptions_list"][0]["list_id"] == "fp"
    assert [r.method for r in kibana.changes()][-1] == "PUT"
    assert deploy(argv(dist, servers)) == 0 and "12 unchanged" in capsys.readouterr().out


def test_prune_deletes_only_the_packs_objects_that_dist_dropped(dist, servers, tmp_path, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers)) == 0
    kibana.rules["someone-elses"] = {"rule_id": "someone-elses", "name": "theirs", "tags": ["team"]}
    es.pipelines["their-pipeline"] = {"processors": []}
    es.pipelines["r53sigma-retired"] = {"processors": [], "_meta": {"managed_by": "r53sigma"}}
    dist_fixture.build(tmp_path, {"txt_paste.yml": dist_fixture.RULE_TXT})
    assert deploy(argv(dist, servers)) == 0  # without --prune nothing is deleted
    assert METADATA_RULE in kibana.rules and "r53sigma-retired" in es.pipelines
    capsys.readouterr()
    assert deploy(argv(dist, servers, "--prune")) == 0
    assert "delete     detection rule" in capsys.readouterr().out
    assert set(kibana.rules) == {TXT_RULE, "someone-elses"}
    assert "r53sigma-retired" not in es.pipelines and "their-pipeline" in es.pipelines


def test_dry_run_prints_the_plan_and_changes_nothing(dist, servers, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "12 to create" in out and "dry run: nothing applied" in out
    assert not es.changes() and not kibana.changes() and not kibana.rules


def test_bad_credentials_stop_before_any_change(dist, servers, monkeypatch, capsys):
    es, kibana = servers
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "wrong-key")
    assert deploy(argv(dist, servers)) == 1
    err = capsys.readouterr().err
    assert "authentication failed (HTTP 401)" in err and "nothing was changed" in err
    assert "wrong-key" not in err
    assert not es.changes() and not kibana.changes()


def test_rate_limits_and_unavailability_are_retried_with_backoff(dist, servers, capsys):
    es, kibana = servers
    es.fail("GET", r"^/_index_template$", 429)
    es.fail("PUT", r"^/_ingest/pipeline/r53sigma-resolver$", 503, times=2)
    kibana.fail("POST", r"^/api/detection_engine/rules$", 429)
    sleeps = Sleeps()
    assert deploy(argv(dist, servers), sleeps=sleeps) == 0
    assert sleeps == [1.0, 1.0, 2.0, 1.0]  # doubling per object, reset for the next one
    assert len(kibana.rules) == 2 and "r53sigma-resolver" in es.pipelines
    assert "HTTP 503" in capsys.readouterr().err


def test_retries_are_bounded(dist, servers, capsys):
    es, _ = servers
    es.fail("GET", r"^/_ingest/pipeline$", 503, times=100)
    sleeps = Sleeps()
    assert deploy(argv(dist, servers), sleeps=sleeps, attempts=3) == 1
    assert len(sleeps) == 2
    assert "gave up after 3 attempts" in capsys.readouterr().err


def test_partial_failure_reports_what_was_and_was_not_applied(dist, servers, capsys):
    es, kibana = servers
    kibana.fail("POST", r"^/api/detection_engine/rules$", 400,
                body=json.dumps({"status_code": 400, "message": "query: invalid Lucene"}).encode())
    assert deploy(argv(dist, servers)) == 1
    captured = capsys.readouterr()
    assert f"FAILED: create detection rule Resolver TXT queries to a paste site [{TXT_RULE}]: Kibana: HTTP 400: query: invalid Lucene" in captured.err
    assert f"applied: create detection rule Resolver query for the instance metadata name [{METADATA_RULE}]" in captured.out
    assert "11 of 12 changes applied, 1 failed, 0 not attempted" in captured.err
    assert set(kibana.rules) == {METADATA_RULE}
    assert deploy(argv(dist, servers)) == 0  # the next run creates just the missing one
    assert set(kibana.rules) == {TXT_RULE, METADATA_RULE}


def test_auth_lost_mid_apply_leaves_the_rest_not_attempted(dist, servers, capsys):
    es, kibana = servers
    es.fail("PUT", r"^/_component_template/", 403, times=100)
    assert deploy(argv(dist, servers)) == 1
    err = capsys.readouterr().err
    assert "permission denied (HTTP 403)" in err
    assert err.count("not attempted: ") == 12 - 3 - 1  # 3 pipelines applied (logs-aws.cloudtrail@custom too), 1 failed
    assert not kibana.rules


def test_only_deploys_the_named_rules_and_no_ingestion_objects(dist, servers, capsys):
    es, kibana = servers
    assert deploy(argv(dist, servers, "--only", "Resolver TXT queries to a paste site")) == 0
    assert set(kibana.rules) == {TXT_RULE} and not es.pipelines
    assert deploy(argv(dist, servers, "--only", "no-such-rule")) == 2
    assert "no-such-rule" in capsys.readouterr().err


def test_unreachable_host_is_a_clear_error(dist, servers, capsys):
    es, kibana = servers
    assert deploy(["elastic", "--dist", str(dist), "--url", "http://127.0.0.1:9", "--kibana-url", kibana.url]) == 1
    assert "Elasticsearch: cannot connect" in capsys.readouterr().err


def test_kibana_space_prefixes_the_rules_api(dist, servers):
    es, kibana = servers
    assert deploy(argv(dist, servers, "--space", "soc")) == 0
    assert all(r.path.startswith("/s/soc/api/") for r in kibana.requests)
