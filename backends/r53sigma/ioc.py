"""User-supplied lists of known-bad domains, for rules with the ``%ioc_domains%`` placeholder.

A rule writes ``query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']`` (the name, or any name
under it); the placeholder is replaced by the domains of a list the user gives:

- the environment variable ``R53SIGMA_IOC_DOMAINS`` (a file path), read by the pack's pySigma
  pipelines (so stock sigma-cli works) and by every ``r53sigma`` command (``test``, ``scan``,
  ``verify``, ``convert``, ``package``), which load rules through :func:`r53sigma.rules.load`;
- or pySigma pipeline variables: ``ioc_domains`` (a list of domains) or ``ioc_domains_file`` (a
  path), e.g. a ``vars:`` block in a pipeline YAML given to ``sigma convert -p``;
- ``R53SIGMA_IOC_CATEGORIES`` / the variable ``ioc_categories`` (comma separated) keeps only the
  entries of those categories.

File formats, told apart by content: a STIX 2.1 bundle (JSON; ``indicator`` objects whose pattern
is only ``domain-name:value = '...'`` comparisons joined by OR; revoked indicators left out, the
category is the first of ``indicator_types``); a CSV file (a header naming a ``domain`` /
``domain_name`` / ``indicator`` / ``value`` column and optionally ``category``; without such a
header the first column is the domain and the second the category); else one domain per line, an
optional category after a comma. Blank lines and ``#`` comments are ignored.

Every domain is normalised the way Route 53 writes names: lower case, no trailing dot, a leading
``*.`` or ``.`` dropped (subdomains match anyway), internationalised names as IDNA A-labels. A value
that is not a host name of at least two labels is refused with the file and line: a wildcard or a
quote could otherwise change the query, and a bare TLD would match every name under it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

PLACEHOLDER = "ioc_domains"
FILE_VARIABLE = "ioc_domains_file"
CATEGORIES_VARIABLE = "ioc_categories"
ENV_FILE = "R53SIGMA_IOC_DOMAINS"
ENV_CATEGORIES = "R53SIGMA_IOC_CATEGORIES"
HOW_TO_GIVE = (
    f"give a list of domains with the environment variable {ENV_FILE}=<file> (one per line, CSV with a "
    f"category column, or a STIX 2.1 bundle) or the pipeline variable {PLACEHOLDER} / {FILE_VARIABLE}"
)

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DOMAIN_COLUMNS = ("domain", "domain_name", "domain-name", "indicator", "value", "ioc")
_STIX_COMPARISON = re.compile(r"domain-name:value\s*=\s*'((?:[^'\\]|\\.)*)'")
_STIX_ONLY_DOMAINS = re.compile(r"^\[\s*COMPARISONS?\s*\]$")


class IocListError(ValueError):
    """A list that cannot be used: names the file (and line) and the reason, on one line."""


@dataclass(frozen=True)
class Entry:
    domain: str
    category: str | None = None


def normalise(value: str, where: str) -> str:
    """A list value as Route 53 writes names, or IocListError naming ``where``."""
    text = value.strip().lower()
    if text.startswith("*."):
        text = text[2:]
    text = text.lstrip(".").rstrip(".")
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as error:
        raise IocListError(f"{where}: {value!r} is not a valid internationalised domain name ({error})") from None
    labels = text.split(".")
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise IocListError(f"{where}: {value!r} is not a domain name (letters, digits, '-', '_' and dots only)")
    if len(labels) < 2:
        raise IocListError(f"{where}: {value!r} is a single label; a bare top-level domain would match every name under it")
    return text


def read(path: str | os.PathLike) -> list[Entry]:
    """The entries of a list file, in file order, without duplicates."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise IocListError(f"{path}: cannot read the domain list ({error})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        entries = _stix(text, path)
    elif _looks_like_csv_with_header(text):
        entries = _csv(text, path)
    else:
        entries = _lines(text, path)
    return list(dict.fromkeys(entries))


def select(entries: Iterable[Entry], categories: Iterable[str] | None) -> list[str]:
    """The domains of the chosen categories (all when none are chosen), each once."""
    wanted = {c.strip().lower() for c in categories or () if c.strip()}
    return list(dict.fromkeys(e.domain for e in entries if not wanted or (e.category or "").lower() in wanted))


