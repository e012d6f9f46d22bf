"""Columns computed once a row for every rule's predicate, from the field columns (DuckDB engine).

A predicate names a shared column by its quoted name; :func:`wrap` adds to a relation exactly the
columns some predicate names (so a scan without such rules pays nothing):

- name keys and Bloom filters of name lists: :mod:`r53sigma.scan.nameindex`;
- addresses in a list field (``answers.Rdata``), read once for every ``|cidr`` test on it:
  ``"a4:<field>"`` the strict dotted quads as integers, ``"a6:<field>"`` the strict IPv6 texts (hex
  groups, ``::``), and ``"ax:<field>"`` whether any element is neither of those nor plain text
  (``[0-9A-Za-z._-]*``): only such a row (padding, an IPv4-mapped or scoped IPv6 form) needs the
  element-by-element test with its unknown branch (``sqlcompile.Dialect.cidr``).
"""
from __future__ import annotations

import re

from r53sigma.scan import nameindex
from r53sigma.scan.patterns import IPV4, IPV6

def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ADDRESS_USES = re.compile(r'"a[46x]:([^"]+)"')


def address_columns(field: str) -> tuple[str, str, str]:
    """The names of a list field's shared address columns: (dotted quads, IPv6 texts, other forms)."""
    return f'"a4:{field}"', f'"a6:{field}"', f'"ax:{field}"'


def wrap(relation: str, sql: str) -> str:
    """``relation`` with the shared columns ``sql`` names (``relation`` itself when it names none)."""
    fields = sorted(set(_ADDRESS_USES.findall(sql)))
    if fields:
        cols = []
        for field in fields:
            column = f'"f:{field}"'
            quads, sixes, others = address_columns(field)
            octets = " + ".join(f"split_part(v, '.', {i + 1})::BIGINT * {256 ** (3 - i)}" for i in range(4))
            cols.append(f"list_transform(list_filter({column}, lambda v: regexp_full_match(v, {quote(IPV4)})), lambda v: {octets}) AS {quads}")
            cols.append(f"list_filter({column}, lambda v: contains(v, ':') AND regexp_full_match(v, {quote(IPV6)})) AS {sixes}")
            plain = f"regexp_full_match(v, '[0-9A-Za-z._-]*') OR regexp_full_match(v, {quote(IPV4)})"
            cols.append(
                f"coalesce(list_bool_or(list_transform({column}, lambda v: NOT ({plain} OR (contains(v, ':') AND "
                f"regexp_full_match(v, {quote(IPV6)}))))), false) AS {others}"
            )
        relation = f"(SELECT *, {', '.join(cols)} FROM {relation})"
    return nameindex.wrap(relation, sql)
