"""Sliding correlation windows and bursts (r53sigma.scan.correlations): both engines against a brute-force
reading of the definition, and the cases the definition was written for."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.collection import SigmaCollection

from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import format_time, parse_record, read_paths
from support import duckdb_agrees

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
logsource: {product: aws, service: route53resolver}
detection:
  sel: {query_type: TXT}
  condition: sel
"""
START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def record(offset_us: int, src: str = "10.0.0.5", name: str = "a.example.com.", rcode: str = "NXDOMAIN", qtype: str = "A",
           port: str = "53", start: datetime = START) -> dict:
    stamp = (start + timedelta(microseconds=offset_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"query_timestamp": stamp, "query_name": name, "query_type": qtype, "rcode": rcode, "srcaddr": src,
            "srcport": port, "answers": [], "srcids": {"instance": "i-1"}}


def rules(correlation: str) -> SigmaCollection:
    collection = SigmaCollection.from_yaml(BASE + "---\n" + correlation)
    collection.resolve_rule_references()
    return collection


def correlation(kind: str, condition: str, timespan: str = "5m", rules_: str = "[nx]") -> str:
    return f"""
title: corr
correlation: {{type: {kind}, rules: {rules_}, group-by: [srcaddr], timespan: {timespan}, condition: {condition}}}
"""


def both(collection: SigmaCollection, raw: list[dict], tmp_path=None) -> list[dict]:
    """The reference engine's alerts, checked equal to the DuckDB engine's (events and, with tmp_path, a file)."""
    if tmp_path is not None:
        return duckdb_agrees(collection, raw, tmp_path)
    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(raw, 1)]
    expected = [a.to_json() for a in Engine(collection).scan(events)]
    assert [a.to_json() for a in DuckEngine(collection).scan(events)] == expected
    return expected


def spans(alerts: list[dict]) -> list[tuple[str, str, int]]:
    return [(a["window"]["start"], a["window"]["end"], a["value"]) for a in alerts]


def at(offset_seconds: float) -> str:
    return format_time(START.timestamp() + offset_seconds)


# ---------------------------------------------------------------- the cases the definition is for


def test_three_events_straddling_a_five_minute_boundary_fire(tmp_path):
    raw = [record(s * 1_000_000) for s in (298, 299, 300)]  # 10:04:58, 10:04:59, 10:05:00
    fired = both(rules(correlation("event_count", "{gte: 3}")), raw, tmp_path)
    assert spans(fired) == [(at(298), at(300), 3)]


def test_a_window_excludes_its_end(tmp_path):
    exactly_a_span_apart = [record(0), record(300_000_000)]
    assert both(rules(correlation("event_count", "{gte: 2}")), exactly_a_span_apart, tmp_path) == []
    just_inside = [record(0), record(299_999_999)]
    assert spans(both(rules(correlation("event_count", "{gte: 2}")), just_inside, tmp_path)) == [(at(0), at(299.999999), 2)]


def test_two_bursts_in_one_group_are_two_alerts(tmp_path):
    raw = [record(s * 1_000_000) for s in (0, 10, 20, 1200, 1210, 1220)]
    fired = both(rules(correlation("event_count", "{gte: 3}")), raw, tmp_path)
    assert spans(fired) == [(at(0), at(20), 3), (at(1200), at(1220), 3)]


def test_a_long_burst_is_one_alert_with_its_first_and_last_event(tmp_path):
    raw = [record(s * 1_000_000) for s in range(0, 1800, 30)]  # one every 30 s for 30 minutes: 10 per 5 minutes
    fired = both(rules(correlation("event_count", "{gte: 10}")), raw, tmp_path)
    assert spans(fired) == [(at(0), at(1770), 10)]


def test_value_count_counts_distinct_values_in_a_sliding_window(tmp_path):
    raw = [record(s * 1_000_000, name=n) for s, n in ((290, "a.x."), (295, "b.x."), (305, "a.x."), (310, "c.x."))]
    fired = both(rules(correlation("value_count", "{gte: 3, field: query_name}")), raw, tmp_path)
    assert spans(fired) == [(at(290), at(310), 3)]


