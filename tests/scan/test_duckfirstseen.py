"""The DuckDB engine's first-seen step (r53sigma.scan.duckfirstseen) against its definition:
baseline.first_seen_alerts over the reference engine's alerts, the written baseline byte for byte."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.collection import SigmaCollection

duckdb = pytest.importorskip("duckdb")

from r53sigma.scan import baseline, duckfirstseen  # noqa: E402
from r53sigma.scan.duckdb_engine import DuckEngine  # noqa: E402
from r53sigma.scan.reference import Engine  # noqa: E402
from r53sigma.scan.records import read_paths  # noqa: E402

RULES = [
    {"title": "fs name", "id": "6a1d9c3e-0000-4000-8000-0000000000f1", "logsource": {"product": "aws", "service": "route53resolver"},
     "detection": {"s": {"rcode": "NOERROR"}, "condition": "s"}, "first_seen": {"fields": ["account_id", "query_name"], "history": "1h"}},
    {"title": "fs domain", "id": "6a1d9c3e-0000-4000-8000-0000000000f2", "logsource": {"product": "aws", "service": "route53resolver"},
     "detection": {"s": {"registered_domain|exists": True}, "condition": "s"}, "first_seen": {"fields": ["registered_domain"], "history": "2h"}},
    {"title": "plain", "id": "6a1d9c3e-0000-4000-8000-0000000000f3", "logsource": {"product": "aws", "service": "route53resolver"},
     "detection": {"s": {"query_name|endswith": "evil.io"}, "condition": "s"}},
]
BASE = 1714608000  # offsets around the 1h/2h histories: equal times, just inside, just past
OFFSETS = [0, 0, 1, 3599, 3600, 3601, 7200, 7200.5, 7201, 10800]
stamp = lambda s: __import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(BASE + int(s))) + (".5Z" if s % 1 else "Z")

records = st.fixed_dictionaries(
    {"query_timestamp": st.sampled_from([stamp(o) for o in OFFSETS]),
     "query_name": st.sampled_from(["a.example.com.", "b.example.com", "x.evil.io.", "com.", None]),
     "rcode": st.sampled_from(["NOERROR", "NOERROR", "NXDOMAIN"])},
    optional={"account_id": st.sampled_from(["111122223333", "444455556666", 111122223333, ["a1", "a2"], None])},
)
rows = st.lists(st.fixed_dictionaries({
    "rule_id": st.sampled_from(["6a1d9c3e-0000-4000-8000-0000000000f1", "6a1d9c3e-0000-4000-8000-0000000000f2", "other"]),
    "values": st.sampled_from([["111122223333", "a.example.com"], ["example.com"], ["evil.io"], ["444455556666", "x.evil.io"]]),
    "last_seen": st.sampled_from([BASE - 7201, BASE - 3600, BASE + 1800, BASE + 20000]),
}), max_size=4)


def _rules():
    return SigmaCollection.from_yaml("\n---\n".join(json.dumps(r) for r in RULES))


def _written(tmp, name, seen):
    path = tmp / name
    baseline.write(path, seen)
    return path.read_bytes()


def _history(found):
    return baseline.Baseline.from_rows({**r, "last_seen": f"{__import__('datetime').datetime.fromtimestamp(r['last_seen'], __import__('datetime').timezone.utc).isoformat()}"} for r in found)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.lists(records, min_size=1, max_size=8), second=st.lists(records, max_size=6), found=rows, swap=st.booleans())
def test_duckdb_first_seen_equals_the_python_filter_on_the_reference_alerts(tmp_path_factory, first, second, found, swap):
    tmp = tmp_path_factory.mktemp("fs")
    files = []
    for n, raw in enumerate([first, second]):
        files.append(tmp / f"q{n}.jsonl")
        files[-1].write_text("".join(json.dumps({k: v for k, v in r.items()}) + "\n" for r in raw))
    files = files[::-1] if swap else files  # both run orders: ties broken by stream position
    rules = _rules()
    expected_seen = _history(found)
    expected = [a.to_json() for a in baseline.first_seen_alerts(Engine(rules).scan(read_paths(files)), expected_seen)]
    decider = duckfirstseen.FirstSeen(_history(found))
    assert [a.to_json() for a in DuckEngine(rules).scan_paths(files, first_seen=decider)] == expected
    assert _written(tmp, "duck.csv", decider.rows()) == _written(tmp, "ref.csv", expected_seen)
    # the exact path (events Python read)
    events = list(read_paths(files))
    python_seen, duck_seen = _history(found), duckfirstseen.FirstSeen(_history(found))
    expected = [a.to_json() for a in baseline.first_seen_alerts(Engine(rules).scan(events), python_seen)]
    assert [a.to_json() for a in DuckEngine(rules).scan(events, first_seen=duck_seen)] == expected
    assert _written(tmp, "duck2.csv", duck_seen.rows()) == _written(tmp, "ref2.csv", python_seen)


def test_lines_whose_hashes_collide_are_read_again_by_line_number(tmp_path, monkeypatch):
    monkeypatch.setattr(duckfirstseen, "LINE_HASH", "length({})::UBIGINT")  # equal lengths collide
    log = tmp_path / "q.jsonl"
    names = ["a1.example.com.", "a2.example.com.", "a1.example.com.", "b1.example.org."]
    log.write_text("".join(json.dumps({"query_timestamp": stamp(i * 4000), "query_name": n, "rcode": "NOERROR",
                                       "account_id": "111122223333"}) + "\n" for i, n in enumerate(names)))
    rules = _rules()
    expected_seen = baseline.Baseline()
    expected = [a.to_json() for a in baseline.first_seen_alerts(Engine(rules).scan(read_paths([log])), expected_seen)]
    decider = duckfirstseen.FirstSeen(baseline.Baseline())
    assert [a.to_json() for a in DuckEngine(rules).scan_paths([log], first_seen=decider)] == expected
    assert len(expected) > 3 and _written(tmp_path, "d.csv", decider.rows()) == _written(tmp_path, "r.csv", expected_seen)
