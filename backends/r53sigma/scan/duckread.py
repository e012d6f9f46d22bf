"""Reading a Resolver log file for the DuckDB engine: the typed pass over the file's lines and the
JSON-text columns of the exact path.

``TypedRead``: Resolver lines read once by DuckDB (each line a text, typed by ``json_transform`` with a
schema from the catalogue, no inference), with the checks that they are the reference reader's lines.
``SourceSQL``: how a log source's catalogue fields are computed from a JSON text column (the exact path,
records Python already read).
"""
from __future__ import annotations

import functools
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from r53sigma import catalogue
from r53sigma.scan import derived_fields, records as events_mod, sqltext

VALUE_TYPES = ("VARCHAR", "BIGINT", "UBIGINT", "BOOLEAN", "NULL")  # JSON types of values the columns hold as text


def _only(types: str, allowed: tuple[str, ...]) -> str:
    """Every JSON type name in the list ``types`` (NULL entries: absent) is one of ``allowed``."""
    return f"regexp_full_match(coalesce(array_to_string({types}, ','), ''), '(({'|'.join(allowed)}),)*({'|'.join(allowed)})?')"
# The times the columns take: those Python's datetime.fromisoformat reads as DuckDB's cast does (year 1 to
# 9999: DuckDB also casts year 0, which Python refuses, so that line goes to the reference reader)
_TIME = r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$"



def column_name(field: catalogue.Field) -> str:
    return '"f:' + field.name + '"'


SPLIT_FUNCTION = "r53sigma_split"  # (registered domain, subdomain) of a name: registered by the engine


def derived_columns(source: catalogue.LogSource, value_of, split_of=None) -> list[str]:
    """The derived fields' columns (registered domain, ...) from their source fields' SQL values
    (``value_of(name)``), each with its lower-cased twin as every scalar field has. With ``split_of``
    (source field -> the column :func:`split_columns` computed), the Public Suffix List split is that
    SQL column; else one memoised Python call a row shared by the fields derived from one name
    (identical expressions: DuckDB computes them once a row)."""
    items, lowered = [], []
    for field in source.derived.values():
        derived = field.derived
        if derived.by == "name_length":  # plain SQL beside the split, never the Python function
            value = derived_fields.sql_value(derived, value_of)
            items.append(f"{value} AS {column_name(field)}")
            lowered.append(f"{value} AS {lowered_name(field)}")
            continue
        if derived.by != "public_suffix_list" or derived.part not in _SPLIT_PARTS:
            return derived_fields.sql_columns(source, value_of, column_name) + [
                f"lower({derived_fields.sql_value(f.derived, value_of)}) AS {lowered_name(f)}" for f in source.derived.values()]
        split = split_of(derived.source_field) if split_of else f"{SPLIT_FUNCTION}({value_of(derived.source_field)})"
        value = f"{split}[{_SPLIT_PARTS[derived.part]}]"
        items.append(f"{value} AS {column_name(field)}")
        lowered.append(f"lower({value}) AS {lowered_name(field)}")
    return items + lowered


def split_column(source_field: str) -> str:
    return '"psl:' + source_field + '"'


def split_columns(source: catalogue.LogSource, value_of, python: bool = False) -> list[str] | None:
    """SELECT items computing, once a row, the Public Suffix List split of each name a derived field is
    taken from, in SQL (:func:`r53sigma.scan.registered_domain.split_sql`), over the name's labels
    (:func:`split_relation`); None when some derived field is not such a part (those keep the Python
    function). With ``python``, names whose last two labels end no rule key are split in SQL
    (:func:`r53sigma.scan.registered_domain.two_label_split_sql`) and the others by the memoised Python
    function, called for those rows only."""
    from r53sigma.scan import registered_domain

    names = _split_names(source)
    if names is None:
        return None
    if python:
        return [f"{registered_domain.two_label_split_sql(value_of(name), _labels_column(name), _last_two_hash_column(name), f'{SPLIT_FUNCTION}({value_of(name)})')} "
                f"AS {split_column(name)}" for name in names]
    return [f"{registered_domain.split_sql(value_of(name), _labels_column(name))} AS {split_column(name)}" for name in names]


