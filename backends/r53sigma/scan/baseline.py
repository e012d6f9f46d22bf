"""First-seen rules on the local engines: the baseline file and the filter over a rule's candidate alerts.

Both engines report every candidate event of a first-seen rule (its Sigma detection, evaluated as any
plain rule); :func:`first_seen_alerts` keeps, in event-time order, the events whose combination of
``first_seen.fields`` values was not seen in the ``history`` before them, counting the baseline file and
the earlier events of the scan. So a value alerts once, at its first occurrence, and again only after
being absent for longer than the history. Both engines give the same candidates, so they agree here too.

Baseline file (CSV, UTF-8), one row per rule and value combination::

    # r53sigma first-seen baseline v1
    rule_id,values,first_seen,last_seen
    8f6c...,"[""111122223333"", ""example.com""]",2026-11-18T09:12:00Z,2026-12-01T23:59:10Z

``values``: a JSON array of the field values in ``first_seen.fields`` order; times ISO 8601 UTC (only
``last_seen`` decides). The first line marks a file r53sigma wrote: ``--baseline-update`` rewrites only
such a file (or creates a new one), never a file of someone else's. Any file with the header row can be read.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from r53sigma import first_seen
from r53sigma.scan.results import Alert
from r53sigma.scan.values import as_text, field_path, log_source_of, values_at

MARKER = "# r53sigma first-seen baseline v1"
COLUMNS = ["rule_id", "values", "first_seen", "last_seen"]

Key = tuple[str, tuple[str, ...]]  # (rule id, values)
Row = tuple[str, tuple[str, ...], float, float]  # (rule id, values, first_seen, last_seen) as Unix seconds


class BaselineError(ValueError):
    """A baseline file that cannot be read or must not be written: the message names the file."""


@dataclass
class Baseline:
    seen: dict[Key, list[float]] = field(default_factory=dict)  # key -> [first_seen, last_seen] (Unix seconds)

    def last_seen(self, key: Key) -> float | None:
        times = self.seen.get(key)
        return times[1] if times else None

    def record(self, key: Key, time: float) -> None:
        times = self.seen.setdefault(key, [time, time])
        times[0], times[1] = min(times[0], time), max(times[1], time)

    def rows(self) -> Iterator[Row]:
        """(rule id, values, first_seen, last_seen) in key order: the file's rows."""
        for (rule_id, values), (first, last) in sorted(self.seen.items()):
            yield rule_id, values, first, last

    @classmethod
    def from_rows(cls, rows: Iterable[dict]) -> "Baseline":
        """Rows as ``{rule_id, values: [...], last_seen, first_seen?}`` (test cases give them so)."""
        baseline = cls()
        for row in rows:
            key = (str(row["rule_id"]), tuple(str(v) for v in row["values"]))
            baseline.record(key, _time(row["last_seen"]))
            if row.get("first_seen"):
                baseline.record(key, _time(row["first_seen"]))
        return baseline


def read(path: Path) -> Baseline:
    """The baseline in ``path``; a missing file is an empty baseline (the first run builds it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Baseline()
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot read the baseline ({getattr(error, 'strerror', None) or error})") from error
    lines = text.splitlines()
    body = lines[1:] if lines and lines[0].startswith("#") else lines
    reader = csv.DictReader(body)
    if reader.fieldnames is None or [c.strip() for c in reader.fieldnames[:2]] != COLUMNS[:2] or "last_seen" not in reader.fieldnames:
        raise BaselineError(f"{path}: not a baseline file (the header row must be {','.join(COLUMNS)})")
    rows = []
    for number, row in enumerate(reader, 2 + (len(lines) - len(body))):
        try:
            values = json.loads(row["values"])
            if not isinstance(values, list) or not values:
                raise ValueError("values must be a JSON array")
            rows.append({"rule_id": row["rule_id"], "values": values, "last_seen": row["last_seen"],
                         "first_seen": row.get("first_seen")})
        except (ValueError, TypeError) as error:
            raise BaselineError(f"{path}: line {number}: {' '.join(str(error).split())}") from error
    try:
        return Baseline.from_rows(rows)
    except ValueError as error:
        raise BaselineError(f"{path}: {error}") from error


def check_writable(path: Path) -> None:
    """Raise BaselineError unless ``path`` is absent or a baseline r53sigma wrote."""
    path = Path(path)
    if path.is_dir():
        raise BaselineError(f"{path}: is a folder; give a baseline file name")
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot read the baseline ({error})") from error
    if first != MARKER:
        raise BaselineError(f"{path}: not written by r53sigma (no {MARKER!r} first line): not overwritten; give a new file")


def write(path: Path, baseline: "Baseline | Iterable[Row]") -> None:
    """Write the baseline atomically (a temporary file beside it, renamed onto it), row by row: a
    Baseline, or its rows already in :meth:`Baseline.rows` order (the DuckDB engine's, from its tables)."""
    check_writable(path)
    rows = baseline.rows() if isinstance(baseline, Baseline) else baseline
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(MARKER + "\n")
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for rule_id, values, first, last in rows:
                writer.writerow([rule_id, json.dumps(list(values), ensure_ascii=False), _iso(first), _iso(last)])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the filter


def key_of(rule, spec: first_seen.FirstSeen, alert: Alert) -> tuple[str, ...] | None:
    """The alert's event's values of the first-seen fields; None when one is absent (no candidate)."""
    log_source, generic = log_source_of(rule)
    values = []
    for name in spec.fields:
        found = [as_text(v) for v in values_at(alert.event.record, field_path(rule, log_source, generic, name))]
        found = [v for v in found if v is not None]
        if not found:
            return None
        values.append(found[0])
    return tuple(values)


def first_seen_alerts(alerts: Iterable[Alert], baseline: Baseline) -> Iterator[Alert]:
    """The alerts of the scan, with each first-seen rule's candidates reduced to its first-seen events.

    Other rules' alerts pass through as they come; the first-seen rules' are held to the end, then
    taken in event-time order (the input order breaks ties), so the result does not depend on the
    order an engine reports in. ``baseline`` is updated with every candidate seen."""
    specs: dict[int, first_seen.FirstSeen | None] = {}
    held: list[tuple[float, int, tuple[str, ...], Alert]] = []
    for position, alert in enumerate(alerts):
        if id(alert.rule) not in specs:
            specs[id(alert.rule)] = first_seen.of(alert.rule) if alert.event is not None else None
        spec = specs[id(alert.rule)]
        if spec is None:
            yield alert
            continue
        values = key_of(alert.rule, spec, alert)
        if values is not None and alert.event.time is not None:  # else no value, or no time to place it in the history
            held.append((alert.event.time, position, values, alert))
    held.sort(key=lambda item: (item[0], item[1]))
    for _, _, values, alert in held:
        spec = specs[id(alert.rule)]
        key = (alert.rule_id, values)
        last = baseline.last_seen(key)
        baseline.record(key, alert.event.time)
        if last is None or alert.event.time - last > spec.history_seconds:
            yield alert


def _time(text) -> float:
    if isinstance(text, datetime):
        moment = text
    else:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
