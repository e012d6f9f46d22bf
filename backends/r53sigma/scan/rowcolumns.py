"""Columns computed once a row for every rule's predicate, from the field columns (DuckDB engine).

A predicate names a shared column by its quoted name; :func:`wrap` adds to a relation exactly the
columns some predicate names (so a scan without such rules pays nothing):

- name keys and Bloom filters of name lists: :mod:`r53sigma.scan.nameindex`;
- addresses in a list field (``answers.Rdata``), read once for every ``|cidr`` test on it:
  ``"a4:<field>"`` the strict dotted quads as integers, ``"a6:<field>"`` the first 16-bit group (as
  written, as an integer; 0 before a leading ``::``) of each strict IPv6 text (hex groups, ``::``),
  and ``"ax:<field>"`` whether any element is neither of those nor plain text (``[0-9A-Za-z._-]*``):
  only such a row (padding, an IPv4-mapped or scoped IPv6 form) needs the element-by-element test
  with its unknown branch (``sqlcompile.Dialect.cidr``). The three come from one pass over the
  elements (``"ac:<field>"``, one integer code an element): a colon decides between the IPv6 test and
  the others, so an element costs one regex evaluation (an address) or two (a name), and a quad's
  integer is computed only for a strict quad. A rule reads an IPv6 text itself only in a row where a
  first group is inside one of its networks.
"""
from __future__ import annotations

import re

from r53sigma.scan import nameindex
from r53sigma.scan.patterns import IPV4, IPV6

def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ADDRESS_USES = re.compile(r'"a[46x]:([^"]+)"')


def address_columns(field: str) -> tuple[str, str, str]:
    """The names of a list field's shared address columns: (dotted quads, IPv6 first groups, other forms)."""
    return f'"a4:{field}"', f'"a6:{field}"', f'"ax:{field}"'


# element codes of "ac:<field>": a strict dotted quad is its integer (>= 0); the others are negative
_ODD, _PLAIN, _SIX = -1, -2, -3  # a strict IPv6 text is -3 - its first group (<= -3)


def address_codes(element: str) -> str:
    """One element's code: the colon test first (no regex), then one regex for an IPv6 or a dotted quad."""
    head = f"coalesce(TRY_CAST('0x' || split_part({element}, ':', 1) AS INTEGER), 0)"  # '' (a leading ::) is 0
    quad = f"list_reduce(string_split({element}, '.')::BIGINT[], lambda a, b: a * 256 + b)"
    return (
        f"CASE WHEN contains({element}, ':') THEN (CASE WHEN regexp_full_match({element}, {quote(IPV6)}) THEN {_SIX} - {head} ELSE {_ODD} END)"
        f" WHEN regexp_full_match({element}, {quote(IPV4)}) THEN {quad}"
        f" WHEN regexp_matches({element}, '[^0-9A-Za-z._-]') THEN {_ODD} ELSE {_PLAIN} END"
    )


def wrap(relation: str, sql: str) -> str:
    """``relation`` with the shared columns ``sql`` names (``relation`` itself when it names none)."""
    fields = sorted(set(_ADDRESS_USES.findall(sql)))
    if fields:
        codes, cols = [], []
        for field in fields:
            column = f'"f:{field}"'
            code = f'"ac:{field}"'
            quads, heads, others = address_columns(field)
            codes.append(f"list_transform({column}, lambda v: {address_codes('v')}) AS {code}")
            cols.append(f"list_filter({code}, lambda c: c >= 0) AS {quads}")
            cols.append(f"list_transform(list_filter({code}, lambda c: c <= {_SIX}), lambda c: {_SIX} - c) AS {heads}")
            cols.append(f"coalesce(list_contains({code}, {_ODD}), false) AS {others}")
        relation = f"(SELECT *, {', '.join(cols)} FROM (SELECT *, {', '.join(codes)} FROM {relation}))"
    return nameindex.wrap(relation, sql)
