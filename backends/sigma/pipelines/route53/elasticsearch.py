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
  (`dns.resolved_ip`, written by the pack's ingest pipeline; `source.ip` for CloudTrail's
  sourceIPAddress, filled by Elastic's integration); with no companion it is refused;
- field types: an `ip` field takes addresses and CIDR only, so text values of an ip-typed field
  (prefixes, wildcards, `|re`, exact strings) go to its keyword companion (`source.address`); a
  wildcard or regex on a long or date field is refused; a key of a `flattened` field takes exact and
  prefix values only; ES|QL reads a flattened field only whole, so there text values go to the
  key's catalogued keyword companion (filled by the pack's @custom ingest pipeline) or are refused;
- every value type is routed alike: expansions (`|base64offset`, `|windash`) go where plain values go;
- `|re` is translated through its parsed structure (``elasticsearch_regex``); ES|QL strings, LIKE
  patterns and correlations are restated for ES|QL (``elasticsearch_esql``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sigma.processing.conditions import IncludeFieldCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline, QueryPostprocessingItem
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
    SigmaExists,
    SigmaNull,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaExpansion,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from r53sigma import catalogue

from . import correlation_limits, placeholders, shared
from .elasticsearch_esql import ESQLQueries, is_esql
from .elasticsearch_regex import NotExpressible, to_lucene

TARGET = "elasticsearch"
CASELESS_SUFFIX = ".caseless"
NOT_EXPRESSIBLE = "not expressible in Elasticsearch: "  # how a refusal for a target limit begins


def is_caseless(value) -> bool:
    """A case-insensitive string, or an expansion (|base64offset, |windash ...) made only of them."""
    if isinstance(value, SigmaExpansion):
        return bool(value.values) and all(is_caseless(v) for v in value.values)
    return isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString)


def lowered(value):
    if isinstance(value, SigmaExpansion):
        return SigmaExpansion([lowered(v) for v in value.values])
    return value.lower()


def has_letters(value) -> bool:
    """A string (or expansion) whose case could matter: `172.31.*` is the same in every case."""
    if isinstance(value, SigmaExpansion):
        return any(has_letters(v) for v in value.values)
    text = value.to_plain()
    return text.lower() != text.upper()


def is_cidr(value) -> bool:
    return isinstance(value, SigmaCIDRExpression)


def is_text(value) -> bool:
    """A value matched as text: strings (any case), their expansions, regular expressions."""
    return isinstance(value, (SigmaString, SigmaExpansion, SigmaRegularExpression))


def is_pattern(value) -> bool:
    """A value that becomes a wildcard, prefix or regexp query."""
    if isinstance(value, SigmaExpansion):
        return any(is_pattern(v) for v in value.values)
    return isinstance(value, SigmaRegularExpression) or isinstance(value, SigmaString) and value.contains_special()


@dataclass
class RouteValues(DetectionItemTransformation):
    """Send the values of one kind to a companion field that can match them; other values stay.

    kind "caseless": plain (case-insensitive) strings go, lower-cased, to `<field>.caseless`;
    kind "cidr": CIDR networks go to the field's ip-typed companion (catalogue `cidr`);
    kind "keyword": text values of an ip-typed field go to its keyword companion (catalogue `keyword`,
    the address as written), case-insensitive ones lower-cased to the companion's `.caseless`
    sub-field; CIDR networks stay on the ip field.
    """

    mapping: dict  # rule field name -> companion ECS field name
    kind: str

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        selects = {"caseless": is_caseless, "cidr": is_cidr, "keyword": is_text}[self.kind]
        routed = [v for v in detection_item.value if selects(v)]
        if not routed:
            return None
        target = self.mapping[detection_item.field]
        if self.kind == "cidr":
            groups = [(target, routed)]
        elif self.kind == "caseless":
            groups = [(target, [lowered(v) for v in routed])]
        else:  # keyword: caseless values to `.caseless`, |re and |cased ones (and any without a letter) as written
            folds = [is_caseless(v) and has_letters(v) for v in routed]
            groups = [(target + CASELESS_SUFFIX, [lowered(v) for v, fold in zip(routed, folds) if fold]),
                      (target, [v for v, fold in zip(routed, folds) if not fold])]
        groups.append((detection_item.field, [v for v in detection_item.value if not selects(v)]))
        items = []
        for field, values in groups:
            if not values:
                continue
            item = SigmaDetectionItem(field, detection_item.modifiers, values, source=detection_item.source,
                                      auto_modifiers=False)  # the values carry the modifiers' work (|base64 must not apply twice)
            item.value_linking = detection_item.value_linking  # |all stays "every value"
            items.append(item)
        if len(items) == 1:
            return items[0]
        if detection_item.value_linking is not ConditionOR:  # |all: every value must match
            return SigmaDetection(items)
        return SigmaDetection(items, item_linking=ConditionOR)


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
class RejectKeywords(DetectionItemTransformation):
    """A Sigma keyword is a case-insensitive search of the log record's own values. An unqualified
    Lucene term searches every indexed field instead (`index.query.default_field` "*",
    https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl-query-string-query.html),
    the ones the ingest pipeline adds (`event.kind`, `related.*`, `network.protocol`) and keyword
    fields without a lowercase normalizer (case-sensitive) included; ES|QL has no unqualified search."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if detection_item.field is None:
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}keywords: an unqualified term searches every indexed field (those the "
                "ingest pipeline adds, case-sensitive keywords) rather than the log record's values, case-insensitively",
                source=detection_item.source,
            )


@dataclass
class RejectArrayMemberInESQL(DetectionItemTransformation):
    """ES|QL functions and comparisons on a multivalued field return null ("Multivalued fields",
    https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-multivalued-fields.html),
    so `dns.answers.data == "x"` is never true for an event with two answers: "any answer matches"
    has no ES|QL form short of MV_EXPAND, which counts the event once per element. Presence tests
    (IS [NOT] NULL) read the field whole and stay."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if is_esql(self) and not all(isinstance(v, (SigmaExists, SigmaNull)) for v in detection_item.value):
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}'{detection_item.field}' is an array member: in ES|QL a comparison, LIKE or "
                "function on a multivalued field is null, so 'any element matches' cannot be said",
                source=detection_item.source,
            )


