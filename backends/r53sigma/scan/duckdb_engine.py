"""A one-pass columnar engine on DuckDB, with the reference engine's meaning (``r53sigma.scan.reference``).

Reading
-------
A plain JSON-lines file (gzip or not) is read once by DuckDB's ``read_json`` with a schema taken from the
catalogue (VARCHAR values, answers as a list of structs, srcids as a struct; no inference), in parallel,
the record number being the rowid of the table that pass writes in file order (``WITH ORDINALITY`` would
run the whole pass on one thread), while a Python thread (:class:`_LineScan`, on the other core:
decompression releases the GIL) reads the same file to check that DuckDB's records are exactly the lines
the reference reader numbers: no blank line (DuckDB skips those, shifting numbers), no trailing comma or
byte-order mark (DuckDB accepts them, the reference reports the line), no truncated or corrupt gzip data.
Rows whose values the typed columns may not hold as the reference sees them (an object or list where the
catalogue has one value, NaN, another log source's key, a time that is not plain ISO 8601 UTC) are
flagged. Any of these, or a DuckDB read error, sends the file to the exact path:
:func:`r53sigma.scan.records.read_file`, so malformed lines and truncated members are reported and skipped
exactly as the reference engine does, and the events are evaluated by the same SQL over JSON text.
The text of a line is read again only when an alert shows it or the reference engine must decide it
(restart points every megabyte of the file: only the regions holding such lines are decompressed again).

Evaluating
----------
All single-event rules of a log source are one projection (one boolean column per rule, compiled by
:mod:`r53sigma.scan.sqlcompile`). The fast path writes every line's time, fit flag and rule flags (two bits a
rule, packed in BIGINTs) and the values correlations group or count by (each only where a correlation
needs it, NULL elsewhere), then keeps the rows some rule matches, with their line number. Plain alerts
stream out per file in event order. Correlations aggregate their referenced rules' matches per
(epoch-aligned window, group) in DuckDB, file by file (partial aggregates), and are decided at the end
with the reference engine's correlation plans (same windows, group-by exclusion, conditions); where the
condition is a count compared with a number, SQL leaves out the groups that cannot fire before Python
sees them. Memory grows with a file's lines (a few bytes each, plus correlation values) and with the
matches kept.
"""
from __future__ import annotations

import bisect
import functools
import json
import math
import re
import statistics
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
)
from sigma.rule import SigmaRule

from r53sigma import catalogue
from r53sigma.scan import derived_fields, records as events_mod, sqlcompile
from r53sigma.scan.reference import (
    EVIDENCE_PER_GROUP,
    Alert,
    Engine,
    EngineError,
    _alert,
    _CorrelationPlan,
    _number,
    _text,
    describe,
    values_at,
)
from r53sigma.scan.records import Event, OnError, ReadError

AnyRule = SigmaRule | SigmaCorrelationRule
VALUE_TYPES = ("VARCHAR", "BIGINT", "UBIGINT", "BOOLEAN", "NULL")  # JSON types of values the columns hold as text


def _only(types: str, allowed: tuple[str, ...]) -> str:
    """Every JSON type name in the list ``types`` (NULL entries: absent) is one of ``allowed``."""
    return f"regexp_full_match(coalesce(array_to_string({types}, ','), ''), '(({'|'.join(allowed)}),)*({'|'.join(allowed)})?')"
PYTHON_BATCH = 20000
_FLAGS_PER_MASK = 31  # two bits a rule in a BIGINT
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$"


def column_name(field: catalogue.Field) -> str:
    return '"f:' + field.name + '"'


def _json_path(parts: list[str]) -> str:
    return "$" + "".join(f'."{p}"' for p in parts)


