"""Registered-domain context: the catalogue's derived fields, from the Public Suffix List, in every
engine and target (computed, or refused with the catalogue's reason)."""
from __future__ import annotations

import json
import textwrap

import pytest
from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.pipelines.route53 import pipelines
from sigma.backends.cloudwatch import backends as cloudwatch_backends

from r53sigma import catalogue
from r53sigma.scan import derived_fields, duckread
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine, EngineError
from r53sigma.scan.records import parse_record, read_paths
from r53sigma.scan.registered_domain import split
from r53sigma.targets.athena import backend as athena
from r53sigma.targets.elasticsearch import ingestion
from r53sigma.targets.elasticsearch.documents import document_from_raw


def resolver(name: str, **fields) -> dict:
    record = {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
        "query_timestamp": "2024-05-01T10:00:00Z", "query_name": name, "query_type": "A",
        "query_class": "IN", "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701",
        "transport": "UDP", "srcids": {"instance": "i-0abc"},
    }
    record.update(fields)
    return record


PER_PARENT = textwrap.dedent("""
    title: lookup
    id: 0b6f7f60-0000-4000-8000-000000000001
    name: lookup
    status: test
    logsource: {product: aws, service: route53resolver}
    detection:
        selection:
            subdomain|exists: true
        condition: selection
    level: low
    ---
    title: many subdomains per parent
    id: 0b6f7f60-0000-4000-8000-000000000002
    status: test
    correlation:
        type: value_count
        rules: [lookup]
        group-by: [registered_domain]
        timespan: 15m
        condition: {field: subdomain, gt: 2}
    level: low
""")


@pytest.mark.parametrize("name, expected", [
    ("a.b.example.co.uk", ("example.co.uk", "a.b")),  # a multi-label ICANN suffix
    ("example.co.uk", ("example.co.uk", None)),
    ("co.uk", (None, None)),  # a public suffix has no registered domain
    ("x.my-bucket.s3.amazonaws.com", ("my-bucket.s3.amazonaws.com", "x")),  # the list's private section
    ("WWW.Example.COM", ("example.com", "www")),  # case folded
    ("evil.com.", (None, None)),  # an empty label (a second trailing dot in the raw record): no domain name
    ("5.2.0.192.in-addr.arpa", (None, None)),  # reverse lookups: none, as Elastic's integration
    ("", (None, None)),
])
def test_split_follows_the_public_suffix_list(name, expected):
    assert split(name) == expected


def test_normalised_records_carry_the_derived_fields_and_raw_stays_as_read():
    event = parse_record(resolver("A.B.Example.co.uk."))
    assert (event.record["registered_domain"], event.record["subdomain"]) == ("example.co.uk", "a.b")
    assert "registered_domain" not in event.raw
    assert "subdomain" not in parse_record(resolver("example.co.uk.")).record


def test_public_hosted_zone_lines_get_them_from_query_name_too():
    line = "1.0 2024-05-01T10:00:00.000Z Z0123456789EXAMPLE a.b.example.org A NOERROR UDP IAD89-C3 203.0.113.3 -"
    assert parse_record(line).record["registered_domain"] == "example.org"


def test_rules_name_the_derived_fields_and_the_reference_engine_groups_by_registered_domain():
    # 3 subdomains of tunnel.co.uk alert; 3 registered domains directly under co.uk do not (a "last two
    # labels" split would put all six under co.uk)
    records = [resolver(f"{s}.tunnel.co.uk.") for s in ("a", "b", "c")] + [resolver(f"www.h{i}.co.uk.") for i in range(3)]
    alerts = list(Engine(SigmaCollection.from_yaml(PER_PARENT)).scan([parse_record(r) for r in records]))
    assert [(a.to_json()["group"], a.to_json()["value"]) for a in alerts] == [({"registered_domain": "tunnel.co.uk"}, 3)]


