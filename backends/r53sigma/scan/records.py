"""Raw Route 53 log records, read as AWS writes them, turned into normalised events.

A record is one of:

- a Resolver query log record: one JSON object (``query_name``, ``answers`` ...);
- a public hosted-zone query log line: space-separated columns, in the catalogue's ``columns`` order
  (a JSON object with the Logs Insights names is accepted too);
- a CloudTrail record: one JSON object (``eventSource``, ``eventName`` ...).

The log source is recognised from the record's keys, compared with the keys the catalogue lists for
each source. The catalogue's normalisation (``strip_trailing_dot``) is applied here, once, so every
consumer (the reference engine, ``scan``, ``verify``) sees the same values; ``Event.raw`` keeps the
record exactly as read. ``Event.time`` is the catalogue ``timestamp`` field as Unix seconds
(``None`` when the record has none).

Files are read by :func:`read_paths`: files, folders (recursively: ``.json``, ``.jsonl``, ``.ndjson``, ``.log``
and their ``.gz``), S3 delivery trees (``AWSLogs/<account>/vpcdnsquerylogs/<vpc>/YYYY/MM/DD/
*.log.gz``) and ``-`` for stdin. A file holds one record per line, or one JSON document (a
pretty-printed record, a JSON array, a CloudTrail ``{"Records": [...]}`` file or a CloudWatch Logs
subscription payload ``{"logEvents": [{"message": ...}]}``). Lines of a CloudWatch Logs export
(``<ISO time> <message>``) are read as their message. Gzip files may hold several members.
A line that is not a record and a truncated or corrupt gzip member are reported through
``on_error(ReadError)`` with file and line, and reading goes on: no complete line is lost.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from r53sigma import catalogue
from r53sigma.catalogue import LogSource
from r53sigma.scan import derived_fields
from r53sigma.scan.jsontext import UNPAIRED_SURROGATE, dump_json, holds_surrogate, load_json, may_hold_surrogate  # noqa: F401 (dump_json: read from here)

LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log")
CHUNK = 1 << 16
# A CloudWatch Logs export line: the ingestion time, a space, then the message.
_EXPORT_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z (?=[{\[])")


class RecordError(ValueError):
    """A raw record that is not a Route 53 record this package reads."""


@dataclass(frozen=True)
class Event:
    source: str  # catalogue log source: resolver, public_zone or cloudtrail
    record: dict[str, Any]  # normalised record (the engine's view)
    raw: Any  # the record as read: a dict, or the public hosted-zone line
    time: float | None  # the catalogue timestamp as Unix seconds
    file: str | None = None
    line: int | None = None
    index: int | None = None  # position in a multi-record document (CloudTrail Records, a JSON array)

    @property
    def origin(self) -> str:
        """``file:line``, with ``#n`` for the n-th record of a document starting on that line."""
        if not self.file:
            return "<input>"
        return f"{self.file}:{self.line}" + (f"#{self.index}" if self.index else "")


@dataclass(frozen=True)
class ReadError:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line else f"{self.file}: {self.reason}"


# ---------------------------------------------------------------- one record


def parse_record(raw: Any, *, file: str | None = None, line: int | None = None, index: int | None = None) -> Event:
    """A normalised event from one raw record (a dict, a JSON text or a public hosted-zone line)."""
    record: dict[str, Any]
    if isinstance(raw, str):
        text = _EXPORT_PREFIX.sub("", raw.strip(), count=1)
        if text.startswith("{"):
            try:
                record = load_json(text)
            except json.JSONDecodeError as error:
                raise RecordError(f"invalid JSON: {error.msg} at column {error.colno}") from None
            if may_hold_surrogate(text) and holds_surrogate(record):
                raise RecordError(UNPAIRED_SURROGATE)
            raw = record
        else:
            return _event(_log_sources()["public_zone"], _public_zone_line(text), raw, file, line, index)
    elif isinstance(raw, dict):
        record = raw
    else:
        raise RecordError(f"a record is a JSON object or a log line, not {type(raw).__name__}")
    if not isinstance(record, dict):
        raise RecordError("a record is a JSON object")
    return _event(_log_sources()[detect_source(record)], record, raw, file, line, index)