@dataclass
class RejectPatternOnTypedField(DetectionItemTransformation):
    """Elasticsearch runs wildcard, prefix and regexp queries only on keyword and text fields; on an
    ip, numeric or date field the whole query fails ("Can only use wildcard queries on keyword and
    text fields", https://www.elastic.co/guide/en/elasticsearch/reference/current/term-level-queries.html),
    and ES|QL's LIKE/RLIKE/starts_with are type errors there. Refused where the catalogue names no
    keyword companion."""

    types: dict  # rule field name -> catalogue type

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if any(is_pattern(v) for v in detection_item.value):
            kind = self.types[detection_item.field]
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}a wildcard, |contains/|startswith/|endswith or |re value on "
                f"'{detection_item.field}', a field Elasticsearch maps as {ES_TYPE_NAMES.get(kind, kind)}: "
                "such queries run only on keyword and text fields",
                source=detection_item.source,
            )


ES_TYPE_NAMES = {"integer": "long", "ip": "ip", "date": "date"}


@dataclass
class FlattenedKeyValues(DetectionItemTransformation):
    """A key of a `flattened` field is a keyword without normalizer on which Elasticsearch runs term and
    prefix queries only: wildcard and regexp fail the query ("[wildcard] queries are not currently
    supported on keyed [flattened] fields", https://www.elastic.co/guide/en/elasticsearch/reference/current/flattened.html
    "Supported operations"; elastic/elasticsearch#157064). So a value is matched exactly or as a prefix;
    a case-insensitive value is exact only where it has no letters (the catalogue claims a single case
    where AWS guarantees one, and such values are folded before this step); anything else is refused.
    ES|QL reads a flattened field only whole: there text values go to the key's keyword companion
    (catalogue `keyword`, filled by the pack's @custom ingest pipeline), other values are refused."""

    companions: dict = field(default_factory=dict)  # rule field name -> keyword companion (ES|QL only)

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if is_esql(self):  # Elastic, "ES|QL and flattened fields": only the whole flattened field is a column
            if detection_item.field not in self.companions or not all(is_text(v) for v in detection_item.value):
                self.refuse(detection_item, "ES|QL reads a flattened field only whole")
            return RouteValues(self.companions, "keyword").apply_detection_item(detection_item)
        detection_item.value = [self.value(detection_item, v) for v in detection_item.value]

    def value(self, item: SigmaDetectionItem, value):
        if isinstance(value, SigmaExpansion):
            return SigmaExpansion([self.value(item, v) for v in value.values])
        if isinstance(value, SigmaRegularExpression):
            self.refuse(item, "a |re value (regexp queries are not supported on keys of a flattened field)")
        if not isinstance(value, SigmaString):
            return value
        specials = [i for i, part in enumerate(value.s) if isinstance(part, SpecialChars)]
        if specials and (specials != [len(value.s) - 1] or value.s[-1] is not SpecialChars.WILDCARD_MULTI):
            self.refuse(item, f"the value '{value}' needs a wildcard query, and keys of a flattened field take only exact and prefix queries")
        if isinstance(value, SigmaCasedString):
            return value
        if any(isinstance(part, str) and part.lower() != part.upper() for part in value.s):
            self.refuse(item, f"the case-insensitive value '{value}' has letters, and a key of a flattened field has no normalizer and no case-insensitive query")
        return SigmaCasedString.from_sigma_string(value)  # no letters: the exact match is the case-insensitive one

    @staticmethod
    def refuse(item: SigmaDetectionItem, reason: str):
        raise SigmaFeatureNotSupportedByBackendError(
            f"{NOT_EXPRESSIBLE}'{item.field}' is a key inside a flattened field: {reason}", source=item.source
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
                if log_source.is_flattened(TARGET, es_name) and not (catalogued and catalogued.target(TARGET).keyword):
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
        if isinstance(val, SigmaExpansion):
            return SigmaExpansion([self.apply_value(field, v) or v for v in val.values])
        if isinstance(val, SigmaCasedString):
            exact = SigmaString(val.original)
            exact.s = val.s  # keep wildcards and modifiers' work, drop only the case flag
            return exact
        return None


@dataclass
class RegexForLucene(ValueTransformation):
    """Sigma `|re` searches anywhere in the value; Lucene (and ES|QL RLIKE) match the whole value.

    The regex is translated through its parsed structure (``elasticsearch_regex``): each alternative
    anchored or `.*`-padded as its own anchors say, the `i` flag as case pairs. `s` is Lucene's
    behaviour already (`.` matches any character) and `m` changes nothing on single-line values.
    What Lucene's regex language lacks is refused.
    """

    def apply_value(self, field: str, val):
        if not isinstance(val, SigmaRegularExpression):
            return None
        text = val.regexp.to_plain()
        try:
            lucene = to_lucene(text, SigmaRegularExpressionFlag.IGNORECASE in val.flags)
        except NotExpressible as reason:
            raise SigmaFeatureNotSupportedByBackendError(
                f"{NOT_EXPRESSIBLE}regular expression /{text}/: {reason}"
            ) from None
        return SigmaRegularExpression(lucene)


def route53_elasticsearch_pipeline() -> ProcessingPipeline:
    pid = "route53_elasticsearch"
    items = [
        shared.reject_unknown_logsources(pid),
        placeholders.resolve_ioc_domains(pid),
        correlation_limits.refuse_correlations(
            pid, NOT_EXPRESSIBLE,
            {"temporal_ordered": "pySigma's ES|QL backend has no template for an ordered sequence, and counting the rules per window (temporal) would ignore their order",
             **dict.fromkeys(  # Sigma 2.1 numeric aggregates the language cannot state exactly
                 ("value_percentile", "value_median"),
                 "ES|QL's PERCENTILE and MEDIAN are approximate (TDigest), not the exact linear interpolation "
                 "between the nearest ranks that the Sigma engines use (value_sum and value_avg convert)")},
            aliases="the ES|QL backend runs the referenced rules as one query and does not rename their fields to the alias, so it would group by a field no index has",
        ),
    ]
    for view in shared.rule_views():
        items.append(shared.reject_unknown_fields(pid, view, TARGET, NOT_EXPRESSIBLE))
        items.append(ProcessingItem(identifier=f"{pid}_keywords_{view.id_suffix}", transformation=RejectKeywords(),
                                    rule_conditions=[view.condition]))
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
        rule_fields = list(view.rule_fields(TARGET))
        cidr_companions = {n: f.target(TARGET).cidr for n, f in rule_fields if f.target(TARGET).cidr}
        keyword_only = [n for n, f in rule_fields if f.type != "ip" and not f.target(TARGET).cidr]
        flattened = [n for n, f in rule_fields if view.log_source.is_flattened(TARGET, f.target(TARGET).name)]
        flattened_companions = {n: f.target(TARGET).keyword for n, f in rule_fields if n in flattened and f.target(TARGET).keyword}
        keyword_companions = {n: f.target(TARGET).keyword for n, f in rule_fields if f.target(TARGET).keyword and n not in flattened}
        typed = {n: f.type for n, f in rule_fields if f.type in ES_TYPE_NAMES and not f.target(TARGET).keyword}
        caseless = {
            n: f.target(TARGET).name + CASELESS_SUFFIX
            for n, f in rule_fields
            if f.is_string and f.target(TARGET).values == "mixed" and n not in flattened
        }
        arrays = [n for n, f in rule_fields if f.array]
        for kind, names, transformation in (
            ("esql_array", arrays, RejectArrayMemberInESQL()),
            ("reject_cidr", keyword_only, RejectCidrOnKeyword()),
            ("flattened_key", flattened, FlattenedKeyValues(flattened_companions)),
            ("reject_pattern_on_typed", list(typed), RejectPatternOnTypedField(typed)),
            ("keyword", list(keyword_companions), RouteValues(keyword_companions, "keyword")),
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
        postprocessing_items=[QueryPostprocessingItem(ESQLQueries(), identifier=f"{pid}_esql")],
    )