@pytest.mark.parametrize("split_bytes, python_function", [(8 << 20, False), (0, True)])
def test_duckdb_engine_computes_them_as_the_reference_engine_does(tmp_path, monkeypatch, split_bytes, python_function):
    # a small file gets the split in SQL (no Python function registered); any file over the threshold
    # gets the memoised Python function: both as the reference engine
    monkeypatch.setattr(duckread, "SQL_SPLIT_BYTES", split_bytes)
    names = [f"{s}.tunnel.co.uk." for s in "abcd"] + [f"www.h{i}.co.uk." for i in range(4)] + ["x.B1.S3.amazonaws.com."] * 3
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(resolver(n)) + "\n" for n in names))
    collection = SigmaCollection.from_yaml(PER_PARENT)
    reference = [a.to_json() for a in Engine(collection).scan(read_paths([str(path)]))]
    engine = DuckEngine(collection)
    duck = [a.to_json() for a in engine.scan_paths([str(path)])]
    assert duck == reference and len(reference) == 1 and engine.fast_files == 1
    assert (duckread.SPLIT_FUNCTION in engine._prepared) is python_function


def test_duckdb_exact_path_splits_in_sql(tmp_path):
    # a pretty-printed document goes to the exact path: its batch gets the SQL split too
    names = [f"{s}.tunnel.co.uk." for s in "abcd"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps([resolver(n) for n in names], indent=2))
    collection = SigmaCollection.from_yaml(PER_PARENT)
    reference = [a.to_json() for a in Engine(collection).scan(read_paths([str(path)]))]
    engine = DuckEngine(collection)
    duck = [a.to_json() for a in engine.scan_paths([str(path)])]
    assert duck == reference and len(reference) == 1 and engine.fast_files == 0
    assert duckread.SPLIT_FUNCTION not in engine._prepared and derived_fields.SQL_FUNCTION not in engine._prepared


def test_elasticsearch_ingest_pipeline_derives_them_from_the_catalogue():
    resolver_source = catalogue.load()["resolver"]
    steps = ingestion.ingest_pipeline(resolver_source)["processors"]
    (psl,) = [s["registered_domain"] for s in steps if "registered_domain" in s]
    assert (psl["field"], psl["target_field"]) == ("aws.route53.query_name", "dns.question")
    lowered = [s["lowercase"]["field"] for s in steps if "lowercase" in s]
    assert {"dns.question.registered_domain", "dns.question.subdomain"} <= set(lowered)
    assert ingestion.field_mappings(resolver_source)["dns.question.subdomain"] == {"type": "keyword"}
    doc = document_from_raw(resolver("A.B.Example.co.uk."))
    assert (doc["dns"]["question"]["registered_domain"], doc["dns"]["question"]["subdomain"]) == ("example.co.uk", "a.b")


def test_elasticsearch_queries_the_ingested_names():
    lucene = LuceneBackend(pipelines["route53_elasticsearch"]()).convert(SigmaCollection.from_yaml(PER_PARENT.split("---")[0]))
    assert lucene == ["_exists_:dns.question.subdomain"]
    (esql,) = ESQLBackend(pipelines["route53_elasticsearch"]()).convert(SigmaCollection.from_yaml(PER_PARENT))
    assert "count_distinct(dns.question.subdomain) by timebucket, dns.question.registered_domain" in esql


@pytest.mark.parametrize("pipeline, backend, target", [
    ("route53_splunk", SplunkBackend, "splunk"),
    ("route53_cloudwatch", cloudwatch_backends["cloudwatch"], "cloudwatch"),
])
def test_targets_without_a_public_suffix_list_refuse_with_the_catalogue_reason(pipeline, backend, target):
    reason = catalogue.load()["resolver"].derived["subdomain"].derived.unavailable[target]
    with pytest.raises(SigmaFeatureNotSupportedByBackendError) as refused:
        backend(pipelines[pipeline]()).convert(SigmaCollection.from_yaml(PER_PARENT.split("---")[0]))
    assert reason in str(refused.value) and "subdomain" in str(refused.value)


def test_athena_refuses_them():
    rule = SigmaCollection.from_yaml(PER_PARENT.split("---")[0]).rules[0]
    with pytest.raises(EngineError, match="not available in Athena"):
        athena.rule_query(rule)


def test_a_derived_field_must_come_from_a_catalogued_field():
    doc = {**{k: v for k, v in _resolver_doc().items()}, "derived": {"registered_domain": {
        "from": "no_such_field", "by": "public_suffix_list", "part": "registered_domain", "example": "a.b",
        "description": "x", "targets": {"elasticsearch": "x"}, "unavailable": {}}}}
    with pytest.raises(catalogue.CatalogueError, match="must come from a catalogued field"):
        catalogue._build(doc)


def _resolver_doc() -> dict:
    import yaml
    return yaml.safe_load((catalogue.catalogue_dir() / "resolver.yml").read_text())


