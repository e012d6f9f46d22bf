"""First-seen rules on the DuckDB engine, decided in SQL with the meaning of :func:`r53sigma.scan.baseline.first_seen_alerts`.

A candidate (an event the rule's detection matches, with a time and a value for every field, as
:func:`r53sigma.scan.baseline.key_of` reads them) is a point (time, stream position, key), the stream
position being (file, line or sequence, record in the line, rule order): the order the engine reports
alerts in. The reference takes the points in (time, position) order and alerts where the key's last
sighting (the baseline's, or an earlier point's) is absent or more than ``history`` before.

Points are never kept. Each batch (a file DuckDB read, or the events of the exact path) reduces its
points to *runs* per key: maximal sequences whose consecutive points are at most ``h`` apart (``h``: the
smallest history of the rules sharing the rule id, the baseline's key). Only a run's first point can
alert (every other point has a predecessor within ``h``), and whatever the other batches hold, the run's
first point ``p`` alerts exactly when ``t(p) - max(baseline last_seen, last time of every run of any batch
that starts before p) > history``: a run starting before ``p`` and ending after it has a point before ``p``
at most ``h`` back (its gaps are at most ``h``), and one ending before ``p`` is last seen at its end. So
the runs (parquet parts in the engine's spill folder) decide the scan: a running ``max`` over them per
key at the end, merged with the baseline as a table; the updated baseline is a GROUP BY of the runs
(min start, max end) merged with the old rows. Memory and disk grow with runs (distinct keys per
batch), never with candidates.

Evidence: a run's first point keeps where its event is; an event of the exact path keeps its record
(JSON text), a line DuckDB read keeps the hash of its text, and at the end the first-seen lines are read
again from their file by that hash (no text is held for the candidates). Where a hash is not exactly
one text of the file, the file's lines are read in order and taken by line number.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Iterator

import duckdb
from r53sigma.scan.sigma_names import SigmaRule  # no pySigma import (warm start)

from r53sigma import first_seen
from r53sigma.scan import baseline as baseline_mod
from r53sigma.scan import records as events_mod
from r53sigma.scan.duckread import column_name, lines_of, log_sources
from r53sigma.scan.records import Event, OnError, ReadError
from r53sigma.scan.results import Alert, make_alert
from r53sigma.scan.sqltext import quote as _quote
from r53sigma.scan.values import log_source_of

FETCH = 2000  # rows fetched at a time when alerts and baseline rows stream out
LINE_HASH = "hash({})"  # a line's text -> UBIGINT, the same in the pass and when the line is read again


def _blob(text: str) -> bytes:
    """A value as DuckDB holds it: UTF-8 bytes, lone surrogates included (their order is the code points')."""
    return text.encode("utf-8", "surrogatepass")


def _text(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


class FirstSeen:
    """One scan's first-seen rules against a baseline. Give it to ``DuckEngine.scan_paths(first_seen=...)``;
    after the alerts, :meth:`rows` are the updated baseline for :func:`r53sigma.scan.baseline.write`."""

    def __init__(self, history: baseline_mod.Baseline):
        self.history = history
        self.con = None
        self.held: dict[int, int] = {}  # id(rule) -> its rule order in the scan

    # -- set up by the engine's run

    def bind(self, con: duckdb.DuckDBPyConnection, plain: list[SigmaRule], flag: dict[int, str],
             files: list[str], scan_id: int) -> None:
        self.con, self.flag, self.files, self.scan_id = con, flag, files, scan_id
        self.rules: dict[int, SigmaRule] = {}  # rule order -> rule
        self.specs: dict[int, first_seen.FirstSeen] = {}
        self.held = {}
        for order, rule in enumerate(plain):
            spec = first_seen.of(rule)
            if spec is not None:
                self.held[id(rule)], self.rules[order], self.specs[order] = order, rule, spec
        ids = sorted({_rule_id(r) for r in self.rules.values()})
        self.key_no = {rule_id: q for q, rule_id in enumerate(ids)}  # baseline rule id -> its number in SQL
        # the smallest history of the rules sharing a rule id (they share its baseline keys): the runs' gap
        self.gap: dict[int, int] = {}
        for order, rule in self.rules.items():
            q = self.key_no[_rule_id(rule)]
            self.gap[q] = min(self.gap.get(q, self.specs[order].history_seconds), self.specs[order].history_seconds)
        self.spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        self.parts: list[str] = []
        self.buffer: list[tuple] = []  # points of events Python read, until the batch ends
        self.kept: dict[tuple, Event] = {}  # events whose record JSON cannot hold (nested too deep)
        self.decided = False

    def holds(self, rule: SigmaRule) -> bool:
        return id(rule) in self.held

    def _fast_rules(self) -> list[tuple[int, SigmaRule]]:
        return [(o, r) for o, r in self.rules.items() if log_source_of(r)[0].source == "resolver"]

    def _key_sql(self, order: int) -> list[str]:
        rule = self.rules[order]
        log_source = log_sources()["resolver"]
        generic = log_source_of(rule)[1]
        keys = []
        for name in self.specs[order].fields:
            field = log_source.field_for(name, generic_dns=generic)
            keys.append(f"{column_name(field)}[1]" if field.array else column_name(field))  # lists hold no nulls
        return keys

    def pass_columns(self) -> tuple[dict[str, list[str]], list[str]]:
        """For the pass over a file DuckDB reads: the key columns to keep (column -> the flag expressions
        of the rules that read it), and the SELECT items it adds (the hash of a candidate's line)."""
        needs: dict[str, list[str]] = {}
        flags = []
        for order, rule in self._fast_rules():
            candidate = f"coalesce({self.flag[id(rule)]}, true)"  # unknown: the reference decides it later
            flags.append(candidate)
            for key in self._key_sql(order):
                needs.setdefault(key.removesuffix("[1]"), []).append(candidate)
        if not flags:
            return {}, []
        return needs, [f"CASE WHEN {' OR '.join(flags)} THEN {LINE_HASH.format('_text')} END AS _fs_h"]

    # -- points

    def accumulate(self, table: str, file_no: int) -> None:
        """The candidates of a file DuckDB read (its pass table, flags decided), as runs."""
        selects = []
        for order, rule in self._fast_rules():
            keys = self._key_sql(order)
            q = self.key_no[_rule_id(rule)]
            selects.append(
                f"SELECT _time AS t, _s AS s, 0 AS i, {order} AS r, {q} AS q, [{', '.join(f'encode({k})' for k in keys)}] AS k, "
                f"_fs_h AS h, NULL::VARCHAR AS ev FROM {table} "
                f"WHERE _fit AND {self.flag[id(rule)]} AND _time IS NOT NULL AND {' AND '.join(f'{k} IS NOT NULL' for k in keys)}"
            )
        if selects:
            self._runs(" UNION ALL ".join(selects), file_no)

    def add_event(self, file_no: int, s: int, event: Event, rule: SigmaRule) -> None:
        """A candidate event Python read (the exact path, or a line the columns cannot hold)."""
        order = self.held[id(rule)]
        values = baseline_mod.key_of(rule, self.specs[order], make_alert(rule, event=event))
        if values is None or event.time is None:  # as the reference: no value, or no time to place it
            return
        try:
            evidence = json.dumps([event.source, event.record, event.raw, event.file, event.line, event.index])
        except (RecursionError, ValueError, TypeError):
            evidence = None
            self.kept[(file_no, s, event.index or 0, order)] = event
        self.buffer.append((file_no, event.time, s, event.index or 0, order, self.key_no[_rule_id(rule)],
                            [_blob(v) for v in values], evidence))

    def add_rows(self, table: str, file_no: int, event_at: Callable[[int], Event]) -> None:
        """The candidates among a batch table's rows that fit (events Python read): their events' keys."""
        rules = [(o, r) for o, r in self.rules.items() if self.flag[id(r)] in self._columns(table)]
        if not rules:
            return
        flags = ", ".join(self.flag[id(r)] for _, r in rules)
        found = self.con.execute(
            f"SELECT _s, {flags} FROM {table} WHERE _fit AND ({' OR '.join(self.flag[id(r)] for _, r in rules)}) ORDER BY _s"
        ).fetchall()
        for s, *hits in found:
            event = event_at(s)
            for (_, rule), hit in zip(rules, hits):
                if hit:
                    self.add_event(file_no, s, event, rule)

    def _columns(self, table: str) -> set[str]:
        return {row[0] for row in self.con.execute(f"DESCRIBE {table}").fetchall()}

    def flush(self) -> None:
        """The points Python read in the batch that ended, as runs (a batch is within one file)."""
        by_file: dict[int, list[tuple]] = {}
        for point in self.buffer:
            by_file.setdefault(point[0], []).append(point)
        self.buffer = []
        for file_no, points in by_file.items():
            columns = list(zip(*points))
            params = dict(zip(("t", "s", "i", "r", "q", "k", "ev"), columns[1:]))
            relation = (
                "SELECT unnest($t::DOUBLE[]) AS t, unnest($s::BIGINT[]) AS s, unnest($i::BIGINT[]) AS i, "
                "unnest($r::INTEGER[]) AS r, unnest($q::INTEGER[]) AS q, unnest($k::BLOB[][]) AS k, "
                "NULL::UBIGINT AS h, unnest($ev::VARCHAR[]) AS ev"
            )
            self._runs(relation, file_no, {k: list(v) for k, v in params.items()})

    def _runs(self, points: str, file_no: int, params: dict | None = None) -> None:
        """One batch's points as runs per key (first point, last time), to a parquet part."""
        gap = "CASE q " + " ".join(f"WHEN {q} THEN {g}" for q, g in self.gap.items()) + " END"
        order = "t, s, i, r"
        part = os.path.join(self.spill, f"firstseen_{self.scan_id}_{len(self.parts)}.parquet")
        sql = (
            f"COPY (WITH p AS ({points}), "
            f"g AS (SELECT *, coalesce(t - lag(t) OVER (PARTITION BY q, k ORDER BY {order}) <= {gap}, false) AS cont FROM p), "
            f"n AS (SELECT *, sum(CASE WHEN cont THEN 0 ELSE 1 END) OVER (PARTITION BY q, k ORDER BY {order} ROWS UNBOUNDED PRECEDING) AS run FROM g), "
            f"e AS (SELECT *, max(t) OVER (PARTITION BY q, k, run) AS tm FROM n) "
            f"SELECT q, k, t, {file_no}::BIGINT AS f, s, i, r, h, ev, tm FROM e WHERE NOT cont) "
            f"TO {_quote(part)} (FORMAT parquet)"
        )
        self.con.execute(sql, params) if params else self.con.execute(sql)
        self.parts.append(part)

    # -- at the end

    def _decide(self) -> None:
        """The scan's runs and the baseline as tables; the first-seen points (fs_new)."""
        if self.decided:
            return
        self.decided = True
        sid = self.scan_id
        self.flush()
        names = {q: rule_id for rule_id, q in self.key_no.items()}
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE fs_rules_{sid} AS SELECT unnest($q::INTEGER[]) AS q, unnest($rid::BLOB[]) AS rid",
                         {"q": list(names), "rid": [_blob(n) for n in names.values()]})
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE fs_hist_{sid} AS SELECT unnest($r::INTEGER[]) AS r, unnest($h::DOUBLE[]) AS h",
                         {"r": list(self.specs), "h": [float(s.history_seconds) for s in self.specs.values()]})
        seen = self.history.seen
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE fs_base_{sid} AS SELECT unnest($rid::BLOB[]) AS rid, unnest($k::BLOB[][]) AS k, "
            "unnest($first::DOUBLE[]) AS first, unnest($last::DOUBLE[]) AS last",
            {"rid": [_blob(rid) for rid, _ in seen], "k": [[_blob(v) for v in values] for _, values in seen],
             "first": [times[0] for times in seen.values()], "last": [times[1] for times in seen.values()]})
        empty = "SELECT NULL::INTEGER AS q, NULL::BLOB[] AS k, NULL::DOUBLE AS t, NULL::BIGINT AS f, NULL::BIGINT AS s, " \
                "NULL::BIGINT AS i, NULL::INTEGER AS r, NULL::UBIGINT AS h, NULL::VARCHAR AS ev, NULL::DOUBLE AS tm WHERE false"
        runs = f"read_parquet([{', '.join(_quote(p) for p in self.parts)}])" if self.parts else f"({empty})"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE fs_runs_{sid} AS SELECT * FROM {runs}")
        for part in self.parts:
            try:
                os.remove(part)
            except OSError:
                pass
        self.parts = []
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE fs_new_{sid} AS "
            f"WITH x AS (SELECT *, max(tm) OVER (PARTITION BY q, k ORDER BY t, f, s, i, r "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM fs_runs_{sid}) "
            f"SELECT x.t, x.f, x.s, x.i, x.r, x.h, x.ev FROM x JOIN fs_rules_{sid} AS u USING (q) "
            f"JOIN fs_hist_{sid} AS hist USING (r) LEFT JOIN fs_base_{sid} AS b ON b.rid = u.rid AND b.k = x.k "
            f"WHERE greatest(x.before, b.last) IS NULL OR x.t - greatest(x.before, b.last) > hist.h"
        )

    def alerts(self, report: OnError | None = None) -> Iterator[Alert]:
        """The first-seen alerts in (time, stream position) order, after the scan's other alerts."""
        if self.con is None or not self.rules:
            return
        self._decide()
        sid = self.scan_id
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE fs_text_{sid} (f BIGINT, h UBIGINT, s BIGINT, line VARCHAR)")
        files = [f for (f,) in self.con.execute(f"SELECT DISTINCT f FROM fs_new_{sid} WHERE h IS NOT NULL ORDER BY f").fetchall()]
        for f in files:
            self._read_lines(f)
        self.con.execute(
            f"SELECT n.t, n.f, n.s, n.i, n.r, n.ev, coalesce(y.line, x.line) AS line, "
            f"coalesce({LINE_HASH.format('coalesce(y.line, x.line)')} = n.h, false) AS same "
            f"FROM fs_new_{sid} AS n LEFT JOIN fs_text_{sid} AS x ON x.f = n.f AND x.h = n.h AND x.s IS NULL "
            f"LEFT JOIN fs_text_{sid} AS y ON y.f = n.f AND y.s = n.s AND n.h IS NOT NULL "
            f"ORDER BY n.t, n.f, n.s, n.i, n.r"
        )
        while True:
            rows = self.con.fetchmany(FETCH)
            if not rows:
                break
            for t, f, s, i, r, evidence, line, same in rows:
                rule = self.rules[r]
                if evidence is not None:
                    source, record, raw, file, line_no, index = json.loads(evidence)
                    event = Event(source, record, raw, t, file, line_no, index)
                elif (f, s, i, r) in self.kept:
                    event = self.kept[(f, s, i, r)]
                elif same:
                    event = events_mod.parse_record(line, file=self.files[f], line=s)
                else:  # the file changed or went away after it was read
                    if report:
                        report(ReadError(self.files[f], s, "changed after it was scanned: the first-seen event cannot be shown"))
                    event = Event("resolver", {}, None, t, self.files[f], s, None)
                yield make_alert(rule, event=event)
        self.con.execute(f"DROP TABLE fs_text_{sid}")

    def _read_lines(self, f: int) -> None:
        """The texts of file f's first-seen lines, by their hash: the lines whose hash is wanted (each
        wanted hash must be exactly one text there), else every line in order, taken by line number."""
        sid, name = self.scan_id, self.files[f]
        try:
            self.con.execute(
                f"INSERT INTO fs_text_{sid} SELECT DISTINCT {f}, {LINE_HASH.format('line')}, NULL::BIGINT, line FROM {lines_of(name)} "
                f"WHERE {LINE_HASH.format('line')} IN (SELECT h FROM fs_new_{sid} WHERE f = {f} AND h IS NOT NULL)"
            )
            unclear = self.con.execute(
                f"SELECT count(*) FROM (SELECT DISTINCT h FROM fs_new_{sid} WHERE f = {f} AND h IS NOT NULL) AS w "
                f"LEFT JOIN (SELECT h, count(*) AS n FROM fs_text_{sid} WHERE f = {f} GROUP BY h) AS x USING (h) "
                f"WHERE x.n IS DISTINCT FROM 1"
            ).fetchall()[0][0]
            if not unclear:
                return
            self.con.execute(f"DELETE FROM fs_text_{sid} WHERE f = {f}")
            table = f"fs_lines_{sid}"
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT line FROM {lines_of(name)}")  # rowid: the line
            self.con.execute(
                f"INSERT INTO fs_text_{sid} SELECT {f}, NULL, rowid + 1, line FROM {table} "
                f"WHERE rowid + 1 IN (SELECT s FROM fs_new_{sid} WHERE f = {f} AND h IS NOT NULL)"
            )
            self.con.execute(f"DROP TABLE {table}")
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException):
            self.con.execute(f"DELETE FROM fs_text_{sid} WHERE f = {f}")  # reported per alert: no text

    def rows(self) -> Iterator[baseline_mod.Row]:
        """The baseline updated with every candidate of the scan, in the file's row order."""
        if self.con is None or not self.rules:
            yield from self.history.rows()
            return
        self._decide()
        sid = self.scan_id
        self.con.execute(
            f"SELECT rid, k, min(first), max(last) FROM (SELECT rid, k, first, last FROM fs_base_{sid} "
            f"UNION ALL SELECT u.rid, x.k, x.t, x.tm FROM fs_runs_{sid} AS x JOIN fs_rules_{sid} AS u USING (q)) "
            f"GROUP BY rid, k ORDER BY rid, k"
        )
        while True:
            found = self.con.fetchmany(FETCH)
            if not found:
                break
            for rid, values, first, last in found:
                yield _text(rid), tuple(_text(v) for v in values), first, last


def _rule_id(rule: SigmaRule) -> str:
    return make_alert(rule).rule_id
