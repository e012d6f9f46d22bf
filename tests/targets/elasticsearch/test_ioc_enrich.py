"""The threat-feed rule in Elasticsearch: the enrich lookup at ingest (rendered pipeline run by the
test's processor interpreter, Python copy in documents.py) and the Lucene query on its field (real Lucene)."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings, strategies as st
from sigma.collection import SigmaCollection
from sigma.pipelines.route53 import pipelines

from r53sigma import catalogue, ioc, rules
from r53sigma.targets.elasticsearch import document_from_raw, indexed_fields, ingestion as es, ioc_enrich
from r53sigma.targets.elasticsearch.lucene import INLINE_ENV, LuceneBackend
from r53sigma.targets.elasticsearch.lucene_engine import LuceneEngine, LuceneUnavailable, flatten
from test_mappings_elastic import CLUSTER, comparable, names, resolver_record, resolver_samples, simulate

RULE = """
title: listed
id: 6a1d9c3e-0000-4000-8000-0000000000e1
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
    condition: selection
"""
FEED = [ioc.Entry("evil.example", "c2"), ioc.Entry("c2.bad.example"), ioc.Entry("a.evil.example", "phishing")]


@pytest.fixture
def deployed():
    """The cluster after `deploy elastic --ioc-domains`: the policy executed, the lookup pipeline put."""
    rendered = es.render()
    policy = rendered[f"elasticsearch/enrich/{ioc_enrich.POLICY}.policy.json"]["match"]
    CLUSTER["enrich"] = {ioc_enrich.POLICY: (policy["match_field"], policy["enrich_fields"],
                                             [{"domain": e.domain, **({"category": e.category} if e.category else {})} for e in FEED])}
    CLUSTER["pipelines"] = {ioc_enrich.PIPELINE: rendered[f"elasticsearch/enrich/{ioc_enrich.PIPELINE}.pipeline.json"]}
    yield
    CLUSTER["enrich"], CLUSTER["pipelines"] = {}, {}


def line(name: str) -> str:
    return json.dumps({"query_timestamp": "2026-12-02T12:00:05Z", "query_name": name, "query_type": "A", "rcode": "NOERROR",
                       "answers": [], "srcaddr": "10.0.1.23", "srcids": {}})


def resolver_pipeline() -> dict:
    return es.ingest_pipeline(catalogue.load()["resolver"])


def test_lookup_writes_every_entry_the_name_or_a_parent_is(deployed):
    doc = simulate(resolver_pipeline(), line("X.A.Evil.Example."))
    assert sorted(m["domain"] for m in doc["r53sigma"]["ioc"]) == ["a.evil.example", "evil.example"]
    assert {m["domain"]: m.get("category") for m in doc["r53sigma"]["ioc"]} == {"a.evil.example": "phishing", "evil.example": "c2"}
    assert ioc_enrich.KEYS_FIELD not in doc
    for near_miss in ("notevil.example.", "bad.example.", "evil.example.attacker.test.", "example."):
        assert "r53sigma" not in simulate(resolver_pipeline(), line(near_miss)), near_miss


def test_without_a_deployed_feed_the_resolver_pipeline_ingests_unchanged():
    doc = simulate(resolver_pipeline(), line("evil.example."))
    assert "r53sigma" not in doc and doc["event"]["kind"] == "event"
    without_call = copy.deepcopy(resolver_pipeline())
    without_call["processors"] = [p for p in without_call["processors"] if "pipeline" not in p]
    assert simulate(without_call, line("evil.example.")) == doc


def test_a_failing_lookup_never_fails_the_document(deployed):
    CLUSTER["enrich"] = {}  # the sub-pipeline exists but its enrich index is gone
    doc = simulate(resolver_pipeline(), line("evil.example."))
    assert doc["event"]["kind"] == "event" and "r53sigma" not in doc


def test_python_copy_agrees_with_the_pipeline_on_the_corpus(deployed):
    for raw in resolver_samples():
        assert comparable(document_from_raw(raw, "resolver", FEED)) == comparable(simulate(resolver_pipeline(), raw)), raw


@settings(max_examples=100, deadline=None)
@given(resolver_record, st.one_of(names, st.sampled_from(["evil.example", "a.evil.example", "c2.bad.example"])))
def test_python_copy_agrees_with_the_pipeline_on_generated_names(record, prefix):
    CLUSTER["pipelines"] = {}
    try:
        for suffix in ("evil.example.", "c2.bad.example.", ""):
            record = {**record, "query_name": f"{prefix}.{suffix}" if suffix else prefix + "."}
            raw = json.dumps(record)
            with_feed = _deploy_and(lambda: simulate(resolver_pipeline(), raw))
            assert comparable(document_from_raw(raw, "resolver", FEED)) == comparable(with_feed), raw
    finally:
        CLUSTER["enrich"], CLUSTER["pipelines"] = {}, {}


def _deploy_and(run):
    rendered = es.render()
    CLUSTER["enrich"] = {ioc_enrich.POLICY: ("domain", ["category"], [
        {"domain": e.domain, **({"category": e.category} if e.category else {})} for e in FEED])}
    CLUSTER["pipelines"] = {ioc_enrich.PIPELINE: rendered[f"elasticsearch/enrich/{ioc_enrich.PIPELINE}.pipeline.json"]}
    return run()


def convert(monkeypatch, listed=None, inline=False):
    monkeypatch.delenv(ioc.ENV_FILE, raising=False)
    monkeypatch.delenv(INLINE_ENV, raising=False)
    if listed:
        monkeypatch.setenv(ioc.ENV_FILE, str(listed))
    if inline:
        monkeypatch.setenv(INLINE_ENV, "1")
    (query,) = LuceneBackend(pipelines["route53_elasticsearch"]()).convert(SigmaCollection.from_yaml(RULE))
    return query


def lucene_hits(query: str, docs: list[dict]) -> list[int]:
    try:
        engine = LuceneEngine()
    except LuceneUnavailable as error:
        pytest.skip(str(error))
    types = {"@timestamp": "date", "source.ip": "ip"}
    indexed = [flatten(d, types, ["dns.question.name"]) for d in docs]
    answer = engine.search(indexed, {"q": query})["q"]
    assert not isinstance(answer, str), answer
    return sorted(answer)


ALERTS = ["a.b.EVIL.example.", "evil.example.", "x.c2.bad.example."]
NEAR_MISSES = ["notevil.example.", "bad.example.", "evil.example.attacker.test.", "example."]


def test_lucene_query_matches_the_enriched_field_without_a_list(monkeypatch, deployed):
    query = convert(monkeypatch)  # no list needed: the enrich index is the list
    assert query == f"(dns.question.name.caseless:*) AND _exists_:{ioc_enrich.MATCHED_DOMAIN}"
    docs = [simulate(resolver_pipeline(), line(n)) for n in ALERTS + NEAR_MISSES]
    assert lucene_hits(query, docs) == [0, 1, 2]
    CLUSTER["pipelines"] = {}  # the same events on a cluster without the feed: nothing is listed
    assert lucene_hits(query, [simulate(resolver_pipeline(), line(n)) for n in ALERTS]) == []


def test_a_given_list_is_not_inlined_unless_asked(monkeypatch, tmp_path, deployed):
    listed = tmp_path / "l.txt"
    listed.write_text("evil.example\n")
    assert "evil" not in convert(monkeypatch, listed)
    inline = convert(monkeypatch, listed, inline=True)
    assert "evil.example" in inline and ioc_enrich.MATCHED_DOMAIN not in inline
    unenriched = [document_from_raw(line(n), "resolver") for n in ALERTS + NEAR_MISSES]
    assert lucene_hits(inline, unenriched) == [0, 1]  # only evil.example is in this list


def test_verify_documents_carry_the_cases_list(tmp_path):
    from r53sigma.targets.elasticsearch.verify import deployed_feed, lucene_document

    rule_file = tmp_path / "ioc.yml"
    rule_file.write_text(RULE)
    loaded = rules.load([rule_file], {"ioc_domains": ["Evil.Example."]})
    (rule,) = loaded.rules
    assert deployed_feed(rule) == [ioc.Entry("evil.example")]
    fields = {f for f, _kind, _value in lucene_document(line("a.evil.example."), "resolver", deployed_feed(rule))}
    assert ioc_enrich.MATCHED_DOMAIN in fields
    assert ioc_enrich.MATCHED_DOMAIN in indexed_fields(document_from_raw(line("evil.example."), "resolver", deployed_feed(rule)))
