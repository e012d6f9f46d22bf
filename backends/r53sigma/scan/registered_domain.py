"""`registered_domain` and `subdomain` of a queried name, from the Public Suffix List.

The list is the one the `publicsuffixlist` wheel bundles (ICANN and private sections, as
Elasticsearch's `registered_domain` ingest processor reads the Mozilla list): no network at run time,
and the same answers on every machine with the same package version. The catalogue's `derived`
entries name which field each function fills (`by: public_suffix_list`).
"""
from __future__ import annotations

import base64
import functools

from publicsuffixlist import PublicSuffixList


_GIVEN_LIST_RULES: tuple[str, ...] | None = None


@functools.cache
def _list() -> PublicSuffixList:
    if _GIVEN_LIST_RULES is not None:  # the parsed rules, punycode twins included: parsed again as they are
        return PublicSuffixList("\n".join(_GIVEN_LIST_RULES), accept_encoded_idn=False)
    return PublicSuffixList()


def list_rules() -> list[str]:
    """The rules of the parsed list (its sections and the punycode twins it adds), for the plan cache."""
    return sorted(_list()._publicsuffix)


def given_list_rules(rules: tuple[str, ...] | None) -> None:
    """Build the list from ``rules``, a copy of :func:`list_rules` kept by the plan cache (keyed by the
    list's file): 0.02 s, where parsing the bundled file (IDN encoding) is 0.1 s of a warm start. None: parse
    the bundled file."""
    global _GIVEN_LIST_RULES
    if rules != _GIVEN_LIST_RULES:
        _GIVEN_LIST_RULES = rules
        _list.cache_clear()


@functools.lru_cache(maxsize=65536)
def split(name: str) -> tuple[str | None, str | None]:
    """(registered domain, subdomain) of a normalised name (its trailing dot already stripped); (None, None) when the name is
    itself a public suffix, empty or a reverse-lookup name, subdomain None when the name is the registered domain."""
    # Reverse lookups get none, as in Elastic's integration and our ingest pipeline (which tests the
    # name as written: `endsWith('.arpa')` is case-sensitive in Painless). A name with an empty label
    # (`a..com`, a second trailing dot; Route 53 writes none) is not split: it is no domain name.
    if not name or name.endswith(".arpa") or "" in name.split("."):
        return None, None
    name = name.lower()
    registered = _list().privatesuffix(name)
    if registered is None:
        return None, None
    subdomain = name[: -len(registered) - 1] if len(name) > len(registered) else None
    return registered, subdomain or None


def top_level_domain(name: str) -> str | None:
    """The public suffix Elasticsearch's processor writes as `top_level_domain` (the name itself, as
    written, when the name is a public suffix), for the emulated ECS document."""
    if not name or name.endswith(".arpa") or "" in name.split("."):
        return None
    registered, _ = split(name)
    if registered is not None:
        return _list().publicsuffix(registered)
    return name if _list().is_public(name.lower()) else None


def derive(by: str, part: str, name: str) -> str | int | None:
    """The `part` (registered_domain or subdomain) a derivation `by` gives for `name`; `name_length`:
    its number of characters (the name normalised, trailing dot already stripped)."""
    if by == "name_length":
        return len(name)
    if by != "public_suffix_list":
        raise ValueError(f"unknown derivation {by!r}")
    registered, subdomain = split(name)
    return {"registered_domain": registered, "subdomain": subdomain}[part]


# ---------------------------------------------------------------- the same split in SQL (DuckDB)
#
# The rules are the ones `_list()` parsed (the same object, so both forms read the same list, with the
# same sections and the punycode twins of IDN rules it adds). A name is split as publicsuffixlist's
# `_countpublic` does: the longest suffix of the lower-cased name that some rule names wins, and at that
# depth an exception (`!a.b`) makes the public suffix one label shorter, a wildcard (`*.a.b`) one label
# longer (unless the name is the wildcard's root itself), a plain rule that long; no rule: the last label.

SQL_TABLE = "r53sigma_psl"  # one row per rule key (the rule without `!` or `*.`) and its number of labels


def sql_rules() -> tuple[list[str], list[str], list[str], int]:
    """(every rule key, exception keys, wildcard roots, deepest rule in labels) of the list (0.01 s)."""
    return _sql_rules(_list())


@functools.lru_cache(maxsize=1)
def _sql_rules(parsed: PublicSuffixList) -> tuple[list[str], list[str], list[str], int]:
    rules = parsed._publicsuffix  # the parsed list itself: the Python form's data, not a second reading
    exceptions = sorted(r[1:] for r in rules if r.startswith("!"))
    wildcards = sorted(r[2:] for r in rules if r.startswith("*."))
    keys = sorted({r[1:] if r.startswith("!") else r[2:] if r.startswith("*.") else r for r in rules})
    return keys, exceptions, wildcards, max(k.count(".") + 1 for k in keys)


def load_sql_table(con) -> None:
    """Create the rule-key table :func:`split_sql` reads (once per connection)."""
    keys, *_ = sql_rules()
    if any("\n" in k for k in keys):  # never in the list's rules; one text split in SQL converts faster than a list
        raise ValueError("a Public Suffix List rule with a line break")
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {SQL_TABLE} AS SELECT suffix, len(string_split(suffix, '.')) AS labels "
                "FROM (SELECT unnest(string_split($keys, chr(10))) AS suffix)", {"keys": "\n".join(keys)})