def split_relation(relation: str, splits: list[str], source: catalogue.LogSource, value_of) -> str:
    """The relation (a FROM item) with the :func:`split_columns` ``splits``: a projection of each name's
    lower-cased labels (computed once a row, not at each place the split reads them), then one of the splits."""
    from r53sigma.scan import registered_domain

    names = _split_names(source) or ()
    labels = ", ".join(f"{registered_domain.labels_sql(value_of(name))} AS {_labels_column(name)}" for name in names)
    if not splits:
        return f"SELECT * FROM {relation}"
    # the hash of the last two labels a column of its own, for the two-label split (unused: pruned by DuckDB)
    hashes = ", ".join(f"hash({registered_domain.last_two_sql(_labels_column(name))}) AS {_last_two_hash_column(name)}"
                       for name in names)
    return f"SELECT *, {', '.join(splits)} FROM (SELECT *, {hashes} FROM (SELECT *, {labels} FROM {relation}))"


def _split_names(source: catalogue.LogSource) -> list[str] | None:
    fields = [f.derived for f in source.derived.values() if f.derived.by != "name_length"]  # plain SQL anyway
    if any(d.by != "public_suffix_list" or d.part not in _SPLIT_PARTS for d in fields):
        return None
    return list(dict.fromkeys(d.source_field for d in fields))


def _labels_column(source_field: str) -> str:
    return '"psl-labels:' + source_field + '"'


def _last_two_hash_column(source_field: str) -> str:
    return '"psl-h2:' + source_field + '"'


_SPLIT_PARTS = {"registered_domain": 1, "subdomain": 2}


def register_split(con) -> None:
    """``r53sigma_split(name)``: [registered domain, subdomain] of a name, as :mod:`r53sigma.scan.derived_fields`
    derives them (NULL in, NULL out), memoised per name (names repeat in DNS logs)."""
    import duckdb
    from r53sigma.scan import registered_domain

    memo: dict[str, list] = {}

    def split(name: str | None) -> list | None:
        if name is None:
            return None
        found = memo.get(name)
        if found is None:
            if len(memo) > 200_000:
                memo.clear()
            found = memo[name] = list(registered_domain.split(name))
        return found

    con.create_function(SPLIT_FUNCTION, split, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR[]"),
                        null_handling="special", side_effects=False)


def lowered_name(field: catalogue.Field) -> str:
    """The column holding lower() of a scalar field: computed once a row for every rule that folds case."""
    return '"l:' + field.name + '"'


def _json_path(parts: list[str]) -> str:
    return "$" + "".join(f'."{p}"' for p in parts)


@dataclass
class SourceSQL:
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
            f"json_extract_string(json, [{', '.join(map(sqltext.quote, paths))}]) AS _v",
            f"json_type(json, [{', '.join(map(sqltext.quote, paths + containers))}]) AS _ty",
        ]
        if arrays:
            cols.append(f"json_extract(json, [{', '.join(sqltext.quote(_json_path(a.split('.'))) for a in arrays)}]) AS _arr")
        for i, f in enumerate(self.list_fields):
            array = f.array.split(".")
            source = f"_arr[{arrays.index(f.array) + 1}]"
            rest = f.name.split(".")[len(array):]
            wildcard = "$[*]" + "".join(f'."{p}"' for p in rest)
            cols.append(f"json_extract_string({source}, {sqltext.quote(wildcard)}) AS _lv{i}")
            cols.append(f"json_type({source}, {sqltext.quote(wildcard)}) AS _lt{i}")
            for depth in range(len(rest)):  # the array's elements and objects inside them
                inner = "$[*]" + "".join(f'."{p}"' for p in rest[:depth])
                cols.append(f"json_type({source}, {sqltext.quote(inner)}) AS _le{i}_{depth}")
        return ", ".join(cols)

    def _values(self) -> dict[str, str]:
        """Scalar field -> its normalised SQL value over the parsed columns."""
        values: dict[str, str] = {}
        for i, f in enumerate(self.scalar_fields):
            value = f"_v[{i + 1}]"
            if f.strip_trailing_dot:
                value = f"(CASE WHEN _norm THEN {sqltext.strip_dot(value)} ELSE {value} END)"
            values[f.name] = value
        return values

    def split_columns(self) -> list[str]:
        """The SQL Public Suffix List splits :meth:`view_columns` reads, to select over the parsed columns
        (a layer of their own, so that each is planned once); none where derived fields need Python."""
        return split_columns(self.source, self._values().__getitem__) or []

    def with_splits(self, relation: str) -> str:
        """The relation (a FROM item of parsed columns) with :meth:`split_columns` (:func:`split_relation`)."""
        return split_relation(relation, self.split_columns(), self.source, self._values().__getitem__)

    def view_columns(self) -> str:
        """Field columns (normalised text, or lists of it without nulls) and the ``_fit`` shape flag,
        over the parsed columns and :meth:`split_columns`."""
        cols: list[str] = []
        values = self._values()
        n = len(self.scalar_fields)
        for f in self.scalar_fields:
            cols.append(f"{values[f.name]} AS {column_name(f)}")
            cols.append(f"lower({values[f.name]}) AS {lowered_name(f)}")
        sql_split = split_columns(self.source, values.__getitem__) is not None
        cols += derived_columns(self.source, values.__getitem__, split_column if sql_split else None)
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
            element = "lambda x: " + (f"CASE WHEN _norm THEN {sqltext.strip_dot('x')} ELSE x END" if f.strip_trailing_dot else "x")
            cols.append(f"list_transform(list_filter(coalesce(_lv{i}, []), lambda x: x IS NOT NULL), {element}) AS {column_name(f)}")
            fits.append(_only(f"_lt{i}", VALUE_TYPES))
            depth = len(f.name.split(".")) - len(f.array.split("."))
            fits.extend(_only(f"_le{i}_{d}", ("OBJECT", "NULL")) for d in range(depth))
        return ", ".join(cols) + ", (" + " AND ".join(fits) + ") AS _fit"


