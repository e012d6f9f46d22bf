"""KV store lookups on top of the SPL model (spl_model): ``lookup``, ``inputlookup append=true`` and
``outputlookup``, the commands the first-seen baseline searches use (targets/splunk/first_seen.py).

Modelled from the Search Reference:
- ``lookup <name> <field> ... OUTPUT <field> ...``: each result gets the output fields of the lookup
  row whose input fields all equal its own (exact, case-sensitive: transforms.conf
  ``case_sensitive_match`` defaults to true); no matching row, no output fields;
- ``inputlookup append=true <name>``: the lookup's rows appended after the current results;
- ``outputlookup <name>``: the lookup's contents replaced by the results (a KV store collection keeps
  the fields its ``fields_list`` names), the results passed on.

:func:`run` runs one search at one search time (``now()``) against a :class:`Store` of collections.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.spl_model import QuerySyntaxError, Row


@dataclass
class Store:
    """Collections by lookup name: their ``fields_list`` and rows."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def define(self, name: str, fields_list: list[str]) -> None:
        self.fields[name] = [f for f in fields_list if f != "_key"]
        self.rows.setdefault(name, [])

    def table(self, name: str) -> list[Row]:
        if name not in self.fields:
            raise QuerySyntaxError(f"lookup {name!r} is not defined")
        return self.rows[name]


def _lookup_step(store: Store, text: str):
    """``lookup`` on a KV store collection (Search Reference, "lookup"; Knowledge Manager Manual, "Add field
    matching rules to your lookup configuration"): every row whose input fields all equal the result's
    gives its output fields, several rows a multivalue field in collection order (max_matches, as in
    :func:`spl_model.matching_rows`); ``case_sensitive_match`` "does not apply to KV Store lookups", so
    matching is exact. A field outside the collection's fields_list is a Splunk error; a multivalue
    input field is not modelled."""
    found = re.fullmatch(r"(\S+)\s+(.+?)\s+OUTPUT\s+(.+)", text.strip())
    if not found:
        raise QuerySyntaxError(f"lookup {text!r} is not modelled (lookup <name> <field>... OUTPUT <field>...)")
    name, inputs, outputs = found.group(1), found.group(2).split(), found.group(3).split()
    for field in inputs + outputs:  # `f AS g` renames and `a, b` lists are Splunk syntax this model does not read
        if field.upper() == "AS" or not re.fullmatch(r"\w+", field):
            raise QuerySyntaxError(f"lookup {text!r}: {field!r} is not modelled (plain field names only)")

    def key(row: Row) -> tuple | None:
        values = []
        for f in inputs:
            value = row.get(f)
            if isinstance(value, list):
                if len(value) > 1:
                    raise QuerySyntaxError(f"lookup {name}: a multivalue input field ({f}) is not modelled")
                value = value[0] if value else None
            if value is None:
                return None
            values.append(str(value))
        return tuple(values)

    def step(rows: list[Row]) -> list[Row]:
        collection = store.table(name)
        unknown = [f for f in inputs + outputs if store.fields[name] and f not in store.fields[name]]
        if unknown:
            raise spl_model.InvalidSearch(f"lookup {name}: could not find the fields {unknown} in the lookup table")
        index: dict[tuple, list[Row]] = {}
        for entry in collection:
            entry_key = key(entry)
            if entry_key is not None:
                index.setdefault(entry_key, []).append(entry)
        out = []
        for row in rows:
            row_key = key(row)
            matches = spl_model.matching_rows(index.get(row_key, []), None, name) if row_key is not None else []
            row = {k: v for k, v in row.items() if k not in outputs}
            for f in outputs:
                values = [v for m in matches for v in (m[f] if isinstance(m.get(f), list) else [m.get(f)]) if v is not None]
                if values:
                    row[f] = values[0] if len(values) == 1 else values
            out.append(row)
        return out
    return step


def _inputlookup_step(store: Store, text: str):
    found = re.fullmatch(r"append=(?:t|true)\s+(\S+)", text.strip())
    if not found:
        raise QuerySyntaxError(f"inputlookup {text!r} is not modelled (only append=true <name>)")
    return lambda rows: rows + [dict(r) for r in store.table(found.group(1))]


def _outputlookup_step(store: Store, text: str):
    name = text.strip()
    if not re.fullmatch(r"\S+", name):
        raise QuerySyntaxError(f"outputlookup {text!r} is not modelled (only outputlookup <name>)")

    def step(rows: list[Row]) -> list[Row]:
        kept = store.fields[name] if name in store.fields else store.table(name)
        store.rows[name] = [{f: r[f] for f in kept if r.get(f) is not None} for r in rows]
        return rows
    return step


LOOKUP_COMMANDS = {"lookup": _lookup_step, "inputlookup": _inputlookup_step, "outputlookup": _outputlookup_step}


def run(query: str, events: Iterable[Row], store: Store, now: float) -> list[Row]:
    """Run ``query`` on ``events`` as a search started at ``now``, reading and writing ``store``."""
    steps = []
    for index, segment in enumerate(spl_model.split_pipes(query)):
        name, rest = (re.split(r"\s+", segment, maxsplit=1) + [""])[:2]
        if index > 0 and name in spl_model.GENERATING:  # parsed one segment at a time: keep the model's rule
            raise QuerySyntaxError(f"{name} is a generating command and must start the search")
        if index > 0 and name in LOOKUP_COMMANDS:
            steps.append(LOOKUP_COMMANDS[name](store, rest))
        else:
            steps.append(spl_model.parse(segment if index == 0 else "| " + segment).run)
    token = spl_model.SEARCH_TIME.set(now)
    try:
        rows: list[Row] = [dict(e) for e in events]
        for step in steps:
            rows = step(rows)
        return rows
    finally:
        spl_model.SEARCH_TIME.reset(token)


def define_from_transforms(store: Store, transforms_conf: str) -> None:
    """The KV store lookups a transforms.conf defines (``external_type = kvstore``)."""
    for stanza in re.split(r"\n(?=\[)", transforms_conf):
        head = re.match(r"\s*\[([^\]]+)\]", stanza)
        if head and re.search(r"^external_type\s*=\s*kvstore\s*$", stanza, re.MULTILINE):
            fields_list = re.search(r"^fields_list\s*=\s*(.+)$", stanza, re.MULTILINE)
            store.define(head.group(1), [f.strip() for f in fields_list.group(1).split(",")] if fields_list else [])


__all__ = ["Store", "run", "define_from_transforms"]