@SETTINGS
@given(first=st.integers(0, 3_600_000_000), gap=st.integers(0, 600_000_000), nx_first=st.booleans())
def test_a_temporal_pair_fires_across_any_boundary_exactly_when_closer_than_the_span(first, gap, nx_first):
    nx = dict(rcode="NXDOMAIN", qtype="A")
    txt = dict(rcode="NOERROR", qtype="TXT")
    raw = [record(first, **(nx if nx_first else txt)), record(first + gap, **(txt if nx_first else nx))]
    within = gap < 300_000_000
    assert len(both(rules(correlation("temporal", "{gte: 2}", rules_="[nx, txt]")), raw)) == within
    # ordered: nx, then txt (at one time: in their listed order)
    in_order = within and (nx_first or gap == 0)
    assert len(both(rules(correlation("temporal_ordered", "{gte: 2}", rules_="[nx, txt]")), raw)) == in_order


# ---------------------------------------------------------------- against the definition, brute force


def oracle(kind: str, threshold: int, span_us: int, points: list[tuple[int, str, int, str]]) -> list[tuple]:
    """Firing windows and bursts by the letter of r53sigma.scan.correlations, one quadratic loop: points are
    (time us, group, rule index, value); returns (group, first us, last us, peak value) per burst."""
    out = []
    for group in sorted({p[1] for p in points}):
        mine = sorted((p for p in points if p[1] == group), key=lambda p: p[0])
        windows = []
        for start in sorted({p[0] for p in mine}):
            inside = [p for p in mine if start <= p[0] < start + span_us]
            if kind == "event_count":
                value = len(inside)
            elif kind == "value_count":
                value = len({p[3] for p in inside})
            elif kind == "temporal":
                value = len({p[2] for p in inside})
            elif kind == "temporal_ordered":
                value = 0
                for _, _, index, _ in sorted(inside, key=lambda p: (p[0], p[2])):
                    value += value < 2 and index == value
            else:  # value_sum
                value = sum(int(p[3]) for p in inside)
            if value >= threshold:
                windows.append((start, max(p[0] for p in inside), value))
        bursts = []
        for start, last, value in windows:
            if bursts and start < bursts[-1][3] + span_us:
                first, end, peak, _ = bursts[-1]
                bursts[-1] = (first, max(end, last), max(peak, value), start)
            else:
                bursts.append((start, last, value, start))
        out.extend((group, first, end, peak) for first, end, peak, _ in bursts)
    return sorted(out, key=lambda b: (b[1], repr((b[0],))))


points = st.lists(
    st.tuples(st.integers(0, 40) .map(lambda s: s * 15_000_000 + (s % 3) * 7),  # times on and off the boundaries
              st.sampled_from(["10.0.0.1", "10.0.0.2"]), st.sampled_from([0, 1]), st.sampled_from(["1", "2", "5"])),
    min_size=1, max_size=24,
)


@SETTINGS
@given(kind=st.sampled_from(["event_count", "value_count", "temporal", "temporal_ordered", "value_sum"]),
       threshold=st.integers(1, 4), span_minutes=st.sampled_from([1, 2]), generated=points)
def test_both_engines_fire_as_the_definition_says(kind, threshold, span_minutes, generated):
    field = {"value_count": ", field: query_name", "value_sum": ", field: srcport"}.get(kind, "")
    rules_ = "[nx, txt]" if kind.startswith("temporal") else "[nx]"
    if kind.startswith("temporal"):
        threshold = min(threshold, 2)
    collection = rules(correlation(kind, f"{{gte: {threshold}{field}}}", f"{span_minutes}m", rules_))
    raw = []
    for t, src, index, value in generated:
        if index == 0 or kind.startswith("temporal"):
            kind_of = {"rcode": "NXDOMAIN", "qtype": "A"} if index == 0 else {"rcode": "NOERROR", "qtype": "TXT"}
            raw.append(record(t, src=src, name=f"n{value}.x.", port=value, **kind_of))
    used = [(t, src, i, v) for t, src, i, v in generated if i == 0 or kind.startswith("temporal")]
    fired = both(collection, raw)
    got = [(a["group"]["srcaddr"], a["window"]["start"], a["window"]["end"], a["value"]) for a in fired]
    want = [(g, at(first / 1e6), at(last / 1e6), peak) for g, first, last, peak in oracle(kind, threshold, span_minutes * 60_000_000, used)]
    assert got == want


