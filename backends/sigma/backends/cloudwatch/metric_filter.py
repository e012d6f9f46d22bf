"""Sigma rules to CloudWatch Logs JSON filter patterns, for metric filters (and so alarms).

A second language beside Logs Insights: `{ $.field = "value" && ... }`, as AWS's filter-pattern pages
document it (see r53sigma/targets/cloudwatch/filter_pattern_model.py for the pages and the limits).
Matching is case-sensitive, so a caseless Sigma value with letters becomes a regex of `[xX]` classes;
regexes are scarce (two per pattern, no parentheses, a small character set), so rules that need more
are refused with the reason and keep their Logs Insights query. Negation is pushed down to the
comparisons (JSON patterns have no NOT): `not f = v` is `($.f NOT EXISTS || $.f IS NULL || $.f != v)`,
true on a missing field whichever way the service reads `!=` there.

Public hosted-zone logs are space-delimited lines: their patterns are the space-delimited form,
`[version, queryTimestamp, ..., queryType = "ANY" || queryType = "AXFR", ...]`, one entry per column
in the catalogue's order, conditions on the columns the rule tests, ANDed across columns.
Correlations become Contributor Insights rules (contributor_insights.py).
"""
from __future__ import annotations

from typing import ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import (
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    CompareOperators,
)

from sigma.pipelines.route53.cloudwatch import ROUTE53_ONLY_SOURCES, route53_cloudwatch_pipeline

from . import contributor_insights, patterns

# The pipeline contract's processing-state keys (README "Pipeline contract"), as the Logs Insights
# backend reads them (not imported from it: that backend hands `-f metric_filter` to this one).
STATE_FIELDS = "cloudwatch_fields"
STATE_COLUMNS = "cloudwatch_columns"
STATE_LOG_GROUP = "cloudwatch_log_group"

MAX_PATTERN_LENGTH = 1024  # PutMetricFilter filterPattern
MAX_REGEXES = 2  # regexes per JSON filter pattern
REGEX_SYMBOLS = set(":_#=@/;,-")  # the regex page's supported symbol characters (besides `.` escaped)
STRING_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_#=@/;,-.+ ")


def refuse(message: str, cond=None) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(f"CloudWatch metric filter: {message}", source=getattr(cond, "source", None))