def labels_sql(name: str) -> str:
    """SQL of the lower-cased labels of the name SQL ``name`` gives, as :func:`split` lowers it."""
    # Python's str.lower differs from DuckDB's lower() for U+0130 only (full case mapping: i + U+0307)
    return f"string_split(lower(replace({name}, '\u0130', 'i\u0307')), '.')"


def split_sql(name: str, labels: str) -> str:
    """SQL of ``[registered domain, subdomain]`` of the name SQL ``name`` gives, as :func:`split` (NULL
    parts where it gives None). Each depth's key lookup (an ``IN`` subquery: a mark join, which keeps the
    rows' order) appears once, so the expression must be computed once a row (a column of its own); it
    reads the keys of that many labels only (a suffix of d labels can only be such a key: each lookup's hash
    table holds a part of the list, not all of it, which a short file's scan spends most of its time building).
    ``labels``: :func:`labels_sql` of the name, best a column computed in a projection below, so that the
    name is lowered and split once a row rather than at each of the ~20 places the expression reads its
    labels (each copy costs DuckDB planning time; a subquery may not be inside a lambda, so a lambda
    cannot bind them)."""
    _, exceptions, wildcards, deepest = sql_rules()
    quote = lambda text: "'" + text.replace("'", "''") + "'"
    as_list = lambda items: "[" + ", ".join(map(quote, items)) + "]::VARCHAR[]"
    suffix = lambda depth: f"array_to_string({labels}[-({depth}):], '.')"
    hits = " ".join(
        f"WHEN len({labels}) >= {d} AND {suffix(d)} IN (SELECT suffix FROM {SQL_TABLE} WHERE labels = {d}) THEN {d}"
        for d in range(deepest, 0, -1))
    public = (  # labels of the public suffix, from the depth d of the longest key found (0: none)
        f"CASE WHEN d = 0 THEN 1 WHEN list_contains({as_list(exceptions)}, {suffix('d')}) THEN d - 1 "
        f"WHEN list_contains({as_list(wildcards)}, {suffix('d')}) AND d < len({labels}) THEN d + 1 ELSE d END")
    registered = f"CASE WHEN len({labels}) > p THEN array_to_string({labels}[-(p + 1):], '.') END"
    subdomain = f"CASE WHEN len({labels}) > p + 1 THEN array_to_string({labels}[:len({labels}) - p - 1], '.') END"
    valid = _valid_sql(name)
    return (f"(CASE WHEN {valid} THEN list_transform(list_transform([CASE {hits} ELSE 0 END], lambda d: {public}), "
            f"lambda p: [{registered}, {subdomain}])[1] END)")


def _valid_sql(name: str) -> str:
    """SQL: the name is one :func:`split` splits (not empty, no reverse lookup, no empty label)."""
    return (f"{name} IS NOT NULL AND {name} <> '' AND NOT ends_with({name}, '.arpa') "
            f"AND NOT contains('.' || {name} || '.', '..')")


ENDS_MACRO = "r53sigma_ends_key"  # (hash) may a text end some rule key: made on a connection (create_ends_macro)


def key_ends() -> list[str]:
    """The last two labels of each rule key of two labels or more."""
    keys, *_ = sql_rules()
    return sorted({".".join(k.split(".")[-2:]) for k in keys if "." in k})


def create_ends_macro(con) -> None:
    """``r53sigma_ends_key(h)``: false only when no :func:`key_ends` text has the hash ``h`` (a Bloom filter,
    so never false for one that does: a name it lets through is split exactly)."""
    from r53sigma.scan import nameindex

    data = nameindex.filter_bits(con, key_ends())
    bits = f"from_base64('{base64.b64encode(data).decode()}')::BIT"
    con.execute(f"CREATE OR REPLACE TEMP MACRO {ENDS_MACRO}(h) AS {nameindex.probes(bits, 'h', len(data) * 8, 'true')}")


def last_two_sql(labels: str) -> str:
    return f"array_to_string({labels}[-2:], '.')"


def two_label_split_sql(name: str, labels: str, last_two_hash: str, otherwise: str) -> str:
    """SQL of ``[registered domain, subdomain]`` as :func:`split_sql`, decided without the list where the
    name's last two labels end no rule key (:func:`key_ends`, by the filter of :data:`ENDS_MACRO`) and its
    last label is neither a wildcard's root nor an exception: then no key of two labels or more is a
    suffix of the name, the longest key found has one label or none, and either way the public suffix is
    the last label. Elsewhere ``otherwise`` (SQL of the exact split) decides; on the efficacy set's
    Resolver logs, about 3 names in 4 are decided here. ``labels``: :func:`labels_sql` of the name and
    ``last_two_hash``: ``hash()`` of :func:`last_two_sql` of them, both computed below (no join: a
    join's output need not keep the file order the line numbers are read from)."""
    _, exceptions, wildcards, _ = sql_rules()
    quote = lambda text: "'" + text.replace("'", "''") + "'"
    special = sorted(k for k in wildcards + exceptions if "." not in k)
    plain = (f"len({labels}) >= 2 AND NOT list_contains([{', '.join(map(quote, special))}]::VARCHAR[], {labels}[-1]) "
             f"AND NOT {ENDS_MACRO}({last_two_hash})")
    subdomain = f"CASE WHEN len({labels}) > 2 THEN array_to_string({labels}[:len({labels}) - 2], '.') END"
    return (f"(CASE WHEN NOT coalesce({_valid_sql(name)}, false) THEN NULL::VARCHAR[] "
            f"WHEN {plain} THEN [{last_two_sql(labels)}, {subdomain}] ELSE {otherwise} END)")