@SETTINGS
@given(generated=points)
def test_no_event_is_in_two_alerts_of_one_group(generated):
    raw = [record(t, src=src) for t, src, _, _ in generated]
    fired = both(rules(correlation("event_count", "{gte: 2}", "1m")), raw)
    for a, b in zip(fired, fired[1:]):
        if a["group"] == b["group"]:
            assert a["window"]["end"] < b["window"]["start"]


# ---------------------------------------------------------------- pruning by (sub-bucket, group) bounds

from r53sigma.scan import duckcorrelations  # noqa: E402

edge_points = st.lists(  # times on, just before and just after the quarter-minute sub-bucket edges of a 1m span
    st.tuples(st.integers(0, 24).map(lambda q: q * 15_000_000), st.sampled_from([-1, 0, 1, 7_000_000]),
              st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]), st.sampled_from([0, 1]), st.sampled_from(["1", "2", "5", "9"])),
    min_size=1, max_size=40,
)


def edge_case(kind: str, op: str, threshold: int, generated: list, start: datetime = START) -> tuple[SigmaCollection, list[dict]]:
    """A 1m correlation of ``kind`` compared with ``op`` (temporal over nx and txt) and edge_points' records
    (times from ``start``)."""
    field = ", field: query_name" if kind == "value_count" else ""
    rules_ = "[nx, txt]" if kind == "temporal" else "[nx]"
    threshold = min(threshold, 1 if op == "gt" else 2) if kind == "temporal" else threshold
    collection = rules(correlation(kind, f"{{{op}: {threshold}{field}}}", "1m", rules_))
    raw = []
    for edge, offset, src, index, value in generated:
        kind_of = {"rcode": "NXDOMAIN", "qtype": "A"} if index == 0 else {"rcode": "NOERROR", "qtype": "TXT"}
        raw.append(record(max(0, edge + offset), src=src, name=f"n{value}.x.", start=start, **kind_of))
    return collection, raw


@SETTINGS
@given(kind=st.sampled_from(["event_count", "value_count", "temporal"]), op=st.sampled_from(["gt", "gte"]),
       threshold=st.integers(1, 6), generated=edge_points, split=st.integers(0, 40))
def test_the_candidate_filter_never_drops_a_firing_group(tmp_path_factory, kind, op, threshold, generated, split):
    """Files read by DuckDB (points in parquet parts, bounds per sub-bucket) and split in two files whose
    times overlap (bounds from two batches merge): the alerts are the reference engine's."""
    collection, raw = edge_case(kind, op, threshold, generated)
    folder = tmp_path_factory.mktemp("split")
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[:split]))
    (folder / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[split:]))
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([folder]))]
    engine = DuckEngine(collection)
    assert [a.to_json() for a in engine.scan_paths([folder])] == expected
    assert engine.fast_files == 2


@SETTINGS
@given(kind=st.sampled_from(["event_count", "value_count", "temporal"]), op=st.sampled_from(["gt", "gte"]),
       threshold=st.integers(1, 6), generated=edge_points)
def test_the_candidate_filter_is_exact_across_1970(tmp_path_factory, kind, op, threshold, generated):
    """Times from three minutes before 1970 (negative microseconds): the integer division that numbers
    sub-buckets and spans truncates toward zero, so those around 0 are wider; the alerts are the reference's."""
    collection, raw = edge_case(kind, op, threshold, generated, start=datetime(1969, 12, 31, 23, 57, tzinfo=timezone.utc))
    folder = tmp_path_factory.mktemp("epoch")
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([folder]))]
    engine = DuckEngine(collection)
    assert [a.to_json() for a in engine.scan_paths([folder])] == expected
    assert engine.fast_files == 1