@dataclass
class _SourceSQL:
    """How one log source's catalogue fields are computed from a JSON text column ``json``."""

    source: catalogue.LogSource

    @functools.cached_property
    def scalar_fields(self) -> list[catalogue.Field]:
        return [f for f in self.source.fields.values() if not f.array]

    @functools.cached_property
    def list_fields(self) -> list[catalogue.Field]:
        return [f for f in self.source.fields.values() if f.array]

    @functools.cached_property
    def container_paths(self) -> list[str]:
        """Paths that must be objects (prefixes) or arrays (the catalogue ``array``), for the shape check."""
        objects, arrays = set(), set()
        for f in self.source.fields.values():
            parts = f.name.split(".")
            array = f.array.split(".") if f.array else None
            for i in range(1, len(parts)):
                prefix = parts[:i]
                if array and prefix == array:
                    arrays.add(tuple(prefix))
                elif not array or i < len(array):
                    objects.add(tuple(prefix))
        return [("object", list(p)) for p in sorted(objects)] + [("array", list(p)) for p in sorted(arrays)]

    def parsed_columns(self) -> str:
        """``_v`` (scalar texts), ``_ty`` (their JSON types) and per-list-field value and type lists."""
        paths = [_json_path(f.name.split(".")) for f in self.scalar_fields]
        containers = [_json_path(p) for _, p in self.container_paths]
        # Each JSON function parses its input: the whole record is parsed a few times (keys, texts, types,
        # arrays); the arrays, once extracted, are small texts for the per-element paths.
        arrays = sorted({f.array for f in self.list_fields})
        cols = [
            "json_keys(json) AS _keys",
            f"json_extract_string(json, [{', '.join(map(sqlcompile.quote, paths))}]) AS _v",
            f"json_type(json, [{', '.join(map(sqlcompile.quote, paths + containers))}]) AS _ty",
        ]
        if arrays:
            cols.append(f"json_extract(json, [{', '.join(sqlcompile.quote(_json_path(a.split('.'))) for a in arrays)}]) AS _arr")
        for i, f in enumerate(self.list_fields):
            array = f.array.split(".")
            source = f"_arr[{arrays.index(f.array) + 1}]"
            rest = f.name.split(".")[len(array):]
            wildcard = "$[*]" + "".join(f'."{p}"' for p in rest)
            cols.append(f"json_extract_string({source}, {sqlcompile.quote(wildcard)}) AS _lv{i}")
            cols.append(f"json_type({source}, {sqlcompile.quote(wildcard)}) AS _lt{i}")
            for depth in range(len(rest)):  # the array's elements and objects inside them
                inner = "$[*]" + "".join(f'."{p}"' for p in rest[:depth])
                cols.append(f"json_type({source}, {sqlcompile.quote(inner)}) AS _le{i}_{depth}")
        return ", ".join(cols)

    def view_columns(self) -> str:
        """Field columns (normalised text, or lists of it without nulls) and the ``_fit`` shape flag."""
        cols = []
        n = len(self.scalar_fields)
        for i, f in enumerate(self.scalar_fields):
            value = f"_v[{i + 1}]"
            if f.strip_trailing_dot:
                value = f"(CASE WHEN _norm THEN {sqlcompile.strip_dot(value)} ELSE {value} END)"
            cols.append(f"{value} AS {column_name(f)}")
        cols += derived_fields.sql_columns(self.source, lambda name: cols[[g.name for g in self.scalar_fields].index(name)].rsplit(" AS ", 1)[0], column_name)
        # Shapes are checked on the JSON type names joined into one string (one regex instead of a
        # test per field: list indexing per row is what costs in DuckDB).
        fits = [_only(f"_ty[1:{n}]", VALUE_TYPES)]
        objects = [j for j, (kind, _) in enumerate(self.container_paths) if kind == "object"]
        arrays = [j for j, (kind, _) in enumerate(self.container_paths) if kind == "array"]
        if objects:
            fits.append(_only("[" + ", ".join(f"_ty[{n + j + 1}]" for j in objects) + "]", ("OBJECT", "NULL")))
        if arrays:
            fits.append(_only("[" + ", ".join(f"_ty[{n + j + 1}]" for j in arrays) + "]", ("ARRAY", "NULL")))
        for i, f in enumerate(self.list_fields):
            element = "lambda x: " + (f"CASE WHEN _norm THEN {sqlcompile.strip_dot('x')} ELSE x END" if f.strip_trailing_dot else "x")
            cols.append(f"list_transform(list_filter(coalesce(_lv{i}, []), lambda x: x IS NOT NULL), {element}) AS {column_name(f)}")
            fits.append(_only(f"_lt{i}", VALUE_TYPES))
            depth = len(f.name.split(".")) - len(f.array.split("."))
            fits.extend(_only(f"_le{i}_{d}", ("OBJECT", "NULL")) for d in range(depth))
        return ", ".join(cols) + ", (" + " AND ".join(fits) + ") AS _fit"


@functools.cache
def _log_sources() -> dict[str, catalogue.LogSource]:
    return catalogue.load()


class _DuckDialect(sqlcompile.Dialect):
    """DuckDB. What SQL cannot decide exactly (keywords, regexes RE2 cannot compile, unusual address
    forms for ``|cidr``) is NULL, unknown: the engine decides those rows with the reference engine."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def check_regex(self, pattern: str) -> bool:
        try:
            self.con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
            return True
        except duckdb.Error:
            return False

    def regex_fallback(self, value: str, pattern: str, flags: int) -> str:
        return sqlcompile.UNKNOWN

    def cidr_other(self, value: str, networks: list) -> str | None:
        odd = r":|^[\s\x{85}\x{a0}\x{1c}-\x{1f}\p{Z}]|[\s\x{85}\x{a0}\x{1c}-\x{1f}\p{Z}]$"
        strict = f"regexp_matches({value}, {sqlcompile.quote(sqlcompile.IPV4)}) OR regexp_matches({value}, {sqlcompile.quote(sqlcompile.IPV6)})"
        # the cheap test first: a plain dotted quad has no colon and no padding, and is decided exactly
        return f"(CASE WHEN regexp_matches({value}, {sqlcompile.quote(odd)}) AND NOT ({strict}) THEN {sqlcompile.UNKNOWN} ELSE false END)"

    def keyword(self, rule: SigmaRule, value: Any) -> str:
        return sqlcompile.UNKNOWN


class DuckEngine:
    """``scan(events)`` over parsed events and ``scan_paths(paths)`` over files, like ``Engine.scan``."""

    def __init__(self, rules: Any = (), *, memory_limit: str | None = None, threads: int | None = None):
        collection = getattr(rules, "collection", rules)
        self.rules: list[AnyRule] = list(getattr(collection, "rules", collection))
        self.reference = Engine(self.rules)
        self.con = duckdb.connect()
        derived_fields.register_sql_functions(self.con)
        if memory_limit:
            self.con.execute(f"SET memory_limit = {sqlcompile.quote(memory_limit)}")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        self.dialect = _DuckDialect(self.con)
        self._predicates: dict[int, tuple[str, bool]] = {}  # rule -> (SQL, may be unknown)
        self.fast_files = 0  # files DuckDB read itself, over all scans (the others: the reference reader)

    # -- rules

    def check(self, rule: AnyRule) -> None:
        self.reference.check(rule)
        if isinstance(rule, SigmaCorrelationRule):
            plan = self.reference._plan(rule)
            for target in plan.rules:
                self._predicate(target)
            _correlation_supported(rule)
        else:
            self._predicate(rule)

    def _predicate(self, rule: SigmaRule) -> str:
        return self._compiled(rule)[0]

    def _compiled(self, rule: SigmaRule) -> tuple[str, bool]:
        key = id(rule)
        if key not in self._predicates:
            if not isinstance(rule, SigmaRule):
                raise EngineError(f"{describe(rule)}: a correlation cannot be matched against one event")
            compiler = sqlcompile.RuleCompiler(rule, _column_of, self.dialect)
            self._predicates[key] = (compiler.compile(), compiler.unknowns > 0)
        return self._predicates[key]

    def evaluate(self, rule: AnyRule, events: Iterable[Event]) -> list[Alert]:
        return list(self.scan(events, [rule]))

    # -- scanning

    def scan(self, events: Iterable[Event], rules: Iterable[AnyRule] | None = None) -> Iterator[Alert]:
        """Alerts over parsed events (the exact reading path), in the reference engine's order."""
        run = _Run(self, rules)
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= PYTHON_BATCH:
                yield from run.python_batch(0, batch)
                batch = []
        if batch:
            yield from run.python_batch(0, batch)
        yield from run.finish()

    def scan_paths(self, paths: Iterable[str | Path], rules: Iterable[AnyRule] | None = None,
                   on_error: OnError | None = None, on_file: Callable[[str, int], None] | None = None) -> Iterator[Alert]:
        """Alerts over files, folders and ``-``, read as :func:`r53sigma.scan.records.read_paths` reads them."""
        report = on_error or (lambda error: None)
        run = _Run(self, rules)
        for path in paths:
            if str(path) == "-":
                yield from run.python_events(events_mod.read_paths(["-"], report), on_file)
                continue
            path = Path(path)
            if not path.exists():
                report(ReadError(str(path), None, "no such file or folder"))
                continue
            for file in events_mod.log_files(path):
                yield from run.file(file, report, on_file)
        yield from run.finish()


