"""`r53sigma deploy elastic --ioc-domains FILE`: the threat feed as an enrich policy, against the fake
Elasticsearch (real `elasticsearch` client), idempotently."""
from __future__ import annotations

import re

import pytest

from deploy_fakes import deploy, dist_fixture, isolate_environment
from deploy_fakes.servers import FakeElasticsearch, FakeKibana
from r53sigma.deploy import elastic_ioc
from r53sigma.targets.elasticsearch import ioc_enrich


@pytest.fixture
def dist(tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    return dist_fixture.build(tmp_path)


@pytest.fixture
def servers():
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        yield es, kibana


def feed(tmp_path, text, name="feed.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def argv(dist, servers, *extra):
    es, kibana = servers
    return ["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url, *extra]


def test_feed_is_loaded_into_the_policy_and_the_lookup_pipeline_is_put_after_it(dist, servers, tmp_path, capsys):
    es, _ = servers
    path = feed(tmp_path, "domain,category\nEvil.Example.,c2\nphish.example,\n")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    assert es.indices[ioc_enrich.SOURCE_INDEX]["docs"] == {
        "evil.example": {"domain": "evil.example", "category": "c2"}, "phish.example": {"domain": "phish.example"}}
    assert es.policies[ioc_enrich.POLICY] == {"match": {"indices": [ioc_enrich.SOURCE_INDEX], "match_field": "domain",
                                                        "enrich_fields": ["category"]}}
    assert es.enrich_indices[ioc_enrich.POLICY] == [{"domain": "evil.example", "category": "c2"}, {"domain": "phish.example"}]
    assert ioc_enrich.PIPELINE in es.pipelines and "r53sigma-resolver" in es.pipelines
    order = [(r.method, r.path) for r in es.changes()]
    execute = order.index(("PUT", f"/_enrich/policy/{ioc_enrich.POLICY}/_execute"))
    assert order.index(("PUT", f"/_ingest/pipeline/{ioc_enrich.PIPELINE}")) > execute
    assert re.search(r"create\s+threat-feed index\s+r53sigma-ioc-domains\s+2 domains", capsys.readouterr().out)


def test_same_feed_again_changes_nothing_and_a_changed_feed_reloads_and_executes(dist, servers, tmp_path, capsys):
    es, kibana = servers
    path = feed(tmp_path, "evil.example\nold.example\n", "feed.txt")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    before = len(es.changes()) + len(kibana.changes())
    capsys.readouterr()
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(es.changes()) + len(kibana.changes()) == before
    path.write_text("evil.example\nnew.example\n")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    out = capsys.readouterr().out
    assert re.search(r"update\s+threat-feed index", out) and re.search(r"unchanged\s+enrich policy ", out)
    assert sorted(d["domain"] for d in es.enrich_indices[ioc_enrich.POLICY]) == ["evil.example", "new.example"]
    stored = es.pipelines[ioc_enrich.PIPELINE]["_meta"][elastic_ioc.FEED_META]
    assert stored == es.indices[ioc_enrich.SOURCE_INDEX]["mappings"]["_meta"][elastic_ioc.FEED_META]


def test_an_interrupted_run_executes_again_on_the_next(dist, servers, tmp_path):
    es, _ = servers
    path = feed(tmp_path, "evil.example\n", "feed.txt")
    es.fail("PUT", r"/_execute$", 400, times=1)
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 1
    assert ioc_enrich.POLICY not in es.enrich_indices
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0  # the index is loaded, the execution was not
    assert es.enrich_indices[ioc_enrich.POLICY] == [{"domain": "evil.example"}] and ioc_enrich.PIPELINE in es.pipelines


def test_a_changed_policy_is_replaced_after_its_pipeline_is_deleted(dist, servers, tmp_path, capsys):
    es, _ = servers
    path = feed(tmp_path, "evil.example\n", "feed.txt")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    es.policies[ioc_enrich.POLICY]["match"]["enrich_fields"] = ["other"]  # an older pack's definition
    capsys.readouterr()
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 0
    assert "a policy cannot change" in capsys.readouterr().out
    assert es.policies[ioc_enrich.POLICY]["match"]["enrich_fields"] == ["category"] and ioc_enrich.PIPELINE in es.pipelines


def test_the_fake_refuses_what_elasticsearch_refuses(servers):
    es, _ = servers
    from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

    client = Elasticsearch(es.url, api_key="es-key")
    lookup = ioc_enrich.lookup_pipeline("dns.question.name")
    with pytest.raises(BadRequestError, match="no enrich index exists"):
        client.ingest.put_pipeline(id=ioc_enrich.PIPELINE, body=lookup)
    with pytest.raises(NotFoundError, match="no such index"):
        client.enrich.put_policy(name=ioc_enrich.POLICY, **ioc_enrich.policy())
    client.indices.create(index=ioc_enrich.SOURCE_INDEX, mappings=ioc_enrich.source_index()["mappings"])
    client.enrich.put_policy(name=ioc_enrich.POLICY, **ioc_enrich.policy())
    with pytest.raises(BadRequestError, match="already exists"):
        client.enrich.put_policy(name=ioc_enrich.POLICY, **ioc_enrich.policy())
    client.enrich.execute_policy(name=ioc_enrich.POLICY)
    client.ingest.put_pipeline(id=ioc_enrich.PIPELINE, body=lookup)
    with pytest.raises(BadRequestError, match="pipeline is referencing it"):
        client.enrich.delete_policy(name=ioc_enrich.POLICY)
    with pytest.raises(BadRequestError, match="no handler"):
        client.perform_request("POST", "/_enrich/policy/x/_stop")


def test_a_bad_feed_is_refused_before_anything_changes(dist, servers, tmp_path, capsys):
    es, kibana = servers
    path = feed(tmp_path, "good.example\nnot a domain\n", "feed.txt")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{path}:2" in errors[0]
    assert es.changes() == [] and kibana.changes() == []


def test_a_users_own_index_of_the_feeds_name_is_left_alone_unless_forced(dist, servers, tmp_path, capsys):
    es, kibana = servers
    index = elastic_ioc.bodies(dist / "elastic")[0][0]
    es.indices[index] = {"mappings": {"properties": {"x": {"type": "keyword"}}}, "docs": {"1": {"x": "mine"}}}
    path = feed(tmp_path, "evil.example\n")
    assert deploy(argv(dist, servers, "--ioc-domains", str(path))) == 2
    assert "r53sigma did not load it" in capsys.readouterr().err
    assert es.indices[index]["docs"] == {"1": {"x": "mine"}} and kibana.changes() == []
    assert deploy(argv(dist, servers, "--ioc-domains", str(path), "--force")) == 0
    assert es.indices[index]["docs"] != {"1": {"x": "mine"}}


def test_without_the_option_no_feed_object_is_touched(dist, servers):
    es, _ = servers
    assert deploy(argv(dist, servers)) == 0
    assert not es.indices and not es.policies and ioc_enrich.PIPELINE not in es.pipelines
    call = [p for p in es.pipelines["r53sigma-resolver"]["processors"] if "pipeline" in p]
    assert call == [ioc_enrich.call_processor()]


def test_dist_without_the_enrich_bodies_is_a_clear_error(dist, servers, tmp_path, capsys):
    for path in (dist / "elastic" / "enrich").glob("*.json"):
        path.unlink()
    assert deploy(argv(dist, servers, "--ioc-domains", str(feed(tmp_path, "evil.example\n", "f.txt")))) == 2
    assert "r53sigma package" in capsys.readouterr().err
