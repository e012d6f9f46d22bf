"""Environment filters: a user's own zones, hosts and scanners as Sigma filter documents (pySigma's `filter:`).

The same files work with stock `sigma convert --filter FILE`; here they are applied when rules are
loaded (`r53sigma convert/package/scan --filter FILE`), so every target and the local engines see the
filtered rules. pySigma applies a filter silently to nothing when its `rules:` names no loaded rule
or only a correlation (filters act on the correlation's base rules); both are reported as errors
here, since a mistyped reference would quietly leave the noise in.
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pySigma is imported where a filter is loaded: `scan` registers --filter without it
    from sigma.collection import SigmaCollection
    from sigma.filters import SigmaFilter


class FilterError(ValueError):
    """A filter file that cannot be applied: named with its reason, nothing is converted or scanned."""


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", action="append", type=Path, default=None, metavar="FILE", dest="filters",
                        help="Sigma filter file (environment exclusions: own zones, scanners, resolvers); repeatable")


def load(paths: list[Path]) -> list[SigmaFilter]:
    """The filter documents of the given files; a file with anything else, or broken, raises FilterError."""
    import yaml  # here, not at the top: a warm scan imports no YAML parser
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError, SigmaRuleLocation

    filters: list[SigmaFilter] = []
    for path in paths:
        path = Path(path)
        try:
            # as pySigma's from_yaml reads a file (safe loading), with libyaml's C parser where PyYAML has it
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
            collection = SigmaCollection.from_dicts(documents, collect_errors=True, source=SigmaRuleLocation(path),
                                                    collect_filters=True, resolve_references=False)
        except (OSError, UnicodeDecodeError, SigmaError, ValueError, yaml.YAMLError) as error:
            raise FilterError(f"{path}: {error}") from None
        errors = list(collection.errors) + [e for f in collection.filters for e in f.errors]
        if errors:
            raise FilterError(f"{path}: {errors[0]}")
        if collection.rules:
            raise FilterError(f"{path}: holds detection rules, not only filter documents")
        if not collection.filters:
            raise FilterError(f"{path}: no filter documents")
        filters.extend(collection.filters)
    return filters


def check_references(filters: list[SigmaFilter], rules: list) -> None:
    """Every rule a filter names must be a loaded detection rule (not a correlation)."""
    from sigma.correlations import SigmaCorrelationRule

    by_ref = {}
    for rule in rules:
        for ref in (str(rule.id) if rule.id else None, rule.name, rule.title):
            if ref:
                by_ref[ref] = rule
    for sigma_filter in filters:
        references = sigma_filter.filter.rules
        if isinstance(references, str):  # "any"
            continue
        where = sigma_filter.source.path if sigma_filter.source else "filter"
        for reference in references:
            rule = by_ref.get(str(reference.reference))
            if rule is None:
                raise FilterError(f"{where}: filter {sigma_filter.title!r} names rule {reference.reference!r}, which is not loaded")
            if isinstance(rule, SigmaCorrelationRule):
                bases = ", ".join(str(r.reference) for r in rule.rules)
                raise FilterError(f"{where}: filter {sigma_filter.title!r} names the correlation {rule.title!r}; "
                                  f"filters act on single-event rules: name its base rule ({bases})")


def apply(filters: list[SigmaFilter], collection: SigmaCollection) -> None:
    """Apply every filter to every rule it names, each rule getting its own copy of the filter's
    detections: pySigma's apply_on_rule inserts the filter's detection objects themselves, so two
    rules filtered by one document would share them, and a processing pipeline (which renames fields
    in place) would then transform them twice."""
    for rule in collection.rules:
        for sigma_filter in filters:
            copy.deepcopy(sigma_filter).apply_on_rule(rule)
