"""Name lists as set lookups of a name and its parent domains, for the DuckDB engine.

A rule's list of names (``query_name: [a.example, ...]``) and of domains a name may be under
(``query_name|endswith: ['.a.example', ...]``, the ``*.%ioc_domains%`` threat-intel expansion) is
decided by hashing, once a row for every rule, the lower-cased name and its last 1, 2, ... labels
(``"nk:<field>:<d>"`` keys, ``"nh:<field>:<d>"`` hashes; :func:`wrap` adds the columns the
predicates name), then probing one Bloom filter per list: a constant bit string in the rule's SQL, so
the cost of a row does not grow with the list. Rows the filter lets through are decided exactly: by an
``IN`` list over the key for a list of up to :data:`EXACT_IN_SQL` names, else left unknown (NULL), and
the engine asks the reference engine, whose lookups are sets too (``values.LabelSuffixes``).

Why not a join against a (name, rule) table: a join does not keep the file order the line numbers are
read from (the fast path numbers rows by their position in one projection), and DuckDB evaluates an
``IN`` list of constants inside an expression as one comparison per constant (51 s for 1M names
against 100k constants, measured).

``text`` ends with ``"." + x`` exactly when it has more than ``labels(x)`` dot-separated pieces and
its last ``labels(x)`` pieces, joined by dots, are ``x`` (any text, empty labels included).
"""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

EXACT_IN_SQL = 512  # larger lists: a Bloom filter hit is decided by the reference engine
MIN_NAMES = 4  # fewer names: LIKE and = tests cost less than the keys
BITS_PER_NAME = 64
PROBES = 4  # false positive rate about (1 - e^(-PROBES / BITS_PER_NAME)) ^ PROBES = 1.4e-5
_LOWERED = re.compile(r'^"l:([^"]+)"$')
_USES = re.compile(r'"n([hk]):([^":]+):(\d+)"')
_BLOOMS = re.compile(r"/\*nb:([0-9a-f]+)=([A-Za-z0-9+/=]+)\*/")


def label_suffix(parts: list[Any]) -> str | None:
    """``x`` for a Sigma string ``*.x`` (x without wildcards, not empty), else None."""
    from sigma.types import SpecialChars  # here: a warm scan imports this module, not pySigma

    if len(parts) == 2 and parts[0] is SpecialChars.WILDCARD_MULTI and isinstance(parts[1], str):
        text = parts[1]
        if text.startswith(".") and len(text) > 1:
            return text[1:]
    return None


def field_of(lowered_column: str) -> str | None:
    """The catalogue field of a lowered twin column (``"l:query_name"``), or None for another expression."""
    found = _LOWERED.match(lowered_column)
    return found.group(1) if found else None


def _key(field: str, depth: int) -> str:
    return f'"nk:{field}:{depth}"'


def _hash(field: str, depth: int) -> str:
    return f'"nh:{field}:{depth}"'


def wrap(relation: str, sql: str) -> str:
    """``relation`` (a table or subquery name) with the key and hash columns ``sql`` refers to, computed
    once a row, and its filters' bits as constant columns; ``relation`` itself when ``sql`` names none."""
    depths: dict[str, set[int]] = {}
    for _, field, depth in _USES.findall(sql):
        depths.setdefault(field, set()).add(int(depth))
    blooms = dict(_BLOOMS.findall(sql))
    if not depths:
        return relation
    pieces, keys, hashes = [], [], []
    for field, wanted in sorted(depths.items()):
        lowered = f'"l:{field}"'
        if any(d > 0 for d in wanted):
            pieces.append(f"string_split({lowered}, '.') AS \"np:{field}\"")
        for depth in sorted(wanted):
            if depth == 0:
                hashes.append(f"hash({lowered}) AS {_hash(field, 0)}")
                continue
            split = f'"np:{field}"'
            keys.append(f"(CASE WHEN len({split}) > {depth} THEN array_to_string({split}[-{depth}:], '.') END) AS {_key(field, depth)}")
            hashes.append(f"hash({_key(field, depth)}) AS {_hash(field, depth)}")
    inner = f"(SELECT *, {', '.join(pieces)} FROM {relation})" if pieces else relation
    inner = f"(SELECT *, {', '.join(keys)} FROM {inner})" if keys else inner
    constants = [f"from_base64('{payload}')::BIT AS \"nb:{digest}\"" for digest, payload in sorted(blooms.items())]
    return f"(SELECT *, {', '.join(hashes + constants)} FROM {inner})"


