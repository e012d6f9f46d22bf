"""The threat-feed rule in Splunk: the app's CSV lookup searched for the name and its parent domains."""
from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection

from r53sigma import ioc
from r53sigma.scan.records import parse_record
from r53sigma.targets.splunk import app, lookups, spl_model
from r53sigma.targets.splunk.events import event_from_raw
from r53sigma.targets.splunk.lookups import LookupSplunkBackend
from sigma.pipelines.route53 import pipelines

RULE = """
title: listed
id: 6a1d9c3e-0000-4000-8000-0000000000d1
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
    condition: selection
"""


def event(name):
    record = parse_record({"query_timestamp": "2026-12-02T12:00:05Z", "query_name": name, "query_type": "A",
                           "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.1.23", "srcids": {}})
    return event_from_raw(record.raw, record.source)


def convert(monkeypatch, listed=None):
    if listed:
        monkeypatch.setenv(ioc.ENV_FILE, str(listed))
    else:
        monkeypatch.delenv(ioc.ENV_FILE, raising=False)
    (query,) = LookupSplunkBackend(pipelines["route53_splunk"]()).convert(SigmaCollection.from_yaml(RULE))
    return query


def test_lookup_search_matches_the_name_and_its_parents_with_the_category(monkeypatch):
    query = convert(monkeypatch)  # no list needed: the lookup is the list
    table = {lookups.LOOKUP: spl_model.LookupTable([{"domain": "evil.example", "category": "c2"},
                                                {"domain": "c2.bad.example", "category": ""}], case_sensitive=False)}
    names = ["a.b.EVIL.example.", "evil.example.", "x.c2.bad.example.",  # alerts
             "notevil.example.", "bad.example.", "evil.example.attacker.test.", "example."]  # near misses
    rows = spl_model.run(query, [event(n) for n in names], table)
    assert [(r["query"], r["ioc_domain"], r.get("ioc_category")) for r in rows] == [
        ("a.b.EVIL.example", "evil.example", "c2"), ("evil.example", "evil.example", "c2"),
        ("x.c2.bad.example", "c2.bad.example", None)]
    assert spl_model.run(query, [event(n) for n in names], {lookups.LOOKUP: spl_model.LookupTable([])}) == []


def test_a_given_list_is_not_inlined_in_the_lookup_search(monkeypatch, tmp_path):
    listed = tmp_path / "l.txt"
    listed.write_text("evil.example\n")
    query = convert(monkeypatch, listed)
    assert "evil" not in query and f"| lookup {lookups.LOOKUP} domain AS r53_parent" in query


def test_lookup_without_its_definition_is_rejected_by_the_model(monkeypatch):
    with pytest.raises(spl_model.InvalidSearch, match="no such lookup"):
        spl_model.run(convert(monkeypatch), [event("evil.example.")])


def test_model_lookup_follows_case_sensitive_match():
    query = "search x=* | lookup t domain AS x OUTPUT category AS c"
    rows = [{"x": "Evil.Example", "_raw": ""}]
    table = [{"domain": "evil.example", "category": "c2"}]
    assert "c" not in spl_model.run(query, rows, {"t": spl_model.LookupTable(table)})[0]
    assert spl_model.run(query, rows, {"t": spl_model.LookupTable(table, case_sensitive=False)})[0]["c"] == "c2"


def test_model_multivalue_eval_functions_per_search_reference():
    query = ('search x=* | eval l=split(x, ".") | eval n=mvcount(l) | eval r=mvrange(0, n) '
             '| eval tail=mvindex(l, 1, -1) | eval last=mvindex(l, -1) | eval p=mvmap(r, mvjoin(mvindex(l, r, -1), "."))')
    (row,) = spl_model.run(query, [{"x": "a.b.c", "_raw": ""}])
    assert (row["n"], row["r"], row["tail"], row["last"], row["p"]) == (3, [0, 1, 2], ["b", "c"], "c", ["a.b.c", "b.c", "c"])
    expanded = spl_model.run("search x=* | mvexpand y", [{"x": "1", "y": ["p", "q"], "_raw": ""}])
    assert [r["y"] for r in expanded] == ["p", "q"]


def test_app_ships_the_lookup_definition_and_a_header_only_csv():
    files = app.app_files([])
    assert lookups.TRANSFORMS_STANZA in files["default/transforms.conf"]
    assert files[f"lookups/{lookups.CSV}"] == "domain,category\n"
    assert ioc.lookup_csv([ioc.Entry("evil.example", "c2")]).splitlines()[0] == files[f"lookups/{lookups.CSV}"].strip()
