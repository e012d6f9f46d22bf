"""Splunk value_sum / value_avg correlations fire where the reference engine's sliding windows do:
the converted SPL (streamstats time_window sum()/avg()) run by the SPL model over the add-on's fields,
including the derived `query_length` the add-on's EVAL computes."""
from __future__ import annotations

import textwrap

import pytest
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.pipelines.route53 import pipelines

from r53sigma.scan.records import format_time, parse_record
from r53sigma.scan.reference import Engine
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.backend import SlidingWindowSplunkBackend
from r53sigma.targets.splunk.events import event_from_raw

BASE = 1714557600  # 2024-05-01T10:00:00Z

RULES = """
title: lookups
name: lookups
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: A}, condition: sel}
---
title: numeric
correlation: {type: %s, rules: [lookups], group-by: [srcaddr], timespan: 5m, condition: %s}
"""


def record(seconds: float, name: str, src: str = "10.0.0.5", port: str = "40000") -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": format_time(BASE + seconds), "query_name": name, "query_type": "A",
            "query_class": "IN", "rcode": "NOERROR", "answers": [], "srcaddr": src, "srcport": port,
            "transport": "UDP", "srcids": {"instance": "i-0abc"}}


def both(records: list[dict], kind: str, condition: str):
    text = textwrap.dedent(RULES % (kind, condition))
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    events = [parse_record(r, file="t", line=n) for n, r in enumerate(records, 1)]
    reference = sorted((format_time(a.window_start), format_time(a.window_end), round(a.value, 6))
                       for a in Engine(collection).evaluate(collection.rules[-1], events))
    query = str(SlidingWindowSplunkBackend(pipelines["route53_splunk"]()).convert(SigmaCollection.from_yaml(text))[-1])
    rows = spl_model.run(query, [event_from_raw(r, e.source) for r, e in zip(records, events)])
    splunk = sorted((format_time(float(r["first_time"])), format_time(float(r["last_time"])), round(float(r[kind]), 6))
                    for r in rows)
    return reference, splunk, query


def name(length: int) -> str:
    """A name of `length` characters (without its trailing dot), written with the dot."""
    return ("a" * (length - len(".example.com")) + ".example.com")[:length] + "."


def test_add_on_computes_query_length_without_the_trailing_dot():
    assert event_from_raw(record(0, "www.example.com."))["query_length"] == "15"


def test_value_avg_of_query_length_over_a_sliding_window():
    # 10:04:50 and 10:05:10 straddle a 5-minute boundary: their average (80) fires only in a sliding window
    records = [record(0, name(20)), record(290, name(80)), record(310, name(80)), record(700, name(20))]
    reference, splunk, query = both(records, "value_avg", "{gt: 75, field: query_length}")
    assert "streamstats time_window=5m avg(query_length) as value_avg" in query
    assert splunk == reference and len(reference) == 1 and reference[0][2] == 80


def test_value_avg_near_miss_diluted_by_short_names():
    records = [record(0, name(90)), record(10, name(90)), record(20, name(30))]  # windows average 70, 60, 30
    reference, splunk, _ = both(records, "value_avg", "{gt: 75, field: query_length}")
    assert splunk == reference == []
    reference, splunk, _ = both(records[:2], "value_avg", "{gt: 75, field: query_length}")
    assert splunk == reference and len(reference) == 1


def test_value_sum_of_a_numeric_field_per_source():
    records = [record(0, "a.example.", port="30000"), record(60, "b.example.", port="40000"),
               record(61, "c.example.", src="10.0.0.6", port="60000")]
    reference, splunk, query = both(records, "value_sum", "{gte: 70000, field: srcport}")
    assert "sum(src_port) as value_sum" in query
    assert splunk == reference and len(reference) == 1 and reference[0][2] == 70000


@pytest.mark.parametrize("kind", ["value_percentile", "value_median"])
def test_percentile_and_median_stay_refused_with_the_reason(kind):
    condition = "{gt: 75, field: query_length, percentile: 90}" if kind == "value_percentile" else "{gt: 75, field: query_length}"
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="linear interpolation"):
        SlidingWindowSplunkBackend(pipelines["route53_splunk"]()).convert(SigmaCollection.from_yaml(RULES % (kind, condition)))