def domains_from(variables: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The list for ``%ioc_domains%``: pipeline variables first, then the environment; None if none is given."""
    variables = variables or {}
    environ = os.environ if environ is None else environ
    categories = variables.get(CATEGORIES_VARIABLE, environ.get(ENV_CATEGORIES))
    if isinstance(categories, str):
        categories = categories.split(",")
    if PLACEHOLDER in variables:
        values = variables[PLACEHOLDER]
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise IocListError(f"pipeline variable {PLACEHOLDER}: expected a list of domain names")
        return list(dict.fromkeys(normalise(v, f"pipeline variable {PLACEHOLDER}") for v in values))
    path = variables.get(FILE_VARIABLE) or environ.get(ENV_FILE)
    if not path:
        return None
    return select(read(str(path)), categories)


def _lines(text: str, path: Path) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        domain, _, category = line.partition(",")
        entries.append(Entry(normalise(domain, f"{path}:{number}"), category.strip() or None))
    return entries


def _looks_like_csv_with_header(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    return any(c in _DOMAIN_COLUMNS for c in cells)


def _csv(text: str, path: Path) -> list[Entry]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [c.strip().lower() for c in next(reader)]
    domain_at = next(i for i, c in enumerate(header) if c in _DOMAIN_COLUMNS)
    category_at = header.index("category") if "category" in header else None
    entries = []
    for number, row in enumerate(reader, 2):
        if not any(cell.strip() for cell in row):
            continue
        if domain_at >= len(row):
            raise IocListError(f"{path}:{number}: no {header[domain_at]!r} column in this row")
        category = row[category_at].strip() if category_at is not None and category_at < len(row) else None
        entries.append(Entry(normalise(row[domain_at], f"{path}:{number}"), category or None))
    return entries


def _stix(text: str, path: Path) -> list[Entry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise IocListError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    objects = doc.get("objects") if isinstance(doc, dict) and doc.get("type") == "bundle" else None
    if not isinstance(objects, list):
        raise IocListError(f"{path}: a JSON list must be a STIX 2.1 bundle (type 'bundle' with 'objects')")
    entries = []
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("type") != "indicator" or obj.get("revoked") is True:
            continue
        if obj.get("pattern_type", "stix") != "stix" or not isinstance(obj.get("pattern"), str):
            continue
        pattern = obj["pattern"].strip()
        values = _STIX_COMPARISON.findall(pattern)
        # only "[domain-name:value = 'a' OR domain-name:value = 'b']": other shapes mean more than "this domain"
        skeleton = _STIX_COMPARISON.sub("COMPARISON", pattern)
        if not values or not _STIX_ONLY_DOMAINS.match(re.sub(r"COMPARISON(\s+OR\s+COMPARISON)*", "COMPARISONS", skeleton)):
            continue
        types = obj.get("indicator_types") or []
        category = types[0] if isinstance(types, list) and types and isinstance(types[0], str) else None
        where = f"{path}: indicator {obj.get('id', '?')}"
        entries.extend(Entry(normalise(v.replace("\\'", "'").replace("\\\\", "\\"), where), category) for v in values)
    return entries


# ---------------------------------------------------------------- the list as a target-native table

# The list's neutral name: each target names its own table after it (targets/splunk/lookups.py LOOKUP,
# targets/athena/backend.py IOC_TABLE, targets/elasticsearch/ioc_enrich.py POLICY and SOURCE_INDEX).
BASE_NAME = "r53sigma_ioc_domains"
LOOKUP_COLUMNS = ("domain", "category")
_APPLIED = "ioc_domains"  # the processing items resolving the placeholder: r53sigma_ioc_domains, <pipeline>_ioc_domains


@dataclass(frozen=True)
class ListMatch:
    """A rule that is the list match alone: ``field|expand: ['%ioc_domains%', '*.%ioc_domains%']``.
    ``domains`` are the resolved entries (None while the placeholder is unresolved)."""

    field: str
    domains: list[str] | None


def list_match(rule: object) -> ListMatch | None:
    """The list match a rule is, for targets that look the name and its parent domains up in a table
    instead of inlining the list; None for any other rule (those convert as they are)."""
    from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
    from sigma.types import SigmaString, SpecialChars

    if not isinstance(rule, SigmaRule) or len(rule.detection.detections) != 1:
        return None
    (name, detection), = rule.detection.detections.items()
    if [c.strip() for c in rule.detection.condition] != [name]:
        return None
    items = detection.detection_items
    while len(items) == 1 and isinstance(items[0], SigmaDetection):
        items = items[0].detection_items
    if len(items) != 1 or not isinstance(items[0], SigmaDetectionItem) or not items[0].field:
        return None
    item = items[0]
    values = [v for v in item.value if isinstance(v, SigmaString)]
    if len(values) != len(item.value) or not values:
        return None
    if any(v.contains_placeholder([PLACEHOLDER]) for v in values):
        return ListMatch(item.field, None)
    if not any(p.endswith(_APPLIED) for p in item.applied_processing_items):
        return None
    exact = [v for v in values if not v.contains_special()]
    under = [v for v in values if v.contains_special()]
    # the rule's shape: each listed domain exactly and with "*." in front, nothing else
    if {"*." + str(v) for v in exact} != {str(v) for v in under} or not all(
            v.s[0] == SpecialChars.WILDCARD_MULTI and not SigmaString(str(v)[1:]).contains_special() for v in under):
        return None
    return ListMatch(item.field, [str(v) for v in exact])


def lookup_csv(entries: Iterable[Entry]) -> str:
    """A list as the lookup table's CSV (header ``domain,category``; normalised domains), the file a
    user uploads to the Splunk lookup, the Athena table's S3 location or the Elasticsearch index."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LOOKUP_COLUMNS)
    writer.writerows((e.domain, e.category or "") for e in entries)
    return out.getvalue()
