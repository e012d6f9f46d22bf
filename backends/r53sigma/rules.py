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

from r53sigma import first_seen, ioc
from r53sigma.rulefiles import CASES_SUFFIX, REPO_ROOT, RULE_SUFFIXES, default_rule_paths, discover  # noqa: F401 (the names callers use)

AnyRule = SigmaRule | SigmaCorrelationRule


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

    The files given are one collection: a correlation may name rules of another file. A rule a
    correlation names that none of them holds is looked for in the folders of the files given,
    then in the pack (:func:`default_rule_paths`); such a rule is evaluated for the correlation but
    is no rule of the load (not in ``files``). Two rules with one id (or one name) are a collision:
    the later file is reported and left out, as `sigma check` reports it.

    ``variables`` (pySigma pipeline-variable style, e.g. ``{"ioc_domains": [...]}``), else the
    environment (``R53SIGMA_IOC_DOMAINS``), give the list that replaces ``%ioc_domains%``, so the
    engines and the conversions see the same values (:mod:`r53sigma.ioc`).
    ``filters``: Sigma filter files applied to the loaded rules (r53sigma.envfilter); a filter file
    that cannot be applied raises envfilter.FilterError.
    """
    from r53sigma import envfilter

    environment_filters = envfilter.load(filters) if filters else []
    given = discover(paths or default_rule_paths())
    filters = []  # Sigma filter documents found among the rule files themselves
    parsed, errors = _parse_files(given, filters)
    files = _without_collisions(parsed, errors)
    rules = [rule for file_rules in files.values() for rule in file_rules]
    rules += _referenced_elsewhere(rules, given, set(parsed))
    while True:  # a correlation naming a rule nobody holds costs its own file only
        collection = SigmaCollection(rules, resolve_references=False)
        broken = next((r for r in collection.rules if isinstance(r, SigmaCorrelationRule) and _missing(r, collection)), None)
        if broken is None:
            break
        path = next((p for p, file_rules in files.items() if any(r is broken for r in file_rules)), None)
        bad = files.pop(path) if path is not None else [broken]
        rules = [r for r in rules if not any(r is b for b in bad)]
        errors.append(RuleError(path or Path("?"), f"rule {broken.title!r}: no rule named "
                                + ", ".join(repr(m) if isinstance(m, str) else f"{m!r} (not a rule name)"
                                            for m in _missing(broken, collection))
                                + " among the rules given, their folders or the pack"))
    try:
        merged = SigmaCollection([*rules, *filters], resolve_references=True)
    except Exception as error:  # a safety net: what pySigma meets resolving costs the correlations, not the run
        failing = [p for p, file_rules in files.items() if any(isinstance(r, SigmaCorrelationRule) for r in file_rules)]
        for path in failing:
            errors.append(RuleError(path, f"cannot resolve its correlations ({type(error).__name__}: {_one_line(str(error))})"))
            files.pop(path)
        merged = SigmaCollection([r for file_rules in files.values() for r in file_rules if not isinstance(r, SigmaCorrelationRule)]
                                 + filters, resolve_references=True)
    if environment_filters:
        envfilter.check_references(environment_filters, merged.rules)
        envfilter.apply(environment_filters, merged)
    _resolve_ioc_domains(merged, variables, errors)
    return LoadedRules(merged, files, errors)


def _parse_files(paths: list[Path], filters: list | None = None) -> tuple[dict[Path, list[AnyRule]], list[RuleError]]:
    """Rules by file; Sigma filters found go to ``filters``."""
    files: dict[Path, list[AnyRule]] = {}
    errors: list[RuleError] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_dicts(_yaml_documents(text), collect_errors=True, source=_location(path),
                                                    resolve_references=False)
        except yaml.YAMLError as error:
            errors.append(RuleError(path, yaml_reason(error)))
            continue
        except OSError as error:
            errors.append(RuleError(path, f"cannot read: {error.strerror or error}"))
            continue
        except UnicodeDecodeError as error:
            errors.append(RuleError(path, f"not UTF-8 text (byte {error.start})"))
            continue
        except SigmaError as error:
            errors.append(RuleError(path, _one_line(_without_location(error))))
            continue
        except Exception as error:  # pySigma meets a wrong type it does not check (e.g. `id: 1`): one file's problem
            errors.append(RuleError(path, f"not a valid Sigma rule ({type(error).__name__}: {_one_line(str(error))})"))
            continue
        rule_errors = [e for rule in collection.rules for e in rule.errors] + list(collection.errors)
        if rule_errors:
            reasons = list(dict.fromkeys(_one_line(_without_location(e)) for e in rule_errors))  # each reason once
            errors.append(RuleError(path, "; ".join(reasons)))
            continue
        problem = _condition_problem(collection)
        if problem:
            errors.append(RuleError(path, problem))
            continue
        if filters is not None:
            filters.extend(collection.filters)
        if not collection.rules and not collection.filters:
            errors.append(RuleError(path, "no Sigma rule in this file"))
            continue
        if collection.rules:
            files[path] = list(collection.rules)
    return files, errors


def _without_collisions(files: dict[Path, list[AnyRule]], errors: list[RuleError]) -> dict[Path, list[AnyRule]]:
    kept: dict[Path, list[AnyRule]] = {}
    owner: dict[str, Path] = {}
    for path, file_rules in files.items():
        keys = [(f"id {r.id}", r) for r in file_rules if r.id] + [(f"name {r.name!r}", r) for r in file_rules if r.name]
        clash = next(((key, owner[key]) for key, _ in keys if key in owner), None)
        inside = [key for key in {k for k, _ in keys} if sum(1 for k, _ in keys if k == key) > 1]
        if clash:
            errors.append(RuleError(path, f"duplicate rule {clash[0]}: already used by {clash[1]}"))
            continue
        if inside:
            errors.append(RuleError(path, f"duplicate rule {inside[0]} within the file"))
            continue
        owner.update({key: path for key, _ in keys})
        kept[path] = file_rules
    return kept


def _missing(rule: SigmaCorrelationRule, collection: SigmaCollection) -> list[str]:
    wanted = [ref.reference for ref in rule.rules or []]
    return [ref for ref in wanted if not _holds(collection, ref)]


def _holds(collection: SigmaCollection, reference) -> bool:
    if not isinstance(reference, str):  # `rules: [{...}]`: pySigma would look it up as nothing
        return False
    try:
        return collection[reference] is not None
    except (SigmaError, KeyError, ValueError):
        return False


def _referenced_elsewhere(rules: list[AnyRule], given: list[Path], seen: set[Path]) -> list[AnyRule]:
    """Rules that correlations among ``rules`` name but no given file holds: from the folders of the
    given files, then from the pack. Only looked for when something is missing."""
    collection = SigmaCollection(list(rules), resolve_references=False)
    missing = {m for r in rules if isinstance(r, SigmaCorrelationRule) for m in _missing(r, collection) if isinstance(m, str)}
    if not missing:
        return []
    folders = list(dict.fromkeys(p.parent for p in given))
    candidates = [p for p in discover([*folders, *default_rule_paths()]) if p not in seen]
    found: list[AnyRule] = []
    for path in dict.fromkeys(candidates):
        if not missing:
            break
        parsed, _ = _parse_files([path])  # a broken file elsewhere is not the user's question here
        for rule in parsed.get(path, []):
            if str(rule.id) in missing or rule.name in missing:
                found.append(rule)
                missing -= {str(rule.id), rule.name}
                if isinstance(rule, SigmaCorrelationRule):  # a correlation of correlations
                    missing |= {ref.reference for ref in rule.rules or [] if isinstance(ref.reference, str)} \
                        - {str(r.id) for r in rules + found} \
                        - {r.name for r in rules + found if r.name}
    return found


def _condition_problem(collection: SigmaCollection) -> str | None:
    """pySigma parses a condition only when it is used: parse each now so that a bad one is this
    file's load error, not a failure in the middle of a scan."""
    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule) and not rule.rules:
            return f"rule {rule.title!r}: a correlation must name at least one rule"
        try:
            first_seen.of(rule)
        except first_seen.FirstSeenError as error:
            return f"rule {rule.title!r}: {error}"
        if not isinstance(rule, SigmaRule):
            continue
        try:
            for condition in rule.detection.parsed_condition:
                condition.parse(True)
        except SigmaError as error:
            return f"rule {rule.title!r}: {_one_line(_without_location(error))}"
        except Exception as error:
            return f"rule {rule.title!r}: invalid condition ({type(error).__name__}: {_one_line(str(error))})"
    return None


def yaml_reason(error: yaml.YAMLError) -> str:
    """A YAML error as one line: `line L, column C: what`."""
    mark = getattr(error, "problem_mark", None)
    what = " ".join(filter(None, [getattr(error, "context", None), getattr(error, "problem", None)])) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML: {where}{_one_line(what)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
