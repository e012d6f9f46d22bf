"""Correlations in the DuckDB engine, with the sliding windows and bursts of :mod:`r53sigma.scan.correlations`.

Each correlation has a table of points: one row per (event, group[, value]) with the time in
microseconds, the referenced rules matched (a bit mask) and where the event is (file, line). Where the
condition only grows (event_count, value_count, temporal compared with gt/gte), the points of the files
DuckDB reads go to parquet parts in the engine's spill folder instead, and memory keeps only a bound per
(sub-bucket of a quarter span, group): events, distinct values or the rules' bit mask, plain grouped
aggregates that spill. At the end, the sub-buckets of every run of five whose bound passes the
condition are the candidates (any window lies inside such a run), and only their points are read back
into the table (events the reference reader parsed keep theirs there); memory is bounded by the distinct
(sub-bucket, group) tuples and the candidates' points,
and disk by the points. The other conditions (lt/lte, where any group may fire) keep every point.
After the last batch, ``event_count``, ``value_count`` and ``temporal`` are window functions over the rows
(``RANGE BETWEEN CURRENT ROW AND span - 1 us FOLLOWING`` per group: the half-open window at every point),
preceded, where the condition only grows, by a grouped aggregate per (epoch-aligned bin, group)
that leaves out the bins no firing window can touch (every window lies inside two consecutive bins).
``temporal_ordered`` and ``value_sum/avg/median`` read the group's points and use the shared Python
definition. Firing windows become bursts with :func:`r53sigma.scan.correlations.bursts`; evidence lines are
fetched afterwards, for the bursts only. The tables and window sorts spill to disk under a ``memory_limit``.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import duckdb
from r53sigma.scan.sigma_names import (  # pySigma's names, without importing pySigma (warm start)
    SigmaCorrelationCondition, SigmaCorrelationConditionOperator, SigmaCorrelationType, SigmaRule)

from r53sigma.scan.correlations import MICROS, CorrelationPlan, Point, Window, burst_alert, bursts, firing_windows
from r53sigma.scan.duckread import column_name, log_sources
from r53sigma.scan.sqltext import quote as _quote
from r53sigma.scan.records import Event
from r53sigma.scan.results import EVIDENCE_PER_GROUP, Alert


class CorrelationTables:
    """The point tables of one scan's correlations, filled batch by batch, read once at the end."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plans: list[CorrelationPlan], flag: dict[int, str],
                 source_of: dict[int, str], matches: Callable[[SigmaRule, Event], bool], scan_id: int):
        self.con, self.plans, self.flag, self.source_of, self.matches = con, plans, flag, source_of, matches
        self.tables = []
        self.filled: set[int] = set()  # correlations with points (the others need no query at the end)
        # per prunable correlation: its sub-bucket width (us) and the parquet parts its SQL-read points went to
        self.width: dict[int, int] = {}
        self.parts: dict[int, list[str]] = {}
        self.spill = self.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        self.scan_id = scan_id
        for number, plan in enumerate(plans):
            table = f"acc{number}_{scan_id}"
            self.con.execute(
                f"CREATE TEMP TABLE {table} (g VARCHAR[], t BIGINT, mask BIGINT, v VARCHAR, "
                "f BIGINT, s BIGINT, line BIGINT, idx BIGINT, file VARCHAR)"
            )
            self.tables.append(table)
            if plan.kind in _SQL_WINDOWS and _upper_bound_test(plan) is not None and self.spill:
                self.width[number] = -(-plan.span_us // SUB_BUCKETS)
                self.parts[number] = []
                self.con.execute(f"CREATE TEMP TABLE bins{number}_{scan_id} (g VARCHAR[], k BIGINT, a BIGINT)")

    def accumulate(self, source: str, table: str) -> None:
        """The points of a batch's flagged rows (a table with the rule flags and field columns)."""
        flags = sorted({self.flag[id(t)] for plan in self.plans for t in plan.rules if self.source_of[id(t)] == source})
        if not flags:
            return
        # one cheap query says which referenced rules matched at all (a query per correlation and file costs ~10 ms)
        row = self.con.execute(f"SELECT {', '.join(f'coalesce(bool_or({f}), false)' for f in flags)} FROM {table}").fetchall()[0]
        matched = {f for f, hit in zip(flags, row) if hit}
        for number, plan in enumerate(self.plans):
            if any(self.flag[id(t)] in matched for t in plan.rules if self.source_of[id(t)] == source):
                self._accumulate(number, plan, source, table)
                self.filled.add(number)

    def _accumulate(self, number: int, plan: CorrelationPlan, source: str, table: str) -> None:
        """The points of a batch's rows (one row per point, group and value) into the correlation's table."""
        targets = [(i, t) for i, t in enumerate(plan.rules) if self.source_of[id(t)] == source]
        if not targets:
            return
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
            f"(CASE WHEN len({values}) = 0 THEN [NULL]::VARCHAR[] ELSE {values} END) AS vals, "
            + ", ".join([f"{g} AS g{k}" for k, g in enumerate(groups)] or ["1 AS _x"])
            + f" FROM {table} WHERE _fit AND _time IS NOT NULL AND ({any_target})"
        )
        for k in range(len(groups)):  # one row per combination of group values; no value: no row
            inner = f"SELECT * REPLACE (unnest(g{k}) AS g{k}) FROM ({inner})"
        group = "[" + ", ".join(f"g{k}" for k in range(len(groups))) + "]::VARCHAR[]"
        points = f"SELECT {group} AS g, t, mask, unnest(vals) AS v, _f AS f, _s AS s, _line AS line, _idx AS idx, _file AS file FROM ({inner})"
        if number not in self.width:
            self.con.execute(f"INSERT INTO {self.tables[number]} {points}")
            return
        # Prunable: the points go to a parquet part on disk, and only their counts per (sub-bucket, group) stay
        # in memory (plain grouped aggregates, which spill); the parts are read back for candidate groups only.
        part = os.path.join(self.spill, f"points{number}_{self.scan_id}_{len(self.parts[number])}.parquet")
        self.con.execute(f"COPY ({points}) TO {_quote(part)} (FORMAT parquet)")
        self.parts[number].append(part)
        self._add_bins(number, plan, f"read_parquet({_quote(part)})")

    def _add_bins(self, number: int, plan: CorrelationPlan, relation: str) -> None:
        """Per (sub-bucket, group) of the relation's points, an upper bound of what its events add to a window."""
        aggregate = _SQL_WINDOWS[plan.kind][1]
        self.con.execute(
            f"INSERT INTO bins{number}_{self.scan_id} SELECT g, t // {self.width[number]} AS k, {aggregate} AS a "
            f"FROM {relation} GROUP BY g, k"
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
            self.con.executemany(f"INSERT INTO {self.tables[number]} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.filled.add(number)

    def alerts(self) -> Iterator[Alert]:
        """Every correlation's alerts, one per burst (r53sigma.scan.correlations), after the last batch."""
        for number, plan in enumerate(self.plans):
            table = self.tables[number]
            if number in self.width:
                self._candidate_points(number, plan)
            found = []
            for group, windows in (self._windows(plan, table) if number in self.filled else ()):
                for burst in bursts(windows, plan.span_us):
                    found.append((burst, group))
            found.sort(key=lambda item: (item[0].first, repr(item[1])))
            source = self.source_of[id(plan.rules[0])]
            for burst, group in found:
                # evidence: where the burst's first events are (the scan prints their origins), not their content
                evidence = self.con.execute(
                    f"SELECT DISTINCT f, s, line, idx, file FROM {table} WHERE g = ? AND t BETWEEN ? AND ? "
                    f"ORDER BY f, s LIMIT {EVIDENCE_PER_GROUP}", [list(group), burst.first, burst.last]
                ).fetchall()
                events = [Event(source, {}, None, None, file, line or None, idx or None) for _, _, line, idx, file in evidence]
                yield burst_alert(plan, group, burst, events)
            self.con.execute(f"DROP TABLE {table}")

    def _candidate_points(self, number: int, plan: CorrelationPlan) -> None:
        """Into the correlation's point table, the points of the sub-buckets some firing window may touch.

        A window [t, t + span) covers at most SUB_BUCKETS + 1 consecutive sub-buckets of width
        ceil(span / SUB_BUCKETS), and the sum of their bounds bounds its aggregate. Where the condition only
        grows (gt/gte), a firing window therefore lies in a run of SUB_BUCKETS + 1 sub-buckets whose bound
        passes: every sub-bucket of every such run is a candidate. A window evaluated on the candidates' points
        alone sees all points of every firing window (exact), and no more points than it has (no false alert)."""
        bins, table, runs = f"bins{number}_{self.scan_id}", self.tables[number], SUB_BUCKETS
        merge, run = _BIN_RUNS[plan.kind]
        if number in self.filled:  # points the reference reader produced (python batches): bounded as well
            self._add_bins(number, plan, table)
        bound = _upper_bound_test(plan)
        self.con.execute(
            f"CREATE TEMP TABLE cand{number}_{self.scan_id} AS "
            f"WITH b AS (SELECT g, k, {merge} AS a FROM {bins} GROUP BY g, k), "
            f"starts AS (SELECT g, k FROM (SELECT g, k, {run} AS run FROM b "
            f"WINDOW w AS (PARTITION BY g ORDER BY k RANGE BETWEEN CURRENT ROW AND {runs} FOLLOWING)) WHERE {bound('run')}) "
            f"SELECT DISTINCT g, k + r AS k FROM starts, range({runs + 1}) AS o(r)"
        )
        cand = f"cand{number}_{self.scan_id}"
        if self.parts[number]:
            files = "[" + ", ".join(_quote(p) for p in self.parts[number]) + "]"
            self.con.execute(
                f"INSERT INTO {table} SELECT p.* FROM read_parquet({files}) AS p "
                f"SEMI JOIN {cand} AS c ON p.g = c.g AND p.t // {self.width[number]} = c.k"
            )
            self.filled.add(number)
        for name in (cand, bins):
            self.con.execute(f"DROP TABLE {name}")
        for part in self.parts[number]:
            try:
                os.remove(part)
            except OSError:
                pass

    def _windows(self, plan: CorrelationPlan, table: str) -> Iterator[tuple[tuple, list[Window]]]:
        """Per group, its firing windows in ascending start (r53sigma.scan.correlations' definition)."""
        if plan.kind not in _SQL_WINDOWS:
            yield from self._python_windows(plan, table)
            return
        aggregate, bucket_aggregate, combine = _SQL_WINDOWS[plan.kind]
        rows_of = table
        bound = _upper_bound_test(plan)
        if bound is not None:
            # Every window [t, t + span) lies inside two consecutive epoch-aligned bins: a grouped aggregate
            # per (bin, group) leaves out the bins no firing window can touch (the condition only grows).
            span = plan.span_us
            rows_of = (
                f"(WITH b AS (SELECT g, t // {span} AS k, {bucket_aggregate} AS a FROM {table} GROUP BY g, k), "
                f"pairs AS (SELECT b1.g, b1.k FROM b AS b1 LEFT JOIN b AS b2 ON b1.g = b2.g AND b2.k = b1.k + 1 "
                f"WHERE {bound(combine('b1.a', 'b2.a'))}), "
                f"candidates AS (SELECT g, k FROM pairs UNION SELECT g, k + 1 FROM pairs) "
                f"SELECT {table}.* FROM {table} SEMI JOIN candidates ON {table}.g = candidates.g AND {table}.t // {span} = candidates.k)"
            )
        rows = self.con.execute(
            f"SELECT DISTINCT g, t, agg, last FROM (SELECT g, t, {aggregate} OVER w AS agg, max(t) OVER w AS last "
            f"FROM {rows_of} WINDOW w AS (PARTITION BY g ORDER BY t RANGE BETWEEN CURRENT ROW AND {plan.span_us - 1} FOLLOWING)) "
            f"ORDER BY g, t"
        ).fetchall()
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

    def _python_windows(self, plan: CorrelationPlan, table: str) -> Iterator[tuple[tuple, list[Window]]]:
        """temporal_ordered and value_sum/avg/median: the group's points, evaluated as the reference does."""
        rows = self.con.execute(
            f"SELECT g, t, f, s, mask, list(v) FILTER (WHERE v IS NOT NULL) FROM {table} GROUP BY g, t, f, s, mask ORDER BY g, t, f, s"
        ).fetchall()
        by_group: dict[tuple, list[Point]] = {}
        for group, t, f, s, mask, values in rows:
            hits = frozenset(i for i in range(len(plan.rules)) if mask >> i & 1)
            by_group.setdefault(tuple(group), []).append(Point(t, f << 40 | s, hits, tuple(values or ())))
        for group, points in by_group.items():
            windows = list(firing_windows(plan, points))
            if windows:
                yield group, windows


# per SQL-evaluated type: the window aggregate, the per-bin aggregate, and how two bins bound a window
_SQL_WINDOWS = {
    SigmaCorrelationType.EVENT_COUNT: ("count(*)", "count(*)", lambda a, b: f"{a} + coalesce({b}, 0)"),
    SigmaCorrelationType.VALUE_COUNT: ("count(DISTINCT v)", "count(DISTINCT v)", lambda a, b: f"{a} + coalesce({b}, 0)"),
    SigmaCorrelationType.TEMPORAL: ("bit_or(mask)", "bit_or(mask)", lambda a, b: f"bit_count({a} | coalesce({b}, 0))"),
}
# per prunable type: how a (sub-bucket, group)'s bounds from several batches merge, and a run's bound
_BIN_RUNS = {
    SigmaCorrelationType.EVENT_COUNT: ("sum(a)", "sum(a) OVER w"),
    SigmaCorrelationType.VALUE_COUNT: ("sum(a)", "sum(a) OVER w"),  # distinct values of a union <= the sum
    SigmaCorrelationType.TEMPORAL: ("bit_or(a)", "bit_count(bit_or(a) OVER w)"),
}
# sub-buckets a window spans (at most this plus one): finer bounds, more (sub-bucket, group) rows
SUB_BUCKETS = 4
_SQL_OPS = {SigmaCorrelationConditionOperator.GT: ">", SigmaCorrelationConditionOperator.GTE: ">="}


def _upper_bound_test(plan: CorrelationPlan) -> Callable[[str], str] | None:
    """For a condition that only grows with points (a count compared with gt/gte), the SQL test of an
    upper bound of a window's aggregate; None where pruning by bins would not be exact."""
    condition = plan.rule.condition
    if plan.extended or not isinstance(condition, SigmaCorrelationCondition) or condition.op not in _SQL_OPS:
        return None
    if not isinstance(condition.count, int) or isinstance(condition.count, bool):
        return None
    return lambda bound: f"{bound} {_SQL_OPS[condition.op]} {condition.count}"