def _column_of(field: catalogue.Field) -> sqlcompile.Column:
    return sqlcompile.Column(column_name(field), (lambda v: v) if field.array else None)


def _correlation_supported(rule: SigmaCorrelationRule) -> None:
    if rule.type not in _AGGREGATES:
        raise EngineError(f"{describe(rule)}: correlation type {rule.type} is not supported by the DuckDB engine")


_AGGREGATES = {
    SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED, SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG,
    SigmaCorrelationType.VALUE_MEDIAN,
}


class _Run:
    """One scan: the rules chosen, per-source SQL, correlation accumulators and stream positions."""

    def __init__(self, engine: DuckEngine, rules: Iterable[AnyRule] | None):
        self.engine, self.con = engine, engine.con
        chosen = list(rules) if rules is not None else [r for r in engine.rules if getattr(r, "_output", True)]
        for rule in chosen:
            engine.check(rule)
        self.plain = [r for r in chosen if isinstance(r, SigmaRule)]
        self.plans = [engine.reference._plan(r) for r in chosen if isinstance(r, SigmaCorrelationRule)]
        base: dict[int, SigmaRule] = {id(r): r for r in self.plain}
        for plan in self.plans:
            base.update((id(r), r) for r in plan.rules)
        self.base = list(base.values())
        self.flag = {id(r): f"r{i}" for i, r in enumerate(self.base)}
        self.source_of = {id(r): Engine._log_source(r)[0].source for r in self.base}
        self.files: list[str] = []
        self.fast_files = 0  # files DuckDB read itself (the rest were read by the reference reader)
        self.seq = 0
        self.tables = []
        for number, plan in enumerate(self.plans):
            table = f"acc{number}_{id(self)}"
            self.con.execute(
                f"CREATE TEMP TABLE {table} (win DOUBLE, g VARCHAR[], cnt BIGINT, "
                "ev STRUCT(f BIGINT, s BIGINT, line BIGINT, idx BIGINT, file VARCHAR)[], mask BIGINT, vals VARCHAR[], "
                "pairs STRUCT(t DOUBLE, i BIGINT)[])"
            )
            self.tables.append(table)
        self.sql = {s: _SourceSQL(ls) for s, ls in _log_sources().items()}

    # -- inputs

    def file(self, file: Path, report: OnError, on_file) -> Iterator[Alert]:
        name = str(file)
        file_no = len(self.files)
        self.files.append(name)
        if not self._document_like(file):
            try:
                alerts = self._fast(file_no, name)
            except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException):
                alerts = None  # a truncated gzip member, invalid UTF-8 or JSON ...: the exact reader reports it
            if alerts is not None:
                if on_file:
                    on_file(name, self._last_count)
                yield from alerts
                return
        count = 0
        batch: list[Event] = []
        for event in events_mod.read_file(file, report):
            count += 1
            batch.append(event)
            if len(batch) >= PYTHON_BATCH:
                yield from self.python_batch(file_no, batch)
                batch = []
        if batch:
            yield from self.python_batch(file_no, batch)
        if on_file:
            on_file(name, count)

    def python_events(self, events: Iterable[Event], on_file) -> Iterator[Alert]:
        file_no = len(self.files)
        self.files.append("<stdin>")
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
            on_file("<stdin>", count)

    @staticmethod
    def _document_like(file: Path) -> bool:
        """The first non-blank line opens a pretty-printed document: the reference reads the whole file."""
        try:
            for text in events_mod._text_lines(_head_chunks(file)):
                if isinstance(text, events_mod._Problem):
                    return True
                stripped = text.strip()
                if stripped:
                    return events_mod._starts_document(stripped) or not stripped.startswith("{")
            return False
        except OSError:
            return True

    # -- the fast path: DuckDB reads the file

    def _fast(self, file_no: int, name: str) -> list[Alert] | None:
        typed = _typed_read()
        if typed is None:
            return None
        rules = [r for r in self.base if self.source_of[id(r)] == "resolver"]
        table = f"fast_{id(self)}"
        scan = _LineScan(Path(name))
        scan.start()  # on the other core, while DuckDB reads the same file
        # Pushed down, the filter "some rule matched" would evaluate every rule once more below the projection.
        self.con.execute("SET disabled_optimizers = 'filter_pushdown'")
        try:
            for statement in self._fast_sql(typed, rules, name, table):
                self.con.execute(statement)
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException):
            scan.join()
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
            return None  # a truncated gzip member, invalid UTF-8 or JSON ...: the exact reader reports it
        finally:
            self.con.execute("RESET disabled_optimizers")
            self.con.execute(f"DROP TABLE IF EXISTS {table}_all")
        scan.join()
        misfits = self.con.execute(f"SELECT count(*) FROM {table} WHERE NOT _fit").fetchone()[0]
        if misfits or not scan.clean:
            self.con.execute(f"DROP TABLE {table}")
            return None
        self._last_count = scan.lines
        self.fast_files += 1
        self.engine.fast_files += 1
        # the text of the lines alerts show or the reference engine decides: fetched now, the rest never read again
        plain = [self.flag[id(r)] for r in rules if id(r) in {id(p) for p in self.plain}]
        unknown = [self.flag[id(r)] for r in rules if self.engine._compiled(r)[1]]
        wanted = [row[0] for row in self.con.execute(
            f"SELECT _s FROM {table} WHERE {' OR '.join([f'coalesce({f}, false)' for f in plain] + [f'{f} IS NULL' for f in unknown]) or 'false'} ORDER BY _s"
        ).fetchall()]
        texts = scan.fetch(wanted)
        parsed: dict[int, Event] = {}

        def event_at(s: int) -> Event:
            if s not in parsed:
                parsed[s] = events_mod.parse_record(texts[s], file=name, line=s)
            return parsed[s]

        self._resolve(table, "resolver", event_at)
        relation = lambda t: (f"(SELECT *, {file_no} AS _f, {sqlcompile.quote(name)} AS _file, _s AS _line, 0 AS _idx FROM {t})")
        return self._emit({"resolver": relation(table)}, {}, file_no, event_at, drop=[table])

    def _fast_sql(self, typed: "_TypedRead", rules: list[SigmaRule], name: str, table: str) -> list[str]:
        """Two statements. First, one parallel pass: DuckDB reads the file with the catalogue schema and
        keeps, per line, its time, whether it fits the columns, every rule's flag packed two bits a rule
        (0 false, 1 true, 2 unknown) and the values correlations group or count by, each only where a
        correlation needs it. Then the rows some rule matches (or may match, or that do not fit) with
        their line number: the rowid of the first table, since a projection of one table function
        keeps the file's order. (``WITH ORDINALITY`` would number the lines but runs the whole pass on
        one thread.)"""
        flags = [f"{self.engine._predicate(r)} AS {self.flag[id(r)]}" for r in rules]
        needs: dict[str, list[str]] = {}  # correlation field column -> flags of the rules it is read for
        for plan in self.plans:
            for target in plan.rules:
                if self.source_of[id(target)] != "resolver":
                    continue
                paths = plan.group_paths[id(target)] + ([plan.value_paths[id(target)]] if id(target) in plan.value_paths else [])
                for path in paths:
                    needs.setdefault(column_name(_log_sources()["resolver"].field_for(".".join(path))), []).append(self.flag[id(target)])
        predicates = " ".join(self.engine._predicate(r) for r in rules)
        used = {f.name for f in typed.source.fields.values() if column_name(f) in predicates or column_name(f) in needs}
        used |= derived_fields.used_sources(typed.source, predicates + " ".join(needs), column_name)
        keep = [f"CASE WHEN {' OR '.join(dict.fromkeys(fl))} THEN {col} END AS {col}" for col, fl in needs.items()]
        chunks = [rules[i:i + _FLAGS_PER_MASK] for i in range(0, len(rules), _FLAGS_PER_MASK)]
        masks = [
            "(" + " + ".join(f"(coalesce({self.flag[id(r)]}::BIGINT, 2) << {2 * j})" for j, r in enumerate(chunk)) + f") AS _m{c}"
            for c, chunk in enumerate(chunks)
        ]
        unpacked = [
            f"(CASE (_m{c} >> {2 * j}) & 3 WHEN 1 THEN true WHEN 0 THEN false END) AS {self.flag[id(r)]}"
            for c, chunk in enumerate(chunks) for j, r in enumerate(chunk)
        ]
        any_flag = " OR ".join(f"_m{c} <> 0" for c in range(len(chunks))) or "false"
        select = typed.select(name, used)
        return [
            f"CREATE OR REPLACE TEMP TABLE {table}_all AS "
            f"WITH v AS ({select}), "
            f"flagged AS (SELECT _time, _fit, {', '.join(flags + list(needs)) or '1 AS _x'} FROM v) "
            f"SELECT _time, _fit, {', '.join(masks + keep) or '1 AS _x'} FROM flagged",
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT rowid + 1 AS _s, _time, _fit, {', '.join(unpacked + list(needs)) or '1 AS _x'} "
            f"FROM {table}_all WHERE NOT _fit OR {any_flag}",
        ]

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
            texts = [json.dumps(batch[p].record) for p in positions]
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
            misfits = [row[0] for row in self.con.execute(f"SELECT _s FROM {table} WHERE NOT _fit").fetchall()]
            for s in misfits:
                residual[s] = batch[s - first]
            tables[source] = table
        yield from self._emit(tables, residual, file_no, lambda s: batch[s - first])

    # -- shared

    def _hits(self, source: str, rules: list[SigmaRule], select: str, *, params=None,
              checks: str = "true AS _ok, _time") -> str:
        table = f"hits_{source}_{id(self)}"
        flags = [f"{self.engine._predicate(r)} AS {self.flag[id(r)]}" for r in rules]
        plain_ids = {id(r) for r in self.plain}
        plain_flags = [self.flag[id(r)] for r in rules if id(r) in plain_ids]
        wanted = self._correlation_fields(source)
        keep = [column_name(f) for f in wanted]
        any_flag = " OR ".join(f"coalesce({self.flag[id(r)]}, true)" for r in rules) or "false"
        unknown = [f"{self.flag[id(r)]} IS NULL" for r in rules if self.engine._compiled(r)[1]]
        keep_json = f"CASE WHEN {' OR '.join(plain_flags + unknown)} THEN json END" if plain_flags + unknown else "NULL::VARCHAR"
        sql = (
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"WITH parsed AS ({select}), view AS (SELECT _f, _file, _s, _line, _idx, _last, json, _norm, _raw_line, {checks}, "
            f"{self.sql[source].view_columns()} FROM parsed), "
            f"flagged AS (SELECT *, {', '.join(flags) if flags else 'false AS _none'} FROM view) "
            f"SELECT _f, _file, _s, _line, _idx, {keep_json} AS json, _ok, _fit, _time, _last, "
            f"{', '.join([self.flag[id(r)] for r in rules] + keep) or 'NULL AS _nothing'} "
            f"FROM flagged WHERE NOT _ok OR NOT _fit OR _last OR {any_flag}"
        )
        self.con.execute(sql, params) if params else self.con.execute(sql)
        return table

    def _resolve(self, table: str, source: str, event_at: Callable[[int], Event]) -> None:
        """Decide the rows SQL left unknown (NULL flags) with the reference engine."""
        rules = [r for r in self.base if self.source_of[id(r)] == source and self.engine._compiled(r)[1]]
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
        log_source = _log_sources()[source]
        for plan in self.plans:
            for target in plan.rules:
                if self.source_of[id(target)] != source:
                    continue
                for path in plan.group_paths[id(target)] + ([plan.value_paths[id(target)]] if id(target) in plan.value_paths else []):
                    field = log_source.field_for(".".join(path))
                    found[field.name] = field
        return list(found.values())

    def _emit(self, tables: dict[str, str], residual: dict[int, Event], file_no: int,
              event_at: Callable[[int], Event], drop: list[str] | None = None) -> list[Alert]:
        found: list[tuple[int, int, Alert]] = []  # (stream position, rule order, alert)
        order = {id(r): i for i, r in enumerate(self.plain)}
        for source, table in tables.items():
            plain = [r for r in self.plain if self.source_of[id(r)] == source]
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
                            found.append((s, order[id(rule)], _alert(rule, event=event)))
            for number, plan in enumerate(self.plans):
                self._accumulate(number, plan, source, table)
        for s, event in residual.items():
            for rule in self.plain:
                if self.engine.reference.matches(rule, event):
                    found.append((s, order[id(rule)], _alert(rule, event=event)))
            self._accumulate_residual(file_no, s, event)
        for table in tables.values() if drop is None else drop:
            self.con.execute(f"DROP TABLE {table}")
        found.sort(key=lambda item: (item[0], item[1]))
        return [alert for _, _, alert in found]

    # -- correlations

    def _accumulate(self, number: int, plan: _CorrelationPlan, source: str, table: str) -> None:
        targets = [(i, t) for i, t in enumerate(plan.rules) if self.source_of[id(t)] == source]
        if not targets:
            return
        log_source = _log_sources()[source]

        def as_list(path: tuple[str, ...]) -> str:
            field = log_source.field_for(".".join(path))
            col = column_name(field)
            return col if field.array else f"(CASE WHEN {col} IS NULL THEN []::VARCHAR[] ELSE [{col}] END)"

        def first_match(make: Callable[[SigmaRule], str]) -> str:
            whens = " ".join(f"WHEN {self.flag[id(t)]} THEN {make(t)}" for _, t in targets)
            return f"(CASE {whens} END)"

        groups = [first_match(lambda t, k=k: f"list_distinct({as_list(plan.group_paths[id(t)][k])})") for k in range(len(plan.group_by))]
        values = (
            first_match(lambda t: as_list(plan.value_paths[id(t)])) if plan.value_paths else "[]::VARCHAR[]"
        )
        mask = " + ".join(f"(CASE WHEN {self.flag[id(t)]} THEN {1 << i} ELSE 0 END)" for i, t in targets)
        pairs = "list_filter([" + ", ".join(
            f"CASE WHEN {self.flag[id(t)]} THEN {{'t': _time, 'i': {i}}} END" for i, t in targets
        ) + "], lambda p: p IS NOT NULL)" if plan.rule.type == SigmaCorrelationType.TEMPORAL_ORDERED \
            else "[]::STRUCT(t DOUBLE, i BIGINT)[]"  # (time, rule) pairs: only the ordered type reads them
        any_target = " OR ".join(self.flag[id(t)] for _, t in targets)
        span = plan.span
        inner = (
            f"SELECT floor(_time / {span}) * {span} AS win, _f, _file, _s, _line, _idx, _time, {mask} AS mask, {values} AS vals, "
            f"{pairs} AS pairs, " + ", ".join([f"{g} AS g{k}" for k, g in enumerate(groups)] or ["1 AS _x"])
            + f" FROM {table} WHERE _fit AND _time IS NOT NULL AND ({any_target})"
        )
        for k in range(len(groups)):  # one row per combination of group values; no value: no row
            inner = f"SELECT * REPLACE (unnest(g{k}) AS g{k}) FROM ({inner})"
        group = "[" + ", ".join(f"g{k}" for k in range(len(groups))) + "]::VARCHAR[]"
        distinct_vals = "list_distinct(flatten(list(vals)))" if plan.rule.type == SigmaCorrelationType.VALUE_COUNT else "flatten(list(vals))"
        self.con.execute(
            f"INSERT INTO {self.tables[number]} SELECT win, {group} AS g, count(*), "
            f"min({{'f': _f, 's': _s, 'line': _line, 'idx': _idx, 'file': _file}}, {EVIDENCE_PER_GROUP}), bit_or(mask), "
            f"{distinct_vals}, list_distinct(flatten(list(pairs))) FROM ({inner}) GROUP BY ALL"
        )

    def _accumulate_residual(self, file_no: int, s: int, event: Event) -> None:
        if event.time is None:
            return
        for number, plan in enumerate(self.plans):
            hits = [i for i, t in enumerate(plan.rules) if self.engine.reference.matches(t, event)]
            if not hits:
                continue
            key = id(plan.rules[hits[0]])
            groups = [list(dict.fromkeys(t for t in map(_text, values_at(event.record, p)) if t is not None))
                      for p in plan.group_paths[key]]
            if any(not g for g in groups):
                continue
            values = [t for t in map(_text, values_at(event.record, plan.value_paths[key])) if t is not None] \
                if key in plan.value_paths else []
            window = math.floor(event.time / plan.span) * plan.span
            mask = sum(1 << i for i in hits)
            for combo in _combinations(groups):
                self.con.execute(
                    f"INSERT INTO {self.tables[number]} VALUES (?, ?, 1, [{{'f': ?, 's': ?, 'line': ?, 'idx': ?, 'file': ?}}], ?, ?, ?)",
                    [window, list(combo), file_no, s, event.line or 0, event.index or 0, event.file, mask, values,
                     [{"t": event.time, "i": i} for i in hits]],
                )

    def finish(self) -> Iterator[Alert]:
        for number, plan in enumerate(self.plans):
            table = self.tables[number]
            having = _having(plan)
            # where SQL can test the condition, only the (window, group)s that pass are gathered and fetched
            source = table if having is None else (
                f"(SELECT * FROM {table} SEMI JOIN (SELECT win, g FROM {table} GROUP BY win, g HAVING {having}) AS passing "
                f"ON {table}.win = passing.win AND {table}.g = passing.g)"
            )
            rows = self.con.execute(
                f"SELECT win, g, sum(cnt), list_sort(flatten(list(ev)))[1:{EVIDENCE_PER_GROUP}], bit_or(mask), "
                f"flatten(list(vals)), flatten(list(pairs)) FROM {source} GROUP BY win, g"
            ).fetchall()
            firing = []
            for win, group, count, evidence, mask, values, pairs in rows:
                aggregate = _aggregate(plan, count, mask, values, pairs)
                if plan.test(aggregate):
                    firing.append((win, tuple(group), aggregate, evidence))
            firing.sort(key=lambda item: (item[0], repr(item[1])))
            for win, group, aggregate, evidence in firing:
                window = int(win) if float(win).is_integer() else win
                yield _alert(
                    plan.rule, group=dict(zip(plan.group_by, group)), window_start=window, window_end=window + plan.span,
                    value=aggregate if not isinstance(aggregate, set) else len(aggregate),
                    # evidence: where the first events are (the scan prints their origins), not their content
                    events=[Event(self.source_of[id(plan.rules[0])], {}, None, None, e["file"],
                                  e["line"] or None, e["idx"] or None) for e in evidence],
                )
            self.con.execute(f"DROP TABLE {self.tables[number]}")


