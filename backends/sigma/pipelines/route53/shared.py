"""Processing steps every Route 53 pipeline shares, derived from the field catalogue.

Each target module (elasticsearch, splunk, cloudwatch) assembles these with its own field names;
no target module imports another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaTransformationError
from sigma.processing.conditions import IncludeFieldCondition, LogsourceCondition
from sigma.processing.pipeline import ProcessingItem
from sigma.processing.transformations import FieldMappingTransformation, RuleFailureTransformation
from sigma.processing.transformations.base import DetectionItemTransformation, ValueTransformation
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetectionItem
from sigma.types import SigmaCasedString, SigmaExpansion, SigmaString

from r53sigma import catalogue
from r53sigma.catalogue import LogSource

KNOWN_LOGSOURCES_TEXT = ", ".join(
    [" ".join(f"{k}: {v}" for k, v in ls.logsource.items()) for ls in catalogue.log_sources()]
    + ["category: dns"]
)


@dataclass(frozen=True)
class RuleView:
    """One way rules address a log source: its own field names, or the generic Sigma DNS names."""

    log_source: LogSource
    generic_dns: bool

    @property
    def condition(self) -> LogsourceCondition:
        spec = self.log_source.sigma_dns_logsource if self.generic_dns else self.log_source.logsource
        return LogsourceCondition(**spec)

    @property
    def id_suffix(self) -> str:
        return f"{self.log_source.source}{'_dns' if self.generic_dns else ''}"

    def rule_fields(self, target: str | None = None) -> Iterator[tuple[str, catalogue.Field]]:
        """(name a rule may use, catalogue field it means); with a target, only the fields it has."""
        for name in self.log_source.rule_field_names(generic_dns=self.generic_dns):
            found = self.log_source.field_for(name, generic_dns=self.generic_dns)
            if target is None or target in found.targets:
                yield name, found


def rule_views() -> list[RuleView]:
    views = [RuleView(ls, False) for ls in catalogue.log_sources()]
    views += [RuleView(ls, True) for ls in catalogue.log_sources() if ls.sigma_dns_logsource]
    return views


@dataclass
class RejectUnknownFields(DetectionItemTransformation):
    """Fail a rule that names a field the catalogue does not know for its log source."""

    source: str
    generic_dns: bool = False
    target: str | None = None  # refuse derived fields this target cannot compute, with the catalogue's reason
    refusal: str = ""  # how the target's refusals begin (its own pipeline's words)

    def apply(self, rule) -> None:
        if isinstance(rule, SigmaCorrelationRule):  # group-by and value_count fields name fields too
            fieldref = rule.condition.fieldref
            names = list(rule.group_by or []) + ([fieldref] if isinstance(fieldref, str) else list(fieldref or []))
            for name in names:
                if name not in rule.aliases.aliases:
                    self.check(name, rule.source)
        super().apply(rule)

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        if detection_item.field is not None:
            self.check(detection_item.field, detection_item.source)

    def check(self, field: str, source) -> None:
        log_source = catalogue.load()[self.source]
        found = log_source.field_for(field, generic_dns=self.generic_dns)
        if found is not None and found.derived and self.target in found.derived.unavailable:
            raise SigmaFeatureNotSupportedByBackendError(
                f"{self.refusal}field '{field}' (derived from {found.derived.source_field}) "
                f"is not available in {self.target}: "
                f"{found.derived.unavailable[self.target]}", source=source
            )
        if found is not None:
            return
        known = ", ".join(sorted(log_source.rule_field_names(generic_dns=self.generic_dns)))
        raise SigmaTransformationError(
            f"field '{field}' is not a field of {log_source.title}; known fields: {known}", source=source
        )


@dataclass
class FoldCase(ValueTransformation):
    """Fold a case-insensitive string value to the one case the target stores the field in.

    The folded value is then an exact match (a cased string): the target compares it as written.
    Values marked ``|cased`` keep their case: they must match exactly as they are.
    """

    method: str = "upper"

    def apply_value(self, field: str, val):
        if isinstance(val, SigmaExpansion):  # |base64offset, |windash ...: every expanded value is a value
            return SigmaExpansion([self.apply_value(field, v) or v for v in val.values])
        if isinstance(val, SigmaString) and not isinstance(val, SigmaCasedString):
            return SigmaCasedString.from_sigma_string(val.upper() if self.method == "upper" else val.lower())
        return None


def reject_unknown_logsources(pipeline_id: str) -> ProcessingItem:
    return ProcessingItem(
        identifier=f"{pipeline_id}_unknown_logsource",
        transformation=RuleFailureTransformation(
            f"the rule's log source is not a Route 53 log source known to r53sigma ({KNOWN_LOGSOURCES_TEXT})"
        ),
        rule_conditions=[view.condition for view in rule_views()],
        rule_condition_linking=any,
        rule_condition_negation=True,
    )


def reject_unknown_fields(pipeline_id: str, view: RuleView, target: str | None = None, refusal: str = "") -> ProcessingItem:
    return ProcessingItem(
        identifier=f"{pipeline_id}_known_fields_{view.id_suffix}",
        transformation=RejectUnknownFields(view.log_source.source, view.generic_dns, target, refusal),
        rule_conditions=[view.condition],
    )


def fold_case(pipeline_id: str, view: RuleView, target: str) -> Iterator[ProcessingItem]:
    """Fold rule values of upper/lower-case fields, so exact target comparisons stay case-insensitive."""
    for method in ("upper", "lower"):
        names = [
            name
            for name, field in view.rule_fields(target)
            if field.is_string and field.target(target).values == method
        ]
        if names:
            yield ProcessingItem(
                identifier=f"{pipeline_id}_fold_{method}_{view.id_suffix}",
                transformation=FoldCase(method),
                rule_conditions=[view.condition],
                field_name_conditions=[IncludeFieldCondition(names)],
            )


def map_fields(pipeline_id: str, view: RuleView, target: str) -> ProcessingItem:
    """Rename rule field names to the target's."""
    mapping = {name: field.target(target).name for name, field in view.rule_fields(target)}
    return ProcessingItem(
        identifier=f"{pipeline_id}_fields_{view.id_suffix}",
        transformation=FieldMappingTransformation(mapping),
        rule_conditions=[view.condition],
    )