@pytest.mark.parametrize("split_bytes", [8 << 20, 0])
def test_duckdb_engine_keeps_line_numbers_of_a_file_read_by_several_threads(tmp_path, monkeypatch, split_bytes):
    # both splits over a file DuckDB reads in parallel (several buffers): each alert's line number is its
    # line's (a join in the pass would not keep the rows' order)
    monkeypatch.setattr(duckread, "SQL_SPLIT_BYTES", split_bytes)
    monkeypatch.setattr(duckread, "READ_BUFFER_BYTES", 1 << 16)
    monkeypatch.setattr(duckread, "MAX_LINE_BYTES", 1 << 15)
    rule = SigmaCollection.from_yaml(textwrap.dedent("""
        title: registered domain
        id: 0b6f7f60-0000-4000-8000-000000000003
        logsource: {product: aws, service: route53resolver}
        detection:
            selection: {registered_domain: [tunnel.co.uk, example.com]}
            condition: selection
        """))
    names = ["a.b.s3.amazonaws.com.", "www.h1.co.uk.", "x.example.org.", "host.unknown-tld."]
    lines = [resolver(f"n{i}.tunnel.co.uk." if i % 397 == 0 else f"n{i}.example.com." if i % 701 == 0 else names[i % 4],
                      query_timestamp=f"2024-05-01T10:{i // 3600 % 60:02d}:{i // 60 % 60:02d}Z")
             for i in range(12000)]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    reference = [a.to_json() for a in Engine(rule).scan(read_paths([str(path)]))]
    engine = DuckEngine(rule, threads=2)
    duck = [a.to_json() for a in engine.scan_paths([str(path)])]
    assert engine.fast_files == 1 and len(reference) == 48
    assert duck == reference



@pytest.mark.parametrize("split_bytes, joins", [(8 << 20, True), (0, False)])
def test_the_only_joins_of_a_pass_are_the_sql_splits_which_the_engine_runs_on_one_thread(tmp_path, monkeypatch, split_bytes, joins):
    # the pass numbers lines by the rows' positions, which a join on several threads does not keep: the
    # engine runs a pass naming the SQL split's table on one thread, so no other join may enter a pass
    from pathlib import Path

    from r53sigma.ioc import PLACEHOLDER
    from r53sigma.rules import load
    from r53sigma.scan import registered_domain

    monkeypatch.setattr(duckread, "SQL_SPLIT_BYTES", split_bytes)
    passes = []
    prepare = DuckEngine.prepare
    monkeypatch.setattr(DuckEngine, "prepare", lambda self, sql: passes.append(sql) or prepare(self, sql))
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(resolver("a.tunnel.co.uk.")) + "\n")
    pack = load([Path(__file__).parents[2] / "sigma_rules" / "resolver"], variables={PLACEHOLDER: ["evil.example"]})
    engine = DuckEngine(pack)  # the whole Resolver pack
    list(engine.scan_paths([str(path)]))
    (statement,) = [s for s in passes if s.startswith("COPY (WITH v AS")]

    def operators(node: dict) -> list[str]:
        return [node["name"]] + [name for child in node.get("children", []) for name in operators(child)]

    plan = json.loads(engine.con.execute("EXPLAIN (FORMAT json) " + statement).fetchall()[0][1])
    names = [name for root in plan for name in operators(root)]
    assert "READ_CSV" in names
    assert any("JOIN" in name for name in names) is joins
    assert (registered_domain.SQL_TABLE in statement) is joins


def test_the_list_rebuilt_from_its_kept_rules_is_the_parsed_list():
    """A warm scan rebuilds the list from the rules its compiled run kept (no IDN encoding again)."""
    from r53sigma.scan import registered_domain

    registered_domain.given_list_rules(None)  # an earlier warm scan in this process may have given its rules
    parsed = registered_domain._list()
    try:
        registered_domain.given_list_rules(tuple(registered_domain.list_rules()))
        rebuilt = registered_domain._list()
        assert rebuilt is not parsed
        assert (rebuilt._publicsuffix, rebuilt._maxlabel) == (parsed._publicsuffix, parsed._maxlabel)
        for name in ("www.example.co.uk", "a.b.kawasaki.jp", "city.kawasaki.jp", "xn--fiqs8s", "a.bücher.example", "s3.amazonaws.com"):
            assert rebuilt.privatesuffix(name) == parsed.privatesuffix(name)
    finally:
        registered_domain.given_list_rules(None)