_SQL_OPS = {
    SigmaCorrelationConditionOperator.LT: "<", SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.GT: ">", SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.EQ: "=", SigmaCorrelationConditionOperator.NEQ: "<>",
}


def _having(plan: _CorrelationPlan) -> str | None:
    """The correlation's condition over an accumulator table's rows of one (window, group), where it is a
    count compared with a number (``plan.test`` still decides: this only leaves out groups that cannot fire)."""
    condition = plan.rule.condition
    if not isinstance(condition, SigmaCorrelationCondition) or condition.op not in _SQL_OPS:
        return None
    if not isinstance(condition.count, int) or isinstance(condition.count, bool):
        return None
    if plan.rule.type == SigmaCorrelationType.EVENT_COUNT:
        aggregate = "sum(cnt)"
    elif plan.rule.type == SigmaCorrelationType.VALUE_COUNT:
        aggregate = "len(list_distinct(flatten(list(vals))))"
    else:
        return None
    return f"{aggregate} {_SQL_OPS[condition.op]} {condition.count}"


def _aggregate(plan: _CorrelationPlan, count: int, mask: int, values: list, pairs: list) -> Any:
    kind = plan.rule.type
    if kind == SigmaCorrelationType.EVENT_COUNT:
        return count
    if kind == SigmaCorrelationType.VALUE_COUNT:
        return len(set(values))
    numbers = [n for n in map(_number, values) if n is not None]
    if kind == SigmaCorrelationType.VALUE_SUM:
        return sum(numbers) if numbers else None
    if kind == SigmaCorrelationType.VALUE_AVG:
        return statistics.fmean(numbers) if numbers else None
    if kind == SigmaCorrelationType.VALUE_MEDIAN:
        return statistics.median(numbers) if numbers else None
    matched = {i for i in range(len(plan.rules)) if mask >> i & 1}
    if isinstance(plan.rule.condition, SigmaExtendedCorrelationCondition):
        return matched
    if kind == SigmaCorrelationType.TEMPORAL:
        return len(matched)
    step = 0
    for pair in sorted((p["t"], p["i"]) for p in pairs):
        if step < len(plan.rules) and pair[1] == step:
            step += 1
    return step


