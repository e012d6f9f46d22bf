"""Name lists as set lookups (nameindex), addresses read once a row (rowcolumns), the reference
engine's suffix sets (values.LabelSuffixes): same alerts as the reference engine, both DuckDB paths."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st
from sigma.collection import SigmaCollection

from r53sigma.scan import nameindex
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.values import LabelSuffixes
from support import duckdb_agrees

TEXT = st.text(alphabet="ab.-Z", max_size=12)


@settings(max_examples=400, deadline=None)
@given(text=TEXT, suffixes=st.lists(TEXT, max_size=6))
def test_label_suffixes_are_endswith(text, suffixes):
    assert LabelSuffixes(suffixes).match(text) == any(text.endswith(s) for s in suffixes)


def _rule(selection: dict, condition: str = "selection") -> SigmaCollection:
    rule = {"title": "names", "id": "6a1d9c3e-0000-4000-8000-0000000000b1", "name": "names",
            "logsource": {"product": "aws", "service": "route53resolver"},
            "detection": {"selection": selection, "condition": condition}}
    return SigmaCollection.from_yaml(json.dumps(rule))


def _record(name, answers=()):
    return {"query_timestamp": "2024-05-01T10:00:00Z", "query_name": name, "rcode": "NOERROR",
            "srcaddr": "10.0.0.1", "answers": [{"Rdata": a} for a in answers]}


NAMES = ["evil.example.", "A.EVIL.EXAMPLE", "notevil.example", "evil.example.org", "x.y.bad.co.uk.", "bad.co.uk",
         "co.uk", "..bad.co.uk", "evil.example..", "", ".", "sub.Paste.EE", "paste.ee.evil", "a.b.c.d.e.f.deep.one.two"]


def test_name_and_suffix_lists_are_one_lookup(tmp_path):
    listed = ["evil.example", "bad.co.uk", "paste.ee", "deep.one.two", "o'quote.example"]
    rules = _rule({"query_name": listed + [f"*.{d}" for d in listed]})
    sql = DuckEngine(rules).predicate(rules.rules[0])
    assert '"nh:query_name:0"' in sql and '"nk:query_name:2"' in sql  # the index, not LIKE/regex tests
    alerts = duckdb_agrees(rules, [_record(n) for n in NAMES], tmp_path)
    assert len(alerts) == 7


def test_endswith_lists_mix_with_other_patterns(tmp_path):
    rules = _rule({"query_name|endswith": [".evil.example", ".co.uk", ".ee", ".two", "-x.example", "l.example"]})
    duckdb_agrees(rules, [_record(n) for n in NAMES + ["a-x.example", "Xl.example", "l.example"]], tmp_path)


def test_a_long_list_leaves_filter_hits_to_the_reference_engine(tmp_path):
    listed = [f"d{i}.example" for i in range(nameindex.EXACT_IN_SQL + 10)]
    rules = _rule({"query_name|expand": ["%ioc_domains%", "*.%ioc_domains%"]})
    from r53sigma import rules as rules_mod
    from r53sigma.ioc import PLACEHOLDER
    path = tmp_path / "ioc.yml"
    path.write_text(json.dumps(rules.rules[0].to_dict()))
    loaded = rules_mod.load([path], variables={PLACEHOLDER: listed})
    engine = DuckEngine(loaded)
    sql, unknown = engine.compiled(loaded.collection.rules[0])
    assert unknown and "IN (" not in sql  # no 500-name IN list: a hit is decided by the reference engine
    names = ["d7.example", "X.D511.example.", "d5110.example", "xd7.example", "d7.example.org", "q.d0.example"]
    alerts = duckdb_agrees(loaded, [_record(n) for n in names], tmp_path)
    assert len(alerts) == 3


def test_cidr_over_answers_reads_the_addresses_once(tmp_path):
    rules = _rule({"answers.Rdata|cidr": ["10.0.0.0/8", "127.0.0.0/8", "fc00::/7", "fe80::/10"]})
    sql = DuckEngine(rules).predicate(rules.rules[0])
    assert '"a4:answers.Rdata"' in sql and '"ax:answers.Rdata"' in sql
    answers = [["10.1.2.3"], ["8.8.8.8", "127.0.0.1"], ["010.1.2.3"], ["fd00::1"], ["FE80::1"], ["2600:1f18::1"],
               [" 10.0.0.1"], ["::ffff:10.0.0.1"], ["fe80::1%eth0"], ["cname.example.com."], ["10.0.0.256"],
               ["1.2.3.4", "fc00:0:0:0:0:0:0:1"], ["some text"], []]
    alerts = duckdb_agrees(rules, [_record("a.example", a) for a in answers], tmp_path)
    assert len(alerts) >= 6


_TOKENS = ["a", "b", "\\.", ".", "[a-c]", "[^.]", "[0-9]{2,}", "x{3}", "(a|b)", "a|b", "^", "$", "a*", "\\d", "(?:ab)?"]


@settings(max_examples=400, deadline=None)
@given(core=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=4).map("".join),
       before=st.booleans(), after=st.booleans(), flags=st.sampled_from(["", "(?i)", "(?s)", "(?m)", "(?ms)"]),
       texts=st.lists(st.text(alphabet="ab.c0129x\n", max_size=10), min_size=1, max_size=8))
def test_optional_label_groups_are_dropped_from_searches(core, before, after, flags, texts):
    import re

    from r53sigma.scan.patterns import search_core

    pattern = flags + ("(.*\\.)?" if before else "") + core + ("(\\..*)?" if after else "")
    simpler = search_core(pattern)
    if before or after:
        assert simpler in (flags + core, pattern)
    for text in texts:  # Python's re search semantics, for the original and the rewritten pattern
        assert (re.search(pattern, text) is None) == (re.search(simpler, text) is None), (pattern, simpler, text)