def detect_source(record: dict[str, Any]) -> str:
    """The catalogue log source whose top-level keys best cover the record's keys."""
    keys = set(record)
    best, best_score = None, 0
    for log_source in _log_sources().values():
        own = _top_level_keys(log_source.source)
        score = len(keys & own) + (2 if log_source.timestamp in keys else 0)
        if score > best_score:
            best, best_score = log_source.source, score
        elif score == best_score:
            best = None if score else best
    if best is None or best_score < 2:
        raise RecordError(
            "not a Route 53 Resolver, public hosted-zone or CloudTrail record (keys: "
            + ", ".join(sorted(keys)[:8])
            + ")"
        )
    return best


def parse_time(value: Any) -> float | None:
    """ISO 8601 (with or without fractions, ``Z`` or an offset) or epoch seconds/milliseconds -> Unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = value / 1000.0 if value > 1e11 else float(value)
        except OverflowError:  # an integer past any float
            return None
        # a time alerts can print: finite (JSON's Infinity and NaN are none) and within years 1 to 9999
        return seconds if _FIRST_SECOND <= seconds <= _LAST_SECOND else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None


_FIRST_SECOND = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()
_LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def format_time(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    text = stamp.isoformat(timespec="milliseconds" if seconds % 1 else "seconds")
    return text.replace("+00:00", "Z")


def _event(log_source: LogSource, record: dict, raw: Any, file: str | None, line: int | None, index: int | None) -> Event:
    record = _normalise(log_source, record)
    time = parse_time(record.get(log_source.timestamp))
    if time is None and record.get(log_source.timestamp) not in (None, ""):
        value = record[log_source.timestamp]
        what = "an ISO 8601 time" if isinstance(value, str) else "a time (epoch seconds or milliseconds, years 1 to 9999)"
        raise RecordError(f"{log_source.timestamp} {value!r} is not {what}")
    return Event(log_source.source, record, raw, time, file, line, index)


def _public_zone_line(text: str) -> dict[str, Any]:
    columns = _log_sources()["public_zone"].columns
    values = text.split()
    # The EDNS client subnet column is the last and optional.
    if len(values) not in (len(columns), len(columns) - 1) or not values:
        raise RecordError(
            f"neither JSON nor a public hosted-zone query log line ({len(values)} columns, expected {len(columns)})"
        )
    record = dict(zip(columns, values))
    if parse_time(record[columns[1]]) is None:
        raise RecordError(f"neither JSON nor a public hosted-zone query log line ({columns[1]} {values[1]!r})")
    return {k: v for k, v in record.items() if v != "-"}


def _normalise(log_source: LogSource, record: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record with the catalogue's normalisations applied (the input is left alone)."""
    steps = _normalised_paths(log_source.source)
    if not steps and not log_source.derived:
        return record
    record = _copy_json(record)
    for path in steps:
        _strip_dots(record, path)
    derived_fields.add(log_source, record)
    return record


def _strip_dots(node: Any, path: tuple[str, ...]) -> None:
    work = [(node, path)]  # an explicit stack: lists may nest arbitrarily deep
    while work:
        node, path = work.pop()
        if isinstance(node, list):
            work.extend((item, path) for item in node)
            continue
        if not isinstance(node, dict) or path[0] not in node:
            continue
        if len(path) > 1:
            work.append((node[path[0]], path[1:]))
            continue
        value = node[path[0]]
        if isinstance(value, str) and len(value) > 1 and value.endswith("."):
            node[path[0]] = value[:-1]
        elif isinstance(value, list):
            node[path[0]] = [v[:-1] if isinstance(v, str) and len(v) > 1 and v.endswith(".") else v for v in value]


def _copy_json(value: Any) -> Any:
    """A deep copy of dicts and lists, at any depth."""
    if not isinstance(value, (dict, list)):
        return value
    root = {} if isinstance(value, dict) else []
    work = [(value, root)]
    while work:
        source, target = work.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, (dict, list)):
                copy = {} if isinstance(item, dict) else []
                work.append((item, copy))
                item = copy
            if isinstance(target, dict):
                target[key] = item
            else:
                target.append(item)
    return root


@functools.cache
def _log_sources() -> dict[str, LogSource]:
    return catalogue.load()


@functools.cache
def _top_level_keys(source: str) -> frozenset[str]:
    log_source = _log_sources()[source]
    return frozenset(name.split(".")[0] for name in log_source.fields)


