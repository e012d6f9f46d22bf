"""A one-pass columnar engine on DuckDB, with the reference engine's meaning (``r53sigma.scan.reference``).

Reading
-------
A plain JSON-lines file (gzip or not) is read and decompressed once, by DuckDB, in parallel: each line is
one text (``read_csv`` with a delimiter JSON cannot hold and no quoting; a blank line is a NULL row, so the
row number of the parquet file the pass writes in file order is the line number; ``WITH ORDINALITY`` would
run the whole pass on one thread), typed by ``json_transform`` with a schema taken from the catalogue (VARCHAR
values, answers as a list of structs, srcids as a struct; no inference). Rows whose values the typed
columns may not hold as the reference sees them (a malformed or blank line, a trailing comma, which
DuckDB's parser accepts, an object or list where the catalogue has one value or the other container,
NaN, another log source's record, a time that is not plain ISO 8601 UTC) do not fit: their text goes to
the reference reader (:func:`r53sigma.scan.records.line_events`), which reports or evaluates them with
their line number, as it would in its own read. A DuckDB read error (a truncated or corrupt gzip member,
invalid UTF-8, a line over :data:`r53sigma.scan.duckread.MAX_LINE_BYTES`), a byte-order mark or a pretty-printed document sends the whole file
to the exact path: :func:`r53sigma.scan.records.read_file`, which reports truncated members and
malformed lines exactly as the reference engine does. The text of a line is kept (by the same read) only
when an alert shows it or the reference engine must decide it.

Evaluating
----------
All single-event rules of a log source are one projection (one boolean column per rule, compiled by
:mod:`r53sigma.scan.sqlcompile`). The fast path writes every line's time, fit flag and rule flags (two bits a
rule, packed in BIGINTs) and the values correlations group or count by (each only where a correlation
needs it, NULL elsewhere) to a parquet file in the spill folder, then keeps in memory only the rows it
needs itself (lines that do not fit, plain matches, rows left to the reference engine), with their line
number. Plain alerts stream out per file in event order. Correlations and first-seen rules take their
points from the file and those rows (:mod:`r53sigma.scan.duckcorrelations`) and are decided at the end with
the sliding windows and bursts of :mod:`r53sigma.scan.correlations`. Memory grows with the plain matches
kept and the correlations' bounds per (sub-bucket, group); lines and points are on disk until the end.
Reading is :mod:`r53sigma.scan.duckread`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb

from r53sigma import catalogue
from r53sigma import signals
from r53sigma.scan import derived_fields, plancache, records as events_mod, rowcolumns, sqltext
from r53sigma.scan.duckcorrelations import CorrelationTables, remove_spilled
from r53sigma.scan.duckfirstseen import FirstSeen
from r53sigma.scan import duckread
from r53sigma.scan.duckread import SourceSQL, TypedRead, column_name, head_chunks, log_sources, lowered_name, typed_read
from r53sigma.scan.results import Alert, AnyRule, EngineError, describe, make_alert
# pySigma's names without pySigma: a warm scan runs a compiled run's stand-ins (r53sigma.scan.compiledrun), and the
# reference engine, the compiler and pySigma are imported when a rule is compiled or a row needs the reference
from r53sigma.scan.sigma_names import SigmaCorrelationRule, SigmaCorrelationType, SigmaRule
from r53sigma.scan.values import log_source_of
from r53sigma.scan.records import Event, OnError, ReadError

PYTHON_BATCH = 20000
_FLAGS_PER_MASK = 31  # two bits a rule in a BIGINT
class DuckEngine:
    """``scan(events)`` over parsed events and ``scan_paths(paths)`` over files, like ``Engine.scan``."""

    def __init__(self, rules: Any = (), *, memory_limit: str | None = None, threads: int | None = None,
                 plan_cache: "plancache.PlanCache | None" = None, reference: Any = None):
        """``rules``: pySigma rules (a collection, a LoadedRules), or a compiled run's stand-ins with
        ``reference`` their :class:`r53sigma.scan.compiledrun.LazyReference`."""
        collection = getattr(rules, "collection", rules)
        self.rules: list[AnyRule] = list(getattr(collection, "rules", collection))
        self._reference = reference
        self._dialect = None
        self.con = duckdb.connect()
        interrupt = self.con.interrupt  # one object: DuckDB's bound methods compare by identity
        signals.on_stop(interrupt)  # Ctrl-C/SIGTERM stop a running query, not only the next one
        weakref.finalize(self, signals.forget, interrupt)  # and the connection is freed with the engine
        # DuckDB spills to a ".tmp" folder in the current directory by default: a private one instead,
        # removed with the engine (a user's folder is never written to)
        self.spill = spill = tempfile.mkdtemp(prefix="r53sigma-spill-")
        weakref.finalize(self, shutil.rmtree, spill, True)
        self.con.execute(f"SET temp_directory = {sqltext.quote(spill)}")
        self._prepared: set[str] = set()  # SQL functions and tables made on the connection (prepare)
        if memory_limit:
            try:
                self.con.execute(f"SET memory_limit = {sqltext.quote(memory_limit)}")
            except duckdb.Error as error:
                if signals.received():
                    raise
                raise ValueError(f"memory limit {memory_limit!r}: {str(error).splitlines()[0]}") from None
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        self._predicates: dict[int, tuple[str, bool]] = {}  # rule -> (SQL, may be unknown)
        self.plan_cache = plan_cache  # compiled SQL kept across runs, by content (r53sigma.scan.plancache)
        self.fast_files = 0  # files DuckDB read itself, over all scans (the others: the reference reader)

    @property
    def reference(self) -> Any:
        """The reference engine over the same rules: it decides what SQL leaves unknown (made when first asked)."""
        if self._reference is None:
            from r53sigma.scan.reference import Engine

            self._reference = Engine(self.rules)
        return self._reference

    @property
    def dialect(self) -> Any:
        if self._dialect is None:
            from r53sigma.scan.duckdialect import DuckDialect

            self._dialect = DuckDialect(self.con)
        return self._dialect

    def matches(self, rule: AnyRule, event: Event) -> bool:
        return self.reference.matches(rule, event)

    def plan(self, rule: AnyRule) -> Any:
        """A correlation's plan: a compiled run's own, else the reference engine's."""
        return getattr(rule, "plan", None) or self.reference.plan(rule)

    def prepare(self, sql: str) -> str:
        """Make on the connection what ``sql`` calls, once: the Public Suffix List table of the SQL split,
        the Python functions of the exact path (registering one imports numpy, so only when needed)."""
        from r53sigma.scan import registered_domain

        needs = {registered_domain.SQL_TABLE: registered_domain.load_sql_table,
                 registered_domain.ENDS_MACRO: registered_domain.create_ends_macro,
                 derived_fields.SQL_FUNCTION: derived_fields.register_sql_functions,
                 duckread.SPLIT_FUNCTION: duckread.register_split}
        for name, make in needs.items():
            if name not in self._prepared and name in sql:
                make(self.con)
                self._prepared.add(name)
        return sql

    # -- rules

    def check(self, rule: AnyRule) -> None:
        self.reference.check(rule)
        if isinstance(rule, SigmaCorrelationRule):
            plan = self.plan(rule)
            for target in plan.rules:
                self.predicate(target)
            _correlation_supported(rule)
        else:
            self.predicate(rule)

    def predicate(self, rule: SigmaRule) -> str:
        return self.compiled(rule)[0]

    def compiled(self, rule: SigmaRule) -> tuple[str, bool]:
        key = id(rule)
        if key not in self._predicates:
            if not isinstance(rule, SigmaRule):
                raise EngineError(f"{describe(rule)}: a correlation cannot be matched against one event")
            if hasattr(rule, "sql"):  # a compiled run's stand-in (checked by the run that compiled it)
                self._predicates[key] = (rule.sql, rule.unknown)
                return self._predicates[key]
            from r53sigma.scan import sqlcompile
            from r53sigma.scan.duckdialect import column_of

            cache_key = plancache.rule_key(rule, duckdb.__version__) if self.plan_cache is not None else None
            cached = self.plan_cache.get(cache_key) if cache_key else None
            if cached is not None:
                self.reference.check(rule)  # the reference engine decides the rows SQL leaves unknown
                self._predicates[key] = (cached[0], bool(cached[1]))
            else:
                compiler = sqlcompile.RuleCompiler(rule, column_of, self.dialect)
                self._predicates[key] = (compiler.compile(), compiler.unknowns > 0)
                if cache_key:
                    self.plan_cache.put(cache_key, list(self._predicates[key]))
        return self._predicates[key]

    def save_plans(self) -> None:
        """Write newly compiled plans to the plan cache (when the engine has one)."""
        if self.plan_cache is not None:
            self.plan_cache.save()

    def evaluate(self, rule: AnyRule, events: Iterable[Event]) -> list[Alert]:
        return list(self.scan(events, [rule]))

    # -- scanning

    def scan(self, events: Iterable[Event], rules: Iterable[AnyRule] | None = None,
             first_seen: "FirstSeen | None" = None) -> Iterator[Alert]:
        """Alerts over parsed events (the exact reading path), in the reference engine's order; with
        ``first_seen``, its rules' alerts are the first-seen ones (r53sigma.scan.duckfirstseen), last."""
        run = _Run(self, rules, first_seen)
        yield from run.python_events(events, run.add_file("<input>"))
        yield from run.correlations.alerts()
        if first_seen is not None:
            yield from first_seen.alerts()

    def scan_paths(self, paths: Iterable[str | Path], rules: Iterable[AnyRule] | None = None,
                   on_error: OnError | None = None, on_file: Callable[[str, int], None] | None = None,
                   first_seen: "FirstSeen | None" = None) -> Iterator[Alert]:
        """Alerts over files, folders and ``-``, read as :func:`r53sigma.scan.records.read_paths` reads them."""
        report = on_error or (lambda error: None)
        run = _Run(self, rules, first_seen)
        for path in paths:
            if str(path) == "-":
                yield from run.python_events(events_mod.read_paths(["-"], report), run.add_file("<stdin>"), on_file)
                continue
            path = Path(path)
            if not path.exists():
                report(ReadError(str(path), None, "no such file or folder"))
                continue
            for file in events_mod.log_files(path):
                yield from run.file(file, report, on_file)
        yield from run.correlations.alerts()
        if first_seen is not None:
            yield from first_seen.alerts(report)