def _combinations(groups: list[list[str]]) -> Iterator[tuple]:
    if not groups:
        yield ()
        return
    for head in groups[0]:
        for rest in _combinations(groups[1:]):
            yield (head,) + rest


def _head_chunks(file: Path) -> Iterator[bytes]:
    """The first bytes of a file, decompressed, enough to see its first line."""
    with open(file, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:2] == b"\x1f\x8b":
        import zlib

        try:
            yield zlib.decompressobj(wbits=31).decompress(head, 1 << 16)
        except zlib.error:
            yield events_mod._Problem("corrupt")
        return
    yield head


# ---------------------------------------------------------------- the fast path's reading


@dataclass
class _TypedRead:
    """Resolver lines read by ``read_json`` with a schema from the catalogue: typed columns, no inference.

    Scalars are VARCHAR (DuckDB writes a JSON number or boolean as the text Python's ``str`` gives, and
    an object or array as its JSON text); a field under an array is a list of structs; the other log
    sources' top-level keys are read too, to see records that are not Resolver records. ``_fit`` is false
    for a row the columns may not represent as the reference reader would (a container or NaN where the
    catalogue has a value, another source's key, no plain ISO 8601 ``query_timestamp``): such a file is
    read by the exact path."""

    source: catalogue.LogSource
    schema: dict[str, str]
    fields: dict[str, str]  # catalogue field -> SQL of its raw value (scalar text, or list of element texts)
    others: list[str]  # other log sources' top-level keys

    def select(self, name: str, used: set[str]) -> str:
        """The rows in file order with ``_time``, ``_fit`` and one column per field; ``_fit`` looks at the
        ``used`` fields only (a value no rule reads cannot change an alert: alerts show the line itself)."""
        spec = "{" + ", ".join(f"{sqlcompile.quote(k)}: {sqlcompile.quote(v)}" for k, v in self.schema.items()) + "}"
        cols, fits = [], []
        for field in self.source.fields.values():
            raw = self.fields[field.name]
            if field.array:
                # nulls dropped (the reference's values_at); strip_trailing_dot on each element
                element = sqlcompile.strip_dot("x") if field.strip_trailing_dot else "x"
                cols.append(f"list_transform(list_filter({raw}, lambda x: x IS NOT NULL), lambda x: {element}) AS {column_name(field)}")
                if field.name in used:
                    fits.append(f"NOT coalesce(list_bool_or(list_transform({raw}, lambda x: {_odd_text('x')})), false)")
            else:
                cols.append(f"{sqlcompile.strip_dot(raw) if field.strip_trailing_dot else raw} AS {column_name(field)}")
                if field.name in used:
                    fits.append(f"NOT coalesce({_odd_text(raw)}, false)")
        cols += derived_fields.sql_columns(self.source, lambda name: sqlcompile.strip_dot(self.fields[name]) if self.source.fields[name].strip_trailing_dot else self.fields[name], column_name)
        ts = self.fields[self.source.timestamp]
        fits.append(f"coalesce(regexp_full_match({ts}, '{_TIME}'), false) AND TRY_CAST(rtrim({ts}, 'Z') AS TIMESTAMP) IS NOT NULL")
        fits.extend(f'"{k}" IS NULL' for k in self.others)
        return (
            f"SELECT epoch_us(TRY_CAST(rtrim({ts}, 'Z') AS TIMESTAMP)) / 1000000.0 AS _time, "
            f"({' AND '.join(fits)}) AS _fit, {', '.join(cols)} "
            f"FROM read_json({sqlcompile.quote(name)}, format = 'newline_delimited', columns = {spec}, "
            f"maximum_object_size = 16777216)"
        )


