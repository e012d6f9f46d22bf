"""Reading a Resolver log file for the DuckDB engine: the typed ``read_json`` pass, the JSON-text columns
of the exact path, and the Python line scan that checks DuckDB's records are the reference reader's lines.

``TypedRead``: Resolver lines read by ``read_json`` with a schema from the catalogue (no inference).
``SourceSQL``: how a log source's catalogue fields are computed from a JSON text column (the exact path,
records Python already read). ``LineScan``: the file's lines as :func:`r53sigma.scan.records.read_file` numbers
them, whether DuckDB's records are exactly those lines, and restart points to fetch chosen lines later.
"""
from __future__ import annotations

import bisect
import functools
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from r53sigma import catalogue
from r53sigma.scan import derived_fields, records as events_mod, sqlcompile

VALUE_TYPES = ("VARCHAR", "BIGINT", "UBIGINT", "BOOLEAN", "NULL")  # JSON types of values the columns hold as text


def _only(types: str, allowed: tuple[str, ...]) -> str:
    """Every JSON type name in the list ``types`` (NULL entries: absent) is one of ``allowed``."""
    return f"regexp_full_match(coalesce(array_to_string({types}, ','), ''), '(({'|'.join(allowed)}),)*({'|'.join(allowed)})?')"
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$"



def column_name(field: catalogue.Field) -> str:
    return '"f:' + field.name + '"'


def derived_columns(source: catalogue.LogSource, value_of) -> list[str]:
    """The derived fields' columns (registered domain, ...) from their source fields' SQL values
    (``value_of(name)``), each with its lower-cased twin as every scalar field has."""
    items = derived_fields.sql_columns(source, value_of, column_name)
    lowered = [f"lower({item.rsplit(' AS ', 1)[0]}) AS {lowered_name(field)}" for item, field in zip(items, source.derived.values())]
    return items + lowered


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
        cols: list[str] = []
        values: dict[str, str] = {}
        n = len(self.scalar_fields)
        for i, f in enumerate(self.scalar_fields):
            value = f"_v[{i + 1}]"
            if f.strip_trailing_dot:
                value = f"(CASE WHEN _norm THEN {sqlcompile.strip_dot(value)} ELSE {value} END)"
            cols.append(f"{value} AS {column_name(f)}")
            cols.append(f"lower({value}) AS {lowered_name(f)}")
            values[f.name] = value
        cols += derived_columns(self.source, values.__getitem__)
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
                value = sqlcompile.strip_dot(raw) if field.strip_trailing_dot else raw
                cols.append(f"{value} AS {column_name(field)}")
                cols.append(f"lower({value}) AS {lowered_name(field)}")
                if field.name in used:
                    fits.append(f"NOT coalesce({_odd_text(raw)}, false)")
        cols += derived_columns(self.source, lambda name: sqlcompile.strip_dot(self.fields[name])
                                if self.source.fields[name].strip_trailing_dot else self.fields[name])
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
    for top, names in members.items():
        struct = "STRUCT(" + ", ".join(f'"{n}" VARCHAR' for n in names) + ")"
        schema[top] = struct + "[]" if top in arrays else struct
    own = set(schema)
    others = sorted({n.split(".")[0] for s in log_sources().values() if s.source != source.source for n in s.fields} - own)
    schema.update((k, "VARCHAR") for k in others)
    return TypedRead(source, schema, fields, others)


_BLANK_LINE = re.compile(rb"\n[ \t\r\x0b\x0c\x1c-\x1f]*\n")  # what str.strip() empties, in ASCII
_TRAILING_COMMA = re.compile(rb",[ \t\r]*[}\]]")  # json.loads refuses it, DuckDB accepts it
_CHECKPOINT = 1 << 20  # compressed bytes between restart points


class LineScan(threading.Thread):
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
