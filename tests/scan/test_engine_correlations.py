"""Correlations in the reference engine: sliding windows and bursts (r53sigma.scan.correlations), group-by, conditions."""
from __future__ import annotations

from sigma.collection import SigmaCollection

from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record

BASE = """
title: nx
name: nx
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
---
title: txt
name: txt
logsource: {category: dns}
detection:
  sel: {record_type: TXT}
  condition: sel
"""


def query(time: str, src: str = "10.0.0.5", name: str = "a.example.com.", rcode: str = "NXDOMAIN", qtype: str = "A", **extra):
    record = {"query_timestamp": f"2024-05-01T{time}Z", "query_name": name, "query_type": qtype,
              "rcode": rcode, "srcaddr": src, "answers": [], "srcids": {"instance": "i-1"}}
    record.update(extra)
    return parse_record(record)


def alerts(correlation: str, events):
    collection = SigmaCollection.from_yaml(BASE + "---\n" + correlation)
    collection.resolve_rule_references()
    return Engine(collection).evaluate(collection.rules[-1], events)


def event_count(threshold: str, timespan: str = "5m", group_by: str = "[srcaddr]") -> str:
    return f"""
title: burst
correlation:
  type: event_count
  rules: [nx]
  group-by: {group_by}
  timespan: {timespan}
  condition: {threshold}
"""


def test_event_count_window_straddling_an_epoch_boundary_fires():
    # 10:04:59 and 10:05:00 are in two epoch-aligned 5-minute bins, but within one 5-minute interval.
    split = [query("10:04:58"), query("10:04:59"), query("10:05:00")]
    fired = alerts(event_count("{gte: 3}"), split)
    assert [(a.window_start % 300, a.window_end % 300, a.value) for a in fired] == [(298, 0, 3)]


def test_event_count_groups_by_field():
    events = [query("10:00:01", src="10.0.0.1"), query("10:00:02", src="10.0.0.1"), query("10:00:03", src="10.0.0.2")]
    fired = alerts(event_count("{gt: 1}"), events)
    assert [a.group for a in fired] == [{"srcaddr": "10.0.0.1"}]


def test_only_matching_events_count():
    events = [query("10:00:01"), query("10:00:02", rcode="NOERROR")]
    assert alerts(event_count("{gte: 2}"), events) == []


def test_conditions_eq_and_lt():
    events = [query("10:00:01"), query("10:00:02")]
    assert len(alerts(event_count("{eq: 2}"), events)) == 1
    # lt: the windows considered start at an event; the one starting at the last event holds one
    assert [(a.window_start % 60, a.value) for a in alerts(event_count("{lt: 2}"), events)] == [(2, 1)]


def test_event_without_group_value_is_not_counted():
    events = [query("10:00:01", srcids={}), query("10:00:02", srcids={})]
    assert alerts(event_count("{gte: 1}", group_by="[srcids.instance]"), events) == []


def test_group_by_generic_dns_name():
    events = [query("10:00:01", qtype="TXT"), query("10:00:02", qtype="TXT")]
    correlation = """
title: txt burst
correlation: {type: event_count, rules: [txt], group-by: [src_ip], timespan: 1m, condition: {gte: 2}}
"""
    assert [a.group for a in alerts(correlation, events)] == [{"src_ip": "10.0.0.5"}]


def test_value_count_counts_distinct_values():
    correlation = """
title: dga
correlation:
  type: value_count
  rules: [nx]
  group-by: [srcaddr]
  timespan: 10m
  condition: {gte: 3, field: query_name}
"""
    repeated = [query("10:00:01", name="a.x."), query("10:00:02", name="A.x."), query("10:00:03", name="a.x.")]
    assert alerts(correlation, repeated) == []  # a.x and A.x differ in case: 2 distinct values
    distinct = [query("10:00:01", name="a.x."), query("10:00:02", name="b.x."), query("10:00:03", name="c.x.")]
    assert [a.value for a in alerts(correlation, distinct)] == [3]