def test_a_window_across_two_spans_is_kept_by_the_pair_of_spans(tmp_path):
    """Two events a second apart on either side of a minute boundary (the spans the sub-buckets' runs are
    pre-filtered by): neither span passes alone, the pair does, and the window fires."""
    collection = rules(correlation("event_count", "{gte: 2}", "1m"))
    raw = [record(59_500_000), record(60_500_000)]
    assert spans(both(collection, raw, tmp_path)) == [(at(59.5), at(60.5), 2)]


def test_candidates_are_read_from_the_pass_files_which_go_after_the_scan(tmp_path, monkeypatch):
    """Two files DuckDB reads, one event each, a window across them: while they are read, the correlation
    keeps only bounds (no copy of its points); its candidates come from both pass files at the end, and the
    pass files leave the spill folder with the scan."""
    from pathlib import Path

    collection = rules(correlation("event_count", "{gte: 2}", "1m"))
    (tmp_path / "a.jsonl").write_text(json.dumps(record(59_500_000)) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(record(60_500_000)) + "\n")
    seen = []
    candidate_points = duckcorrelations.CorrelationTables._candidate_points

    def spying(self, number, plan):
        seen.append((list(self.parts[number]), sorted(p.name for p in Path(self.spill).iterdir() if p.name.startswith("pass_"))))
        return candidate_points(self, number, plan)

    monkeypatch.setattr(duckcorrelations.CorrelationTables, "_candidate_points", spying)
    engine = DuckEngine(collection)
    got = [a.to_json() for a in engine.scan_paths([tmp_path])]
    assert got == [a.to_json() for a in Engine(collection).scan(read_paths([tmp_path]))] and len(got) == 1
    assert engine.fast_files == 2
    [(parts, pass_files)] = seen
    assert parts == [] and len(pass_files) == 2
    assert not [p for p in Path(engine.spill).iterdir() if p.name.startswith("pass_")]


def points_evaluated(monkeypatch) -> list[int]:
    """The rows of each correlation's point table when its bursts are evaluated (the rows kept in memory)."""
    counted: list[int] = []
    evaluate = duckcorrelations.CorrelationTables._bursts

    def counting(self, plan, table, *args):
        counted.append(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return evaluate(self, plan, table, *args)

    monkeypatch.setattr(duckcorrelations.CorrelationTables, "_bursts", counting)
    return counted


def test_points_kept_in_memory_do_not_grow_with_lines(tmp_path, monkeypatch):
    """A steady source (one query every 20 s, never 5 in a minute) and one burst of 5 in 4 s: only the
    burst's sub-buckets' points reach the window evaluation, however many steady lines the file has."""
    collection = rules(correlation("event_count", "{gte: 5}", "1m"))
    kept = []
    for steady in (30, 3000):
        raw = [record(i * 20_000_000, src="10.0.0.1") for i in range(steady)]
        raw += [record(i * 1_000_000, src="10.0.0.9") for i in range(5)]
        log = tmp_path / f"steady{steady}.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in raw))
        counted = points_evaluated(monkeypatch)
        alerts = list(DuckEngine(collection).scan_paths([log]))
        assert [a.to_json()["group"]["srcaddr"] for a in alerts] == ["10.0.0.9"]
        kept.append(counted[0])
    assert kept == [5, 5]


# ---------------------------------------------------------------- numeric aggregates: running, exact, pruned

import statistics  # noqa: E402
from fractions import Fraction  # noqa: E402

from r53sigma.scan.correlations import CorrelationPlan, Point, firing_windows  # noqa: E402
from r53sigma.scan.values import as_number  # noqa: E402

NUMERIC_KINDS = ["value_sum", "value_avg", "value_median", "value_percentile"]
OPS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
# ties (7 and 7.0), negatives, floats, texts that are not numbers, a Unicode digit (a number to Python, not here)
numeric_texts = st.sampled_from(["-3", "2.5", "7", "7.0", "x", "0", "-0.5", "12", "0.1", "0.2", "\u0663", "1e1"])


def numeric_aggregate(kind: str, numbers: list, percentile: int):
    """A window's aggregate by the letter of the definition: exact sum and mean rounded once, the
    statistics module's median, numpy's linear percentile."""
    if not numbers:
        return None
    if kind == "value_sum":
        exact = sum(map(Fraction, numbers))
        return int(exact) if all(isinstance(n, int) for n in numbers) else float(exact)
    if kind == "value_avg":
        return float(sum(map(Fraction, numbers)) / len(numbers))
    if kind == "value_median":
        return statistics.median(numbers)
    ordered = sorted(numbers)
    rank = (len(ordered) - 1) * percentile / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def numeric_oracle(kind: str, op: str, threshold: int, percentile: int, span_us: int, points: list[tuple]) -> list[tuple]:
    """(group, first us, last us, peak) per burst, a quadratic loop; points are (time us, group, text)."""
    out = []
    for group in sorted({p[1] for p in points}):
        mine = [p for p in points if p[1] == group]  # stream order; sorted by time stably below
        mine.sort(key=lambda p: p[0])
        windows = []
        for start in sorted({p[0] for p in mine}):
            inside = [p for p in mine if start <= p[0] < start + span_us]
            numbers = [n for n in (as_number(p[2]) for p in inside) if n is not None]
            value = numeric_aggregate(kind, numbers, percentile)
            if value is not None and OPS[op](value, threshold):
                windows.append((start, max(p[0] for p in inside), value))
        bursts = []
        for start, last, value in windows:
            if bursts and start < bursts[-1][3] + span_us:
                first, end, peak, _ = bursts[-1]
                bursts[-1] = (first, max(end, last), max(peak, value), start)
            else:
                bursts.append((start, last, value, start))
        out.extend((group, first, end, peak) for first, end, peak, _ in bursts)
    return sorted(out, key=lambda b: (b[1], repr((b[0],))))


def numeric_correlation(kind: str, op: str, threshold: int, percentile: int, span: str = "1m") -> str:
    extra = f", percentile: {percentile}" if kind == "value_percentile" else ""
    return correlation(kind, f"{{{op}: {threshold}, field: srcport{extra}}}", span)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(NUMERIC_KINDS), op=st.sampled_from(sorted(OPS)), threshold=st.integers(-4, 12),
       percentile=st.integers(1, 100),
       generated=st.lists(st.tuples(st.integers(0, 12).map(lambda s: s * 20_000_000), st.sampled_from(["a", "b"]),
                                    st.lists(numeric_texts, max_size=3)), min_size=1, max_size=30))
