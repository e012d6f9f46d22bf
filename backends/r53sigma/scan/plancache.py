"""Compiled rule plans cached by content: the DuckDB engine's SQL for a rule, kept across runs.

The key of a rule is a hash of everything its SQL depends on: the text of the rule's file and the
rule's place in it (id, title), the catalogue files, the source of the compiling modules and the
DuckDB version. Any change gives another key, so an entry is never stale; ``scan`` and ``bench`` share
it. Rules without a file (built in a test from a string) are not cached. The cache is one JSON file
under ``$R53SIGMA_CACHE_DIR``, else ``$XDG_CACHE_HOME/r53sigma``, else ``~/.cache/r53sigma``
(``R53SIGMA_CACHE_DIR=off`` disables it); it is written atomically, and any problem reading or
writing it only means compiling again.

This per-rule cache serves a cold ``scan`` (rules parsed with pySigma); a warm one runs the whole compiled
run of its inputs (:mod:`r53sigma.scan.compiledrun`), beside it in the same folder.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

MAX_ENTRIES = 5000  # older entries are dropped beyond this (a rule edited many times)
_SOURCES = ("sqlcompile.py", "sqltext.py", "patterns.py", "nameindex.py", "rowcolumns.py", "duckdb_engine.py", "duckdialect.py",
            "duckread.py", "values.py", "../catalogue.py")


def cache_file() -> Path | None:
    from r53sigma.catalogue import cache_dir

    base = cache_dir()
    return base / "plans.json" if base is not None else None


@functools.cache
def _environment_digest(duckdb_version: str) -> str:
    from r53sigma import catalogue

    digest = hashlib.sha256(duckdb_version.encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    for path in sorted(catalogue.catalogue_dir().glob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rule_key(rule: Any, duckdb_version: str) -> str | None:
    """The content key of a rule's plan, or None for a rule without a readable file."""
    source = getattr(rule, "source", None)
    path = getattr(source, "path", None)
    if not path:
        return None
    try:
        stat = Path(path).stat()
        file_digest = _file_digest(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None
    where = f"{rule.id}|{rule.name}|{rule.title}|{_state_digest(rule)}"
    return hashlib.sha256(f"{_environment_digest(duckdb_version)}|{file_digest}|{where}".encode()).hexdigest()


def _state_digest(rule: Any) -> str:
    """The rule as it is in memory: loading may change it after reading its file (environment
    filters, placeholder values), so the file alone does not name its plan."""
    try:
        state = json.dumps(rule.to_dict(), sort_keys=True, default=str)
    except Exception:  # a rule pySigma cannot write back: never share its plan
        return f"unkeyed-{id(rule)}"
    return hashlib.sha256(state.encode()).hexdigest()


class PlanCache:
    """Entries read once; new ones written back by :meth:`save`."""

    def __init__(self, path: Path | None = None):
        self.path = path if path is not None else cache_file()
        self.entries: dict[str, Any] = {}
        self.added = False
        if self.path is not None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.entries = {}

    def get(self, key: str | None) -> Any:
        return self.entries.get(key) if key else None

    def put(self, key: str | None, value: Any) -> None:
        if key and self.path is not None:
            self.entries.pop(key, None)
            self.entries[key] = value  # newest last
            self.added = True

    def save(self) -> None:
        if not self.added or self.path is None:
            return
        entries = dict(list(self.entries.items())[-MAX_ENTRIES:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".plans.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entries, handle)
            os.replace(tmp, self.path)
            self.added = False
        except OSError:
            pass
