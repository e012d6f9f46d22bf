"""Loading Sigma rules from files and folders, keeping every broken file's name and reason.

Shared by convert, test, scan, verify and package, so a broken rule is reported the same way
everywhere and never stops the other rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaString

from r53sigma import ioc

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_SUFFIXES = (".yml", ".yaml")
# A rule's test cases live beside it as <stem>.cases.yaml (r53sigma.testcases): not a rule. Stock
# sigma-cli reads *.yml only, so it never sees them either.
CASES_SUFFIX = ".cases.yaml"

AnyRule = SigmaRule | SigmaCorrelationRule


def default_rule_paths() -> list[Path]:
    """The repository's ``sigma_rules/`` in a checkout, else the copy installed with the package."""
    in_checkout = REPO_ROOT / "sigma_rules"
    if in_checkout.is_dir():
        return [in_checkout]
    return [Path(__file__).resolve().parent / "rules_files"]  # package r53sigma.rules_files (pyproject)


def discover(paths: list[Path]) -> list[Path]:
    """Rule files below the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()
                                and not p.name.endswith(CASES_SUFFIX)))
        else:
            found.append(path)
    return found


@dataclass
class RuleError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class LoadedRules:
    collection: SigmaCollection
    files: dict[Path, list[AnyRule]] = field(default_factory=dict)
    errors: list[RuleError] = field(default_factory=list)

    @property
    def rules(self) -> list[AnyRule]:
        return list(self.collection.rules)

    def top_level(self) -> list[AnyRule]:
        """Rules that are detections of their own: correlations and rules no correlation hides."""
        return list(self.collection.get_output_rules())

    def path_of(self, rule: AnyRule) -> Path | None:
        return Path(rule.source.path) if rule.source and rule.source.path else None

    def find(self, ref: str) -> AnyRule | None:
        """A rule by id, name or file stem (a file stem names the file's main rule: the correlation)."""
        for rule in self.collection.rules:
            if str(rule.id) == ref or rule.name == ref:
                return rule
        for path, rules in self.files.items():
            if path.stem == ref and rules:
                return main_rule(rules)
        return None


def main_rule(rules: list[AnyRule]) -> AnyRule:
    correlations = [r for r in rules if isinstance(r, SigmaCorrelationRule)]
    return correlations[-1] if correlations else rules[0]


def load(paths: list[Path] | None = None, variables: dict | None = None,
         filters: list[Path] | None = None) -> LoadedRules:
    """Parse every rule file; a file that fails is recorded with its reason and left out.

    ``variables`` (pySigma pipeline-variable style, e.g. ``{"ioc_domains": [...]}``), else the
    environment (``R53SIGMA_IOC_DOMAINS``), give the list that replaces ``%ioc_domains%``, so the
    engines and the conversions see the same values (:mod:`r53sigma.ioc`).
    ``filters``: Sigma filter files applied to the loaded rules (r53sigma.envfilter); a filter file
    that cannot be applied raises envfilter.FilterError.
    """
    from r53sigma import envfilter

    sigma_filters = envfilter.load(filters) if filters else []
    collections: list[SigmaCollection] = []
    files: dict[Path, list[AnyRule]] = {}
    errors: list[RuleError] = []
    for path in discover(paths or default_rule_paths()):
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_dicts(_yaml_documents(text), collect_errors=True, source=_location(path))
        except (OSError, UnicodeDecodeError, SigmaError, ValueError, yaml.YAMLError) as error:
            errors.append(RuleError(path, str(error)))
            continue
        rule_errors = [e for rule in collection.rules for e in rule.errors] + list(collection.errors)
        if rule_errors:
            errors.append(RuleError(path, "; ".join(_without_location(e) for e in rule_errors)))
            continue
        collections.append(collection)
        files[path] = list(collection.rules)
    merged = SigmaCollection.merge(collections) if collections else SigmaCollection([])
    if sigma_filters:
        envfilter.check_references(sigma_filters, merged.rules)
        envfilter.apply(sigma_filters, merged)
    try:
        merged.resolve_rule_references()
    except SigmaError as error:
        errors.append(RuleError(Path(getattr(getattr(error, "source", None), "path", "") or "?"), str(error)))
    _resolve_ioc_domains(merged, variables, errors)
    return LoadedRules(merged, files, errors)


def needs_ioc_list(rule: AnyRule) -> bool:
    """Whether a rule still holds the ``%ioc_domains%`` placeholder (no list was given)."""
    if not isinstance(rule, SigmaRule):
        return False

    def walk(detection) -> bool:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                if walk(item):
                    return True
            elif any(isinstance(v, SigmaString) and v.contains_placeholder([ioc.PLACEHOLDER]) for v in item.value):
                return True
        return False

    return any(walk(d) for d in rule.detection.detections.values())


def _resolve_ioc_domains(collection: SigmaCollection, variables: dict | None, errors: list[RuleError]) -> None:
    users = [r for r in collection.rules if needs_ioc_list(r)]
    if not users:
        return
    try:
        domains = ioc.domains_from(variables)
    except ioc.IocListError as error:
        errors.extend(RuleError(Path(r.source.path) if r.source else Path("?"), str(error)) for r in users)
        return
    if domains is None:
        return  # conversions refuse the rule with how to give a list; scan passes it over
    from sigma.pipelines.route53.placeholders import IocDomainsPlaceholder

    resolve = ProcessingPipeline(items=[ProcessingItem(IocDomainsPlaceholder(domains=domains), identifier="r53sigma_ioc_domains")])
    for rule in users:
        try:
            resolve.apply(rule)
        except SigmaError as error:
            errors.append(RuleError(Path(rule.source.path) if rule.source else Path("?"), str(error)))


def _yaml_documents(text: str) -> list:
    """The YAML documents of a rule file, as pySigma's ``from_yaml`` reads them (safe loading), with
    libyaml's C parser where PyYAML has it (the pure-Python parser was most of the start-up time)."""
    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def _location(path: Path) -> SigmaRuleLocation:
    return SigmaRuleLocation(path)


def _without_location(error: Exception) -> str:
    return re.sub(r" in \S+$", "", str(error))


def slug(title: str) -> str:
    """File stem a rule title gives: lower case, runs of other characters as one underscore."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