def test_running_numeric_windows_are_the_definition(kind, op, threshold, percentile, generated):
    """The shared definition's running sums and sorted window against a brute-force reading, on points with
    several numbers each (an array field), equal times, ties of 7 and 7.0 and texts that are no number."""
    collection = rules(numeric_correlation(kind, op, threshold, percentile))
    plan = CorrelationPlan.build(next(r for r in collection.rules if r.title == "corr"))
    got = []
    for group in sorted({g for _, g, _ in generated}):
        points = sorted((Point(t, seq, frozenset({0}), tuple(texts)) for seq, (t, g, texts) in enumerate(generated) if g == group),
                        key=lambda p: (p.t, p.seq))
        from r53sigma.scan.correlations import bursts as chain
        got += [(group, b.first, b.last, b.value) for b in chain(firing_windows(plan, points), plan.span_us)]
    flat = [(t, g, text) for t, g, texts in generated for text in texts] + [(t, g, "") for t, g, texts in generated if not texts]
    want = numeric_oracle(kind, op, threshold, percentile, plan.span_us, flat)
    key = lambda b: (b[1], repr((b[0],)))  # noqa: E731
    assert sorted(got, key=key) == want
    assert [type(b[3]) for b in sorted(got, key=key)] == [type(b[3]) for b in want]  # 7 is not 7.0


def test_float_sums_do_not_drift_as_numbers_leave_the_window():
    """0.1 + 0.2 + 0.3 summed left to right is 0.6000000000000001; the window's exact sum is the float
    nearest 0.6, and after 1e16 and -1e16 pass through the window nothing of them remains."""
    collection = rules(correlation("value_sum", "{gte: 0, field: srcport}", "1m"))
    plan = CorrelationPlan.build(next(r for r in collection.rules if r.title == "corr"))
    texts = [(0, "1e16"), (1, "-1e16"), (61_000_000, "0.1"), (61_000_001, "0.2"), (61_000_002, "0.3")]
    points = [Point(t, i, frozenset({0}), (v,)) for i, (t, v) in enumerate(texts)]
    values = [w.value for w in firing_windows(plan, points)]
    assert values[-3:] == [0.6, 0.5, 0.3]


