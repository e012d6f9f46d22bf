"""r53sigma.schedule: every packaged rule's schedule comes from the catalogue's delivery delay and the
rule's span, and a run sees every event delivered within that delay."""
from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection

from r53sigma import catalogue, package, schedule
from test_package_support import bundled_conversions, resolver_rule

CORRELATION = """\
title: Query Burst
id: 7e0c8a55-52f7-4b55-8d5c-2b9b2b0c7d01
status: test
description: Burst.
author: tests
date: 2024-01-01
correlation:
    type: event_count
    rules: [any_query]
    group-by: [srcaddr]
    timespan: 15m
    condition: {gt: 10}
level: medium
"""


def scheduled(settings: str = ""):
    extra = f"schedule:\n        {settings}" if settings else ""
    text = resolver_rule("Scheduled", "selection:\n    query_name: a.example\ncondition: selection", extra=extra)
    return SigmaCollection.from_yaml(text).rules[0]


def correlation():
    base = resolver_rule("Any Query", "selection:\n    query_name|exists: true\ncondition: selection", extra="name: any_query")
    return next(r for r in SigmaCollection.from_yaml(base + "---\n" + CORRELATION).rules if r.title == "Query Burst")


RESOLVER = catalogue.load()["resolver"]


def test_every_log_source_states_its_delivery_delay_with_the_aws_page():
    for source in catalogue.log_sources():
        assert source.delivery, source.source
        for delivery in source.delivery:
            assert delivery.delay_minutes >= 1 and delivery.doc.startswith("https://docs.aws.amazon.com/")
            assert delivery.statement
    assert {d.via for d in RESOLVER.delivery} == {"cloudwatch_logs", "s3", "firehose"}
    firehose = next(d for d in RESOLVER.delivery if d.via == "firehose")
    assert firehose.documented and firehose.delay_minutes == 15  # BufferingHints.IntervalInSeconds <= 900


def test_the_latest_delivery_is_planned_for_unless_a_target_names_its_own():
    assert RESOLVER.delay_minutes() == 15
    assert RESOLVER.delay_minutes(("cloudwatch_logs",)) == 5
    assert schedule.derive(scheduled(), RESOLVER, via=("cloudwatch_logs",)) == schedule.Schedule(5, 10, 5, 0)
    with pytest.raises(catalogue.CatalogueError, match="no delivery via kinesis"):
        RESOLVER.delay_minutes(("kinesis",))


def test_single_event_rule_looks_back_interval_plus_delay():
    assert schedule.derive(scheduled(), RESOLVER) == schedule.Schedule(interval=5, lookback=20, delay=15, span=0)


def test_correlation_looks_back_interval_plus_delay_plus_span():
    # timespan 15m: every 15 minutes, looking back 15 + 15 (Firehose) + 15
    assert schedule.derive(correlation(), RESOLVER) == schedule.Schedule(15, 45, 15, 15)


def test_rule_schedule_attribute_sets_the_interval_and_a_long_enough_lookback():
    assert schedule.derive(scheduled("interval: 15m\n        lookback: 1h"), RESOLVER) == schedule.Schedule(15, 60, 15, 0)
    assert schedule.derive(scheduled("interval: 10m"), RESOLVER).lookback == 25


def test_lookback_shorter_than_interval_delay_and_span_is_refused():
    with pytest.raises(schedule.ScheduleError, match="shorter than interval 10m .* delay 15m .* = 25m"):
        schedule.derive(scheduled("interval: 10m\n        lookback: 20m"), RESOLVER)


def test_malformed_schedule_is_refused():
    with pytest.raises(schedule.ScheduleError, match="expected minutes or hours"):
        schedule.derive(scheduled("interval: often"), RESOLVER)
    with pytest.raises(schedule.ScheduleError, match="divides neither"):
        schedule.derive(scheduled("interval: 7m"), RESOLVER)
    with pytest.raises(package.PackageError, match="divides neither"):
        package.schedule_of(scheduled("interval: 7m"), "resolver")


def test_every_packaged_rule_schedule_is_recomputed_from_the_catalogue():
    checked = 0
    for (target, _), conv in bundled_conversions().items():
        if not conv.ok:
            continue
        item = package.packaged(conv)
        source = catalogue.load()[item.source]
        span = schedule.span_minutes(conv.rule)
        assert item.schedule.delay == max(d.delay_minutes for d in source.delivery)
        assert item.schedule.span == span
        assert item.schedule.lookback >= item.schedule.interval + item.schedule.delay + span, conv.title
        if schedule.ATTRIBUTE not in (conv.rule.custom_attributes or {}):
            assert item.schedule.interval == max(schedule.DEFAULT_INTERVAL, span)
            assert item.schedule.lookback == item.schedule.interval + item.schedule.delay + span
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("interval,delay,span", [(5, 15, 0), (5, 5, 5), (10, 5, 10), (60, 5, 60), (15, 15, 15)])
def test_a_burst_delivered_within_the_delay_is_inside_one_run_whole(interval, delay, span):
    """Reasoning over arrival times, minute by minute: for every burst (first event at f, last at
    f + length <= f + span) and every arrival delay up to the documented one, the first run after the
    last arrival has every event of the burst inside its window."""
    lookback = schedule.required_lookback(interval, delay, span)
    for first in range(0, 2 * interval * 60, 7):  # seconds; 7 s steps land everywhere against the runs
        for length in {0, span * 60}:
            last = first + length
            for late in (0, delay * 60):
                arrived = last + late
                run = -(-arrived // (interval * 60)) * interval * 60  # the first run at or after the arrival
                assert run - lookback * 60 <= first and last <= run
