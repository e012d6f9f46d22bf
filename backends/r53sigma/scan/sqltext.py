"""SQL text helpers the scan's read and correlation SQL share with the rule compiler (:mod:`r53sigma.scan.sqlcompile`),
in a module of their own so that a warm scan (a compiled run from the plan cache) does not import the compiler
and, through it, pySigma."""
from __future__ import annotations


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def strip_dot(expr: str) -> str:
    """The catalogue's strip_trailing_dot in SQL both dialects share."""
    return f"(CASE WHEN length({expr}) > 1 AND {expr} LIKE '%.' THEN substr({expr}, 1, length({expr}) - 1) ELSE {expr} END)"
