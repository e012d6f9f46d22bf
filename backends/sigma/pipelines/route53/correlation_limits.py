"""Refusing correlations a target's backend would convert wrongly, with a one-line reason.

pySigma backends either lack a correlation type (the Splunk and ES|QL backends 2.1 have no
``temporal_ordered`` template and fail with a bare NotImplementedError) or silently ignore a part of
the rule (the ES|QL backend drops ``aliases``: it would group by a field no index has). A refusal
here is a :class:`SigmaFeatureNotSupportedByBackendError` raised while the pipeline processes the
correlation, before the backend writes anything: the target reports the rule as *not expressible*
and every other rule still converts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sigma.conversion.base import Backend
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingItem
from sigma.processing.transformations.base import PreprocessingTransformation


@dataclass
class RefuseCorrelations(PreprocessingTransformation):
    """Refuse correlation types (``type name -> reason``) and, with a reason, any use of aliases."""

    prefix: str  # how the target's refusals begin, e.g. "not expressible in Elasticsearch: "
    types: dict[str, str] = field(default_factory=dict)
    aliases: str | None = None

    def apply(self, rule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaCorrelationRule):
            return
        kind = str(rule.type.name).lower()
        if kind in self.types:
            self.refuse(rule, f"correlation type {kind}: {self.types[kind]}")
        if self.aliases and rule.aliases.aliases:
            names = ", ".join(sorted(rule.aliases.aliases))
            self.refuse(rule, f"aliases ({names}): {self.aliases}")

    def refuse(self, rule: SigmaCorrelationRule, reason: str) -> None:
        raise SigmaFeatureNotSupportedByBackendError(f"{self.prefix}{reason} (rule '{rule.title}')", source=rule.source)


def refuse_correlations(pipeline_id: str, prefix: str, types: dict[str, str], aliases: str | None = None) -> ProcessingItem:
    return ProcessingItem(
        identifier=f"{pipeline_id}_correlation_limits",
        transformation=RefuseCorrelations(prefix, dict(types), aliases),
    )


# ------------------------------------------------------------------ `sigma convert -s` for correlations
# pySigma 1.5 collects a rule's SigmaError under collect_errors (sigma-cli's -s) only in convert_rule;
# convert_correlation_rule, pipeline included, runs outside that try, so one refused correlation
# aborts the whole conversion of a folder with a stock backend (ES|QL, Splunk; Lucene has no
# correlations at all and raises NotImplementedError). A pipeline has no handle on the backend, so
# the Route 53 pipelines give correlations the rule's treatment in the one place that can: a refusal
# of a correlation converted with a Route 53 pipeline under collect_errors is collected like a
# rule's, and a stock backend's missing template (value_sum/avg: the pack's own backends write them,
# pySigma's do not) is a one-line "not expressible" error also without -s; other pipelines raise as before.

def _uses_route53_pipeline(backend) -> bool:
    pipeline = getattr(backend, "last_processing_pipeline", None)
    return pipeline is not None and any(
        (item.identifier or "").startswith("route53_") for item in pipeline.items
    )


def _collecting(convert_correlation_rule):
    def convert(self, rule, *args, **kwargs):
        try:
            return convert_correlation_rule(self, rule, *args, **kwargs)
        except (SigmaError, NotImplementedError) as error:
            if not _uses_route53_pipeline(self):
                raise
            if isinstance(error, NotImplementedError):  # a backend without the feature: not expressible there
                error = SigmaFeatureNotSupportedByBackendError(
                    f"not expressible with the {self.name} backend: correlation rules: {error}", source=rule.source
                )
            if not self.collect_errors:
                raise error from None
            self.errors.append((rule, error))
            return []

    convert.__wrapped__ = convert_correlation_rule
    convert.collects_route53_refusals = True
    return convert


if not getattr(Backend.convert_correlation_rule, "collects_route53_refusals", False):
    Backend.convert_correlation_rule = _collecting(Backend.convert_correlation_rule)
