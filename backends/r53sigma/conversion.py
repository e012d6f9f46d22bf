"""Converting loaded rules for each target, one rule at a time, so one failure never hides the others.

Which pySigma backend and pipeline serve a target is declared by the target (r53sigma.targets.registry).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError

from r53sigma import first_seen
from r53sigma import rules as rule_loading
from r53sigma.targets import registry
from r53sigma.targets.spec import Target


def siem_targets() -> tuple[str, ...]:
    """What `--target all`, verify and package cover (Athena, not a SIEM, is asked for by name)."""
    return registry.siem_names()


@dataclass
class Conversion:
    """One rule converted for one target, or the reason it could not be."""

    target: str
    rule_id: str
    title: str
    level: str | None
    tags: list[str]
    logsource: dict
    path: Path | None
    language: str
    suffix: str
    query: str | None = None
    error: str | None = None
    not_expressible: bool = False  # the target cannot state the rule (a documented limit), the rule is fine
    # a first-seen rule's native form in the target (r53sigma.first_seen); `query` is then its candidate query
    first_seen: dict | None = None
    rule: object = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def failed(self) -> bool:
        """A real failure: a broken rule or a backend bug, not a target's documented limit."""
        return self.error is not None and not self.not_expressible

    def export(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "level": self.level,
            "tags": self.tags,
            "logsource": self.logsource,
            "file": str(self.path) if self.path else None,
            "target": self.target,
            "language": self.language,
            "query": self.query,
            **({"first_seen": self.first_seen} if self.first_seen else {}),
        }


def _class(spec: str):
    """``module:Name``: a class of the module, or the backend registered as ``Name`` in its ``backends`` table."""
    module_name, name = spec.split(":")
    module = importlib.import_module(module_name)
    registered = getattr(module, "backends", {})
    if name in registered:
        return registered[name]
    return getattr(module, name)


def _pipeline(name: str):
    if not name:  # a backend that maps fields itself
        return None
    from sigma.pipelines.route53 import pipelines

    if name not in pipelines:
        raise SigmaError(f"pipeline {name} is not installed")
    return pipelines[name]()


def logsource_of(rule) -> dict:
    """The log source of a rule, or of the first rule a correlation refers to."""
    if isinstance(rule, SigmaCorrelationRule):
        first = rule.rules[0].rule if rule.rules else None
        return logsource_of(first) if first is not None else {}
    ls = rule.logsource
    return {k: v for k, v in (("category", ls.category), ("product", ls.product), ("service", ls.service)) if v}


def convert_loaded(loaded: rule_loading.LoadedRules, target: Target, backend_options: dict | None = None) -> Iterator[Conversion]:
    """Convert each top-level rule of a freshly loaded collection (pipelines change rules in place)."""
    converted: set[int] = set()  # rules whose conversion is already stored on them (pipelines are not idempotent)
    for rule in loaded.top_level():
        backend_spec, language, suffix = target.backend_for(rule)
        conversion = Conversion(
            target=target.name,
            rule_id=str(rule.id),
            title=rule.title,
            level=str(rule.level.name).lower() if rule.level else None,
            tags=[str(t) for t in rule.tags],
            logsource=logsource_of(rule),
            path=loaded.path_of(rule),
            language=language,
            suffix=suffix,
            rule=rule,
        )
        try:
            spec = first_seen.of(rule)  # before the pipeline changes the rule
            backend = _class(backend_spec)(_pipeline(target.pipeline), **(backend_options or {}))
            backend.init_processing_pipeline(backend.default_format)
            queries = _convert(backend, rule, converted, target.correlates_unconverted_rules)
            conversion.query = "\n".join(str(q) for q in queries)
            if spec is not None:
                conversion.first_seen = _first_seen_form(target, rule, spec, conversion.query)
        except SigmaFeatureNotSupportedByBackendError as error:
            conversion.error, conversion.not_expressible = _describe(error), True
        except (SigmaError, ImportError) as error:
            conversion.error = _describe(error)
        except Exception as error:  # a backend bug must cost one rule, not the run
            conversion.error = f"internal error in the {target.name} backend: {type(error).__name__}: {error}"
        yield conversion


def convert_paths(paths: list[Path] | None, target_names: list[str],
                  variables: dict | None = None, filters: list[Path] | None = None,
                  ) -> tuple[list[Conversion], list[rule_loading.RuleError]]:
    """Every rule under ``paths`` (with the Sigma ``filters`` applied) for every named target; broken
    rule files are returned, not raised (a broken filter file raises envfilter.FilterError).

    ``variables``: placeholder values (``ioc_domains``), as :func:`r53sigma.rules.load` takes them."""
    conversions: list[Conversion] = []
    errors: list[rule_loading.RuleError] = []
    for index, name in enumerate(target_names):
        loaded = rule_loading.load(paths, variables, filters)
        if index == 0:
            errors = loaded.errors
        conversions.extend(convert_loaded(loaded, registry.get(name)))
    return conversions, errors


def _first_seen_form(target: Target, rule, spec: first_seen.FirstSeen, query: str) -> dict:
    """The target's native first-seen form, or its refusal (no state, or more fields than it combines)."""
    if target.first_seen is None:
        raise SigmaFeatureNotSupportedByBackendError(first_seen.refusal(target.name, target.first_seen_refusal))
    limit = target.first_seen_max_fields
    if limit is not None and len(spec.fields) > limit:
        raise SigmaFeatureNotSupportedByBackendError(first_seen.refusal(
            target.name, f"{len(spec.fields)} fields; {target.first_seen_max_fields_reason}"))
    return dict(target.first_seen(rule, spec, query))


def _convert(backend, rule, converted: set[int], correlates_unconverted_rules: bool = False) -> list:
    """Convert a rule; a correlation's referenced rules first, as pySigma expects their results stored."""
    if isinstance(rule, SigmaCorrelationRule):
        for reference in rule.rules:
            if id(reference.rule) not in converted:
                try:
                    _convert(backend, reference.rule, converted)
                except SigmaFeatureNotSupportedByBackendError:
                    if not correlates_unconverted_rules:  # declared by the target (Target spec)
                        raise
        queries = backend.convert_correlation_rule(rule)
    else:
        queries = backend.convert_rule(rule)
    converted.add(id(rule))
    return queries


def _describe(error: Exception) -> str:
    if isinstance(error, ImportError):
        return f"the backend is not installed ({error})"
    text = str(error)
    return text if text else type(error).__name__