def test_huge_numbers_do_not_stop_a_scan():
    """A 400-digit integer is a number to Python (beyond any float): sums and means are computed exactly and
    reported as an infinity beyond the float range, and the median of it and a float does not raise."""
    big = "9" * 400
    for kind, op in (("value_sum", "gt"), ("value_avg", "gt"), ("value_median", "gt"), ("value_percentile", "lt")):
        collection = rules(numeric_correlation(kind, op, 5, 50))
        plan = CorrelationPlan.build(next(r for r in collection.rules if r.title == "corr"))
        points = [Point(0, 0, frozenset({0}), (big,)), Point(1, 1, frozenset({0}), ("-" + big, "0.5"))]
        list(firing_windows(plan, points))  # no OverflowError


numeric_edge_points = st.lists(  # times on and around the quarter-minute sub-bucket edges of a 1m span
    st.tuples(st.integers(0, 24).map(lambda q: q * 15_000_000), st.sampled_from([-1, 0, 1, 7_000_000]),
              st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]), numeric_texts),
    min_size=1, max_size=40,
)


@SETTINGS
@given(kind=st.sampled_from(NUMERIC_KINDS), op=st.sampled_from(sorted(OPS)), threshold=st.integers(-4, 12),
       percentile=st.integers(1, 100), generated=numeric_edge_points, split=st.integers(0, 40))
def test_the_numeric_candidate_filter_never_drops_a_firing_group(tmp_path_factory, monkeypatch, kind, op, threshold,
                                                                 percentile, generated, split):
    """Files DuckDB reads (points in parquet parts, bounds per sub-bucket from two batches whose times
    overlap): the alerts are those with no pruning at all, and the reference engine's."""
    collection = rules(numeric_correlation(kind, op, threshold, percentile))
    raw = [record(max(0, edge + offset), src=src, port=value) for edge, offset, src, value in generated]
    folder = tmp_path_factory.mktemp("split")
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[:split]))
    (folder / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[split:]))
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([folder]))]
    engine = DuckEngine(collection)
    assert [a.to_json() for a in engine.scan_paths([folder])] == expected
    assert engine.fast_files == 2
    with monkeypatch.context() as unpruned:
        unpruned.setattr(duckcorrelations, "_pruning", lambda plan: None)
        assert [a.to_json() for a in DuckEngine(collection).scan_paths([folder])] == expected


def test_numeric_points_kept_in_memory_do_not_grow_with_lines(tmp_path, monkeypatch):
    """value_avg gt 75 (the pack's long-name rule): a steady source of short values and one source with a
    long one; only that source's run of sub-buckets reaches the window evaluation."""
    collection = rules(correlation("value_avg", "{gt: 75, field: srcport}", "1m"))
    kept = []
    for steady in (30, 3000):
        raw = [record(i * 20_000_000, src="10.0.0.1", port="20") for i in range(steady)]
        raw += [record(i * 1_000_000, src="10.0.0.9", port=p) for i, p in enumerate(("80", "90"))]
        log = tmp_path / f"steady{steady}.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in raw))
        counted = points_evaluated(monkeypatch)
        alerts = list(DuckEngine(collection).scan_paths([log]))
        assert [a.to_json()["group"]["srcaddr"] for a in alerts] == ["10.0.0.9"]
        kept.append(counted[0])
    assert kept == [2, 2]


