"""The DuckDB dialect of the rule compiler (:mod:`r53sigma.scan.sqlcompile`) and where the DuckDB engine's
columns are: imported by the engine only when it compiles a rule (a warm scan runs the cached SQL, without
the compiler or pySigma)."""
from __future__ import annotations

from typing import Any

import duckdb
from sigma.rule import SigmaRule

from r53sigma import catalogue, signals
from r53sigma.scan import nameindex, sqlcompile
from r53sigma.scan.duckread import column_name, lowered_name


class DuckDialect(sqlcompile.Dialect):
    """DuckDB. What SQL cannot decide exactly (keywords, regexes RE2 cannot compile, unusual address
    forms for ``|cidr``) is NULL, unknown: the engine decides those rows with the reference engine."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def check_regex(self, pattern: str) -> bool:
        try:
            self.con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
            return True
        except duckdb.Error:
            if signals.received():  # Ctrl-C/SIGTERM during the check: DuckDB says "interrupted", it is the stop
                raise
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

    def name_index(self) -> nameindex.NameIndex:
        return nameindex.NameIndex(self.con)


def column_of(field: catalogue.Field) -> sqlcompile.Column:
    if field.array:
        return sqlcompile.Column(column_name(field), lambda v: v)
    return sqlcompile.Column(column_name(field), None, lowered_name(field))
