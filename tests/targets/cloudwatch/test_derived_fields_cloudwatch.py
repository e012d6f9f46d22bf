"""The catalogue's derived `query_length` in Logs Insights: computed in the query (`fields strlen(...)
- if(...) as query_length`), it selects what the reference engine selects on names at the boundary,
with and without their trailing dot, and a value_avg over it agrees; filter patterns and Contributor
Insights rules compute nothing and refuse it."""
from __future__ import annotations

import json

import pytest
from sigma.collection import SigmaCollection

from cw_support import alerts_agree, assert_agree, resolver, rule_yaml
from sigma.backends.cloudwatch import CloudWatchMetricFilterBackend
from sigma.pipelines.route53 import pipelines


def test_query_length_is_the_name_without_one_trailing_dot():
    names = ["abcdefghij.", "abcdefghijk.", "abcdefghijk", "abcdefghij", "abcdefghij..", ".", "a"]
    # the engine drops one trailing dot from a name longer than one character: 10, 11, 11, 10, 11, 1, 1
    query = assert_agree(rule_yaml("  sel: {query_length|gt: 10}\n  condition: sel"), [resolver(n) for n in names],
                         [False, True, True, False, True, False, False])
    assert "as query_length" in query.splitlines()[0]  # computed before the filter reads it
    assert_agree(rule_yaml("  sel: {query_length: 1}\n  condition: sel"), [resolver(n) for n in names],
                 [False, False, False, False, False, True, True])


def test_an_event_without_a_query_name_has_no_query_length():
    raw = json.dumps({k: v for k, v in json.loads(resolver()).items() if k != "query_name"})
    assert_agree(rule_yaml("  sel: {query_length|lt: 1000}\n  condition: sel"), [raw, resolver("a.b.")], [False, True])


def test_value_avg_of_query_length_by_source_agrees_with_the_engine():
    collection = rule_yaml("  sel: {query_type: TXT}\n  condition: sel", title="lookups").replace(
        "title: lookups\n", "title: lookups\nname: lookups\n") + """---
title: long names
id: 11111111-2222-4333-8444-555555555556
correlation: {type: value_avg, rules: [lookups], group-by: [srcaddr], timespan: 10m, condition: {gt: 12, field: query_length}}
"""
    def at(second, name, source):
        return resolver(name, query_type="TXT", srcaddr=source, query_timestamp=f"2024-05-01T10:00:{second:02d}Z")
    raws = [at(1, "abcdefghijklm.", "10.0.0.1"), at(2, "abcdefghijklm.", "10.0.0.1"),  # 13, 13: fires
            at(3, "abcdefghijklm.", "10.0.0.2"), at(4, "abcdefghijk.", "10.0.0.2"),  # 13, 11: 12, not > 12
            at(5, "abcdefghijkl..", "10.0.0.3")]  # 13 with the one dot dropped: fires
    fired = alerts_agree(collection, raws)
    assert [group for _, group in fired] == [("10.0.0.1",), ("10.0.0.3",)]


@pytest.mark.parametrize("detection, correlation", [
    ("  sel: {query_length|gt: 70}\n  condition: sel", ""),
    ("  sel: {query_type: TXT}\n  condition: sel",
     "---\ntitle: many lengths\nid: 11111111-2222-4333-8444-555555555557\n"
     "correlation: {type: value_count, rules: [lookups], timespan: 10m, condition: {gt: 3, field: query_length}}\n"),
])
def test_filter_patterns_and_contributor_insights_refuse_the_computed_field(detection, correlation):
    text = rule_yaml(detection, title="lookups").replace("title: lookups\n", "title: lookups\nname: lookups\n") + correlation
    backend = CloudWatchMetricFilterBackend(pipelines["route53_cloudwatch"](), collect_errors=True)
    backend.convert(SigmaCollection.from_yaml(text))
    assert any("computed from query_name" in str(error) for _, error in backend.errors), backend.errors