answer_points = st.lists(  # (time step, source, answers): several values a point, repeats, none at all
    st.tuples(st.integers(0, 30), st.sampled_from(["10.0.0.1", "10.0.0.2"]),
              st.lists(st.sampled_from(["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]), max_size=3)),
    min_size=1, max_size=30,
)


def answer_records(generated: list) -> list[dict]:
    """answer_points' records: 20 s apart a step, each answer an A record."""
    raw = []
    for step, src, answers in generated:
        row = record(step * 20_000_000, src=src)
        row["answers"] = [{"Rdata": a, "Type": "A"} for a in answers]
        raw.append(row)
    return raw


@SETTINGS
@given(op=st.sampled_from(["gt", "gte", "lt", "lte"]), threshold=st.integers(0, 4), span_minutes=st.sampled_from([1, 2]),
       generated=answer_points)
def test_value_count_over_a_list_field_is_the_reference_s_on_events_and_files(tmp_path_factory, op, threshold, span_minutes, generated):
    """value_count's distinct values from steps over first occurrences (duckcorrelations._distinct_count_windows):
    points with several, repeated or no values, equal times, every comparison."""
    collection = rules(f"""
title: corr
correlation: {{type: value_count, rules: [nx], group-by: [srcaddr], timespan: {span_minutes}m, condition: {{{op}: {threshold}, field: answers.Rdata}}}}
""")
    both(collection, answer_records(generated), tmp_path_factory.mktemp("vc"))


@SETTINGS
@given(op=st.sampled_from(["gt", "gte", "lt", "lte"]), threshold=st.integers(0, 4), generated=answer_points)
def test_evidence_of_events_with_many_rows_is_the_reference_s(tmp_path_factory, monkeypatch, op, threshold, generated):
    """A burst keeps its first duckcorrelations.EVIDENCE_ROWS rows (here two) to find its first events; an
    event has a row per value, so where those rows hold too few events the burst's are read on their own."""
    monkeypatch.setattr(duckcorrelations, "EVIDENCE_ROWS", 2)
    collection = rules(correlation("value_count", f"{{{op}: {threshold}, field: answers.Rdata}}", "1m"))
    both(collection, answer_records(generated), tmp_path_factory.mktemp("evidence"))


def test_a_burst_of_events_with_three_values_each_shows_its_first_twenty_events(tmp_path):
    """25 events with three values each: the first 40 rows hold 14 events, the alert shows the first 20."""
    raw = []
    for second in range(25):
        row = record(second * 1_000_000)
        row["answers"] = [{"Rdata": f"10.0.{second}.{k}", "Type": "A"} for k in range(3)]
        raw.append(row)
    collection = rules(correlation("value_count", "{gte: 3, field: answers.Rdata}", "1m"))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    [expected] = Engine(collection).scan(read_paths([tmp_path]))
    [alert] = DuckEngine(collection).scan_paths([tmp_path])
    assert [e.origin for e in alert.events] == [e.origin for e in expected.events] == [f"{tmp_path / 'a.jsonl'}:{n}" for n in range(1, 21)]


@SETTINGS
@given(kind=st.sampled_from(["event_count", "value_count", "temporal"]), op=st.sampled_from(["gt", "gte"]),
       threshold=st.integers(1, 4), generated=edge_points)
def test_groups_evaluated_in_slices_give_the_reference_s_alerts(tmp_path_factory, monkeypatch, kind, op, threshold, generated):
    """A window query per slice of groups (duckcorrelations.SLICE_POINTS, here two points a slice, so most
    groups are alone or with one other): bursts and evidence as the reference engine's."""
    monkeypatch.setattr(duckcorrelations, "SLICE_POINTS", 2)
    collection, raw = edge_case(kind, op, threshold, generated)
    both(collection, raw, tmp_path_factory.mktemp("slices"))


@SETTINGS
@given(kind=st.sampled_from(["event_count", "value_count", "temporal"]), op=st.sampled_from(["gt", "gte"]),
       threshold=st.integers(1, 6), generated=edge_points, split=st.integers(0, 40))
def test_groups_whose_bin_keys_collide_keep_their_alerts(tmp_path_factory, monkeypatch, kind, op, threshold, generated, split):
    """Bins, anchors and candidates are keyed by a hash of the group: with a key of one bit (most groups
    collide), a bound over several groups' points still bounds each, and the alerts are the reference's."""
    monkeypatch.setattr(duckcorrelations, "GROUP_HASH", "hash({}) % 2")
    collection, raw = edge_case(kind, op, threshold, generated)
    folder = tmp_path_factory.mktemp("collide")
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[:split]))
    (folder / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw[split:]))
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([folder]))]
    assert [a.to_json() for a in DuckEngine(collection).scan_paths([folder])] == expected


