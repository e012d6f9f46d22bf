"""Field values of a normalised record as the engines read them: paths through the catalogue, every
value at a path (one per list element), and values as text or number. No recursion: a record nested
arbitrarily deep is walked with an explicit stack."""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Iterator

from r53sigma import catalogue
from r53sigma.scan.results import AnyRule, EngineError, describe

# A number written as text: ASCII digits only (SQL reads it with this regex too, never a wider form)
PLAIN_NUMBER = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
NUMBER_SPACE = " \t\n\r\x0b\x0c"  # the white space around a number that is ignored (ASCII)
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER)
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")


def log_source_of(rule: AnyRule) -> tuple[catalogue.LogSource, bool]:
    """The catalogue log source a rule applies to, and whether it uses the generic Sigma DNS names."""
    ls = rule.logsource
    found = catalogue.for_logsource(ls.category, ls.product, ls.service)
    if found is None:
        spec = ", ".join(f"{k}: {v}" for k, v in (("category", ls.category), ("product", ls.product), ("service", ls.service)) if v)
        raise EngineError(f"{describe(rule)}: log source {{{spec}}} is not a Route 53 log source known to r53sigma")
    return found


def field_path(rule: AnyRule, log_source: catalogue.LogSource, generic: bool, name: str) -> tuple[str, ...]:
    """The dotted path in the record of a rule's field name, through the catalogue."""
    found = log_source.field_for(name, generic_dns=generic)
    if found is None:
        raise EngineError(
            f"{describe(rule)}: field {name!r} is not a field of {log_source.title}; known fields: "
            + ", ".join(sorted(log_source.rule_field_names(generic_dns=generic)))
        )
    return tuple(found.name.split("."))


def values_at(record: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at a dotted path, a list at any step giving one value per element (nulls dropped)."""
    nodes = [record]
    for step in path:
        next_nodes = []
        for node in nodes:
            if isinstance(node, dict) and step in node:
                value = node[step]
                if isinstance(value, list):
                    next_nodes.extend(_flatten(value))
                else:
                    next_nodes.append(value)
        nodes = next_nodes
    return [n for n in nodes if n is not None]


def _flatten(nodes: list[Any]) -> list[Any]:
    """The non-list items of nested lists, in order."""
    out, stack = [], [iter(nodes)]
    while stack:
        for node in stack[-1]:
            if isinstance(node, list):
                stack.append(iter(node))
                break
            out.append(node)
        else:
            stack.pop()
    return out


def leaves(node: Any) -> Iterator[Any]:
    """Every scalar (non-null) value anywhere in a record, in document order."""
    stack = [iter((node,))]
    while stack:
        for item in stack[-1]:
            if isinstance(item, dict):
                stack.append(iter(item.values()))
                break
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if item is not None:
                yield item
        else:
            stack.pop()


def as_text(value: Any) -> str | None:
    """A scalar as the text rules compare (numbers and booleans as JSON writes them); None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def as_number(value: Any) -> int | float | None:
    """A number, or a text of one (``"48701"``), as a number; None otherwise (booleans included).

    A text is a number in plain ASCII decimal notation (PLAIN_NUMBER: sign, digits, fraction, exponent),
    ASCII white space around it ignored; integers stay exact (correlation sums), and any number is one only
    where its nearest IEEE 754 double is finite: what DuckDB's ``TRY_CAST(.. AS DOUBLE)`` reads and the SIEMs
    compare. Not Python's wider reading (``int("١٠٢٤")``, ``float("1_024")``, Unicode spaces stripped)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip(NUMBER_SPACE)
        if _PLAIN_NUMBER.fullmatch(text) is None:
            return None
        value = int(text) if _PLAIN_INTEGER.fullmatch(text) else float(text)
    if isinstance(value, (int, float)):
        return value if as_double(value) is not None else None
    return None


def as_double(number: int | float) -> float | None:
    """The nearest IEEE 754 double of a number, or None where it is infinite or NaN (how single-event
    rules compare numbers, as DuckDB and the SIEMs do)."""
    try:
        double = float(number)
    except OverflowError:  # an integer beyond the largest double
        return None
    return double if math.isfinite(double) else None


class LabelSuffixes:
    """``endswith`` over many suffixes that begin with a dot (``.evil.example``: the name is under a
    listed domain), as set lookups of the name's last labels: a threat-intel list of 100k domains costs
    a few lookups a value instead of 100k comparisons. Other suffixes (``-dns.com``) are tested one by one."""

    __slots__ = ("by_labels", "depths", "others")

    def __init__(self, suffixes: Iterable[str]):
        self.by_labels: set[str] = set()
        self.others: list[str] = []
        depths: set[int] = set()
        for suffix in suffixes:
            if suffix.startswith(".") and len(suffix) > 1:
                self.by_labels.add(suffix[1:])
                depths.add(suffix.count("."))  # labels of the part after the leading dot
            else:
                self.others.append(suffix)
        self.depths = sorted(depths)
        self.others = tuple(self.others)

    def __bool__(self) -> bool:
        return bool(self.by_labels or self.others)

    def match(self, text: str) -> bool:
        """``text.endswith(s)`` for some suffix s: ``text`` ends with ``.x`` exactly when it has more than
        ``labels(x)`` dot-separated pieces and its last ``labels(x)`` pieces joined are ``x``."""
        if self.others and text.endswith(self.others):
            return True
        if self.depths:
            pieces = text.rsplit(".", self.depths[-1])  # bounded work however many dots the text has
            for depth in self.depths:
                if len(pieces) > depth and ".".join(pieces[-depth:]) in self.by_labels:
                    return True
        return False