def _odd_text(value: str) -> str:
    """A text DuckDB made from a JSON container or NaN/Infinity (its text differs from the reference's view)."""
    return f"(ascii({value}) IN (91, 123) OR {value} IN ('NaN', 'Infinity', '-Infinity'))"


@functools.cache
def _typed_read() -> _TypedRead | None:
    """The Resolver schema, or None when the catalogue nests deeper than the typed read handles."""
    source = _log_sources()["resolver"]
    members: dict[str, list[str]] = {}
    arrays: set[str] = set()
    schema: dict[str, str] = {}
    fields: dict[str, str] = {}
    for field in source.fields.values():
        parts = field.name.split(".")
        if len(parts) == 1 and not field.array:
            schema[parts[0]] = "VARCHAR"
            fields[field.name] = f'"{parts[0]}"'
        elif len(parts) == 2 and field.array in (None, parts[0]):
            members.setdefault(parts[0], []).append(parts[1])
            if field.array:
                arrays.add(parts[0])
                fields[field.name] = f'list_transform("{parts[0]}", lambda e: e."{parts[1]}")'
            else:
                fields[field.name] = f'"{parts[0]}"."{parts[1]}"'
        else:
            return None
    for top, names in members.items():
        struct = "STRUCT(" + ", ".join(f'"{n}" VARCHAR' for n in names) + ")"
        schema[top] = struct + "[]" if top in arrays else struct
    own = set(schema)
    others = sorted({n.split(".")[0] for s in _log_sources().values() if s.source != source.source for n in s.fields} - own)
    schema.update((k, "VARCHAR") for k in others)
    return _TypedRead(source, schema, fields, others)


