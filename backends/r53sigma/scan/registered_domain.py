"""`registered_domain` and `subdomain` of a queried name, from the Public Suffix List.

The list is the one the `publicsuffixlist` wheel bundles (ICANN and private sections, as
Elasticsearch's `registered_domain` ingest processor reads the Mozilla list): no network at run time,
and the same answers on every machine with the same package version. The catalogue's `derived`
entries name which field each function fills (`by: public_suffix_list`).
"""
from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _list() -> PublicSuffixList:
    return PublicSuffixList()


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