class CloudWatchMetricFilterBackend(TextQueryBackend):
    """Sigma rules to JSON filter patterns (`-t cloudwatch_metric_filter`)."""

    name: ClassVar[str] = "CloudWatch Logs metric filter pattern"
    identifier: ClassVar[str] = "cloudwatch_metric_filter"
    formats: ClassVar[dict[str, str]] = {"default": "JSON filter pattern for PutMetricFilter"}
    requires_pipeline: ClassVar[bool] = False
    precedence: ClassVar[tuple] = (ConditionNOT, ConditionAND, ConditionOR)
    compare_ops: ClassVar[dict] = {CompareOperators.LT: "<", CompareOperators.LTE: "<=",
                                   CompareOperators.GT: ">", CompareOperators.GTE: ">="}
    negated_ops: ClassVar[dict] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}

    def __init__(self, processing_pipeline=None, collect_errors: bool = False, **backend_options):
        if processing_pipeline is None or not processing_pipeline.items:
            processing_pipeline = route53_cloudwatch_pipeline(only_sources=ROUTE53_ONLY_SOURCES)
        super().__init__(processing_pipeline, collect_errors, **backend_options)

    def convert_rule(self, rule, output_format=None, callback=None):
        self.converting = rule
        return super().convert_rule(rule, output_format, callback)

    # The whole condition is rendered here: negation must reach the comparisons.
    def convert_condition(self, cond, state: ConversionState) -> str:
        # a correlation over this rule becomes a Contributor Insights rule: keep its filters for it
        facts = dict(state.processing_state.get(STATE_FIELDS, {}))
        columns = [name for name, _ in state.processing_state.get(STATE_COLUMNS) or []] or None
        try:
            filters = contributor_insights.filters_of(cond, lambda f: facts.get(f, {}), columns)
        except SigmaFeatureNotSupportedByBackendError as error:
            filters = error
        groups = state.processing_state.get(STATE_LOG_GROUP)
        self.contributor_filters = {**getattr(self, "contributor_filters", {}),
                                    id(getattr(self, "converting", None)): (filters, facts, [groups] if groups else [], columns)}
        counter = {"regexes": 0}
        if state.processing_state.get(STATE_COLUMNS):
            text = self.space_delimited(cond, state, counter)
        else:
            text = self.render(cond, state, False, counter)
        if counter["regexes"] > MAX_REGEXES:
            raise refuse(f"the rule needs {counter['regexes']} regular expressions, a filter pattern holds {MAX_REGEXES}", cond)
        return text

    def render(self, cond, state, negated: bool, counter: dict) -> str:
        if isinstance(cond, ConditionNOT):
            return self.render(cond.args[0], state, not negated, counter)
        if isinstance(cond, (ConditionAND, ConditionOR)):
            is_and = isinstance(cond, ConditionAND) != negated  # De Morgan
            args = cond.args
            if isinstance(cond, ConditionOR):  # one field's string values: one test (one regex at most)
                groups: dict = {}
                for arg in args:
                    key = ((arg.field, isinstance(arg.value, SigmaCasedString))
                           if isinstance(arg, ConditionFieldEqualsValueExpression) and isinstance(arg.value, SigmaString) else id(arg))
                    groups.setdefault(key, []).append(arg)
                args = [group[0] if len(group) == 1 else group for group in groups.values()]
            parts = [self.comparison(arg[0], state, negated, counter, [a.value for a in arg]) if isinstance(arg, list)
                     else self.render(arg, state, negated, counter) for arg in args]
            return "(" + (" && " if is_and else " || ").join(parts) + ")" if len(parts) > 1 else parts[0]
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self.comparison(cond, state, negated, counter)
        raise refuse(f"{type(cond).__name__} (keywords without a field cannot be combined with a JSON pattern)", cond)

    def comparison(self, cond, state, negated: bool, counter: dict, values: list | None = None) -> str:
        facts = state.processing_state.get(STATE_FIELDS, {}).get(cond.field, {})
        if facts.get("derived"):
            raise refuse(f"'{cond.field}' is computed from {facts['derived']['from']} (not in the record): a filter pattern computes nothing", cond)
        if facts.get("array"):
            raise refuse(f"'{cond.field}' is a member of the JSON array '{facts['array']}': selectors reach array elements only by index", cond)
        selector = self.selector(cond.field, cond)
        value = cond.value
        absent = f"{selector} NOT EXISTS || {selector} IS NULL"  # one || chain: no mixing without parentheses
        if isinstance(value, SigmaNull):
            if negated:
                raise refuse(f"'{cond.field}' not null: the pages give no 'is present' test", cond)
            return f"({absent})"
        if isinstance(value, SigmaNumber):
            return f"({absent} || {selector} != {value.number})" if negated else f"{selector} = {value.number}"
        if isinstance(value, SigmaCompareExpression):
            op = self.compare_ops[value.op]
            return f"({absent} || {selector} {self.negated_ops[op]} {value.number.number})" if negated else f"{selector} {op} {value.number.number}"
        if isinstance(value, SigmaString):
            tests = self.string_tests(cond, values or [value], facts, counter)
            if negated and any("%" in t for t in tests):
                raise refuse(f"a negated match on '{cond.field}' that needs a regex: the pages show regexes with = only", cond)
            if negated:
                differs = [t.replace(" = ", " != ", 1) for t in tests]
                return f"({absent} || " + (differs[0] if len(differs) == 1 else "(" + " && ".join(differs) + ")") + ")"
            return tests[0] if len(tests) == 1 else "(" + " || ".join(tests) + ")"
        raise refuse(f"{type(value).__name__} values on '{cond.field}' (rule regexes, CIDR values and 'exists' tests are not translated to the filter-pattern syntax)", cond)

    def space_delimited(self, cond, state, counter: dict) -> str:
        """Public hosted-zone lines: `[col, col = v || col = w, ...]`, one entry per column in the
        catalogue's order, a condition on the columns the rule tests (the SD forms of the filter-pattern
        model: a field's tests joined by || (its values) or by && (a negated list), never mixed)."""
        columns = {name: strip for name, strip in state.processing_state[STATE_COLUMNS]}
        order = list(columns)
        items = self._conjuncts(cond)
        tests: dict[str, list[str]] = {}
        for item in items:
            negated = isinstance(item, ConditionNOT)
            inner = item.args[0] if negated else item
            alternatives = inner.args if isinstance(inner, ConditionOR) else [inner]
            if not all(isinstance(a, ConditionFieldEqualsValueExpression) for a in alternatives) or len({a.field for a in alternatives}) != 1:
                raise refuse("a space-delimited pattern tests each field on its own: an OR across fields, or of sub-conditions, has no form", cond)
            field = alternatives[0].field
            if field not in columns:
                raise refuse(f"'{field}' is not a column of the space-delimited line", cond)
            facts = {"strip_trailing_dot": columns[field]}
            values = [a.value for a in alternatives]
            if all(isinstance(v, SigmaString) for v in values):
                found = self.string_tests(alternatives[0], values, facts, counter, selector=field)
            elif len(values) == 1 and isinstance(values[0], SigmaNumber):
                found = [f"{field} = {values[0].number}"]
            elif len(values) == 1 and isinstance(values[0], SigmaCompareExpression):
                found = [f"{field} {self.compare_ops[values[0].op]} {values[0].number.number}"]
            else:
                raise refuse(f"{type(values[0]).__name__} values on '{field}' have no space-delimited form", cond)
            if negated:
                if any("%" in t for t in found):
                    raise refuse(f"a negated match on '{field}' that needs a regex: the pages show regexes with = only", cond)
                if not all(isinstance(v, SigmaString) for v in values):
                    # a `-` column (no value) is no number: `!=` on it is false, the negation true
                    raise refuse(f"a negated number test on '{field}': false on a '-' column, where the rule holds", cond)
                found = [self.negate_test(t) for t in found]
            joiner = " && " if negated or len(found) == 1 else " || "
            if field in tests:  # a second test on one field: && with the first, if neither is an OR
                if " || " in tests[field][0] or joiner == " || ":
                    raise refuse(f"'{field}' tested twice with an OR among them: one field's entry cannot mix && and ||", cond)
                tests[field] = [tests[field][0] + " && " + joiner.join(found)]
            else:
                tests[field] = [joiner.join(found)]
        last = max(order.index(f) for f in tests)
        entries = [tests[name][0] if name in tests else name for name in order[:last + 1]]
        if last < len(order) - 1:
            entries.append("...")
        return "[" + ", ".join(entries) + "]"

    @staticmethod
    def _conjuncts(cond) -> list:
        if isinstance(cond, ConditionAND):
            return [c for arg in cond.args for c in CloudWatchMetricFilterBackend._conjuncts(arg)]
        return [cond]

    def negate_test(self, test: str) -> str:
        name, op, value = test.split(" ", 2)
        return f"{name} {self.negated_ops.get(op, '!=' if op == '=' else '=')} {value}"

    def selector(self, field: str, cond) -> str:
        if not all(part and all(c.isalnum() or c in "_@-" for c in part) for part in field.split(".")):
            raise refuse(f"field name '{field}' cannot be written as a JSON selector", cond)
        return "$." + field

    def string_tests(self, cond, values: list[SigmaString], facts: dict, counter: dict, selector: str | None = None) -> list[str]:
        """`selector = ...` tests, any of which matching means the value matches (all `=`, so a negation
        can turn them into `!=` joined by &&); ``selector``: a space-delimited pattern's field name."""
        selector = selector or self.selector(cond.field, cond)
        if len({isinstance(v, SigmaCasedString) for v in values}) > 1:
            raise refuse(f"cased and caseless values of '{cond.field}' in one list", cond)
        ci = not isinstance(values[0], SigmaCasedString)
        alternatives = []
        for value in values:
            items = patterns.items_of(value)
            alternatives += patterns.without_trailing_dot(items, ci) if facts.get("strip_trailing_dot") else [items]
        if not alternatives:
            raise refuse(f"no raw value of '{cond.field}' can match the rule's values", cond)
        has_letters = any(isinstance(i, patterns.Lit) and i.char.isalpha() for a in alternatives for i in a)
        strings = self.plain_strings(alternatives)
        if strings is not None and not (ci and has_letters):
            return [f'{selector} = "{s}"' for s in dict.fromkeys(strings)]
        counter["regexes"] += 1
        return [f"{selector} = %{'|'.join(self.regex(a, ci, cond) for a in alternatives)}%"]

    def regex(self, items: list, ci: bool, cond) -> str:
        out = ["^"]
        for item in items:
            if item == patterns.STAR:
                out.append(".*")
            elif item == patterns.ANY:
                out.append(".")
            elif item == patterns.OPT_DOT:
                out.append("\\.{0,1}")
            elif isinstance(item, patterns.Lit):
                c = item.char
                if c.isascii() and c.isalpha():
                    out.append(f"[{c.lower()}{c.upper()}]" if ci else c)
                elif c.isascii() and c.isdigit() or c in REGEX_SYMBOLS:
                    out.append(c)
                elif c == ".":
                    out.append("\\.")
                else:
                    raise refuse(f"the character {c!r} of a value on '{cond.field}' has no form in the filter-pattern regex syntax", cond)
            else:
                raise refuse(f"a value on '{cond.field}' needs a regex construct the filter-pattern syntax lacks", cond)
        return "".join(out) + "$"

    @staticmethod
    def plain_strings(alternatives: list[list]) -> list[str] | None:
        """The alternatives as quoted-string values (`*` the wildcard), or None where one needs a regex."""
        strings = []
        for items in alternatives:
            variants = [items[:-1], items[:-1] + [patterns.Lit(".")]] if items and items[-1] == patterns.OPT_DOT else [items]
            for variant in variants:
                if not all(i == patterns.STAR or (isinstance(i, patterns.Lit) and i.char in STRING_SAFE) for i in variant):
                    return None
                strings.append("".join("*" if i == patterns.STAR else i.char for i in variant))
        return strings

    def finish_query(self, rule, query, state):
        if query.startswith("["):  # space-delimited: already whole
            pattern = query
        else:
            pattern = "{ " + (query[1:-1] if query.startswith("(") and query.endswith(")") and _balanced(query[1:-1]) else query) + " }"
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise refuse(f"rule '{rule.title}': the filter pattern is {len(pattern)} characters, more than the {MAX_PATTERN_LENGTH} PutMetricFilter accepts")
        return pattern

    def convert_correlation_rule(self, rule, output_format=None, method=None, callback=None):
        """A burst correlation as a Contributor Insights rule and its alarm (contributor_insights.py)."""
        try:
            known = getattr(self, "contributor_filters", {})
            base = known.get(id(rule.rules[0].rule)) if len(rule.rules) == 1 else None
            if len(rule.rules) == 1 and base is None:
                raise refuse(f"correlation '{rule.title}': its rule '{rule.rules[0].rule.title}' was not converted")
            filters, facts, groups, columns = base or ([], {}, [], None)
            mapped = lambda name: sorted(self.last_processing_pipeline.field_mappings.get(name) or [name])[0]  # noqa: E731
            group_fields = [mapped(f) for f in rule.group_by or []]
            value_field = mapped(rule.condition.fieldref) if getattr(rule.condition, "fieldref", None) else None
            document = contributor_insights.rule_document(rule, filters, group_fields, value_field, groups,
                                                          lambda f: facts.get(f, {}), columns)
        except SigmaFeatureNotSupportedByBackendError as error:
            error = SigmaFeatureNotSupportedByBackendError(f"{error} (correlation '{rule.title}')", source=rule.source)
            if self.collect_errors:
                self.errors.append((rule, error))
                return []
            raise error
        query = contributor_insights.render(document)
        rule.set_conversion_result([query])
        return [query]


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0