@functools.cache
def log_sources() -> dict[str, catalogue.LogSource]:
    return catalogue.load()


def head_chunks(file: Path) -> Iterator[bytes]:
    """The first bytes of a file, decompressed, enough to see its first line."""
    with open(file, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:2] == b"\x1f\x8b":
        try:
            yield zlib.decompressobj(wbits=31).decompress(head, 1 << 16)
        except zlib.error:
            yield events_mod.Problem("corrupt")
        return
    yield head


# ---------------------------------------------------------------- the fast path's reading


@dataclass
class TypedRead:
    """Resolver lines typed with a schema from the catalogue: typed columns, no inference.

    Scalars are VARCHAR (DuckDB writes a JSON number or boolean as the text Python's ``str`` gives, and
    an object or array as its JSON text); a field under an array is a list of structs; the other log
    sources' top-level keys (and ``Records``/``logEvents``, which make an object a list of records) are
    looked for in the line's text, to see records that are not Resolver records. ``_fit`` is false for a
    row the columns may not represent as the reference reader would (a container or NaN where the
    catalogue has a value, another source's key, no plain ISO 8601 ``query_timestamp``): such a line is
    read by the exact path."""

    source: catalogue.LogSource
    schema: dict[str, str]
    fields: dict[str, str]  # catalogue field -> SQL of its raw value (scalar text, or list of element texts)
    others: list[str]  # other log sources' top-level keys
    containers: dict[str, str]  # top-level key -> "array" (of objects) or "object"
    json_types: dict[str, Any]  # top-level container key -> its json_transform structure

    def select(self, name: str, used: set[str], derived: bool = True, sql_split: bool = False) -> str:
        """The rows in file order with ``_time``, ``_fit``, ``_text`` (the line) and one column per ``used``
        field (the columns something reads); ``_fit`` looks at those fields only (a value no rule reads
        cannot change an alert: alerts show the line itself). The derived fields' columns only when
        ``derived`` (some rule reads one); their Public Suffix List split in SQL when ``sql_split`` (see
        :func:`split_in_sql`; its key lookups are joins, so the engine runs such a pass on one thread), else
        in SQL where the last two labels decide and by the memoised Python function elsewhere.

        One read, one decompression: DuckDB's CSV reader gives each line as one text (a delimiter JSON
        text cannot hold, no quoting; an empty line is a NULL row, so row numbers are line numbers), then
        ``json_transform`` types it. A row that does not fit (a malformed or blank line, another log source's
        record, a value the columns cannot hold) keeps its text for the reference reader. The transform is lenient (a value of another JSON type is NULL),
        so the containers come through as JSON text first and their shape is checked on that small text
        (a list: of flat objects, :data:`_FLAT_LIST`): an object where a list is expected would be NULL
        here and a value to the reference reader.
        One known difference: the CSV reader also ends a line at a lone carriage return, so two complete
        objects joined by one are two events here and one malformed line to the reference reader."""
        # only the fields something reads are members of the typed structure (each member costs the
        # transform a lookup and a column); the timestamp always, the derived fields' sources with them
        present = set(used) | {self.source.timestamp}
        if derived:
            present |= {f.derived.source_field for f in self.source.derived.values()}
        tops = {name.split(".")[0] for name in present}
        outer = {k: "JSON" if k in self.containers else "VARCHAR" for k in self.schema if k in tops}
        cols, fits = [], []
        for field in self.source.fields.values():
            if field.name not in present:
                continue
            raw = self.fields[field.name]
            if field.array:
                # nulls dropped (the reference's values_at); strip_trailing_dot on each element
                element = sqltext.strip_dot("x") if field.strip_trailing_dot else "x"
                cols.append(f"list_transform(list_filter({raw}, lambda x: x IS NOT NULL), lambda x: {element}) AS {column_name(field)}")
                # no container nor NaN in the list's elements: the list's shape check (_FLAT_LIST) sees to it
            else:
                value = sqltext.strip_dot(raw) if field.strip_trailing_dot else raw
                cols.append(f"{value} AS {column_name(field)}")
                cols.append(f"lower({value}) AS {lowered_name(field)}")
                if field.name in used:
                    fits.append(f"NOT coalesce({_odd_text(raw)}, false)")
        value_of = lambda name: (sqltext.strip_dot(self.fields[name])
                                 if self.source.fields[name].strip_trailing_dot else self.fields[name])
        splits = split_columns(self.source, value_of, python=not sql_split) if derived else None
        if derived:
            cols += derived_columns(self.source, value_of, split_column if splits is not None else None)
        ts = self.fields[self.source.timestamp]
        fits.append(f"coalesce(regexp_full_match({ts}, '{_TIME}'), false) AND TRY_CAST(rtrim({ts}, 'Z') AS TIMESTAMP) IS NOT NULL")
        fits.append("_shape")
        # the line is an object (a blank line is NULL: the reference skips it, the caller reads such a file
        # exactly); no trailing comma nor bare inf/nan, which DuckDB's parser accepts and json.loads refuses;
        # no other log source's key (_line_text_tests)
        shape = [f"CASE WHEN ascii(_text) = 123 THEN true ELSE coalesce(ascii(ltrim(_text, {sqltext.quote(_BLANK)})) = 123, false) END",
                 *_line_text_tests("_text", self.others)]
        typed = []
        for top, kind in self.containers.items():
            if top not in outer:
                continue
            column = f'"{top}"'
            spec = self.json_types[top]
            members = {m: t for m, t in (spec[0] if kind == "array" else spec).items() if f"{top}.{m}" in present}
            spec = [members] if kind == "array" else members
            typed.append(f"json_transform({column}, {sqltext.quote(json.dumps(spec))}) AS {column}")
            if kind == "array":  # a list of flat objects (the reference flattens nested lists: the exact path)
                shape.append(f"({column} IS NULL OR regexp_full_match({column}, {sqltext.quote(_FLAT_LIST)}))")
            else:  # JSON null is NULL
                shape.append(f"({column} IS NULL OR ascii({column}) = 123)")
        read = lines_of(name)
        # a line that is no JSON (or blank) is a row of NULLs, not the query's error: it does not fit, and the
        # caller gives its text to the reference reader, which reports it as it would
        lines = f"SELECT line AS _text, unnest(try(json_transform(line, {sqltext.quote(json.dumps(outer))}))) FROM {read}"
        shaped = (
            f"SELECT * REPLACE ({', '.join(typed)}), ({' AND '.join(shape)}) AS _shape FROM ({lines})"
            if typed else f"SELECT *, ({' AND '.join(shape)}) AS _shape FROM ({lines})"
        )
        if splits:  # a layer of its own: each split's suffix lookups (mark joins) planned once
            shaped = split_relation(f"({shaped})", splits, self.source, value_of)
        return (
            f"SELECT epoch_us(TRY_CAST(rtrim({ts}, 'Z') AS TIMESTAMP)) / 1000000.0 AS _time, "
            f"({' AND '.join(fits)}) AS _fit, _text, {', '.join(cols)} FROM ({shaped})"
        )


