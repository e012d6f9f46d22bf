"""route53_splunk: Route 53 rules onto Splunk, scoped by sourcetype.

DNS logs use CIM Network_Resolution names (`query`, `record_type`, `reply_code`, `answer`, `src`,
`src_port`, `transport`) as **the pack's add-on** (mappings/splunk props.conf) extracts them:
`query` and `answer` without trailing dot, `answer` multivalue over every answer, so search terms
match any answer. CloudTrail keeps its raw names (Splunk Add-on for AWS, sourcetype aws:cloudtrail),
arrays as `{}` paths. Splunk compares search-term values case-insensitively, as Sigma does;
`|cased` values, values with a literal `*` (SPL cannot escape it) and values with Sigma's
single-character wildcard `?` (a search term only has `*`) become an anchored regular expression.
Keywords (values without a field) become one exact regex over `_raw` each (:mod:`.splunk_keywords`):
a bare search term matches indexed segments of `_raw`, not Sigma's whole value anywhere in the
record; a literal keyword the rule requires also stays in the base search as its segment term, a
superset that lets the index narrow the events first. Number and `|re` keywords are refused.

A regular expression cannot sit in a search term. pySigma's Splunk backend appends it as a later
`| regex` stage (right only for a plain conjunct: under `not` it drops the negation) or, under OR,
as `rex`/`eval` steps whose search loses the boolean structure (and `rex` reads one value of a
multivalue field). So each regex becomes a flag field computed by one `eval` before the search,
with `mvfind` (any value of a multivalue field), and the rule's whole condition stays one search
over plain terms and flags (:class:`RegexFlags`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, SetStateTransformation
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
    ValueTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import (
    SigmaCasedString,
    SigmaExpansion,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from r53sigma import catalogue
from r53sigma.catalogue import LogSource

# the add-on's CIM vendor_product, from the catalogue: a tstats search sees Route 53 only
VENDOR_PRODUCT = {ls.source: ls.targets["splunk"]["vendor_product"]
                  for ls in catalogue.log_sources() if "vendor_product" in ls.targets["splunk"]}

from . import correlation_limits, placeholders, shared, splunk_keywords

TARGET = "splunk"


@dataclass
class AsRegex(ValueTransformation):
    """Values a Splunk search term cannot state become an anchored `regex`.

    A `|cased` value (search terms ignore case), a value holding a literal `*` (SPL cannot
    escape the asterisk in a search term: `\\*` is still a wildcard), and a value with Sigma's
    single-character wildcard `?` (a search term has only `*`, which would over-match).
    """

    log_source: LogSource | None = None  # keywords: the raw format their regex is built for

    def apply_value(self, field: str, val):
        if field is None:
            return self.keyword(val)
        if isinstance(val, SigmaExpansion):
            # |windash, |base64offset ...: the or-ed values are routed together, like any value
            if not any(isinstance(v, SigmaString) and _needs_regex(v) for v in val.values):
                return None
            if not all(isinstance(v, SigmaString) for v in val.values):
                raise SigmaFeatureNotSupportedByBackendError(
                    "Splunk: an expanded value mixing strings that need a regex with other value types")
            return SigmaExpansion([_as_regex(field, v) for v in val.values])
        if not isinstance(val, SigmaString) or not _needs_regex(val):
            return None
        return _as_regex(field, val)


    def keyword(self, val):
        """Every keyword: a regex over _raw (splunk_keywords), as no search term states Sigma's meaning."""
        if isinstance(val, SigmaExpansion):
            return SigmaExpansion([self.keyword(v) for v in val.values])
        regex = splunk_keywords.keyword_regex(val, self.log_source)
        return KeywordRegex(regex, term=splunk_keywords.prefilter_term(val))


@dataclass
class KeywordRegex(SigmaRegularExpression):
    """A keyword's exact regex, with the search term (if any) that every event it matches contains."""

    term: str | None = None


def _needs_regex(val: SigmaString) -> bool:
    cased = isinstance(val, SigmaCasedString)
    literal_asterisk = any(isinstance(part, str) and "*" in part for part in val.s)
    return cased or literal_asterisk or SpecialChars.WILDCARD_SINGLE in val.s


def _as_regex(field: str, val: SigmaString) -> SigmaRegularExpression:
    parts = []
    for part in val.s:
        if part == SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        else:
            parts.append(re.escape(part))
    anchored = "^" + "".join(parts) + "$"
    # (?s): Sigma's wildcards match any character, line breaks too; a scoped (?i:...) group
    # keeps the flag inside the regex wherever it is embedded.
    return SigmaRegularExpression(f"(?s:{anchored})" if isinstance(val, SigmaCasedString) else f"(?is:{anchored})")


