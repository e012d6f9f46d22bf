"""The derived `query_length` (characters of the name without its trailing dot) on both engines:
from parsed records and from files (the DuckDB reader's SQL column), in detections and in value_avg."""
from __future__ import annotations

import json
import textwrap

from sigma.collection import SigmaCollection

from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.records import parse_record, read_paths
from r53sigma.scan.reference import Engine

RULES = """
title: long names
name: long_names
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_length|gte: 20}, condition: sel}
---
title: long average
correlation: {type: value_avg, rules: [lookups], group-by: [srcaddr], timespan: 5m, condition: {gt: 30, field: query_length}}
---
title: lookups
name: lookups
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: A}, condition: sel}
"""


def record(second: int, name: str, src: str = "10.0.0.5") -> dict:
    return {"query_timestamp": f"2024-05-01T10:00:{second:02d}Z", "query_name": name, "query_type": "A",
            "rcode": "NOERROR", "srcaddr": src, "answers": [], "srcids": {"instance": "i-1"}}


RECORDS = [record(0, "a" * 16 + ".example.com."), record(1, "a" * 36 + ".example.com."),  # 28 and 48 characters
           record(2, "short.example.", src="10.0.0.6"), record(3, "x" * 20 + ".")]  # 13; 20 (exactly) without its dot


def collection() -> SigmaCollection:
    rules = SigmaCollection.from_yaml(textwrap.dedent(RULES))
    rules.resolve_rule_references()
    return rules


def test_query_length_is_the_name_without_its_trailing_dot():
    assert [parse_record(r).record["query_length"] for r in RECORDS] == [28, 48, 13, 20]


def test_both_engines_agree_on_query_length_from_records():
    events = [parse_record(r, file="t", line=i) for i, r in enumerate(RECORDS, 1)]
    reference = [a.to_json() for a in Engine(collection()).scan(events)]
    duck = [a.to_json() for a in DuckEngine(collection()).scan(events)]
    assert duck == reference
    assert sorted(a["title"] for a in reference) == ["long average", "long names", "long names", "long names"]


def test_both_engines_agree_on_query_length_from_a_file(tmp_path):
    log = tmp_path / "resolver.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    reference = [a.to_json() for a in Engine(collection()).scan(read_paths([str(log)], lambda e: None))]
    engine = DuckEngine(collection())
    duck = [a.to_json() for a in engine.scan_paths([str(log)])]
    assert duck == reference and len(reference) == 4
    assert engine.fast_files == 1  # the reader's SQL computed the column, not the Python fallback
    # 10.0.0.5's windows average 32 (28, 48, 20), 34 (48, 20) and 20: one burst, its largest value 34
    (average,) = [a for a in reference if a["title"] == "long average"]
    assert average["group"] == {"srcaddr": "10.0.0.5"} and average["value"] == 34.0