MAX_LINE_BYTES = 4 << 20
READ_BUFFER_BYTES = 8 << 20  # DuckDB's reader splits the file's text among its threads by buffers


def lines_of(name: str) -> str:
    """The file's lines as DuckDB reads them (column ``line``), the same texts on every read of the file."""
    return (
        f"read_csv({sqltext.quote(name)}, columns = {{'line': 'VARCHAR'}}, delim = {sqltext.quote(chr(1))}, "
        f"quote = '', escape = '', header = false, auto_detect = false, strict_mode = true, "
        f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {READ_BUFFER_BYTES})"
    )


def _odd_text(value: str) -> str:
    """A text DuckDB made from a JSON container or NaN/Infinity (its text differs from the reference's view)."""
    return f"(ascii({value}) IN (91, 123) OR {value} IN ('NaN', 'Infinity', '-Infinity'))"


@functools.cache
def typed_read() -> TypedRead | None:
    """The Resolver schema, or None when the catalogue nests deeper than the typed read handles."""
    source = log_sources()["resolver"]
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
    containers: dict[str, str] = {}
    json_types: dict[str, Any] = {}
    for top, names in members.items():
        struct = "STRUCT(" + ", ".join(f'"{n}" VARCHAR' for n in names) + ")"
        schema[top] = struct + "[]" if top in arrays else struct
        containers[top] = "array" if top in arrays else "object"
        members_spec = {n: "VARCHAR" for n in names}
        json_types[top] = [members_spec] if top in arrays else members_spec
    own = set(schema)
    others = sorted({n.split(".")[0] for s in log_sources().values() if s.source != source.source for n in s.fields}
                    - own | set(EXPANDED_KEYS))
    return TypedRead(source, schema, fields, others, containers, json_types)


