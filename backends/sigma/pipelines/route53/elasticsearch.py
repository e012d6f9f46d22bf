"""route53_elasticsearch: Route 53 rules onto ECS as Elastic's AWS integration writes it.

Meaning kept from the rules:
- trailing dots: the ingest pipeline (Elastic's, and ours under mappings/elasticsearch) removes
  them from `dns.question.name` and `dns.answers.data`, so rule values compare as written;
- any answer: `dns.answers.data` is an array, and Lucene/ES|QL match any element;
- case: fields AWS writes in one case (`values: upper|lower` in the catalogue) get rule values
  folded to that case. Mixed-case fields are matched on the `<field>.caseless` sub-field, a
  keyword with a lowercase normalizer that **the pack's index template adds** (mappings/elasticsearch);
  `|cased` and `|re` values go to the original field, which keeps the case;
- `|cidr` on a keyword field (answers) is matched on its ip-typed companion the catalogue names
  (`dns.resolved_ip`, written by the pack's ingest pipeline); with no companion it is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.conditions import IncludeFieldCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import SetStateTransformation
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
    ValueTransformation,
)
from sigma.conditions import ConditionOR
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import (
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
)

from r53sigma import catalogue

from . import shared

TARGET = "elasticsearch"
CASELESS_SUFFIX = ".caseless"
NOT_EXPRESSIBLE = "not expressible in Elasticsearch: "  # how a refusal for a target limit begins


def is_caseless(value) -> bool:
    return isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString)


def is_cidr(value) -> bool:
    return isinstance(value, SigmaCIDRExpression)


@dataclass
class RouteValues(DetectionItemTransformation):
    """Send the values of one kind to a companion field that can match them; other values stay.

    kind "caseless": plain (case-insensitive) strings go, lower-cased, to `<field>.caseless`;
    kind "cidr": CIDR networks go to the field's ip-typed companion (catalogue `cidr`).
    """

    mapping: dict  # rule field name -> companion ECS field name
    kind: str

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        selects = is_caseless if self.kind == "caseless" else is_cidr
        routed = [v for v in detection_item.value if selects(v)]
        if not routed:
            return None
        moved = SigmaDetectionItem(
            self.mapping[detection_item.field],
            detection_item.modifiers,
            [v.lower() for v in routed] if self.kind == "caseless" else routed,
            source=detection_item.source,
            auto_modifiers=False,  # the values already carry the modifiers' work (|base64 must not apply twice)
        )
        moved.value_linking = detection_item.value_linking  # |all stays "every value"
        others = [v for v in detection_item.value if not selects(v)]
        if not others:
            return moved
        kept = SigmaDetectionItem(
            detection_item.field, detection_item.modifiers, others, source=detection_item.source, auto_modifiers=False
        )
        kept.value_linking = detection_item.value_linking
        if detection_item.value_linking is not ConditionOR:  # |all: every value must match
            return SigmaDetection([moved, kept])
        return SigmaDetection([moved, kept], item_linking=ConditionOR)


@dataclass
class RejectCidrOnKeyword(DetectionItemTransformation):
    """A keyword field matches a CIDR only as literal text: refuse rather than never match."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if any(is_cidr(v) for v in detection_item.value):
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}|cidr on '{detection_item.field}': the field is a keyword "
                "and the catalogue names no ip-typed companion for it",
                source=detection_item.source,
            )


@dataclass
class RejectFlattenedInCorrelation(PreprocessingTransformation):
    """Correlations become ES|QL, which reads a `flattened` field only whole, never one of its keys."""

    source: str

    def apply(self, rule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaCorrelationRule):
            return
        log_source = catalogue.load()[self.source]
        for reference in rule.rules:
            for field in _detection_fields(reference.rule):
                catalogued = log_source.fields.get(field)
                es_name = catalogued.target(TARGET).name if catalogued else field
                if log_source.is_flattened(TARGET, es_name):
                    root = next(r for r in log_source.flattened_roots(TARGET) if es_name.startswith(r + "."))
                    raise SigmaFeatureNotSupportedByBackendError(
                        f"{NOT_EXPRESSIBLE}the correlation's rule '{reference.rule.name or reference.rule.title}' "
                        f"filters on {es_name}, a key inside the flattened field under {root}, and correlations "
                        "run as ES|QL, which reads a flattened field only whole",
                        source=rule.source,
                    )


def _detection_fields(rule) -> set[str]:
    found: set[str] = set()

    def walk(detection) -> None:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
            elif item.field:
                found.add(item.field)

    for detection in getattr(rule, "detection", None) and rule.detection.detections.values() or ():
        walk(detection)
    return found