class NameIndex:
    """Builds a list's test over one field's lowered column (DuckDB: ``con`` computes the hashes)."""

    def __init__(self, con: Any):
        self.con = con

    def test(self, field: str, exact: list[str], suffixes: list[str]) -> tuple[str, bool] | None:
        """SQL true when the field's lowered value is one of ``exact`` or ends with ``"." + s`` for an
        ``s`` of ``suffixes``, and whether it may be NULL (unknown: a long list's filter hit)."""
        exact, suffixes = list(dict.fromkeys(exact)), list(dict.fromkeys(suffixes))
        if len(exact) + len(suffixes) < MIN_NAMES:
            return None
        # one filter over both (a threat-intel rule lists the same domains twice: the name, and under it)
        bloom = self._bloom(list(dict.fromkeys(exact + suffixes)))
        long_list = len(exact) > EXACT_IN_SQL or len(suffixes) > EXACT_IN_SQL
        terms = []
        if exact:
            terms.append(self._probe(bloom, _hash(field, 0), f'"l:{field}"', exact if not long_list else None))
        by_depth: dict[int, list[str]] = {}
        for suffix in suffixes:
            by_depth.setdefault(suffix.count(".") + 1, []).append(suffix)
        for depth, names in sorted(by_depth.items()):
            terms.append(self._probe(bloom, _hash(field, depth), _key(field, depth), names if not long_list else None))
        return "(" + bloom[0] + " OR ".join(terms) + ")", long_list

    def _bloom(self, names: list[str]) -> tuple[str, str, int]:
        """The filter: the comment carrying its bits, the constant column :func:`wrap` makes of them, and
        their number."""
        data = filter_bits(self.con, names)
        payload = base64.b64encode(data).decode()
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        # the bits travel once, in a comment the engine's wrap() reads into a constant column: written
        # inline they would be parsed once per probe
        return f"/*nb:{digest}={payload}*/", f'"nb:{digest}"', len(data) * 8

    @staticmethod
    def _probe(bloom: tuple[str, str, int], h: str, key: str, names: list[str] | None) -> str:
        """The filter's probes of the key's hash, then the exact test, or NULL for the reference engine."""
        _, literal, bits = bloom
        if names is None:
            out = "NULL::BOOLEAN"
        else:
            listed = ", ".join("'" + n.replace("'", "''") + "'" for n in names)
            out = f"coalesce({key} IN ({listed}), false)"
        return probes(literal, h, bits, out)


def filter_bits(con: Any, names: list[str]) -> bytes:
    """A Bloom filter of ``names`` over DuckDB's ``hash()`` (``con`` computes it): a power of two bits,
    at least :data:`BITS_PER_NAME` a name, :data:`PROBES` bits a name set."""
    bits = 1024
    while bits < BITS_PER_NAME * len(names):
        bits *= 2
    positions = con.execute(
        f"SELECT list(DISTINCT (((h & 4294967295) + i * (h >> 32)) % {bits})::INTEGER) "
        f"FROM (SELECT hash(k) AS h FROM unnest($names::VARCHAR[]) AS t(k)), range({PROBES}) AS r(i)",
        {"names": names},
    ).fetchall()[0][0] or []
    data = bytearray(bits // 8)
    for p in positions:
        data[p >> 3] |= 0x80 >> (p & 7)  # get_bit(b, 0) is the first byte's high bit
    return bytes(data)


def probes(bits_sql: str, h: str, bits: int, then: str) -> str:
    """All PROBES bits of the hash ``h`` set in the filter ``bits_sql`` (double hashing from its two 32-bit
    halves; nested CASE: a row leaves at its first clear bit), then ``then``; else (and for NULL) false."""
    out = then
    for i in reversed(range(PROBES)):
        bit = f"get_bit({bits_sql}, ((({h} & 4294967295) + {i} * ({h} >> 32)) % {bits})::INTEGER) = 1"
        out = f"(CASE WHEN {bit} THEN {out} ELSE false END)"
    return out
