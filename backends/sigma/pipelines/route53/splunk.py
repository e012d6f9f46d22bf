"""route53_splunk: Route 53 rules onto Splunk, scoped by sourcetype.

DNS logs use CIM Network_Resolution names (`query`, `record_type`, `reply_code`, `answer`, `src`,
`src_port`, `transport`) as **the pack's add-on** (mappings/splunk props.conf) extracts them:
`query` and `answer` without trailing dot, `answer` multivalue over every answer, so search terms
match any answer. CloudTrail keeps its raw names (Splunk Add-on for AWS, sourcetype aws:cloudtrail),
arrays as `{}` paths. Splunk compares search-term values case-insensitively, as Sigma does;
`|cased` values, and values with a literal `*` (SPL cannot escape it), become an anchored `regex`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.processing.transformations.base import ValueTransformation
from sigma.types import SigmaCasedString, SigmaRegularExpression, SigmaString, SpecialChars

from . import correlation_limits, placeholders, shared

TARGET = "splunk"


@dataclass
class AsRegex(ValueTransformation):
    """Values a Splunk search term cannot state become an anchored `regex`.

    A `|cased` value (search terms ignore case), and a value holding a literal `*` (SPL cannot
    escape the asterisk in a search term: `\\*` is still a wildcard).
    """

    def apply_value(self, field: str, val):
        if not isinstance(val, SigmaString):
            return None
        cased = isinstance(val, SigmaCasedString)
        literal_asterisk = any(isinstance(part, str) and "*" in part for part in val.s)
        if not (cased or literal_asterisk):
            return None
        parts = []
        for part in val.s:
            if part == SpecialChars.WILDCARD_MULTI:
                parts.append(".*")
            elif part == SpecialChars.WILDCARD_SINGLE:
                parts.append(".")
            else:
                parts.append(re.escape(part))
        anchored = "^" + "".join(parts) + "$"
        # a scoped (?i:...) group: the backend may wrap the regex in a named group (regex inside OR)
        return SigmaRegularExpression(anchored if cased else f"(?i:{anchored})")


def route53_splunk_pipeline() -> ProcessingPipeline:
    pid = "route53_splunk"
    items = [
        shared.reject_unknown_logsources(pid),
        placeholders.resolve_ioc_domains(pid),
        correlation_limits.refuse_correlations(
            pid, "not expressible in Splunk: ",
            {"temporal_ordered": "pySigma's Splunk backend has no template for an ordered sequence, and counting the rules per window (temporal) would ignore their order"},
        ),
    ]
    for view in shared.rule_views():
        items.append(shared.reject_unknown_fields(pid, view))
        items.append(
            ProcessingItem(
                identifier=f"{pid}_cased_{view.id_suffix}",
                transformation=AsRegex(),
                rule_conditions=[view.condition],
            )
        )
        items.append(shared.map_fields(pid, view, TARGET))
        items.append(
            ProcessingItem(
                identifier=f"{pid}_sourcetype_{view.id_suffix}",
                transformation=AddConditionTransformation(
                    {"sourcetype": view.log_source.targets[TARGET]["sourcetype"]}
                ),
                rule_conditions=[view.condition],
            )
        )
    return ProcessingPipeline(
        name="Route 53 logs to Splunk (CIM Network_Resolution via the r53sigma add-on; raw CloudTrail)",
        priority=20,
        allowed_backends=frozenset({"splunk"}),
        items=items,
    )