def _correlation_supported(rule: SigmaCorrelationRule) -> None:
    if rule.type not in _AGGREGATES:
        raise EngineError(f"{describe(rule)}: correlation type {rule.type} is not supported by the DuckDB engine")


_AGGREGATES = {
    SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED, SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG,
    SigmaCorrelationType.VALUE_MEDIAN, SigmaCorrelationType.VALUE_PERCENTILE,  # numeric types: correlations.py's Python
}


class _Run:
    """One scan: the rules chosen, per-source SQL, correlation accumulators and stream positions."""

    def __init__(self, engine: DuckEngine, rules: Iterable[AnyRule] | None, first_seen: "FirstSeen | None" = None):
        self.engine, self.con = engine, engine.con
        chosen = list(rules) if rules is not None else [r for r in engine.rules if getattr(r, "_output", True)]
        for rule in chosen:
            engine.check(rule)
        engine.save_plans()
        self.plain = [r for r in chosen if isinstance(r, SigmaRule)]
        self.plans = [engine.plan(r) for r in chosen if isinstance(r, SigmaCorrelationRule)]
        base: dict[int, SigmaRule] = {id(r): r for r in self.plain}
        for plan in self.plans:
            base.update((id(r), r) for r in plan.rules)
        self.base = list(base.values())
        self.flag = {id(r): f"r{i}" for i, r in enumerate(self.base)}
        self.source_of = {id(r): log_source_of(r)[0].source for r in self.base}
        self.files: list[str] = []
        self.fast_files = 0  # files DuckDB read itself (the rest were read by the reference reader)
        self.seq = 0
        self.correlations = CorrelationTables(self.con, self.plans, self.flag, self.source_of, engine.matches, id(self), engine.spill)
        self.sql = {s: SourceSQL(ls) for s, ls in log_sources().items()}
        self.first_seen = first_seen  # its rules' candidates become its points, not alerts
        if first_seen is not None:
            first_seen.bind(self.con, self.plain, self.flag, self.files, id(self))

    # -- inputs

    def file(self, file: Path, report: OnError, on_file) -> Iterator[Alert]:
        name = str(file)
        file_no = self.add_file(name)
        if not self._document_like(file):
            try:
                alerts = self._fast(file_no, name, report)
            except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException):
                if signals.received():  # a signal raised inside a Python UDF comes back as DuckDB's error
                    raise
                alerts = None  # a truncated gzip member, invalid UTF-8 or JSON ...: the exact reader reports it
            if alerts is not None:
                if on_file:
                    on_file(name, self._last_count)
                yield from alerts
                return
        yield from self.python_events(events_mod.read_file(file, report), file_no, on_file)

    def add_file(self, name: str) -> int:
        self.files.append(name)
        return len(self.files) - 1

    def python_events(self, events: Iterable[Event], file_no: int, on_file=None) -> Iterator[Alert]:
        """Events the reference reader parsed, evaluated in batches of PYTHON_BATCH."""
        count = 0
        batch: list[Event] = []
        for event in events:
            count += 1
            batch.append(event)
            if len(batch) >= PYTHON_BATCH:
                yield from self.python_batch(file_no, batch)
                batch = []
        if batch:
            yield from self.python_batch(file_no, batch)
        if on_file:
            on_file(self.files[file_no], count)

    @staticmethod
    def _document_like(file: Path) -> bool:
        """The first non-blank line opens a pretty-printed document: the reference reads the whole file."""
        try:
            for text in events_mod.text_lines(head_chunks(file)):
                if isinstance(text, events_mod.Problem):
                    return True
                stripped = text.strip()
                if stripped:
                    return events_mod.starts_document(stripped) or not stripped.startswith("{")
            return False
        except OSError:
            return True

    # -- the fast path: DuckDB reads the file

    def _fast(self, file_no: int, name: str, report: OnError) -> list[Alert] | None:
        typed = typed_read()
        if typed is None:
            return None
        rules = [r for r in self.base if self.source_of[id(r)] == "resolver"]
        table = f"fast_{id(self)}"
        # Pushed down, the filter "some rule matched" would evaluate every rule once more below the projection.
        # The pass's rows go to a parquet file in the engine's spill folder (written as they are made, in file
        # order): only the rows a line is needed for (alerts, the reference engine, lines that do not fit) are
        # kept in memory; the correlations and first-seen read their points from the file.
        rows_file = os.path.join(self.engine.spill, f"pass_{id(self)}_{file_no}.parquet")
        self.con.execute("SET disabled_optimizers = 'filter_pushdown'")
        try:
            statements, rows = self._fast_sql(typed, rules, name, table, rows_file)
            for statement in statements:
                self._execute_in_file_order(self.engine.prepare(statement))
            # events: a line that fits is one; the others count the events the reference reader finds in them
            fitting = self.con.execute(f"SELECT count(*) FILTER (WHERE _fit) FROM read_parquet({sqltext.quote(rows_file)})").fetchall()[0][0]
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException):
            if signals.received():  # the stop, not a file problem: no fallback to the exact reader
                raise
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
            self.con.execute(f"DROP VIEW IF EXISTS {table}_rows")
            remove_spilled(rows_file)
            return None  # a truncated gzip member, invalid UTF-8 or JSON ...: the exact reader reports it
        finally:
            self.con.execute("RESET disabled_optimizers")
        self.fast_files += 1
        self.engine.fast_files += 1
        # the text of the lines alerts show or the reference engine decides, kept by the same read
        texts = dict(self.con.execute(f"SELECT _s, _text FROM {table} WHERE _text IS NOT NULL").fetchall())
        # lines the columns cannot represent (malformed, blank, another log source's records, odd shapes):
        # read and evaluated as the reference reader and engine do, errors reported with their line number
        residual: list[tuple[int, Event]] = []
        for (s,) in self.con.execute(f"SELECT _s FROM {table} WHERE NOT _fit ORDER BY _s").fetchall():
            residual.extend((s, event) for event in events_mod.line_events(texts.get(s) or "", name, s, report))
        self._last_count = fitting + len(residual)
        parsed: dict[int, Event] = {}

        def event_at(s: int) -> Event:
            if s not in parsed:
                parsed[s] = events_mod.parse_record(texts[s], file=name, line=s)
            return parsed[s]

        self._resolve(table, "resolver", event_at)
        # every fitting row with its flags decided: SQL's from the file, the reference engine's from the table
        decided = f"(SELECT * FROM {table}_rows WHERE _fit AND NOT _u UNION ALL SELECT * FROM {table} WHERE _fit AND _u)"
        kept = False
        try:
            if self.first_seen is not None:
                self.first_seen.accumulate(decided, file_no)
            relation = lambda t: (f"(SELECT *, {file_no} AS _f, {sqltext.quote(name)} AS _file, _s AS _line, 0 AS _idx FROM {t})")

            def points(source: str) -> None:
                # the rows SQL decided stay readable in the pass file (which correlations may keep to the end)
                nonlocal kept
                kept = self.correlations.accumulate_pass(
                    source, relation(decided), relation(f"({rows}) WHERE _fit AND NOT _u"), relation(f"{table} WHERE _fit AND _u"),
                    rows_file)
            return self._emit({"resolver": relation(table)}, residual, file_no, event_at, drop=[table], points=points)
        finally:
            self.con.execute(f"DROP VIEW IF EXISTS {table}_rows")
            if not kept:
                remove_spilled(rows_file)

    def _execute_in_file_order(self, statement: str) -> None:
        """Run a pass statement; on one thread where it joins (the SQL Public Suffix List split's key lookups):
        on several, a join's output need not keep the file order the rows' positions number the lines by."""
        from r53sigma.scan import registered_domain

        if registered_domain.SQL_TABLE not in statement:
            self.con.execute(statement)
            return
        threads = self.con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        self.con.execute("SET threads = 1")
        try:
            self.con.execute(statement)
        finally:
            self.con.execute(f"SET threads = {int(threads)}")

    def _fast_sql(self, typed: "TypedRead", rules: list[SigmaRule], name: str, table: str, rows_file: str) -> tuple[list[str], str]:
        """Three statements, and the query of the file's rows (the view's). First, one parallel pass: DuckDB reads the file with the catalogue schema and
        writes to ``rows_file`` (parquet, in file order), per line, its time, whether it fits the columns,
        every rule's flag packed two bits a rule (0 false, 1 true, 2 unknown), the values correlations and
        first-seen rules group or count by (each only where one of their rules matched), ``_shown`` (the
        line is needed itself: it does not fit, a plain rule matched, or a rule is left to the reference
        engine, which reads its text) and ``_u`` (some rule is left to the reference engine). Then the file
        as a view ``{table}_rows`` with the flags unpacked and the line number (the file's row number: a
        projection of one table function keeps the file's order; ``WITH ORDINALITY`` would number the lines
        but runs the whole pass on one thread), and the table ``{table}`` of its ``_shown`` rows: memory
        holds the lines alerts and the reference engine need, never every line a correlation counts."""
        flags = [f"{self.engine.predicate(r)} AS {self.flag[id(r)]}" for r in rules]
        needs: dict[str, list[str]] = {}  # correlation field column -> flags of the rules it is read for
        for plan in self.plans:
            for target in plan.rules:
                if self.source_of[id(target)] != "resolver":
                    continue
                paths = plan.group_paths[id(target)] + ([plan.value_paths[id(target)]] if id(target) in plan.value_paths else [])
                for path in paths:  # kept where the rule matched or SQL left it unknown (the reference decides it later)
                    needs.setdefault(column_name(log_sources()["resolver"].field_for(".".join(path))), []).append(
                        f"coalesce({self.flag[id(target)]}, true)")
        fs_needs, fs_items = self.first_seen.pass_columns() if self.first_seen is not None else ({}, [])
        for col, fl in fs_needs.items():
            needs.setdefault(col, []).extend(fl)
        predicates = " ".join(self.engine.predicate(r) for r in rules)
        # what reads the typed read's columns: the predicates with the shared columns they name, the kept values
        read = " ".join([predicates, rowcolumns.wrap("v", predicates), *needs])
        used = {f.name for f in typed.source.fields.values() if column_name(f) in read or lowered_name(f) in read}
        used |= derived_fields.used_sources(typed.source, read, column_name)
        keep = [f"CASE WHEN {' OR '.join(dict.fromkeys(fl))} THEN {col} END AS {col}" for col, fl in needs.items()]
        chunks = [rules[i:i + _FLAGS_PER_MASK] for i in range(0, len(rules), _FLAGS_PER_MASK)]
        # a row where every flag of a mask is false (most rows) is 0 without packing the flags
        masks = [
            f"(CASE WHEN NOT coalesce({' OR '.join(self.flag[id(r)] for r in chunk)}, true) THEN 0 ELSE ("
            + " + ".join(f"(coalesce({self.flag[id(r)]}::BIGINT, 2) << {2 * j})" for j, r in enumerate(chunk)) + f") END) AS _m{c}"
            for c, chunk in enumerate(chunks)
        ]
        unpacked = [
            f"(CASE (_m{c} >> {2 * j}) & 3 WHEN 1 THEN true WHEN 0 THEN false END) AS {self.flag[id(r)]}"
            for c, chunk in enumerate(chunks) for j, r in enumerate(chunk)
        ]
        plain_ids = {id(p) for p in self.plain if not (self.first_seen and self.first_seen.holds(p))}  # first-seen: no text
        unknown = [f"{self.flag[id(r)]} IS NULL" for r in rules if self.engine.compiled(r)[1]]
        shown = [f"coalesce({self.flag[id(r)]}, false)" for r in rules if id(r) in plain_ids] + unknown
        derived = any(column_name(f) in read or lowered_name(f) in read for f in typed.source.derived.values())
        select = typed.select(name, used, derived, sql_split=duckread.split_in_sql(Path(name)))
        columns = ["_time", "_fit", "_text", "_shown", "_u"] + unpacked + list(needs) + ["_fs_h"] * bool(fs_items)
        rows = (f"SELECT file_row_number + 1 AS _s, {', '.join(columns)} "
                f"FROM read_parquet({sqltext.quote(rows_file)}, file_row_number = true)")
        return [
            f"COPY (WITH v AS ({select}), "
            f"flagged AS (SELECT _time, _fit, _text, {', '.join(flags + list(needs)) or '1 AS _x'} FROM {rowcolumns.wrap('v', predicates)}), "
            f"marked AS (SELECT *, ({' OR '.join(['NOT _fit'] + shown)}) AS _shown, ({' OR '.join(unknown) or 'false'}) AS _u FROM flagged) "
            f"SELECT _time, _fit, CASE WHEN _shown THEN _text END AS _text, _shown, coalesce(_u, false) AS _u, "
            f"{', '.join(masks + keep + fs_items) or '1 AS _x'} FROM marked) TO {sqltext.quote(rows_file)} (FORMAT parquet)",
            f"CREATE OR REPLACE TEMP VIEW {table}_rows AS {rows}",
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_rows WHERE _shown",
        ], rows

    # -- the exact path: Python read the events

    def python_batch(self, file_no: int, batch: list[Event]) -> Iterator[Alert]:
        first = self.seq
        self.seq += len(batch)
        tables, residual = {}, {}
        by_source: dict[str, list[int]] = {}
        for position, event in enumerate(batch):
            by_source.setdefault(event.source, []).append(position)
        for source, positions in by_source.items():
            rules = [r for r in self.base if self.source_of[id(r)] == source]
            texts, shallow = [], []
            for p in positions:
                try:
                    texts.append(json.dumps(batch[p].record))
                    shallow.append(p)
                except RecursionError:  # deeper than JSON text round-trips in Python: the reference decides
                    residual[first + p] = batch[p]
            positions = shallow
            raw_lines = [batch[p].raw if isinstance(batch[p].raw, str) else None for p in positions]
            times = [batch[p].time for p in positions]
            lines = [batch[p].line or 0 for p in positions]
            indexes = [batch[p].index or 0 for p in positions]
            seqs = [first + p for p in positions]
            relation = (
                "SELECT unnest($texts::VARCHAR[]) AS json, unnest($raws::VARCHAR[]) AS _raw_line, "
                "unnest($times::DOUBLE[]) AS _time, unnest($lines::BIGINT[]) AS _line, "
                "unnest($idx::BIGINT[]) AS _idx, unnest($seqs::BIGINT[]) AS _s, unnest($files::VARCHAR[]) AS _file"
            )
            select = (
                f"SELECT {file_no} AS _f, _file, _s, _line, _idx, false AS _last, json, false AS _norm, _raw_line, _time, "
                f"{self.sql[source].parsed_columns()} FROM ({relation})"
            )
            files = [batch[p].file for p in positions]
            params = {"files": files, "texts": texts, "raws": raw_lines, "times": times, "lines": lines, "idx": indexes, "seqs": seqs}
            table = self._hits(source, rules, select, params=params)
            self._resolve(table, source, lambda s: batch[s - first])
            if self.first_seen is not None:
                self.first_seen.add_rows(table, file_no, lambda s: batch[s - first])
            misfits = [row[0] for row in self.con.execute(f"SELECT _s FROM {table} WHERE NOT _fit").fetchall()]
            for s in misfits:
                residual[s] = batch[s - first]
            tables[source] = table
        yield from self._emit(tables, sorted(residual.items()), file_no, lambda s: batch[s - first])

    # -- shared

    def _hits(self, source: str, rules: list[SigmaRule], select: str, *, params=None,
              checks: str = "true AS _ok, _time") -> str:
        table = f"hits_{source}_{id(self)}"
        flags = [f"{self.engine.predicate(r)} AS {self.flag[id(r)]}" for r in rules]
        plain_ids = {id(r) for r in self.plain}
        plain_flags = [self.flag[id(r)] for r in rules if id(r) in plain_ids]
        wanted = self._correlation_fields(source)
        keep = [column_name(f) for f in wanted]
        any_flag = " OR ".join(f"coalesce({self.flag[id(r)]}, true)" for r in rules) or "false"
        unknown = [f"{self.flag[id(r)]} IS NULL" for r in rules if self.engine.compiled(r)[1]]
        keep_json = f"CASE WHEN {' OR '.join(plain_flags + unknown)} THEN json END" if plain_flags + unknown else "NULL::VARCHAR"
        sql = (
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"WITH parsed AS ({select}), view AS (SELECT _f, _file, _s, _line, _idx, _last, json, _norm, _raw_line, {checks}, "
            f"{self.sql[source].view_columns()} FROM ({self.sql[source].with_splits('parsed')})), "
            f"flagged AS (SELECT *, {', '.join(flags) if flags else 'false AS _none'} FROM {rowcolumns.wrap('view', ' '.join(flags))}) "
            f"SELECT _f, _file, _s, _line, _idx, {keep_json} AS json, _ok, _fit, _time, _last, "
            f"{', '.join([self.flag[id(r)] for r in rules] + keep) or 'NULL AS _nothing'} "
            f"FROM flagged WHERE NOT _ok OR NOT _fit OR _last OR {any_flag}"
        )
        self.engine.prepare(sql)
        self.con.execute(sql, params) if params else self.con.execute(sql)
        return table

    def _resolve(self, table: str, source: str, event_at: Callable[[int], Event]) -> None:
        """Decide the rows SQL left unknown (NULL flags) with the reference engine."""
        rules = [r for r in self.base if self.source_of[id(r)] == source and self.engine.compiled(r)[1]]
        if not rules:
            return
        flags = [self.flag[id(r)] for r in rules]
        rows = self.con.execute(
            f"SELECT _s, {', '.join(flags)} FROM {table} WHERE _fit AND ({' OR '.join(f + ' IS NULL' for f in flags)})"
        ).fetchall()
        decided: dict[str, list[int]] = {f: [] for f in flags}
        for s, *values in rows:
            event = event_at(s)
            for rule, flag, value in zip(rules, flags, values):
                if value is None and self.engine.reference.matches(rule, event):
                    decided[flag].append(s)
        for flag, matched in decided.items():
            self.con.execute(f"UPDATE {table} SET {flag} = list_contains($m::BIGINT[], _s) WHERE {flag} IS NULL", {"m": matched})

    def _correlation_fields(self, source: str) -> list[catalogue.Field]:
        found: dict[str, catalogue.Field] = {}
        log_source = log_sources()[source]
        for plan in self.plans:
            for target in plan.rules:
                if self.source_of[id(target)] != source:
                    continue
                for path in plan.group_paths[id(target)] + ([plan.value_paths[id(target)]] if id(target) in plan.value_paths else []):
                    field = log_source.field_for(".".join(path))
                    found[field.name] = field
        return list(found.values())

    def _emit(self, tables: dict[str, str], residual: list[tuple[int, Event]], file_no: int,
              event_at: Callable[[int], Event], drop: list[str] | None = None,
              points: Callable[[str], None] | None = None) -> list[Alert]:
        """Alerts of plain rules from ``tables`` (per source), correlation points from them (or by ``points``,
        given the source), then the ``residual`` events the reference engine decides."""
        found: list[tuple[int, int, int, Alert]] = []  # (stream position, record in the line, rule order, alert)
        order = {id(r): i for i, r in enumerate(self.plain)}
        held = self.first_seen.holds if self.first_seen is not None else (lambda rule: False)
        for source, table in tables.items():
            plain = [r for r in self.plain if self.source_of[id(r)] == source and not held(r)]
            if plain:
                flags = ", ".join(self.flag[id(r)] for r in plain)
                rows = self.con.execute(
                    f"SELECT _s, {flags} FROM {table} "
                    f"WHERE _fit AND ({' OR '.join(self.flag[id(r)] for r in plain)}) ORDER BY _s"
                ).fetchall()
                for s, *hits in rows:
                    event = event_at(s)
                    for rule, hit in zip(plain, hits):
                        if hit:
                            found.append((s, 0, order[id(rule)], make_alert(rule, event=event)))
            if points is not None:
                points(source)
            else:
                self.correlations.accumulate(source, table)
        for s, event in residual:
            for rule in self.plain:
                if self.engine.reference.matches(rule, event):
                    if held(rule):
                        self.first_seen.add_event(file_no, s, event, rule)
                    else:
                        found.append((s, event.index or 0, order[id(rule)], make_alert(rule, event=event)))
            self.correlations.accumulate_event(file_no, s, event)
        if self.first_seen is not None:
            self.first_seen.flush()
        for table in tables.values() if drop is None else drop:
            self.con.execute(f"DROP TABLE {table}")
        found.sort(key=lambda item: item[:3])
        return [alert for *_, alert in found]

    # -- correlations