def test_temporal_needs_every_rule_in_the_window_for_the_group():
    correlation = """
title: both
correlation: {type: temporal, rules: [nx, txt], group-by: [srcaddr], timespan: 5m}
"""
    together = [query("10:00:01"), query("10:01:00", rcode="NOERROR", qtype="TXT")]
    assert len(alerts(correlation, together)) == 1
    other_source = [query("10:00:01"), query("10:01:00", rcode="NOERROR", qtype="TXT", srcaddr="10.9.9.9")]
    assert alerts(correlation, other_source) == []
    across_a_bin_boundary = [query("10:04:59"), query("10:05:00", rcode="NOERROR", qtype="TXT")]
    assert len(alerts(correlation, across_a_bin_boundary)) == 1
    too_far_apart = [query("10:00:00"), query("10:05:00", rcode="NOERROR", qtype="TXT")]
    assert alerts(correlation, too_far_apart) == []


def test_temporal_ordered_respects_order():
    correlation = """
title: ordered
correlation: {type: temporal_ordered, rules: [nx, txt], group-by: [srcaddr], timespan: 5m}
"""
    in_order = [query("10:00:01"), query("10:01:00", rcode="NOERROR", qtype="TXT")]
    reversed_order = [query("10:00:01", rcode="NOERROR", qtype="TXT"), query("10:01:00")]
    assert len(alerts(correlation, in_order)) == 1
    assert alerts(correlation, reversed_order) == []


def test_group_by_alias_maps_each_rule_to_its_field():
    correlation = """
title: aliased
correlation:
  type: temporal
  rules: [nx, txt]
  group-by: [client]
  aliases:
    client: {nx: srcaddr, txt: src_ip}
  timespan: 5m
"""
    events = [query("10:00:01"), query("10:01:00", rcode="NOERROR", qtype="TXT")]
    assert [a.group for a in alerts(correlation, events)] == [{"client": "10.0.0.5"}]


def test_events_without_time_are_left_out_of_correlations():
    untimed = parse_record({"query_name": "a.", "rcode": "NXDOMAIN", "srcaddr": "10.0.0.5", "query_type": "A"})
    assert untimed.time is None
    assert alerts(event_count("{gte: 1}"), [untimed]) == []


def test_scan_streams_plain_alerts_and_flushes_correlations():
    collection = SigmaCollection.from_yaml(BASE + "---\n" + event_count("{gte: 2}"))
    collection.resolve_rule_references()
    events = [query("10:00:01"), query("10:00:02", rcode="NOERROR", qtype="TXT"), query("10:00:03")]
    found = list(Engine(collection).scan(events))
    # nx is the correlation's building block (generate: false): it alerts only through the correlation.
    assert [a.title for a in found] == ["txt", "burst"]


def test_value_percentile_over_the_sliding_window_on_both_engines():
    from r53sigma.scan.duckdb_engine import DuckEngine

    rule = """
title: high ports
correlation:
  type: value_percentile
  rules: [nx]
  group-by: [srcaddr]
  timespan: 1m
  condition: {gt: 60000, field: srcport, percentile: 75}
"""
    # windows start at each point (sliding): the first holds 61000, 61000, 1000, 1000, whose p75 is
    # 61000 (rank 2.25 of 0..3, inclusive method); the later ones are lower, so the alert's value is 61000
    alert = [query(f"10:00:0{i}", srcport=str(p)) for i, p in enumerate((61000, 61000, 1000, 1000))]
    # near miss: one high port in four: p75 of 1000, 1000, 1000, 61000 is 16000, and no later window is higher
    near = [query(f"10:05:0{i}", src="10.0.0.9", srcport=str(p)) for i, p in enumerate((61000, 1000, 1000, 1000))]
    collection = SigmaCollection.from_yaml(BASE + "---\n" + rule)
    collection.resolve_rule_references()
    fired = Engine(collection).evaluate(collection.rules[-1], alert + near)
    assert [a.value for a in fired] == [61000.0] and "10.0.0.5" in str(fired[0].to_json())
    duck = DuckEngine(collection).evaluate(collection.rules[-1], alert + near)
    assert [a.to_json() for a in duck] == [a.to_json() for a in fired]


def test_value_percentile_condition_needs_a_percentile():
    import pytest
    from r53sigma.scan.results import EngineError

    collection = SigmaCollection.from_yaml(BASE + "---\n" + """
title: no percentile
correlation: {type: value_percentile, rules: [nx], group-by: [srcaddr], timespan: 1m, condition: {gt: 1, field: srcport}}
""")
    collection.resolve_rule_references()
    with pytest.raises(EngineError, match="percentile from 1 to 100"):
        Engine(collection).evaluate(collection.rules[-1], [query("10:00:00", srcport="1")])
