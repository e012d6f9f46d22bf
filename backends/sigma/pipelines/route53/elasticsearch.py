"""route53_elasticsearch: Route 53 rules onto ECS as Elastic's AWS integration writes it.

Meaning kept from the rules:
- trailing dots: the ingest pipeline (Elastic's, and ours under mappings/elasticsearch) removes
  them from `dns.question.name` and `dns.answers.data`, so rule values compare as written;
- any answer: `dns.answers.data` is an array, and Lucene/ES|QL match any element;
- case: fields AWS writes in one case (`values: upper|lower` in the catalogue) get rule values
  folded to that case. Mixed-case fields are matched on the `<field>.caseless` sub-field, a
  keyword with a lowercase normalizer that **the pack's index template adds** (mappings/elasticsearch);
  `|cased` and `|re` values go to the original field, which keeps the case.
"""
from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.conditions import IncludeFieldCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import SetStateTransformation
from sigma.processing.transformations.base import DetectionItemTransformation, ValueTransformation
from sigma.conditions import ConditionOR
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaCasedString, SigmaString

from . import shared

TARGET = "elasticsearch"
CASELESS_SUFFIX = ".caseless"


def is_caseless(value) -> bool:
    return isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString)


@dataclass
class CaselessSubfield(DetectionItemTransformation):
    """Send case-insensitive string values to the lower-cased sub-field, other values to the field."""

    mapping: dict  # rule field name -> ECS name

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        caseless = [v for v in detection_item.value if is_caseless(v)]
        if not caseless:
            return None
        ecs_name = self.mapping[detection_item.field]
        lowered = SigmaDetectionItem(
            ecs_name + CASELESS_SUFFIX,
            detection_item.modifiers,
            [v.lower() for v in caseless],
            source=detection_item.source,
        )
        others = [v for v in detection_item.value if not is_caseless(v)]
        if not others:
            return lowered
        exact = SigmaDetectionItem(detection_item.field, detection_item.modifiers, others, source=detection_item.source)
        if detection_item.value_linking is not ConditionOR:  # |all: every value must match
            lowered.value_linking = exact.value_linking = detection_item.value_linking
            return SigmaDetection([lowered, exact])
        return SigmaDetection([lowered, exact], item_linking=ConditionOR)


@dataclass
class CasedAsExact(ValueTransformation):
    """A `|cased` value left on an original (case-keeping keyword) field is an exact match there."""

    def apply_value(self, field: str, val):
        if isinstance(val, SigmaCasedString):
            exact = SigmaString(val.original)
            exact.s = val.s  # keep wildcards and modifiers' work, drop only the case flag
            return exact
        return None


def route53_elasticsearch_pipeline() -> ProcessingPipeline:
    pid = "route53_elasticsearch"
    items = [shared.reject_unknown_logsources(pid)]
    for view in shared.rule_views():
        items.append(shared.reject_unknown_fields(pid, view))
        items.append(
            ProcessingItem(  # ES|QL's `from` clause (and any consumer of the state) gets the log source's index patterns
                identifier=f"{pid}_index_{view.id_suffix}",
                transformation=SetStateTransformation("index", list(view.log_source.targets[TARGET]["index"])),
                rule_conditions=[view.condition],
            )
        )
        items.extend(shared.fold_case(pid, view, TARGET))
        mixed = {
            name: field.target(TARGET).name
            for name, field in view.rule_fields()
            if field.is_string and field.target(TARGET).values == "mixed"
        }
        if mixed:
            items.append(
                ProcessingItem(
                    identifier=f"{pid}_caseless_{view.id_suffix}",
                    transformation=CaselessSubfield(mixed),
                    rule_conditions=[view.condition],
                    field_name_conditions=[IncludeFieldCondition(list(mixed))],
                )
            )
        items.append(shared.map_fields(pid, view, TARGET))
        items.append(
            ProcessingItem(
                identifier=f"{pid}_cased_{view.id_suffix}",
                transformation=CasedAsExact(),
                rule_conditions=[view.condition],
            )
        )
    return ProcessingPipeline(
        name="Route 53 logs to ECS (Elastic AWS integration + r53sigma index template)",
        priority=20,
        allowed_backends=frozenset({"elasticsearch", "opensearch", "eql", "esql", "lucene"}),
        items=items,
    )

