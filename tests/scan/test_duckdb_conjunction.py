"""Property: ``AND`` written as ``CASE`` (the parts that are never NULL first, ``sqlcompile.Dialect.conjunction``)
alerts as the reference engine, with parts that may be NULL (keywords, ``|cidr``, list ``null``/``|exists``)
anywhere in the condition, both DuckDB paths."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.collection import SigmaCollection

from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record, read_paths

SELECTIONS = [
    {"query_name|endswith": ".example"},  # never NULL
    {"rcode": "NXDOMAIN"},
    {"query_name|re": "[0-9]"},
    ["evil"],  # a keyword: SQL leaves it unknown, the reference engine decides
    {"answers.Rdata|cidr": ["10.0.0.0/8", "fc00::/7"]},  # unknown for unusual address forms
    {"answers.Rdata": None},  # the length of a list that may be NULL
    {"answers.Rdata|exists": True},
]
CONDITIONS = ["s0 and s1", "s0 and s1 and s2", "s0 and not s1", "not (s0 and s1)", "(s0 or s1) and s2",
              "s0 and (s1 or not s2)", "all of s*", "not s0 and not s1 and s2"]
RECORDS = st.fixed_dictionaries(
    {"query_timestamp": st.just("2024-05-01T10:00:00Z"),
     "query_name": st.sampled_from(["a.example", "evil1.example", "b.test", "10.0.0.1", "EVIL.example."]),
     "rcode": st.sampled_from(["NOERROR", "NXDOMAIN"]), "srcaddr": st.just("10.0.0.1")},
    optional={"answers": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
        {"Rdata": st.sampled_from(["10.1.2.3", " 10.1.2.3", "::ffff:10.0.0.1", "8.8.8.8", "fd00::1", "evil.example", "x"])}),
        max_size=2))},
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(picked=st.lists(st.sampled_from(range(len(SELECTIONS))), min_size=3, max_size=3),
       condition=st.sampled_from(CONDITIONS), raw=st.lists(RECORDS, min_size=1, max_size=8))
def test_and_as_case_agrees_with_the_reference_engine(tmp_path_factory, picked, condition, raw):
    detection = {f"s{i}": SELECTIONS[p] for i, p in enumerate(picked)}
    detection["condition"] = condition
    rule = {"title": "and", "id": "6a1d9c3e-0000-4000-8000-0000000000d1", "name": "and",
            "logsource": {"product": "aws", "service": "route53resolver"}, "detection": detection}
    rules = SigmaCollection.from_yaml(json.dumps(rule))
    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(raw, 1)]
    assert [a.to_json() for a in DuckEngine(rules).scan(events)] == [a.to_json() for a in Engine(rules).scan(events)]
    log = tmp_path_factory.mktemp("and") / "q.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in raw))
    engine = DuckEngine(rules)
    assert [a.to_json() for a in engine.scan_paths([log])] == [a.to_json() for a in Engine(rules).scan(read_paths([log]))]