@dataclass
class CasedAsExact(ValueTransformation):
    """A `|cased` value left on an original (case-keeping keyword) field is an exact match there."""

    def apply_value(self, field: str, val):
        if isinstance(val, SigmaCasedString):
            exact = SigmaString(val.original)
            exact.s = val.s  # keep wildcards and modifiers' work, drop only the case flag
            return exact
        return None


@dataclass
class RegexForLucene(ValueTransformation):
    """Sigma `|re` searches anywhere in the value; Lucene (and ES|QL RLIKE) match the whole value.

    Lucene regexes are anchored and know no `^`, `$` or inline flags: an unanchored side gets `.*`,
    an anchor is dropped, and the `i` flag becomes explicit case classes. What cannot be rewritten
    exactly (an anchor inside the expression) is refused. `s` is Lucene's behaviour already (`.`
    matches any character) and `m` changes nothing without inner anchors.
    """

    def apply_value(self, field: str, val):
        if not isinstance(val, SigmaRegularExpression):
            return None
        text = val.regexp.to_plain()
        starts, ends = text.startswith("^"), text.endswith("$") and not text.endswith("\\$")
        body = text[1 if starts else 0 : len(text) - 1 if ends else len(text)]
        if _outside_classes(body, "^$"):
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}regular expression /{text}/ anchors inside the expression, which Lucene regexes cannot state"
            )
        if SigmaRegularExpressionFlag.IGNORECASE in val.flags:
            body = _both_cases(body)
        lucene = ("" if starts else ".*") + f"({body})" + ("" if ends else ".*")
        return SigmaRegularExpression(lucene)


def _outside_classes(regex: str, characters: str) -> bool:
    """Whether one of ``characters`` appears unescaped and outside a [...] class."""
    escaped = in_class = False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in characters:
            return True
    return False


def _both_cases(regex: str) -> str:
    """A case-insensitive regex as explicit classes: `a` -> `[aA]`, `[a-f]` -> `[a-fA-F]`."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            out.append(regex[i : i + 2])
            i += 2
        elif char == "[":
            end = i + 1
            while end < len(regex) and (regex[end] != "]" or end == i + 1 or regex[end - 1] == "\\"):
                end += 1
            content = regex[i + 1 : end]
            negated = content.startswith("^")
            core = content[1:] if negated else content
            if "\\" in core and any(c.isalpha() for c in core.split("\\", 1)[1][:1]):
                raise SigmaFeatureNotSupportedByBackendError(
                    f"{NOT_EXPRESSIBLE}case-insensitive class [{content}] with an escape sequence cannot be rewritten for Lucene"
                )
            extra = core.swapcase() if any(c.isalpha() for c in core) else ""
            out.append("[" + ("^" if negated else "") + core + extra + "]")
            i = end + 1
        elif char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


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
        if view.log_source.flattened_roots(TARGET):
            items.append(
                ProcessingItem(
                    identifier=f"{pid}_flattened_in_correlation_{view.id_suffix}",
                    transformation=RejectFlattenedInCorrelation(view.log_source.source),
                    rule_conditions=[view.condition],
                )
            )
        items.extend(shared.fold_case(pid, view, TARGET))
        rule_fields = list(view.rule_fields())
        cidr_companions = {n: f.target(TARGET).cidr for n, f in rule_fields if f.target(TARGET).cidr}
        keyword_only = [n for n, f in rule_fields if f.type != "ip" and not f.target(TARGET).cidr]
        caseless = {
            n: f.target(TARGET).name + CASELESS_SUFFIX
            for n, f in rule_fields
            if f.is_string and f.target(TARGET).values == "mixed"
        }
        for kind, names, transformation in (
            ("reject_cidr", keyword_only, RejectCidrOnKeyword()),
            ("cidr", list(cidr_companions), RouteValues(cidr_companions, "cidr")),
            ("caseless", list(caseless), RouteValues(caseless, "caseless")),
        ):
            if names:
                items.append(
                    ProcessingItem(
                        identifier=f"{pid}_{kind}_{view.id_suffix}",
                        transformation=transformation,
                        rule_conditions=[view.condition],
                        field_name_conditions=[IncludeFieldCondition(names)],
                    )
                )
        items.append(shared.map_fields(pid, view, TARGET))
        items.append(
            ProcessingItem(
                identifier=f"{pid}_regex_{view.id_suffix}",
                transformation=RegexForLucene(),
                rule_conditions=[view.condition],
            )
        )
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
        # only the backends r53sigma verify proves (real Lucene, the ES|QL model); EQL and OpenSearch are not
        allowed_backends=frozenset({"esql", "lucene"}),
        items=items,
    )

