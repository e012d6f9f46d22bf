"""Splunk correlations fire exactly where the Sigma spec's sliding window does (streamstats time_window,
one result per burst): the converted SPL run by the SPL model against the reference engine."""
from __future__ import annotations

import random
import textwrap

from sigma.collection import SigmaCollection
from sigma.pipelines.route53 import pipelines

from r53sigma.scan.records import format_time, parse_record
from r53sigma.scan.reference import Engine
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.backend import SlidingWindowSplunkBackend
from r53sigma.targets.splunk.events import event_from_raw

BASE = 1714557600  # 2024-05-01T10:00:00Z

RULES = """
title: NX
id: 7b0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c01
name: nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
level: low
---
title: TCP
id: 7b0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c02
name: tcp
logsource: {product: aws, service: route53resolver}
detection: {sel: {transport: TCP}, condition: sel}
level: low
---
title: burst
id: 7b0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c03
correlation: {type: %(type)s, rules: %(rules)s, group-by: [srcaddr], timespan: 5m, condition: %(condition)s}
level: medium
"""


def record(seconds: float, src: str = "10.0.0.5", rcode: str = "NXDOMAIN", transport: str = "UDP", name: str = "a.example.") -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": format_time(BASE + seconds), "query_name": name, "query_type": "A",
            "query_class": "IN", "rcode": rcode, "answers": [], "srcaddr": src, "srcport": "40000",
            "transport": transport, "srcids": {"instance": "i-0abc"}}


def both(records: list[dict], type_: str = "event_count", rules: str = "[nx]", condition: str = "{gte: 3}"):
    """(reference alerts as (first, last) times, Splunk result rows as (first_time, last_time))."""
    text = RULES % {"type": type_, "rules": rules, "condition": condition}
    collection = SigmaCollection.from_yaml(textwrap.dedent(text))
    correlation = collection.rules[-1]
    events = [parse_record(r, file="t", line=n) for n, r in enumerate(records, 1)]
    reference = [(format_time(a.window_start), format_time(a.window_end)) for a in Engine(collection).evaluate(correlation, events)]
    backend = SlidingWindowSplunkBackend(pipelines["route53_splunk"]())
    query = str(backend.convert(SigmaCollection.from_yaml(textwrap.dedent(text)))[-1])
    rows = spl_model.run(query, [event_from_raw(r, e.source) for r, e in zip(records, events)])
    splunk = [(format_time(float(r["first_time"])), format_time(float(r["last_time"]))) for r in rows]
    return sorted(reference), sorted(splunk), query


def test_a_burst_straddling_a_five_minute_boundary_fires():
    reference, splunk, query = both([record(298), record(299), record(300)])  # 10:04:58, 10:04:59, 10:05:00
    assert "streamstats time_window=5m" in query and "bin _time" not in query
    assert splunk == reference == [(format_time(BASE + 298), format_time(BASE + 300))]


def test_exact_length_burst_is_outside_one_window_and_just_inside_is_one_burst():
    assert both([record(0), record(150), record(300)])[:2] == ([], [])  # last - first == span: never one window
    reference, splunk, _ = both([record(0), record(150), record(299)])
    assert splunk == reference and len(splunk) == 1


def test_two_bursts_in_one_group_are_two_results_and_a_long_burst_is_one():
    reference, splunk, _ = both([record(s) for s in (0, 1, 2, 1200, 1201, 1202)])
    assert splunk == reference and len(splunk) == 2
    reference, splunk, _ = both([record(s) for s in range(0, 1800, 20)])  # 30 minutes of one per 20 s
    assert splunk == reference == [(format_time(BASE), format_time(BASE + 1780))]


def test_groups_and_non_matching_events_are_kept_apart():
    records = [record(0), record(1, src="10.0.0.6"), record(2), record(3, rcode="NOERROR"), record(4, src="10.0.0.6")]
    assert both(records)[:2] == ([], [])
    records.append(record(5))
    reference, splunk, _ = both(records)
    assert splunk == reference and len(splunk) == 1


def test_temporal_pairs_across_a_boundary():
    pair = [record(299, transport="UDP"), record(301, rcode="NOERROR", transport="TCP")]
    reference, splunk, query = both(pair, "temporal", "[nx, tcp]", "{gte: 2}")
    assert "dc(event_type)" in query and splunk == reference and len(splunk) == 1
    apart = [record(0), record(300, rcode="NOERROR", transport="TCP")]
    assert both(apart, "temporal", "[nx, tcp]", "{gte: 2}")[:2] == ([], [])


def test_value_count_over_a_sliding_window():
    records = [record(290 + i * 4, name=f"n{i}.example.") for i in range(3)] + [record(303, name="n0.example.")]
    reference, splunk, query = both(records, "value_count", "[nx]", "{gte: 3, field: query_name}")
    assert "dc(query)" in query and splunk == reference and len(splunk) == 1


def test_random_streams_agree_with_the_reference_engine():
    # whole seconds: Splunk's _time as the add-on reads Resolver and CloudTrail times (TIME_FORMAT)
    rng = random.Random(13)
    for _ in range(60):
        records = [record(rng.choice([rng.randrange(0, 1500), rng.randrange(0, 1500, 150)]),
                          src=rng.choice(["10.0.0.5", "10.0.0.6"]), rcode=rng.choice(["NXDOMAIN", "NXDOMAIN", "NOERROR"]))
                   for _ in range(rng.randrange(2, 14))]
        reference, splunk, _ = both(records, condition=rng.choice(["{gte: 2}", "{gte: 3}", "{gt: 3}"]))
        assert splunk == reference, records


def test_streamstats_time_window_refuses_unsorted_results():
    rows = [{"_time": 10, "k": "a"}, {"_time": 5, "k": "a"}, {"_time": 20, "k": "a"}]
    try:
        spl_model.run("| streamstats time_window=5m count as n by k", rows)
    except spl_model.InvalidSearch:
        return
    raise AssertionError("unsorted input accepted")
