"""ES|QL value_sum / value_avg correlations (hopping buckets) against the reference engine, on the
ingest pipeline's documents (the derived `aws.route53.query_length` included), through the ES|QL model."""
from __future__ import annotations

import textwrap

import pytest
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.pipelines.route53 import pipelines

from r53sigma import rules as rule_loading
from r53sigma import verify
from r53sigma.targets.elasticsearch.backend import HoppingESQLBackend
from r53sigma.targets.elasticsearch.documents import document_from_raw

RULES = """
title: lookups
name: lookups
id: 6a1d9c3e-0000-4000-8000-0000000000c1
status: test
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: A}, condition: sel}
level: low
---
title: numeric
id: 6a1d9c3e-0000-4000-8000-0000000000c2
status: test
correlation: {type: %s, rules: [lookups], group-by: [srcaddr], timespan: 10m, condition: %s}
level: medium
"""


def lookup(name: str, minute: int, srcaddr: str = "10.0.0.5", srcport: str = "40000") -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": f"2026-01-01T00:{minute:02d}:00Z", "query_name": name, "query_type": "A",
            "query_class": "IN", "rcode": "NOERROR", "srcaddr": srcaddr, "srcport": srcport, "transport": "UDP",
            "srcids": {"instance": "i-0123456789abcdef0"}, "answers": []}


def cell(tmp_path, kind: str, condition: str, raws: list) -> verify.Cell:
    path = tmp_path / "rule.yml"
    path.write_text(textwrap.dedent(RULES % (kind, condition)), encoding="utf-8")
    loaded = rule_loading.load([path])
    (rule,) = loaded.top_level()
    report = verify.verify([path], loaded, [(rule, verify.Case(rule_ref=str(path), name="case", raws=raws))], ("elasticsearch",))
    assert not report.problems, report.problems
    (found,) = report.cells
    if found.status == verify.SKIPPED:
        pytest.skip(found.reason)
    return found


def reference_alerts(tmp_path, kind: str, condition: str, raws: list) -> list[dict]:
    """What the reference engine (the definition) alerts on: a near miss must really be one."""
    import json

    from sigma.collection import SigmaCollection

    from r53sigma.scan.reference import Engine
    from r53sigma.scan.records import read_paths

    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in raws), encoding="utf-8")
    collection = SigmaCollection.from_yaml(textwrap.dedent(RULES % (kind, condition)))
    return [a.to_json() for a in Engine(collection).scan(read_paths([str(events)]))]


def long_name(length: int) -> str:
    return "a" * (length - len(".example.com")) + ".example.com."


def test_ingest_document_has_query_length_without_the_trailing_dot():
    document = document_from_raw(lookup("www.example.com.", 0), "resolver")
    assert document["aws"]["route53"]["query_length"] == 15


def test_value_avg_of_query_length_agrees_and_carries_its_note(tmp_path):
    raws = [lookup(long_name(80), 1), lookup(long_name(90), 2), lookup("a.example.", 3, srcaddr="10.0.0.6")]
    found = cell(tmp_path, "value_avg", "{gt: 75, field: query_length}", raws)
    assert "stats value_avg=avg(aws.route53.query_length)" in found.query and "sum/average over hopping buckets" in found.query
    assert found.status == verify.AGREE, (found.status, found.reason, found.query)


def test_value_avg_near_miss_diluted_in_the_window(tmp_path):
    raws = [lookup(long_name(90), 1), lookup(long_name(90), 2), lookup("a.example.", 3), lookup("b.example.", 4)]
    found = cell(tmp_path, "value_avg", "{gt: 75, field: query_length}", raws)
    assert found.status == verify.AGREE, (found.status, found.reason, found.query)
    assert reference_alerts(tmp_path, "value_avg", "{gt: 75, field: query_length}", raws) == []


def test_value_sum_of_source_ports_agrees(tmp_path):
    raws = [lookup("a.example.", 1, srcport="30000"), lookup("b.example.", 2, srcport="40000"),
            lookup("c.example.", 3, srcaddr="10.0.0.6", srcport="60000")]
    found = cell(tmp_path, "value_sum", "{gte: 70000, field: srcport}", raws)
    assert "stats value_sum=sum(source.port)" in found.query
    assert found.status == verify.AGREE, (found.status, found.reason, found.query)


@pytest.mark.parametrize("kind", ["value_percentile", "value_median"])
def test_percentile_and_median_stay_refused_as_approximate(kind):
    condition = "{gt: 75, field: query_length, percentile: 90}" if kind == "value_percentile" else "{gt: 75, field: query_length}"
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="TDigest"):
        HoppingESQLBackend(pipelines["route53_elasticsearch"]()).convert(SigmaCollection.from_yaml(RULES % (kind, condition)))