_BLANK_LINE = re.compile(rb"\n[ \t\r\x0b\x0c\x1c-\x1f]*\n")  # what str.strip() empties, in ASCII
_TRAILING_COMMA = re.compile(rb",[ \t\r]*[}\]]")  # json.loads refuses it, DuckDB accepts it
_CHECKPOINT = 1 << 20  # compressed bytes between restart points


class _LineScan(threading.Thread):
    """Python's view of the file DuckDB reads at the same time: its lines as :func:`events.read_file`
    numbers them, whether DuckDB's records are exactly those lines (no blank line, which DuckDB skips; no
    trailing comma or byte-order mark, which it accepts and the reference does not; no damaged gzip data),
    and restart points (a copy of the decompressor every megabyte) to fetch chosen lines afterwards without
    decompressing the whole file again. Decompression releases the GIL: the scan runs on the other core."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.lines = 0
        self.clean = True
        self.gzip = False
        self.checkpoints: list[tuple[int, Any, int, bytes]] = []  # (file offset, decompressor, lines before, pending)

    def run(self) -> None:
        try:
            self._scan()
        except Exception:  # noqa: BLE001 - any surprise: the exact path decides
            self.clean = False

    def _chunks(self, handle, offset: int, decompressor) -> Iterator[tuple[int, Any, bytes]]:
        """(file offset after the chunk, decompressor after it, the bytes it gave), from a restart point."""
        handle.seek(offset)
        fed = False
        while chunk := handle.read(_CHECKPOINT):
            offset += len(chunk)
            if decompressor is None:
                yield offset, None, chunk
                continue
            out = []
            while chunk:
                fed = True
                out.append(decompressor.decompress(chunk))
                if decompressor.eof:  # a member ended; another may follow
                    chunk = decompressor.unused_data
                    decompressor, fed = zlib.decompressobj(wbits=31), False
                    if chunk.lstrip(b"\x00") == b"":  # padding after the last member
                        chunk = b""
                else:
                    chunk = b""
            yield offset, decompressor, b"".join(out)
        if fed:
            self.clean = False  # the file ends inside a gzip member

    def _scan(self) -> None:
        with open(self.path, "rb") as handle:
            self.gzip = handle.read(2) == b"\x1f\x8b"
            decompressor = zlib.decompressobj(wbits=31) if self.gzip else None
            pending, lines, first = b"", 0, True
            self.checkpoints.append((0, decompressor.copy() if decompressor else None, 0, b""))
            for offset, decompressor, data in self._chunks(handle, 0, decompressor):
                if first and data:
                    first = False
                    if data.startswith(b"\xef\xbb\xbf"):
                        self.clean = False
                buf = pending + data
                if _BLANK_LINE.search(b"\n" + buf) or _TRAILING_COMMA.search(buf):
                    self.clean = False
                    return
                lines += buf.count(b"\n")
                pending = buf[buf.rfind(b"\n") + 1:]
                self.checkpoints.append((offset, decompressor.copy() if decompressor else None, lines, pending))
            if pending:
                lines += 1
                if not pending.strip(b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f"):
                    self.clean = False
            self.lines = lines

    def fetch(self, wanted: list[int]) -> dict[int, str]:
        """The text of the wanted lines (ascending numbers), decoded as :func:`events.read_file` decodes them."""
        found: dict[int, str] = {}
        if not wanted:
            return found
        starts = [c[2] for c in self.checkpoints]  # lines complete before each restart point
        position = 0
        with open(self.path, "rb") as handle:
            while position < len(wanted):
                index = bisect.bisect_left(starts, wanted[position]) - 1
                offset, decompressor, number, pending = self.checkpoints[index]
                for _, _, data in self._chunks(handle, offset, decompressor.copy() if decompressor else None):
                    index += 1
                    pieces = (pending + data).split(b"\n")
                    pending = pieces.pop()
                    for piece in pieces:
                        number += 1
                        if number == wanted[position]:
                            found[number] = piece.decode("utf-8", errors="replace").rstrip("\r")
                            position += 1
                            if position == len(wanted):
                                return found
                    if index + 1 < len(starts) and starts[index + 1] < wanted[position]:
                        break  # the next wanted line is past the next restart point: jump there
                else:
                    if pending and wanted[position] == number + 1:  # a last line without a newline
                        found[number + 1] = pending.decode("utf-8", errors="replace").rstrip("\r")
                    break
        return found