@SETTINGS
@given(kind=st.sampled_from(NUMERIC_KINDS), op=st.sampled_from(sorted(OPS)), threshold=st.integers(-4, 12),
       percentile=st.integers(1, 100), generated=numeric_edge_points)
def test_numeric_groups_whose_bin_keys_collide_keep_their_alerts(tmp_path_factory, monkeypatch, kind, op, threshold,
                                                                 percentile, generated):
    """As above for the numeric bounds, where only windows starting in an anchor are evaluated: a group
    whose anchor comes from another group's points is evaluated exactly there too (no alert lost or added)."""
    monkeypatch.setattr(duckcorrelations, "GROUP_HASH", "hash({}) % 2")
    collection = rules(numeric_correlation(kind, op, threshold, percentile))
    raw = [record(max(0, edge + offset), src=src, port=value) for edge, offset, src, value in generated]
    folder = tmp_path_factory.mktemp("collide")
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([folder]))]
    assert [a.to_json() for a in DuckEngine(collection).scan_paths([folder])] == expected


def test_each_group_is_evaluated_in_one_slice_only(tmp_path, monkeypatch):
    monkeypatch.setattr(duckcorrelations, "SLICE_POINTS", 2)
    raw = [record(second * 1_000_000, src=src) for src in ("10.0.0.1", "10.0.0.2", "10.0.0.3") for second in (0, 10, 20)]
    fired = both(rules(correlation("event_count", "{gte: 3}", "1m")), raw, tmp_path)
    assert sorted(a["group"]["srcaddr"] for a in fired) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


# ---------------------------------------------------------------- tables made at a correlation's first point

QUIET_ORDERED_BURST = """
title: quiet
correlation: {type: event_count, rules: [txt], group-by: [srcaddr], timespan: 1m, condition: {gte: 2}}
---
title: ordered
correlation: {type: temporal_ordered, rules: [nx, txt], group-by: [srcaddr], timespan: 1m}
---
title: burst
correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 1m, condition: {gte: 3}}
"""


def test_a_correlation_without_points_makes_no_table(tmp_path, monkeypatch):
    collection = rules(QUIET_ORDERED_BURST)
    # NXDOMAIN queries only: "quiet" (txt) gets no point, "ordered" and "burst" (nx) get some, "burst" fires
    raw = [{"query_timestamp": f"2024-05-01T10:00:0{i}Z", "query_name": "a.example.com.", "query_type": "A",
            "rcode": "NXDOMAIN", "srcaddr": "10.0.0.5", "answers": [], "srcids": {"instance": "i-1"}} for i in range(4)]
    log = tmp_path / "q.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in raw))
    seen: list[list[str]] = []  # the correlation tables on the connection when the alerts are decided
    alerts = duckcorrelations.CorrelationTables.alerts

    def tables(con) -> list[str]:
        names = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name SIMILAR TO '(acc|bins)[0-9]+_[0-9]+'").fetchall()
        return sorted(name.rsplit("_", 1)[0] for (name,) in names)

    def recording(self):
        seen.append(tables(self.con))
        yield from alerts(self)

    monkeypatch.setattr(duckcorrelations.CorrelationTables, "alerts", recording)
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([log]))]
    assert [a["title"] for a in expected if "correlation" in a] == ["burst"]
    engine = DuckEngine(collection)
    assert [a.to_json() for a in engine.scan_paths([log])] == expected  # DuckDB reads the file
    assert engine.fast_files == 1
    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(raw, 1)]
    assert [a.to_json() for a in engine.scan(events)] == [a.to_json() for a in Engine(collection).scan(events)]
    # "quiet" (number 0) has neither its point table nor its bins; "ordered" (1) and "burst" (2, pruned) have theirs
    assert seen == [["acc1", "acc2", "bins2"]] * 2
    assert tables(engine.con) == []  # and alerts() dropped them
