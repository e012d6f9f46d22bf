"""The catalogue's derived fields (``derived:``), added to a normalised record for the local engines.

Computed after the trailing dot is stripped, from the catalogued source field; a field with no value
(the name is a bare public suffix or a reverse lookup) is left out, as Elasticsearch leaves it out.
"""
from __future__ import annotations

from typing import Any, Callable

from r53sigma.scan.sigma_names import SigmaCorrelationRule, SigmaDetectionItem, SigmaRule  # no pySigma import (warm start)

from r53sigma import catalogue
from r53sigma.catalogue import LogSource
from r53sigma.scan import registered_domain


def add(log_source: LogSource, record: dict[str, Any]) -> None:
    for name, field in log_source.derived.items():
        source = record.get(field.derived.source_field)
        if not isinstance(source, str):
            continue
        value = registered_domain.derive(field.derived.by, field.derived.part, source)
        if value is not None:
            record[name] = value


def without_derived(source: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as read and normalised, without the derived values (what keywords search)."""
    derived = catalogue.load()[source].derived
    return {k: v for k, v in record.items() if k not in derived} if derived else record


def named_by(rule: Any) -> list[str]:
    """The derived fields a rule (or a correlation and the rules it refers to) names."""
    derived = {name for ls in catalogue.log_sources() for name in ls.derived}
    names: set[str] = set()
    if isinstance(rule, SigmaCorrelationRule):
        fieldref = rule.condition.fieldref if rule.condition else None
        names.update(rule.group_by or [])
        names.update([fieldref] if isinstance(fieldref, str) else list(fieldref or []))
        for alias in rule.aliases.aliases.values():
            names.update(alias.mapping.values())
        for ref in rule.rules:
            names.update(named_by(ref.rule))
    elif isinstance(rule, SigmaRule):
        for detection in rule.detection.detections.values():
            names.update(_detection_fields(detection))
    return sorted(names & derived)


def _detection_fields(node: Any) -> set[str]:
    if isinstance(node, SigmaDetectionItem):
        return {node.field} if node.field else set()
    return set().union(*(_detection_fields(item) for item in getattr(node, "detection_items", [])))


# ---------------------------------------------------------------- the DuckDB engine's columns

SQL_FUNCTION = "r53sigma_derived"


def register_sql_functions(con: Any) -> None:
    """``r53sigma_derived(name, by, part)``: the same derivation as :func:`add`, as a DuckDB scalar
    function (NULL in, NULL out; the split is cached per name)."""
    import duckdb

    def derived(name: str | None, by: str, part: str) -> str | None:
        return registered_domain.derive(by, part, name) if name is not None else None

    text = duckdb.sqltype("VARCHAR")
    con.create_function(SQL_FUNCTION, derived, [text] * 3, text,
                        null_handling="special", side_effects=False)


def sql_columns(log_source: LogSource, source_sql: Callable[[str], str], column: Callable[[Any], str]) -> list[str]:
    """SELECT items computing the derived fields from their source field's normalised SQL value."""
    return [f"{sql_value(f.derived, source_sql)} AS {column(f)}" for f in log_source.derived.values()]


def sql_value(derived: Any, source_sql: Callable[[str], str]) -> str:
    """One derived field's SQL value: plain SQL where DuckDB states it, else the Python function."""
    source = source_sql(derived.source_field)
    if derived.by == "name_length":  # DuckDB's length() counts characters, as len() does
        return f"CAST(length({source}) AS VARCHAR)"  # columns are text, as read
    quote = lambda text: "'" + text.replace("'", "''") + "'"
    return f"{SQL_FUNCTION}({source}, {quote(derived.by)}, {quote(derived.part)})"


def used_sources(log_source: LogSource, sql: str, column: Callable[[Any], str]) -> set[str]:
    """Source fields of the derived fields a SQL text reads (their values decide the derived ones)."""
    return {f.derived.source_field for f in log_source.derived.values() if column(f) in sql}
