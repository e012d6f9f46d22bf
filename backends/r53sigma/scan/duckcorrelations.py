"""Correlations in the DuckDB engine, with the sliding windows and bursts of :mod:`r53sigma.scan.correlations`.

Each correlation that gets a point has a table of points, made at its first (one that gets none costs no
query): one row per (event, group[, value]) with the time in microseconds, the referenced rules matched
(a bit mask) and where the event is (file, line). Where the condition
only grows (event_count, value_count, temporal compared with gt/gte), the points stay on disk instead, and
memory keeps only a bound per (sub-bucket of a quarter span, group's hash): events, distinct values or the rules'
bit mask, plain grouped aggregates that spill. A file DuckDB read keeps its points in its pass file (the
rows SQL decided, in the engine's spill folder until the scan ends: the bounds are computed from it, no
copy of the points is written); the points of batches the reference reader parsed go to parquet parts.
At the end, the sub-buckets of every run of five whose bound passes the condition are the candidates (any
window lies inside such a run; a run lies inside two consecutive spans, whose bounds together pre-filter
the runs), and only their points are copied to a candidates file, read through a view with the table
(rows the reference engine decided keep theirs there); memory is bounded by the distinct (sub-bucket,
group) tuples, and disk by the lines.
``value_sum/avg/median/percentile`` compared with gt/gte/lt/lte are pruned the same
way, by the max/min of their numbers or the sums of their positive/negative ones (:func:`_numeric_pruning`);
as those aggregates need not grow with points, only windows starting in a passing run's first sub-bucket
are evaluated. The other conditions (count lt/lte, where any group may fire; eq/neq) keep every point.
After the last batch, ``event_count`` and ``temporal`` are window functions over one row per (group, time)
(``RANGE BETWEEN CURRENT ROW AND span - 1 us FOLLOWING``: the half-open window at every distinct time) and
``value_count`` a running sum of first-occurrence steps (:func:`_distinct_count_windows`), preceded, where
the condition only grows, by a grouped aggregate per (epoch-aligned bin, group) that leaves out the bins no
firing window can touch (every window lies inside two consecutive bins); those windows are chained into
bursts in SQL, one query per slice of groups (``SLICE_POINTS``), a burst's last event found by an ASOF join. ``temporal_ordered`` and
``value_sum/avg/median/percentile`` read the group's points and use the shared Python definition, as do
the other conditions' windows, chained with :func:`r53sigma.scan.correlations.bursts`. Evidence lines are
fetched afterwards, for the bursts only. The tables and window sorts spill to disk under a ``memory_limit``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import duckdb
from r53sigma.scan.sigma_names import (  # pySigma's names, without importing pySigma (warm start)
    SigmaCorrelationCondition, SigmaCorrelationConditionOperator, SigmaCorrelationType, SigmaRule)

from r53sigma.scan.correlations import MICROS, Burst, CorrelationPlan, Point, Window, burst_alert, bursts, firing_windows
from r53sigma.scan.duckread import column_name, log_sources
from r53sigma.scan.sqltext import quote as _quote
from r53sigma.scan.records import Event
from r53sigma.scan.results import EVIDENCE_PER_GROUP, Alert
from r53sigma.scan.values import PLAIN_NUMBER


class CorrelationTables:
    """The point tables of one scan's correlations, filled batch by batch, read once at the end."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plans: list[CorrelationPlan], flag: dict[int, str],
                 source_of: dict[int, str], matches: Callable[[SigmaRule, Event], bool], scan_id: int, spill: str):
        """``spill``: the engine's spill folder (DuckDB's temp_directory), where points and candidates go."""
        self.con, self.plans, self.flag, self.source_of, self.matches = con, plans, flag, source_of, matches
        # per correlation with points: its point table, made at its first point (:meth:`_create_tables`; a
        # correlation that gets none costs no query, at the start or the end)
        self.tables: dict[int, str] = {}
        self.filled: set[int] = set()  # correlations with points (the others need no query at the end)
        # per prunable correlation with a table: its sub-bucket width (us) and the parquet parts its SQL-read points went to
        self.width: dict[int, int] = {}
        self.parts: dict[int, list[str]] = {}
        # per prunable correlation: the pass files' relations its candidate points are read from at the end
        self.passes: dict[int, list[tuple[str, str]]] = {}  # (source, relation)
        self.pass_files: list[str] = []  # pass files kept to the end of the scan (removed by alerts())
        self.spill = spill
        self.scan_id = scan_id

    def _create_tables(self, number: int) -> str:
        """The correlation's point table (and, where it is pruned, its bins table), made on its first point."""
        table = self.tables.get(number)
        if table is not None:
            return table
        table = f"acc{number}_{self.scan_id}"
        self.con.execute(
            f"CREATE TEMP TABLE {table} (g VARCHAR[], t BIGINT, mask BIGINT, v VARCHAR, "
            "f BIGINT, s BIGINT, line BIGINT, idx BIGINT, file VARCHAR)"
        )
        self.tables[number] = table
        plan = self.plans[number]
        pruning = _pruning(plan)
        if pruning is not None:
            self.width[number] = -(-plan.span_us // SUB_BUCKETS)
            self.parts[number] = []
            self.passes[number] = []
            self.con.execute(f"CREATE TEMP TABLE bins{number}_{self.scan_id} (h UBIGINT, k BIGINT, a {pruning.column})")
        return table

    def accumulate(self, source: str, table: str) -> None:
        """The points of a batch's flagged rows (a table with the rule flags and field columns)."""
        for number, plan in self._matched(source, table):
            self._accumulate(number, plan, source, table)
            self.filled.add(number)

    def accumulate_pass(self, source: str, decided: str, in_file: str, in_table: str, pass_file: str) -> bool:
        """The points of a file DuckDB read: ``decided``, its rows with their flags, is ``in_file`` (the rows
        SQL decided, read from ``pass_file``) and ``in_table`` (the rows the reference engine decided, in
        memory until the next file). A prunable correlation keeps only the bounds of ``in_file``'s points and
        reads its candidates from the pass file at the end (no copy of its points); True when the pass file
        is kept for that (the correlations remove it), False when the caller may remove it."""
        kept = False
        for number, plan in self._matched(source, decided):
            if _pruning(plan) is None:
                self._accumulate(number, plan, source, decided)
            else:
                self._accumulate(number, plan, source, in_table, in_memory=True)
                points = self._points_sql(plan, source, in_file)
                if points is not None:
                    self._create_tables(number)
                    self._add_bins(number, plan, f"({points})")
                    self.passes[number].append((source, in_file))
                    kept = True
            self.filled.add(number)
        if kept:
            self.pass_files.append(pass_file)
        return kept

    def _matched(self, source: str, table: str) -> list[tuple[int, CorrelationPlan]]:
        """The correlations some referenced rule of the source matched for in the table."""
        flags = sorted({self.flag[id(t)] for plan in self.plans for t in plan.rules if self.source_of[id(t)] == source})
        if not flags:
            return []
        # one cheap query says which referenced rules matched at all (a query per correlation and file costs ~10 ms)
        row = self.con.execute(f"SELECT {', '.join(f'coalesce(bool_or({f}), false)' for f in flags)} FROM {table}").fetchall()[0]
        matched = {f for f, hit in zip(flags, row) if hit}
        return [(number, plan) for number, plan in enumerate(self.plans)
                if any(self.flag[id(t)] in matched for t in plan.rules if self.source_of[id(t)] == source)]

    def _accumulate(self, number: int, plan: CorrelationPlan, source: str, table: str, in_memory: bool = False) -> None:
        """The points of a batch's rows (one row per point, group and value) into the correlation's table,
        or, where it is pruned (and not ``in_memory``), a parquet part and the bounds of its sub-buckets."""
        points = self._points_sql(plan, source, table)
        if points is None:
            return
        table = self._create_tables(number)
        if number not in self.width or in_memory:
            self.con.execute(f"INSERT INTO {table} {points}")
            return
        # Prunable: the points go to a parquet part on disk, and only their counts per (sub-bucket, group) stay
        # in memory (plain grouped aggregates, which spill); the parts are read back for candidate groups only.
        part = os.path.join(self.spill, f"points{number}_{self.scan_id}_{len(self.parts[number])}.parquet")
        self.con.execute(f"COPY ({points}) TO {_quote(part)} (FORMAT parquet)")
        self.parts[number].append(part)
        self._add_bins(number, plan, f"read_parquet({_quote(part)})")

    def _points_sql(self, plan: CorrelationPlan, source: str, table: str) -> str | None:
        """The query of the correlation's points in a relation of flagged rows: one row per point, group
        and value (g, t, mask, v, f, s, line, idx, file); None when no referenced rule is of the source."""
        targets = [(i, t) for i, t in enumerate(plan.rules) if self.source_of[id(t)] == source]
        if not targets:
            return None
        log_source = log_sources()[source]

        def as_list(path: tuple[str, ...]) -> str:
            field = log_source.field_for(".".join(path))
            col = column_name(field)
            return col if field.array else f"(CASE WHEN {col} IS NULL THEN []::VARCHAR[] ELSE [{col}] END)"

        def first_match(make: Callable[[SigmaRule], str]) -> str:
            whens = " ".join(f"WHEN {self.flag[id(t)]} THEN {make(t)}" for _, t in targets)
            return f"(CASE {whens} END)"

        groups = [first_match(lambda t, k=k: f"list_distinct({as_list(plan.group_paths[id(t)][k])})") for k in range(len(plan.group_by))]
        values = first_match(lambda t: as_list(plan.value_paths[id(t)])) if plan.value_paths else "[NULL]::VARCHAR[]"
        mask = " + ".join(f"(CASE WHEN {self.flag[id(t)]} THEN {1 << i} ELSE 0 END)" for i, t in targets)
        any_target = " OR ".join(self.flag[id(t)] for _, t in targets)
        inner = (
            f"SELECT CAST(round(_time * {MICROS}) AS BIGINT) AS t, _f, _file, _s, _line, _idx, {mask} AS mask, "
            f"(CASE WHEN coalesce(len({values}), 0) = 0 THEN [NULL]::VARCHAR[] ELSE {values} END) AS vals, "  # no value (an absent list too): one point without one
            + ", ".join([f"{g} AS g{k}" for k, g in enumerate(groups)] or ["1 AS _x"])
            + f" FROM {table} WHERE _fit AND _time IS NOT NULL AND ({any_target})"
        )
        for k in range(len(groups)):  # one row per combination of group values; no value: no row
            inner = f"SELECT * REPLACE (unnest(g{k}) AS g{k}) FROM ({inner})"
        group = "[" + ", ".join(f"g{k}" for k in range(len(groups))) + "]::VARCHAR[]"
        return f"SELECT {group} AS g, t, mask, unnest(vals) AS v, _f AS f, _s AS s, _line AS line, _idx AS idx, _file AS file FROM ({inner})"

    def _add_bins(self, number: int, plan: CorrelationPlan, relation: str) -> None:
        """Per (sub-bucket, group's hash) of the relation's points, an upper bound of what its events add to a
        window. Bins are keyed by the group's 64-bit hash, not the group (a list of strings): a bound over the
        points of groups that collide bounds each of them too (every bound is monotone in the points), so a
        collision can only keep more candidates, never lose one, and the bins cost 8 bytes of key."""
        aggregate = _pruning(plan).bin_bound
        self.con.execute(
            f"INSERT INTO bins{number}_{self.scan_id} SELECT {GROUP_HASH.format('g')} AS h, t // {self.width[number]} AS k, {aggregate} AS a "
            f"FROM {relation} GROUP BY h, k"
        )

    def accumulate_event(self, file_no: int, s: int, event: Event) -> None:
        """The points of one event the reference engine evaluates (rows SQL could not represent)."""
        for number, plan in enumerate(self.plans):
            hits = [i for i, t in enumerate(plan.rules) if self.matches(t, event)]
            found = plan.point_of(event, hits) if hits else None
            if found is None:
                continue
            groups, point = found
            mask = sum(1 << i for i in hits)
            rows = [[list(group), point.t, mask, value, file_no, s, event.line or 0, event.index or 0, event.file]
                    for group in groups for value in (point.values or (None,))]
            self.con.executemany(f"INSERT INTO {self._create_tables(number)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.filled.add(number)

    def alerts(self) -> Iterator[Alert]:
        """Every correlation's alerts, one per burst (r53sigma.scan.correlations), after the last batch."""
        try:
            yield from self._alerts()
        finally:
            for pass_file in self.pass_files:
                remove_spilled(pass_file)
            self.pass_files = []

    def _alerts(self) -> Iterator[Alert]:
        for number, plan in enumerate(self.plans):
            table = self.tables.get(number)
            if table is None:  # no point: no window, no alert
                continue
            points = table  # the table, or a view of it and the candidate points left in parquet
            if number in self.width:
                points = self._candidate_points(number, plan)
            found = []
            for group, group_bursts in (self._bursts(plan, points, number) if number in self.filled else ()):
                found.extend((burst, group) for burst in group_bursts)
            found.sort(key=lambda item: (item[0].first, repr(item[1])))
            source = self.source_of[id(plan.rules[0])]
            evidence = self._evidence(number, points, found)
            for n, (burst, group) in enumerate(found):
                events = [Event(source, {}, None, None, file, line or None, idx or None) for line, idx, file in evidence.get(n, ())]
                yield burst_alert(plan, group, burst, events)
            if points != table:
                self.con.execute(f"DROP VIEW {points}")
                remove_spilled(self._candidates_file(number))
            self.con.execute(f"DROP TABLE {table}")

    def _evidence(self, number: int, points: str, found: list[tuple[Burst, tuple]]) -> dict[int, list[tuple]]:
        """Per burst (its index in ``found``), where its first EVIDENCE_PER_GROUP events are, in stream order
        (the scan prints their origins, not their content), from one pass over the points for all bursts of
        the correlation (a query per burst read every point once per burst: 28 s for 2,458 bursts at 10M).

        An event has a row per group and value, so each burst keeps its EVIDENCE_ROWS first rows (a top-N
        aggregate, bounded memory) and their count: the distinct events of the first rows are the first
        events. Where they are fewer than wanted while rows were left out, that burst's events are read
        on their own (a burst whose events have many rows each)."""
        if not found:
            return {}
        bursts_table = f"bursts{number}_{self.scan_id}"
        self.con.execute(
            f"CREATE TEMP TABLE {bursts_table} AS SELECT unnest($n) AS n, unnest($g::VARCHAR[][]) AS g, "
            f"unnest($first) AS first, unnest($last) AS last",
            {"n": list(range(len(found))), "g": [list(group) for _, group in found],
             "first": [burst.first for burst, _ in found], "last": [burst.last for burst, _ in found]},
        )
        rows = self.con.execute(
            f"SELECT b.n, min({{'f': p.f, 's': p.s, 'line': p.line, 'idx': p.idx, 'file': p.file}}, {EVIDENCE_ROWS}), count(*) "
            f"FROM {points} AS p JOIN {bursts_table} AS b ON p.g = b.g AND p.t BETWEEN b.first AND b.last GROUP BY b.n"
        ).fetchall()
        self.con.execute(f"DROP TABLE {bursts_table}")
        evidence: dict[int, list[tuple]] = {}
        for n, first_rows, count in rows:
            events = list(dict.fromkeys((r["f"], r["s"], r["line"], r["idx"], r["file"]) for r in first_rows))
            if len(events) < EVIDENCE_PER_GROUP and count > len(first_rows):
                burst, group = found[n]
                events = self.con.execute(
                    f"SELECT DISTINCT f, s, line, idx, file FROM {points} WHERE g = ? AND t BETWEEN ? AND ? "
                    f"ORDER BY f, s LIMIT {EVIDENCE_PER_GROUP}", [list(group), burst.first, burst.last]
                ).fetchall()
            evidence[n] = [(line, idx, file) for _, _, line, idx, file in events[:EVIDENCE_PER_GROUP]]
        return evidence

    def _candidates_file(self, number: int) -> str:
        return os.path.join(self.spill, f"candidates{number}_{self.scan_id}.parquet")

    def _candidate_points(self, number: int, plan: CorrelationPlan) -> str:
        """The correlation's points in the sub-buckets some firing window may touch: a view of its table (the
        points the reference reader produced) and, read from the parts, a parquet file of the candidates of
        the points DuckDB read (they stay on disk, however many a busy group has).

        A window [t, t + span) covers at most SUB_BUCKETS + 1 consecutive sub-buckets of width
        ceil(span / SUB_BUCKETS), starting with t's, and its aggregate is bounded by the run of those
        sub-buckets' bounds (:func:`_pruning`). A firing window therefore starts in a sub-bucket whose run
        passes the bound test (an anchor), and every sub-bucket of such a run is a candidate: a window
        starting in an anchor, evaluated on the candidates' points, sees all its points (exact). Where the
        aggregate only grows with points (counts with gt/gte), any other window sees no more points than it
        has (no false alert); where it need not (numbers), only windows starting in an anchor are evaluated
        (:meth:`_python_windows`), the anchors being kept in a table."""
        bins, table, runs = f"bins{number}_{self.scan_id}", self.tables[number], SUB_BUCKETS
        pruning = _pruning(plan)
        if number in self.filled:  # points the reference reader produced (python batches): bounded as well
            self._add_bins(number, plan, table)
        anchors, cand = f"anchors{number}_{self.scan_id}", f"cand{number}_{self.scan_id}"
        # The run of sub-bucket k (k .. k + runs) lies in the spans k // runs and the next (integer division
        # truncates, so the spans around 0 are wider, never narrower): only the sub-buckets of a pair of
        # consecutive spans whose bounds together pass go to the window (plain aggregates and a hash join
        # first; on busy groups that never fire, the window over every sub-bucket was most of the cost).
        self.con.execute(
            f"CREATE TEMP TABLE {anchors} AS "
            f"WITH b AS (SELECT h, k, {pruning.merge} AS a FROM {bins} GROUP BY h, k), "
            f"c AS (SELECT h, k // {runs} AS c, {pruning.merge} AS a FROM b GROUP BY h, c), "
            f"p AS (SELECT c1.h, c1.c FROM c AS c1 LEFT JOIN c AS c2 ON c1.h = c2.h AND c2.c = c1.c + 1 "
            f"WHERE {pruning.passes(pruning.pair('c1.a', 'c2.a'))}), "
            f"kept AS (SELECT b.* FROM b SEMI JOIN (SELECT h, c FROM p UNION SELECT h, c + 1 FROM p) AS q "
            f"ON b.h = q.h AND b.k // {runs} = q.c) "
            f"SELECT r.h, r.k FROM (SELECT h, k, {pruning.run} AS run FROM kept "
            f"WINDOW w AS (PARTITION BY h ORDER BY k RANGE BETWEEN CURRENT ROW AND {runs} FOLLOWING)) AS r "
            f"SEMI JOIN p ON r.h = p.h AND r.k // {runs} = p.c WHERE {pruning.passes('r.run')}"
        )
        self.con.execute(f"CREATE TEMP TABLE {cand} AS SELECT DISTINCT h, k + r AS k FROM {anchors}, range({runs + 1}) AS o(r)")
        points = table
        sources = [f"SELECT * FROM read_parquet([{', '.join(_quote(p) for p in self.parts[number])}])"] * bool(self.parts[number])
        sources += [self._points_sql(plan, source, relation) for source, relation in self.passes[number]]
        if sources and self.con.execute(f"SELECT count(*) FROM {cand}").fetchall()[0][0]:
            candidates = self._candidates_file(number)
            self.con.execute(
                f"COPY (SELECT p.* FROM ({' UNION ALL '.join(sources)}) AS p "
                f"SEMI JOIN {cand} AS c ON {GROUP_HASH.format('p.g')} = c.h AND p.t // {self.width[number]} = c.k) TO {_quote(candidates)} (FORMAT parquet)"
            )
            points = f"points{number}_{self.scan_id}"
            self.con.execute(f"CREATE TEMP VIEW {points} AS SELECT * FROM {table} UNION ALL SELECT * FROM read_parquet({_quote(candidates)})")
            self.filled.add(number)
        kept = not pruning.monotone and number in self.filled  # the anchors _python_windows reads
        for name in (cand, bins) + (() if kept else (anchors,)):
            self.con.execute(f"DROP TABLE {name}")
        for part in self.parts[number]:
            remove_spilled(part)
        return points

    def _bursts(self, plan: CorrelationPlan, table: str, number: int) -> Iterator[tuple[tuple, list[Burst]]]:
        """Per group, its bursts (r53sigma.scan.correlations.bursts over its firing windows). Where the test
        is a plain comparison, the windows are chained in SQL and only the bursts leave DuckDB: a window
        starting less than a span after the previous firing window's start joins its burst, whose first is
        its first start, last the latest last, value the highest."""
        bound = _upper_bound_test(plan) if plan.kind in _SQL_WINDOWS else None
        if bound is None:
            for group, windows in self._windows(plan, table, number):
                yield group, bursts(windows, plan.span_us)
            return
        span = plan.span_us
        value = "bit_count(agg)" if plan.kind == SigmaCorrelationType.TEMPORAL else "agg"
        # groups in slices of about SLICE_POINTS points, one query each: the window sorts hold one slice.
        # Each group gets its rank (an integer in the groups' order): the window queries partition, sort and
        # join by it instead of by the group's list of strings, and the bursts get their group back at the end.
        slices = f"slices{number}_{self.scan_id}"
        self.con.execute(
            f"CREATE TEMP TABLE {slices} AS SELECT g, row_number() OVER (ORDER BY g) AS id, "
            f"(sum(n) OVER (ORDER BY g ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n) "
            f"// {SLICE_POINTS} AS slice FROM (SELECT g, count(*) AS n FROM {table} GROUP BY g)"
        )
        count = self.con.execute(f"SELECT coalesce(max(slice) + 1, 0) FROM {slices}").fetchall()[0][0]
        for slice_no in range(count):
            in_slice = f" AND c.slice = {slice_no}" if count > 1 else ""
            rows_of = f"(SELECT c.id AS g, p.t, p.mask, p.v FROM {table} AS p JOIN {slices} AS c ON p.g = c.g{in_slice})"
            # A burst's last event is the latest point of its last window [last start, last start + span): the
            # bursts of a group are more than a span apart, so a point is in at most one such window, that of
            # the latest burst starting at or before it (an ASOF join), instead of a frame's max at every start.
            rows = self.con.execute(
                f"WITH w AS (SELECT g, t, {value} AS agg FROM ({self._windows_sql(plan, rows_of, bound, last=False)}) WHERE {bound(value)}), "
                f"m AS (SELECT *, CASE WHEN t < lag(t) OVER (PARTITION BY g ORDER BY t) + {span} THEN 0 ELSE 1 END AS new FROM w), "
                f"n AS (SELECT *, sum(new) OVER (PARTITION BY g ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS burst FROM m), "
                f"b AS (SELECT g, burst, min(t) AS first, max(agg) AS peak, max(t) AS last_start FROM n GROUP BY g, burst), "
                f"e AS (SELECT b.g, b.burst, max(p.t) AS last FROM (SELECT DISTINCT g, t FROM {rows_of}) AS p "
                f"ASOF JOIN b ON p.g = b.g AND p.t >= b.last_start WHERE p.t < b.last_start + {span} GROUP BY b.g, b.burst) "
                f"SELECT c.g, b.first, e.last, b.peak, b.last_start FROM b JOIN e ON b.g = e.g AND b.burst = e.burst "
                f"JOIN {slices} AS c ON c.id = b.g ORDER BY b.g, b.first"
            ).fetchall()
            current, found = None, []
            for group, first, last, peak, last_start in rows:
                group = tuple(group)
                if group != current:
                    if found:
                        yield current, found
                    current, found = group, []
                found.append(Burst(first, last, peak, last_start))
            if found:
                yield current, found
        self.con.execute(f"DROP TABLE {slices}")

    def _windows_sql(self, plan: CorrelationPlan, table: str, bound: Callable[[str], str] | None, last: bool = True) -> str:
        """Every window of a SQL-evaluated correlation: (g, t, agg, last) per group and distinct point time
        (without ``last``, the window's latest point time, when not ``last``)."""
        aggregate, bucket_aggregate, combine = _SQL_WINDOWS[plan.kind]
        rows_of = table
        if bound is not None:
            # Every window [t, t + span) lies inside two consecutive epoch-aligned bins: a grouped aggregate
            # per (bin, group) leaves out the bins no firing window can touch (the condition only grows).
            span = plan.span_us
            rows_of = (
                f"(WITH b AS (SELECT g, t // {span} AS k, {bucket_aggregate} AS a FROM {table} GROUP BY g, k), "
                f"pairs AS (SELECT b1.g, b1.k FROM b AS b1 LEFT JOIN b AS b2 ON b1.g = b2.g AND b2.k = b1.k + 1 "
                f"WHERE {bound(combine('b1.a', 'b2.a'))}), "
                f"candidates AS (SELECT g, k FROM pairs UNION SELECT g, k + 1 FROM pairs) "
                f"SELECT r.* FROM {table} AS r SEMI JOIN candidates ON r.g = candidates.g AND r.t // {span} = candidates.k)"
            )
        frame = f"(PARTITION BY g ORDER BY t RANGE BETWEEN CURRENT ROW AND {plan.span_us - 1} FOLLOWING)"
        if plan.kind == SigmaCorrelationType.VALUE_COUNT:
            return _distinct_count_windows(rows_of, plan.span_us, frame, last)
        per_time, over_window = aggregate  # one row per (group, time) first: one window per distinct time
        return (f"SELECT g, t, {over_window} OVER w AS agg{', max(t) OVER w AS last' * last} "
                f"FROM (SELECT g, t, {per_time} AS a FROM {rows_of} GROUP BY g, t) WINDOW w AS {frame}")

    def _windows(self, plan: CorrelationPlan, table: str, number: int) -> Iterator[tuple[tuple, list[Window]]]:
        """Per group, its firing windows in ascending start (r53sigma.scan.correlations' definition)."""
        if plan.kind not in _SQL_WINDOWS:
            yield from self._python_windows(plan, table, number)
            return
        rows = self.con.execute(f"SELECT g, t, agg, last FROM ({self._windows_sql(plan, table, None)}) ORDER BY g, t").fetchall()
        current, windows = None, []
        for group, t, agg, last in rows:
            group = tuple(group)
            if group != current:
                if windows:
                    yield current, windows
                current, windows = group, []
            if plan.kind == SigmaCorrelationType.TEMPORAL:
                matched = frozenset(i for i in range(len(plan.rules)) if agg >> i & 1)
                agg = matched if plan.extended else len(matched)
            if plan.test(agg):
                windows.append(Window(t, last, agg))
        if windows:
            yield current, windows

    def _python_windows(self, plan: CorrelationPlan, table: str, number: int) -> Iterator[tuple[tuple, list[Window]]]:
        """temporal_ordered and value_sum/avg/median/percentile: the group's points, evaluated as the reference
        does; where the candidates were pruned by bounds that need not grow with points, only the windows
        starting in an anchor sub-bucket (:meth:`_candidate_points`)."""
        anchors = f"anchors{number}_{self.scan_id}" if number in self.width else None
        joined = (f"{table} AS p LEFT JOIN {anchors} AS a ON {GROUP_HASH.format('p.g')} = a.h AND p.t // {self.width[number]} = a.k"
                  if anchors else f"(SELECT *, NULL AS k FROM {table}) AS p")
        rows = self.con.execute(
            f"SELECT p.g, p.t, p.f, p.s, p.mask, list(p.v) FILTER (WHERE p.v IS NOT NULL), bool_or(k IS NOT NULL) "
            f"FROM {joined} GROUP BY p.g, p.t, p.f, p.s, p.mask ORDER BY p.g, p.t, p.f, p.s"
        ).fetchall()
        if anchors:
            self.con.execute(f"DROP TABLE {anchors}")
        by_group: dict[tuple, list[Point]] = {}
        starts: dict[tuple, set[int]] = {}
        for group, t, f, s, mask, values, anchored in rows:
            hits = frozenset(i for i in range(len(plan.rules)) if mask >> i & 1)
            group = tuple(group)
            by_group.setdefault(group, []).append(Point(t, f << 40 | s, hits, tuple(values or ())))
            if anchored:
                starts.setdefault(group, set()).add(t)
        for group, points in by_group.items():
            may_fire = starts.get(group, frozenset()).__contains__ if anchors else None
            windows = list(firing_windows(plan, points, may_fire))
            if windows:
                yield group, windows


def remove_spilled(path: str) -> None:
    """Remove a file the engine wrote to its spill folder (gone already: nothing to do)."""
    try:
        os.remove(path)
    except OSError:
        pass


def _distinct_count_windows(rows: str, span: int, frame: str, last: bool = True) -> str:
    """Per group and distinct point time t, the distinct non-null values in [t, t + span) (``agg``) and the
    last point time there (``last``), without a DISTINCT window aggregate (whose sort trees grew past a
    gigabyte on a few busy groups). An occurrence of value v at t_p is the first of v in the window at t
    exactly when t_p - span < t <= t_p and v's previous occurrence is before t: it adds one to the windows
    starting in (max(t_p - span, previous), t_p]. A running sum of those +1/-1 steps (summed per time),
    read at each start (the steps at or before it first), is the distinct count there. Times are integers
    (microseconds); the windows are framed over distinct (group, time) rows, not over every point. Without
    ``last``, its column is NULL (no frame over the starts)."""
    latest = f"max(t) OVER {frame}" if last else "NULL::BIGINT"
    return (
        f"WITH r AS (SELECT g, t, v FROM {rows}), "
        f"starts AS (SELECT g, t, {latest} AS last FROM (SELECT DISTINCT g, t FROM r)), "
        f"firsts AS (SELECT g, t, lag(t) OVER (PARTITION BY g, v ORDER BY t) AS prev FROM (SELECT DISTINCT g, v, t FROM r WHERE v IS NOT NULL)), "
        f"steps AS (SELECT g, x, sum(d) AS d FROM (SELECT g, greatest(t - {span}, coalesce(prev, t - {span})) + 1 AS x, 1 AS d FROM firsts "
        f"UNION ALL SELECT g, t + 1, -1 FROM firsts) GROUP BY g, x), "
        f"marks AS (SELECT g, x, 0 AS kind, d, NULL::BIGINT AS last FROM steps UNION ALL SELECT g, t, 1, 0, last FROM starts) "
        f"SELECT g, x AS t, agg, last FROM (SELECT g, x, kind, last, "
        f"sum(d) OVER (PARTITION BY g ORDER BY x, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS agg FROM marks) "
        f"WHERE kind = 1"
    )


# per SQL-evaluated type: the window aggregate (per (group, time), then over the window's times; value_count
# has its own, _distinct_count_windows), the per-bin aggregate, and how two bins bound a window
_SQL_WINDOWS = {
    SigmaCorrelationType.EVENT_COUNT: (("count(*)", "sum(a)"), "count(*)", lambda a, b: f"{a} + coalesce({b}, 0)"),
    SigmaCorrelationType.VALUE_COUNT: (None, "count(DISTINCT v)", lambda a, b: f"{a} + coalesce({b}, 0)"),
    SigmaCorrelationType.TEMPORAL: (("bit_or(mask)", "bit_or(a)"), "bit_or(mask)", lambda a, b: f"bit_count({a} | coalesce({b}, 0))"),
}
def _sum_pair(a: str, b: str) -> str:
    return f"coalesce({a}, 0) + coalesce({b}, 0)"


# per prunable count type: how a (sub-bucket, group)'s bounds from several batches merge, a run's bound, and
# the bound of two merged bounds (a run inside both)
_BIN_RUNS = {
    SigmaCorrelationType.EVENT_COUNT: ("sum(a)", "sum(a) OVER w", _sum_pair),
    SigmaCorrelationType.VALUE_COUNT: ("sum(a)", "sum(a) OVER w", _sum_pair),  # distinct values of a union <= the sum
    SigmaCorrelationType.TEMPORAL: ("bit_or(a)", "bit_count(bit_or(a) OVER w)",
                                    lambda a, b: f"bit_count(coalesce({a}, 0) | coalesce({b}, 0))"),
}
# points a window query of a correlation reads at once (its groups in slices of about this many; a group is never split)
SLICE_POINTS = 1_000_000
# rows a burst keeps to find its first EVIDENCE_PER_GROUP events (an event has a row per group and value)
EVIDENCE_ROWS = 2 * EVIDENCE_PER_GROUP
# sub-buckets a window spans (at most this plus one): finer bounds, more (sub-bucket, group) rows
SUB_BUCKETS = 4
# the key of a group in the bins, anchors and candidates (any function of the group is exact, see _add_bins)
GROUP_HASH = "hash({})"
_SQL_OPS = {SigmaCorrelationConditionOperator.GT: ">", SigmaCorrelationConditionOperator.GTE: ">="}
_NUMERIC = (SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG, SigmaCorrelationType.VALUE_MEDIAN,
            SigmaCorrelationType.VALUE_PERCENTILE)

# A point's number in SQL, only where it is surely the number r53sigma.scan.values.as_number reads (plain
# ASCII decimal notation, finite; both parse it to the nearest double). A text with any other decimal digit
# (padded with white space, say) is left to Python, which decides whether it is one: its bound is infinite.
_KNOWN = f"(regexp_full_match(v, '{PLAIN_NUMBER}') AND isfinite(TRY_CAST(v AS DOUBLE)))"
_MAYBE_NUMBER = r"regexp_matches(v, '\p{Nd}')"
# Float arithmetic (DuckDB's sums, Python's rounded mean and interpolation) is within this relative margin
# of the exact bound; a run within it of the threshold stays a candidate, and is then evaluated exactly.
_MARGIN = 1e-6


@dataclass(frozen=True)
class _Pruning:
    """How one correlation bounds a window's aggregate by (sub-bucket, group) aggregates (plain GROUP BYs)."""
    column: str  # SQL type of a bin's bound
    bin_bound: str  # over a (sub-bucket, group)'s points
    merge: str  # one (sub-bucket, group)'s bounds from several batches into one
    run: str  # over the bins of a run (WINDOW w): a bound of any window inside it
    passes: Callable[[str], str]  # the SQL test of a run's bound: may a window inside it fire
    monotone: bool  # the aggregate only grows with points (a window seen in part never fires falsely)
    pair: Callable[[str, str], str]  # two merged bounds (the second may be NULL) into a bound of any run inside both


def _pruning(plan: CorrelationPlan) -> _Pruning | None:
    """How a correlation's candidates are pruned; None where its condition has no sound bound."""
    if plan.kind in _NUMERIC:
        return _numeric_pruning(plan)
    test = _upper_bound_test(plan) if plan.kind in _SQL_WINDOWS else None
    if test is None:
        return None
    merge, run, pair = _BIN_RUNS[plan.kind]
    return _Pruning("BIGINT", _SQL_WINDOWS[plan.kind][1], merge, run, test, monotone=True, pair=pair)


def _numeric_pruning(plan: CorrelationPlan) -> _Pruning | None:
    """value_sum/avg/median/percentile compared with gt/gte (an upper bound) or lt/lte (a lower bound).

    The mean, median and any percentile of a window's numbers lie between their smallest and largest, so
    between the run's min and max; a window's sum lies between the sums of the run's negative and positive
    numbers. A window without a number does not fire, and a bin without one has no bound (NULL)."""
    condition = plan.rule.condition
    if plan.extended or not isinstance(condition, SigmaCorrelationCondition):
        return None
    upper = condition.op in (SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE)
    if not upper and condition.op not in (SigmaCorrelationConditionOperator.LT, SigmaCorrelationConditionOperator.LTE):
        return None
    try:
        threshold = float(condition.count)
    except (OverflowError, TypeError, ValueError):
        return None
    if not math.isfinite(threshold):
        return None
    unknown = "'inf'::DOUBLE" if upper else "'-inf'::DOUBLE"
    extreme = "max" if upper else "min"
    if plan.kind == SigmaCorrelationType.VALUE_SUM:
        side = "> 0" if upper else "< 0"
        number = f"CASE WHEN TRY_CAST(v AS DOUBLE) {side} THEN TRY_CAST(v AS DOUBLE) ELSE 0 END"
        merge, run, pair = "sum(a)", "sum(a) OVER w", _sum_pair  # sums of one sign: the pair's is beyond any run's
    else:
        number, merge, run = "TRY_CAST(v AS DOUBLE)", f"{extreme}(a)", f"{extreme}(a) OVER w"
        pair = lambda a, b: f"{'greatest' if upper else 'least'}(coalesce({a}, {b}), coalesce({b}, {a}))"
    bin_bound = f"{'sum' if plan.kind == SigmaCorrelationType.VALUE_SUM else extreme}(CASE WHEN {_KNOWN} THEN {number} WHEN {_MAYBE_NUMBER} THEN {unknown} END)"
    literal = f"CAST('{threshold!r}' AS DOUBLE)"

    def passes(bound: str) -> str:
        margin = f"{_MARGIN} * (abs({bound}) + abs({literal}))"
        return f"{bound} >= {literal} - {margin}" if upper else f"{bound} <= {literal} + {margin}"

    return _Pruning("DOUBLE", bin_bound, merge, run, passes, monotone=False, pair=pair)


def _upper_bound_test(plan: CorrelationPlan) -> Callable[[str], str] | None:
    """For a condition that only grows with points (a count compared with gt/gte), the SQL test of an
    upper bound of a window's aggregate; None where pruning by bins would not be exact."""
    condition = plan.rule.condition
    if plan.extended or not isinstance(condition, SigmaCorrelationCondition) or condition.op not in _SQL_OPS:
        return None
    if not isinstance(condition.count, int) or isinstance(condition.count, bool):
        return None
    return lambda bound: f"{bound} {_SQL_OPS[condition.op]} {condition.count}"