@functools.cache
def _normalised_paths(source: str) -> tuple[tuple[str, ...], ...]:
    log_source = _log_sources()[source]
    return tuple(tuple(f.name.split(".")) for f in log_source.fields.values() if f.strip_trailing_dot)


# ---------------------------------------------------------------- files


OnError = Callable[[ReadError], None]


def read_paths(paths: Iterable[str | Path], on_error: OnError | None = None) -> Iterator[Event]:
    """Events from files, folders and ``-`` (stdin), in a stable order; problems go to ``on_error``."""
    report = on_error or (lambda error: None)
    for path in paths:
        if str(path) == "-":
            yield from _read_stream("<stdin>", text_lines(_stream_chunks(sys.stdin.buffer, report)), report)
            continue
        path = Path(path)
        if not path.exists():
            report(ReadError(str(path), None, "no such file or folder"))
            continue
        for file in log_files(path):
            yield from read_file(file, report)


@dataclass(frozen=True)
class StoredSize:
    """A file's size on disk and the text it holds as far as that tells, before it is read."""
    disk: int
    text: int  # a gzip file's as its last member's trailer states it: for a multi-member file, that member's only
    gzipped: bool


def stored_size(file: Path) -> StoredSize:
    """The sizes of a file (raises OSError where it cannot be read)."""
    with open(file, "rb") as handle:
        disk = os.fstat(handle.fileno()).st_size
        if handle.read(2) != b"\x1f\x8b" or disk < 18:
            return StoredSize(disk, disk, False)
        handle.seek(-4, 2)
        return StoredSize(disk, int.from_bytes(handle.read(4), "little"), True)


def log_files(path: Path) -> list[Path]:
    """The log files a path names: itself, or the log files below a folder (hidden ones left out)."""
    if not path.is_dir():
        return [path]
    found = []
    for file in sorted(path.rglob("*")):
        parts = file.relative_to(path).parts
        if file.is_file() and not any(p.startswith(".") for p in parts) and _is_log_name(file.name):
            found.append(file)
    return found


def _is_log_name(name: str) -> bool:
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(LOG_SUFFIXES)


