"""Property: on generated Resolver events and generated rules, the DuckDB engine alerts as the reference does."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.collection import SigmaCollection

from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record, read_paths

NAMES = ["a.example.com.", "A.Example.COM", "b.evil.io.", "x-1.test.", "10.0.0.1", "", "."]
DATAS = ["10.1.2.3", "192.168.0.1", "fd00::5", "2001:db8::1", "cname.example.com.", "Secret", "8.8.8.8"]
VALUES = ["a.example.com", "*.example.com", "B*", "*evil*", "x-?.test", "secret", "10.*", "."]

atoms = st.one_of(
    st.builds(lambda f, v: {f: v}, st.sampled_from(["query_name", "answers.Rdata", "rcode", "srcids.instance"]), st.sampled_from(VALUES)),
    st.builds(lambda f, v: {f + "|cased": v}, st.sampled_from(["query_name", "rcode"]), st.sampled_from(["A.Example.COM", "NXDOMAIN"])),
    st.builds(lambda v: {"answers.Rdata|cidr": v}, st.sampled_from(["10.0.0.0/8", "fc00::/7", "192.168.0.0/16"])),
    st.builds(lambda v: {"query_name|re": v}, st.sampled_from(["^a\\.", "EVIL", "(?i)evil", "[0-9]", "com$"])),
    st.builds(lambda op, n: {f"srcport|{op}": n}, st.sampled_from(["gt", "lte"]), st.sampled_from([53, 1024, 40000])),
    st.builds(lambda f: {f: None}, st.sampled_from(["srcids.instance", "answers.Rdata", "firewall_rule_action"])),
    st.builds(lambda f, b: {f + "|exists": b}, st.sampled_from(["srcids.instance", "answers.Rdata"]), st.booleans()),
)
conditions = st.sampled_from(["s0", "not s0", "s0 and s1", "s0 or not s1", "not (s0 or s1)", "1 of s*", "all of s*"])

records = st.fixed_dictionaries(
    {
        "query_timestamp": st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T10:00:59.5Z", "2024-05-01T10:01:30Z"]),
        "query_name": st.sampled_from(NAMES),
        "rcode": st.sampled_from(["NOERROR", "NXDOMAIN", "nxdomain"]),
        "srcaddr": st.sampled_from(["10.0.0.1", "10.0.0.2"]),
        "answers": st.lists(st.fixed_dictionaries({"Rdata": st.sampled_from(DATAS)}), max_size=3),
    },
    optional={
        "srcport": st.one_of(st.sampled_from(["53", "48701", " 1024 ", "x"]), st.integers(0, 65535)),
        "srcids": st.one_of(st.just({}), st.fixed_dictionaries({"instance": st.sampled_from(["i-1", "I-1", None])})),
        "firewall_rule_action": st.sampled_from(["BLOCK", "ALERT"]),
    },
)


def collection(selections, condition, correlation):
    detection = {f"s{i}": sel for i, sel in enumerate(selections)}
    detection["condition"] = condition if len(selections) > 1 or "s1" not in condition else "s0"
    rule = {"title": "generated", "id": "6a1d9c3e-0000-4000-8000-0000000000a1", "name": "generated",
            "logsource": {"product": "aws", "service": "route53resolver"}, "detection": detection}
    docs = [rule]
    if correlation:
        kind, group = correlation
        corr = {"type": kind, "rules": ["generated"], "group-by": [group], "timespan": "1m",
                "condition": {"gte": 2, **({"field": "query_name"} if kind == "value_count" else {})}}
        docs.append({"title": "generated correlation", "id": "6a1d9c3e-0000-4000-8000-0000000000a2", "correlation": corr})
        docs.append(dict(rule, name="generated_plain", id="6a1d9c3e-0000-4000-8000-0000000000a3"))
    return SigmaCollection.from_yaml("\n---\n".join(json.dumps(d) for d in docs))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    selections=st.lists(atoms, min_size=1, max_size=2),
    condition=conditions,
    correlation=st.one_of(st.none(), st.tuples(st.sampled_from(["event_count", "value_count"]), st.sampled_from(["srcaddr", "answers.Rdata"]))),
    raw=st.lists(records, min_size=1, max_size=8),
)
def test_duckdb_engine_agrees_with_the_reference_engine(tmp_path_factory, selections, condition, correlation, raw):
    rules = collection(selections, condition, correlation)
    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(raw, 1)]
    expected = [a.to_json() for a in Engine(rules).scan(events)]
    assert [a.to_json() for a in DuckEngine(rules).scan(events)] == expected
    # the same records as a file: DuckDB reads it itself
    log = tmp_path_factory.mktemp("gen") / "q.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in raw))
    from_file = [a.to_json() for a in Engine(rules).scan(read_paths([log]))]
    engine = DuckEngine(rules)
    assert [a.to_json() for a in engine.scan_paths([log])] == from_file
    assert engine.fast_files == 1  # generated records are plain Resolver lines: DuckDB read them