def _is_regex(value) -> bool:
    """A regex, or an expansion of regexes (or-ed)."""
    if isinstance(value, SigmaExpansion):
        return bool(value.values) and all(isinstance(v, SigmaRegularExpression) for v in value.values)
    return isinstance(value, SigmaRegularExpression)


FLAG_PREFIX = "r53sigma_regex_"


def _eval_string(text: str) -> str:
    """An eval string literal: only the backslash and the double quote are escaped
    (Search Manual, "SPL and regular expressions": a doubled backslash reaches the regex as one)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex_text(value: SigmaRegularExpression) -> str:
    flags = "".join(sorted(SigmaRegularExpression.sigma_to_re_flag[f] for f in value.flags))
    return (f"(?{flags})" if flags else "") + str(value.regexp)


def _leaves(node):
    if isinstance(node, (ConditionFieldEqualsValueExpression, ConditionValueExpression)):
        yield node
    for arg in getattr(node, "args", []):
        yield from _leaves(arg)


def _named_detection(leaf, names: dict[int, str]) -> str | None:
    """The name of the rule detection a condition leaf comes from (its outermost detection)."""
    found, node = None, leaf.parent
    while node is not None:
        if id(node) in names:
            found = names[id(node)]
        node = getattr(node, "parent", None)
    return found


def _plain_conjuncts(tree, names: dict[int, str]) -> list[str]:
    """Detections without a regex that the condition requires as a whole (top-level `and`)."""
    parts = list(tree.args) if isinstance(tree, ConditionAND) else [tree]
    while any(isinstance(p, ConditionAND) for p in parts):
        parts = [a for p in parts for a in (p.args if isinstance(p, ConditionAND) else [p])]
    out = []
    for part in parts:
        if isinstance(part, ConditionNOT) or any(isinstance(n, ConditionNOT) for n in _nodes(part)):
            continue
        leaves = list(_leaves(part))
        owners = {_named_detection(leaf, names) for leaf in leaves}
        if len(owners) == 1 and None not in owners and not any(_is_regex(l.value) for l in leaves):
            owner = owners.pop()
            if owner not in out:
                out.append(owner)
    return out


def _prefilter(node) -> str | None:
    """Search terms implied by a condition part made only of keywords (no `not`): narrow the base
    search on the index before the eval computes the exact regexes."""
    if isinstance(node, ConditionValueExpression):
        term = getattr(node.value, "term", None)
        return f'"{term}"' if term else None
    if isinstance(node, (ConditionAND, ConditionOR)):
        parts = [_prefilter(arg) for arg in node.args]
        if None in parts or not parts:
            return None
        return " ".join(parts) if isinstance(node, ConditionAND) else "(" + " OR ".join(parts) + ")"
    return None


def _keyword_prefilters(tree) -> list[str]:
    parts = list(tree.args) if isinstance(tree, ConditionAND) else [tree]
    while any(isinstance(p, ConditionAND) for p in parts):
        parts = [a for p in parts for a in (p.args if isinstance(p, ConditionAND) else [p])]
    return [text for text in map(_prefilter, parts) if text]


def _nodes(node):
    yield node
    for arg in getattr(node, "args", []):
        yield from _nodes(arg)


def _has_regex(node) -> bool:
    if isinstance(node, (ConditionFieldEqualsValueExpression, ConditionValueExpression)):
        return _is_regex(node.value)
    return any(_has_regex(arg) for arg in getattr(node, "args", []))


@dataclass
class RegexFlags(PreprocessingTransformation):
    """A rule's regexes become flag fields set by one `eval` ahead of the search.

    Each detection item's regex values become one flag (true when the item's regexes match with
    the item's own and/or linking; any value of a multivalue field, by `mvfind`); the item's other
    values stay plain search terms, or-ed (and-ed for `|all`) with the flag. The flags are computed
    in a query part placed first (pySigma's `SigmaQueryExpression`, made for pipelines to pass
    target text): `<scope and the plain detections every match needs> | eval flag=if(...) | search
    <the rule's condition>`. Runs after field mapping, so the eval names the Splunk fields.
    """

    scope: str  # the base search that selects the log source (e.g. its sourcetype)

    def apply(self, rule) -> None:
        if isinstance(rule, SigmaCorrelationRule):
            return
        conditions = rule.detection.parsed_condition
        trees = [condition.parsed for condition in conditions]
        if not any(_has_regex(tree) for tree in trees):
            return
        names = {id(detection): name for name, detection in rule.detection.detections.items()}
        # Plain detections that every match needs stay in the base search too, so Splunk narrows
        # the events before the eval runs on them (the search after the eval repeats them).
        hoisted = [_plain_conjuncts(tree, names) for tree in trees]
        prefilters = [_keyword_prefilters(tree) for tree in trees]
        flags: list[str] = []
        for detection in rule.detection.detections.values():
            self._flag_detection(detection, flags)
        name = "_r53sigma_regex_flags"
        evals = ", ".join(flags)
        for index, (condition, plain) in enumerate(zip(conditions, hoisted)):
            part = f"{name}_{index}"
            terms = " ".join(prefilters[index])
            prefix = " ".join(filter(None, ["" if plain else self.scope, terms])) + f"\n| eval {evals}\n| search"
            rule.detection.detections[part] = SigmaDetection(
                [SigmaDetectionItem(None, [], [SigmaQueryExpression(prefix.replace("{", "{{").replace("}", "}}"), part)])]
            )
            self.processing_item_applied(rule.detection.detections[part])
            condition.condition = " and ".join(plain + [part]) + f" and ({condition.condition})"

    def _flag_detection(self, detection: SigmaDetection, flags: list[str]) -> None:
        for index, item in enumerate(detection.detection_items):
            if isinstance(item, SigmaDetection):
                self._flag_detection(item, flags)
                continue
            regexes = [v for v in item.value if _is_regex(v)]
            if not regexes:
                continue
            field = item.field or "_raw"

            def found(regex: SigmaRegularExpression) -> str:
                return f"isnotnull(mvfind('{field}', {_eval_string(_regex_text(regex))}))"

            joiner = " AND " if item.value_linking is ConditionAND else " OR "
            test = joiner.join(
                "(" + " OR ".join(found(r) for r in v.values) + ")" if isinstance(v, SigmaExpansion) else found(v)
                for v in regexes
            )
            flag = f"{FLAG_PREFIX}{len(flags) + 1}"
            flags.append(f'{flag}=if({test}, "true", "false")')
            flag_item = SigmaDetectionItem(flag, [], [SigmaString("true")])
            others = [v for v in item.value if not _is_regex(v)]
            if not others:
                replacement = flag_item
            else:
                plain = SigmaDetectionItem(item.field, [], others, value_linking=item.value_linking)
                replacement = SigmaDetection([plain, flag_item], item_linking=item.value_linking)
            replacement.parent = detection
            detection.detection_items[index] = replacement


# `-f data_model`: SplunkBackend's tstats output over CIM's accelerated Network_Resolution.DNS.
DATA_MODEL_FORMAT = "data_model"
DATA_MODEL, DATASET = "Network_Resolution", "DNS"
# Fields of CIM's "Network Resolution (DNS)" dataset (Splunk CIM manual, data model reference);
# only these are in the data model's summaries (src_port is left out: the field list as read shows
# dest_port but not src_port, so a rule on the source port is refused rather than guessed).
CIM_DNS_FIELDS = frozenset({
    "additional_answer_count", "answer", "answer_count", "authority_answer_count", "dest", "dest_port",
    "duration", "message_type", "name", "query", "query_count", "query_type", "record_type", "reply_code",
    "reply_code_id", "response_time", "src", "transaction_id", "transport", "ttl", "vendor_product",
})
DATA_MODEL_BY = ("src", "query", "record_type", "reply_code")  # one result row per asker and question


def _data_model_output(transformation) -> bool:
    """Converting with `-f data_model`? (the backend puts the format in the pipeline's vars, which
    pySigma's own placeholder transformations read the same way)."""
    pipeline = transformation._pipeline
    return pipeline is not None and pipeline.vars.get("output_format") == DATA_MODEL_FORMAT


@dataclass
class DataModelFields(DetectionItemTransformation):
    """With `-f data_model`: CIM fields become `DNS.<field>`; anything tstats cannot search is refused.

    tstats searches the data model's summaries: only the dataset's fields exist there (no `_raw`
    for keywords), and its where clause takes search terms, not a regex stage.
    """

    source: str

    def apply(self, rule) -> None:
        if not _data_model_output(self):
            return
        if isinstance(rule, SigmaCorrelationRule):
            raise SigmaFeatureNotSupportedByBackendError(
                "Splunk data_model: correlations are not converted to tstats; use the default format")
        if self.source not in VENDOR_PRODUCT:
            raise SigmaFeatureNotSupportedByBackendError(
                f"Splunk data_model: {self.source} events are not in the CIM {DATA_MODEL} data model")
        super().apply(rule)

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        field = detection_item.field
        if field is None:
            raise SigmaFeatureNotSupportedByBackendError(
                "Splunk data_model: a keyword needs the raw event, which tstats does not search")
        if field not in CIM_DNS_FIELDS:
            raise SigmaFeatureNotSupportedByBackendError(
                f"Splunk data_model: field {field!r} is not a field of CIM {DATA_MODEL}.{DATASET}")
        if any(_is_regex(v) for v in detection_item.value):
            raise SigmaFeatureNotSupportedByBackendError(
                f"Splunk data_model: field {field!r} needs a regular expression (|re, |cased, '?' or a"
                " literal '*'), which a tstats where clause cannot evaluate")
        detection_item.field = f"{DATASET}.{field}"
        self.processing_item_applied(detection_item)


@dataclass
class Scope(AddConditionTransformation):
    """The log source's sourcetype; with `-f data_model`, the add-on's `vendor_product` instead."""

    data_model_conditions: dict = None

    def apply(self, rule) -> None:
        if _data_model_output(self):
            self.conditions, self._search_conditions = self.data_model_conditions, self.conditions
            try:
                super().apply(rule)
            finally:
                self.conditions = self._search_conditions
        else:
            super().apply(rule)


@dataclass
class ExpansionsAsGroups(DetectionItemTransformation):
    """pySigma's TextQueryBackend renders an expansion (|windash, |base64offset) as a bare `a OR b`
    and does not group it under a negation (convert_condition_field_eq_expansion returns an OR that
    convert_condition_not sees as one field condition), so `not sel` becomes `NOT a OR b`. Restated
    as detection items the condition tree holds, an expansion is an OR node and gets its parentheses:
    an OR-linked item takes the expanded values as its own value list; under |all each value
    becomes its own OR-linked item, AND-linked."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem):
        if not any(isinstance(v, SigmaExpansion) for v in detection_item.value):
            return None
        if detection_item.value_linking is ConditionAND:
            parts = [SigmaDetectionItem(detection_item.field, [], list(v.values) if isinstance(v, SigmaExpansion) else [v],
                                        source=detection_item.source)
                     for v in detection_item.value]
            return SigmaDetection(parts, item_linking=ConditionAND)
        values = [e for v in detection_item.value for e in (v.values if isinstance(v, SigmaExpansion) else [v])]
        return SigmaDetectionItem(detection_item.field, [], values, source=detection_item.source)


def route53_splunk_pipeline() -> ProcessingPipeline:
    pid = "route53_splunk"
    items = [
        shared.reject_unknown_logsources(pid),
        placeholders.resolve_ioc_domains(pid),
        correlation_limits.refuse_correlations(
            pid, "not expressible in Splunk: ",
            {"temporal_ordered": "pySigma's Splunk backend has no template for an ordered sequence, and counting the rules per window (temporal) would ignore their order",
             **dict.fromkeys(  # Sigma 2.1 numeric aggregates the language cannot state exactly
                 ("value_percentile", "value_median"),
                 "Splunk documents perc/upperperc as approximations and states no rank rule for exactperc or median "
                 "that matches the Sigma engines' linear interpolation between the nearest ranks (value_sum and value_avg convert)")},
        ),
    ]
    for view in shared.rule_views():
        items.append(shared.reject_unknown_fields(pid, view, TARGET, "not expressible in Splunk: "))
        items.append(ProcessingItem(identifier=f"{pid}_expansions_{view.id_suffix}", transformation=ExpansionsAsGroups(),
                                    rule_conditions=[view.condition]))
        items.append(
            ProcessingItem(
                identifier=f"{pid}_cased_{view.id_suffix}",
                transformation=AsRegex(view.log_source),
                rule_conditions=[view.condition],
            )
        )
        items.append(shared.map_fields(pid, view, TARGET))
        source = view.log_source.source
        items.append(
            ProcessingItem(
                identifier=f"{pid}_data_model_{view.id_suffix}",
                transformation=DataModelFields(source),
                rule_conditions=[view.condition],
            )
        )
        sourcetype = view.log_source.targets[TARGET]["sourcetype"]
        items.append(
            ProcessingItem(
                identifier=f"{pid}_sourcetype_{view.id_suffix}",
                transformation=Scope(
                    {"sourcetype": sourcetype},
                    data_model_conditions={f"{DATASET}.vendor_product": VENDOR_PRODUCT.get(source, "")},
                ),
                rule_conditions=[view.condition],
            )
        )
        items.append(
            ProcessingItem(
                identifier=f"{pid}_regex_flags_{view.id_suffix}",
                transformation=RegexFlags(f'sourcetype="{sourcetype}"'),
                rule_conditions=[view.condition],
            )
        )
    # What SplunkBackend's data_model format reads: the dataset and the fields of each result row.
    items.append(ProcessingItem(
        identifier=f"{pid}_data_model_set",
        transformation=SetStateTransformation("data_model_set", f"{DATA_MODEL}.{DATASET}"),
    ))
    items.append(ProcessingItem(
        identifier=f"{pid}_data_model_by",
        transformation=SetStateTransformation("fields", [f"{DATASET}.{f}" for f in DATA_MODEL_BY]),
    ))
    return ProcessingPipeline(
        name="Route 53 logs to Splunk (CIM Network_Resolution via the r53sigma add-on; raw CloudTrail)",
        priority=20,
        allowed_backends=frozenset({"splunk"}),
        items=items,
    )