def read_file(path: Path, on_error: OnError) -> Iterator[Event]:
    name = str(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            chunks = _gunzip(handle, name, on_error) if head == b"\x1f\x8b" else iter(lambda: handle.read(CHUNK), b"")
            yield from _read_stream(name, text_lines(chunks), on_error)
    except OSError as error:
        on_error(ReadError(name, None, f"cannot read: {error.strerror or error}"))


def _stream_chunks(stream, on_error: OnError) -> Iterator[bytes]:
    """A stream's bytes, gunzipped when it starts with gzip's magic bytes (as files are sniffed)."""
    head = stream.read(2)
    if head == b"\x1f\x8b":
        yield from _gunzip(_Prefixed(head, stream), "<stdin>", on_error)
        return
    yield head
    read = getattr(stream, "read1", stream.read)
    yield from iter(lambda: read(CHUNK), b"")


class _Prefixed:
    """A stream whose first bytes were already read."""

    def __init__(self, prefix: bytes, stream):
        self.prefix, self.stream = prefix, stream

    def read(self, size: int) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        return self.stream.read(size)


def _gunzip(handle, name: str, on_error: OnError) -> Iterator[bytes]:
    """Decompressed bytes of every gzip member; a truncated or corrupt member is reported and ends the file."""
    decompressor = zlib.decompressobj(wbits=31)
    fed = False
    while True:
        chunk = handle.read(CHUNK)
        if not chunk:
            break
        while chunk:
            fed = True
            try:
                data = decompressor.decompress(chunk)
            except zlib.error as error:
                yield Problem(f"corrupt gzip data ({error}); the rest of the file is skipped")
                return
            if data:
                yield data
            if decompressor.eof:  # a member ended; another may follow
                chunk = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                fed = False
                if chunk.lstrip(b"\x00") == b"":  # padding after the last member
                    chunk = b""
            else:
                chunk = b""
    if fed and not decompressor.eof:
        tail = decompressor.flush()
        if tail:
            yield tail
        yield Problem("truncated gzip member: the file ends inside it; its incomplete last line is skipped")


class Problem(str):
    """A decompression problem, passed along the byte stream so it is reported at the line where it happened."""


def text_lines(chunks: Iterable[bytes] | io.BufferedReader) -> Iterator[str | Problem]:
    """Lines of text (UTF-8, any newline); a decompression problem comes through as a marker."""
    if isinstance(chunks, io.BufferedIOBase):
        stream = chunks
        chunks = iter(lambda: stream.read1(CHUNK) if hasattr(stream, "read1") else stream.read(CHUNK), b"")
    pending = b""
    for chunk in chunks:
        if isinstance(chunk, Problem):
            yield chunk
            pending = b""  # the incomplete line goes with the problem
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace").rstrip("\r")


def _read_stream(name: str, lines: Iterator[str], on_error: OnError) -> Iterator[Event]:
    number = 0
    first = True
    for text in lines:
        if isinstance(text, Problem):
            on_error(ReadError(name, number + 1, str(text)))
            continue
        number += 1
        stripped = text.strip()
        if not stripped:
            continue
        if first and starts_document(stripped):
            yield from _read_document(name, number, text, lines, on_error)
            return
        first = False
        yield from _records_of(stripped, name, number, on_error)


def _read_document(name: str, number: int, text: str, lines: Iterator[str], on_error: OnError) -> Iterator[Event]:
    """A file that opens like a pretty-printed JSON document: read it whole, else line by line."""
    gathered = [text]
    problems = []
    for more in lines:
        if isinstance(more, Problem):
            problems.append(ReadError(name, number + len(gathered), str(more)))
        else:
            gathered.append(more)
    try:
        document = load_json("\n".join(gathered))
    except json.JSONDecodeError:
        document = None
    if document is not None:
        yield from _records_of(document, name, number, on_error, suspect=may_hold_surrogate("\n".join(gathered)))
    else:  # not one document after all: every line on its own, so no good line is lost
        for offset, line in enumerate(gathered):
            if line.strip():
                yield from _records_of(line.strip(), name, number + offset, on_error)
    for problem in problems:
        on_error(problem)


def starts_document(stripped: str) -> bool:
    """A first line such as ``{`` or ``[`` that is not a record on its own."""
    if stripped[0] not in "{[":
        return False
    try:
        load_json(stripped)
    except json.JSONDecodeError:
        return True
    return False


def _records_of(item: Any, name: str, number: int, on_error: OnError, suspect: bool = False) -> Iterator[Event]:
    """``suspect``: the text ``item`` was read from may hold an unpaired surrogate escape."""
    if isinstance(item, str):
        text = _EXPORT_PREFIX.sub("", item, count=1)
        if text[:1] in ("{", "["):
            try:
                item = load_json(text)
            except json.JSONDecodeError as error:
                on_error(ReadError(name, number, f"invalid JSON: {error.msg} at column {error.colno}"))
                return
            suspect = may_hold_surrogate(text)
    records = expand(item)
    for index, record in enumerate(records, 1):
        if suspect and holds_surrogate(record):
            on_error(ReadError(name, number, (f"record {index}: " if len(records) > 1 else "") + UNPAIRED_SURROGATE))
            continue
        try:
            yield parse_record(record, file=name, line=number, index=index if len(records) > 1 else None)
        except RecordError as error:
            where = f"record {index}: " if len(records) > 1 else ""
            on_error(ReadError(name, number, where + str(error)))


def expand(document: Any) -> list[Any]:
    """The records a JSON document holds: CloudTrail ``Records``, CloudWatch ``logEvents`` messages, arrays
    (arrays of arrays flattened, at any depth)."""
    out, work = [], [document]
    while work:
        item = work.pop()
        if isinstance(item, list):
            work.extend(reversed(item))
        elif isinstance(item, dict) and isinstance(item.get("Records"), list):
            out.extend(item["Records"])
        elif isinstance(item, dict) and isinstance(item.get("logEvents"), list):
            out.extend(e.get("message") if isinstance(e, dict) else e for e in item["logEvents"])
        else:
            out.append(item)
    return out


def line_events(text: str, name: str, number: int, on_error: OnError) -> Iterator[Event]:
    """The events of one line of a file as :func:`read_file` reads it (a blank line has none; a malformed
    one is reported), for engines that read the other lines themselves."""
    stripped = text.strip()
    if stripped:
        yield from _records_of(stripped, name, number, on_error)