EXPANDED_KEYS = ("Records", "logEvents")  # an object holding a list under one of them is its records (records.expand)
_BLANK = " \t\r"  # JSON's white space within a line
_WS = r"[ \t\r]*"
# A list of objects none of which holds a container or a bare NaN/Infinity (in any spelling: yyjson's, not only
# Python's), or null: over the list's JSON text as DuckDB writes it (minified; strings whole, quotes escaped).
_FLAT_OBJECT = r'\{("([^"\\]|\\.)*"|[^"{}\[\]iInN]|null)*\}'
_FLAT_LIST = rf"\[(({_FLAT_OBJECT}|null)(,({_FLAT_OBJECT}|null))*)?\]"


# A bare value json.loads refuses and DuckDB's parser (yyjson) reads as a number: inf, nan, Infinity in any
# case, with a sign (json.loads takes NaN, Infinity and -Infinity only). Conservative: any bare token opening
# with one of the letters but null's, after a colon, comma or bracket, and the same text inside a string.
# Tested on every line (a line only DuckDB reads would be an event the reference reports as malformed).
_REFUSED_TOKEN = r"[+-]?[iIN]|[+-]?n[^u]|[+-]n"


def _line_text_tests(text: str, keys: list[str]) -> list[str]:
    """Tests over a line's text that hold when no ``keys`` is a key of its object, nor a trailing comma in it
    (``json.loads`` refuses one, DuckDB's parser accepts it), nor a bare token only DuckDB's parser takes
    (_REFUSED_TOKEN). Conservative: a key is written either as itself (after the object's ``{`` or after a
    comma, with white space) or with a ``\\u`` escape, so a line where one of the texts appears elsewhere (a
    value) fails too and is read exactly. Each regex is led by a literal byte, which RE2 skips to (memchr;
    led by the class [:,\\[] it steps through every byte, 3.4x the CPU): one led by a comma for the keys
    after the first, the trailing commas and the tokens after a comma, one anchored at the line's start for
    its first key, one each for the tokens after a colon and a bracket, and a substring test for escapes:
    each much cheaper than a member of the typed structure per key, and, unlike a member (NULL for JSON
    null), it sees a key whose value is null."""
    keys = "(" + "|".join(map(re.escape, keys)) + ")"
    after_comma = ",{ws}([}}\\]]|\"{keys}\"|{tokens})".format(ws=_WS, keys=keys, tokens=_REFUSED_TOKEN)
    first = "^{ws}\\{{{ws}\"{keys}\"".format(ws=_WS, keys=keys)
    tokens = [f"{lead}{_WS}({_REFUSED_TOKEN})" for lead in (":", r"\[")]
    return [f"NOT regexp_matches({text}, {sqltext.quote(after_comma)})",
            f"NOT regexp_matches({text}, {sqltext.quote(first)})",
            *(f"NOT regexp_matches({text}, {sqltext.quote(t)})" for t in tokens),
            f"NOT contains({text}, {sqltext.quote(chr(92) + 'u')})"]


# Measured (bench/README.md, round 4, psl): in the pass the SQL split costs ~8 us CPU a line more than the
# memoised Python function, which costs ~0.3 s once (registering it imports numpy) and ~2 us a line.
# Below ~40k lines the SQL split is cheaper: a file expected under this many bytes of text gets it.
SQL_SPLIT_BYTES = 8 << 20


def split_in_sql(file: Path) -> bool:
    """The file's text is small enough that the SQL split costs less than loading the Python function
    (a gzip file's size as its last member's trailer states it, a guess for multi-member files: a large one
    judged small is read on one thread, slower but in file order)."""
    try:
        return events_mod.stored_size(file).text < SQL_SPLIT_BYTES
    except OSError:
        return False
