"""pySigma backend for Amazon CloudWatch Logs Insights (Logs Insights QL).

Declarations first; code only where Logs Insights needs it: case-insensitive and wildcard strings
become anchored regular expressions, fields under JSON arrays become regexes over `@message`
(Logs Insights flattens arrays by index), and fields whose raw values carry a trailing dot are
compared without it. The pipeline (`route53_cloudwatch`) tells the backend which fields are which
through the processing state (see README.md, "Pipeline contract").
"""
from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationRule
from sigma.exceptions import SigmaConversionError, SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaFieldReference,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
)

from sigma.pipelines.route53.cloudwatch import ROUTE53_ONLY_SOURCES, route53_cloudwatch_pipeline

from . import computed, patterns
from .support import NUMERIC_AGGREGATES, NUMERIC_WINDOW_NOTE, QueryTooLongError, referenced_first, unsupported

MAX_QUERY_LENGTH = 10_000  # Logs Insights refuses longer query strings
PLAIN_FIELD = re.compile(r"^[A-Za-z0-9@._]+$")
SAFE_LITERAL = re.compile(r'^[\x20-\x7e]*$')

# Processing-state keys the pipeline sets (all optional: without them every field is a plain field).
NEVER = "strlen(@message) < 0"  # a value that can never match (documented in README)
STATE_FIELDS = "cloudwatch_fields"  # {field: {"array": path, "member": path, "element_depth": n, "strip_trailing_dot": bool}}
STATE_FIELDS_LINE = "cloudwatch_fields_line"  # fields shown for the log source
STATE_LOG_SOURCE = "cloudwatch_log_source"  # short name, for the log_group_<source> option
STATE_LOG_GROUP = "cloudwatch_log_group"  # default log group of the log source
STATE_COLUMNS = "cloudwatch_columns"  # [[field, strip_trailing_dot], ...] of a space-separated line


WINDOW_GUARANTEE = 0.0  # fixed bins: no burst is caught wherever it falls, only one inside a bin
WINDOW_NOTE = ("fixed bin() windows: a burst is caught only if it falls inside one bin; "
               "the Sigma spec's window slides")


class CloudWatchLogsInsightsBackend(TextQueryBackend):
    """Sigma rules to CloudWatch Logs Insights queries (`fields | filter | sort | limit`)."""

    name: ClassVar[str] = "CloudWatch Logs Insights"
    identifier: ClassVar[str] = "cloudwatch"
    formats: ClassVar[dict[str, str]] = {
        "default": "Logs Insights query text",
        "query_definition": "JSON list for PutQueryDefinition (name, queryString, logGroupNames)",
        "cloudformation": "CloudFormation template of AWS::Logs::QueryDefinition resources (JSON)",
        "metric_filter": "JSON filter patterns for metric filters (the cloudwatch_metric_filter backend)",
    }
    requires_pipeline: ClassVar[bool] = False

    # Precedence is undocumented: every group is parenthesised.
    precedence: ClassVar[tuple] = (ConditionNOT, ConditionAND, ConditionOR)
    parenthesize: ClassVar[bool] = True
    group_expression: ClassVar[str] = "({expr})"
    token_separator: ClassVar[str] = " "
    or_token: ClassVar[str] = "or"
    and_token: ClassVar[str] = "and"
    not_token: ClassVar[str] = "not"
    eq_token: ClassVar[str] = " = "

    # Fields: backticks for anything but letters, digits, @, . and _.
    field_quote: ClassVar[str] = "`"
    field_quote_pattern: ClassVar[re.Pattern] = PLAIN_FIELD
    field_quote_pattern_negation: ClassVar[bool] = True
    field_escape: ClassVar[str | None] = None

    # Exact strings (|cased, or values the pipeline folded to the field's case).
    str_quote: ClassVar[str] = '"'
    escape_char: ClassVar[str] = "\\"
    add_escaped: ClassVar[str] = "\\"
    field_in_list_expression: ClassVar[str] = "{field} {op} [{list}]"
    or_in_operator: ClassVar[str] = "in"
    list_separator: ClassVar[str] = ", "
    convert_or_as_in: ClassVar[bool] = True
    in_expressions_allow_wildcards: ClassVar[bool] = False

    re_expression: ClassVar[str] = "{field} =~ /{regex}/"
    compare_op_expression: ClassVar[str] = "{field} {operator} {value}"
    compare_operators: ClassVar[dict] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
    }
    cidr_expression: ClassVar[str] = 'isIpInSubnet({field}, "{value}")'
    field_exists_expression: ClassVar[str] = "ispresent({field})"
    field_not_exists_expression: ClassVar[str] = "not ispresent({field})"
    field_null_expression: ClassVar[str] = "not ispresent({field})"
    field_equals_field_expression: ClassVar[str] = "{field1} = {field2}"

    # Correlations: tumbling windows aligned to the epoch (bin), then the threshold. Logs Insights has no
    # sliding window, and hopping bins would need every event twice (unnest over a list built from
    # text), which the array-member unnest above already uses: fixed bins, and the note says so.
    correlation_methods: ClassVar[dict[str, str]] = {"default": "stats ... by bin(<timespan>), <group-by> | filter"}
    default_correlation_method: ClassVar[str] = "default"
    timespan_mapping: ClassVar[dict[str, str]] = {"s": "s", "m": "m", "h": "h", "d": "d", "w": "w"}
    correlation_condition_mapping: ClassVar[dict] = {
        SigmaCorrelationConditionOperator.LT: "<",
        SigmaCorrelationConditionOperator.LTE: "<=",
        SigmaCorrelationConditionOperator.GT: ">",
        SigmaCorrelationConditionOperator.GTE: ">=",
        SigmaCorrelationConditionOperator.EQ: "=",
        SigmaCorrelationConditionOperator.NEQ: "!=",
    }

    default_limit: ClassVar[int] = 10_000  # the most results Logs Insights returns

    def __init__(self, processing_pipeline=None, collect_errors: bool = False, **backend_options):
        """Without a pipeline (`sigma convert -t cloudwatch` and no `-p`), the Route 53 pipeline is applied
        to the log sources only Route 53 writes; other rules are left as they are."""
        if processing_pipeline is None or not processing_pipeline.items:
            processing_pipeline = route53_cloudwatch_pipeline(only_sources=ROUTE53_ONLY_SOURCES)
        super().__init__(processing_pipeline, collect_errors, **backend_options)

    # ------------------------------------------------------------------ whole collections

    def convert(self, rule_collection, output_format=None, correlation_method=None, callback=None):
        """pySigma's convert, with referenced rules converted before the correlations that use them.

        pySigma sorts the collection with a partial order (`a < b` only when b references a), which
        leaves a correlation before its base rule when unrelated rules sit between them (files given
        together in any order are one collection, so the order must not matter).
        """
        if output_format == "metric_filter":  # a second language: its own backend, same pipeline
            from .metric_filter import CloudWatchMetricFilterBackend

            other = CloudWatchMetricFilterBackend(self.processing_pipeline, self.collect_errors, **self.backend_options)
            result = other.convert(rule_collection, correlation_method=correlation_method, callback=callback)
            self.errors.extend(other.errors)
            return result
        self.init_processing_pipeline(output_format)
        rule_collection.resolve_rule_references()
        output_format = output_format or self.default_format
        queries = [
            query
            for rule in referenced_first(rule_collection.rules)
            for query in (
                self.convert_rule(rule, output_format, callback)
                if isinstance(rule, SigmaRule)
                else self.convert_correlation_rule(rule, output_format, correlation_method, callback)
            )
        ]
        return self.finalize(queries, output_format)

    def convert_correlation_rule(self, rule, output_format=None, method=None, callback=None):
        """As pySigma's, but with `collect_errors` (`sigma convert -s`) a refused correlation, or one whose
        base rule was refused, is collected like a refused rule instead of ending the whole run."""
        try:
            for reference in rule.rules:
                try:
                    reference.rule.get_conversion_result()
                except SigmaConversionError:
                    raise unsupported(f"correlation '{rule.title}': its rule '{reference.rule.title}' was not converted", rule) from None
            return super().convert_correlation_rule(rule, output_format, method, callback)
        except SigmaError as error:
            if self.collect_errors:
                self.errors.append((rule, error))
                return []
            raise

    # ------------------------------------------------------------------ field facts

    def field_facts(self, field: str, state: ConversionState) -> dict:
        return state.processing_state.get(STATE_FIELDS, {}).get(field, {})

    def quoted(self, field: str) -> str:
        return self.escape_and_quote_field(field)

    # ------------------------------------------------------------------ strings

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self.string_match(cond.field, [cond.value], state, cond)

    convert_condition_field_eq_val_str_case_sensitive = convert_condition_field_eq_val_str

    def string_match(self, field: str, values: list[SigmaString], state: ConversionState, cond=None) -> str:
        """One expression true when the field matches ANY of the values (all exact, or all caseless)."""
        facts = self.field_facts(field, state)
        ci = not isinstance(values[0], SigmaCasedString)
        # the characters themselves: SigmaString.to_plain() re-escapes a literal '*', '?' or '\\' for Sigma
        literals = [None if v.contains_special() else "".join(p for p in v.s if isinstance(p, str)) for v in values]
        needs_regex = any(k != "dash_absent" for k in facts)  # an array member, or a trailing dot to ignore
        if not ci and not needs_regex and all(lit is not None and SAFE_LITERAL.match(lit) for lit in literals):
            if len(literals) == 1:
                return self.dash_guarded(field, facts, f"{self.quoted(field)} = {self.quote_string(literals[0])}", "-" in literals)
            return self.dash_guarded(field, facts, f"{self.quoted(field)} in [{', '.join(self.quote_string(lit) for lit in literals)}]", "-" in literals)
        alternatives = []
        for value in values:
            items = patterns.items_of(value)
            alternatives += patterns.without_trailing_dot(items, ci) if facts.get("strip_trailing_dot") else [items]
        if not alternatives:  # e.g. `evil.com.` on a field compared without its trailing dot
            return NEVER
        if facts.get("array"):
            return self.array_match(facts, alternatives, ci)
        expression = f"{self.quoted(field)} =~ /{patterns.plain_regex(alternatives, ci)}/"
        return self.dash_guarded(field, facts, expression, any(patterns.matches_text(a, "-", ci) for a in alternatives))

    def dash_guarded(self, field: str, facts: dict, expression: str, may_match_dash: bool = True) -> str:
        """On a field whose `-` means absent, a condition that `-` would satisfy also requires `f != "-"`
        (which is false on an absent field too, so the query is right whether Logs Insights yields `-`
        or nothing for it)."""
        if facts.get("dash_absent") and may_match_dash:
            return f'({self.quoted(field)} != "-" and {expression})'
        return expression

    def quote_string(self, s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def array_match(self, facts: dict, alternatives: list[list], ci: bool) -> str:
        if ci:  # one `(?i:...)` group instead of a `[xX]` class per letter: long lists stay under the limit
            value = "(?i:" + patterns.union(alternatives, ci, patterns.render_json_ascii_caseless) + ")"
        else:
            value = patterns.union(alternatives, ci, patterns.render_json)
        regex = patterns.array_member_regex(facts["array"], facts["member"], facts.get("element_depth", 0), value)
        return f"@message =~ /(?s){regex}/"

    def decide_convert_condition_as_in_expression(self, cond, state: ConversionState) -> bool:
        """OR of string values of one field: one `in [...]` or one regex alternation (shorter queries)."""
        if not isinstance(cond, ConditionOR) or len(cond.args) < 2:
            return False
        if not all(isinstance(arg, ConditionFieldEqualsValueExpression) for arg in cond.args):
            return False
        if len({arg.field for arg in cond.args}) != 1:
            return False
        if all(isinstance(arg.value, SigmaCIDRExpression) for arg in cond.args):
            return bool(self.field_facts(cond.args[0].field, state).get("array"))  # one walk of the array
        if not all(isinstance(arg.value, SigmaString) for arg in cond.args):
            return False
        return len({isinstance(arg.value, SigmaCasedString) for arg in cond.args}) == 1

    def convert_condition_field_eq_expansion(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        """An expansion (|windash, |base64offset) as an OR through the dispatcher: one factored regex
        (pySigma's skips it: one array walk per value, past the length limit)."""
        expanded = ConditionOR([ConditionFieldEqualsValueExpression(cond.field, v) for v in cond.value.values], cond.source)
        if len(expanded.args) < 2:  # one value (or none)
            return self.convert_condition(expanded.args[0], state) if expanded.args else NEVER
        return self.convert_condition_group(expanded, state)

    def convert_condition_as_in_expression(self, cond, state: ConversionState) -> str:
        if isinstance(cond.args[0].value, SigmaCIDRExpression):
            return self.array_match(self.field_facts(cond.args[0].field, state), [
                alternative for arg in cond.args for alternative in self.network_alternatives(arg.value.network, self.field_facts(arg.field, state))
            ], False)
        return self.string_match(cond.args[0].field, [arg.value for arg in cond.args], state, cond)

    # ------------------------------------------------------------------ regular expressions

    def convert_condition_field_eq_val_re(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        value: SigmaRegularExpression = cond.value
        facts = self.field_facts(cond.field, state)
        if facts.get("array"):
            raise unsupported(
                f"a regular expression on '{cond.field}' cannot be applied to each element of the JSON array "
                f"'{facts['array']}' (Logs Insights exposes array elements only by index); use wildcards instead",
                cond,
            )
        construct = patterns.unportable_construct(str(value.regexp))
        if construct:
            raise unsupported(f"the regular expression on '{cond.field}' uses {construct}, which Logs Insights' regex engine (RE2) lacks", cond)
        flags = "".join(
            flag for flag, sigma in (("i", SigmaRegularExpressionFlag.IGNORECASE), ("m", SigmaRegularExpressionFlag.MULTILINE), ("s", SigmaRegularExpressionFlag.DOTALL))
            if sigma in value.flags
        )
        regex = self.escape_regex_literal(str(value.regexp))
        field = self.quoted(cond.field)
        if facts.get("strip_trailing_dot"):
            field = patterns.one_trailing_dot_dropped(field)
        return self.dash_guarded(cond.field, facts, f"{field} =~ /{'(?' + flags + ')' if flags else ''}{regex}/")

    escape_regex_literal = staticmethod(patterns.escape_regex_literal)

    # ------------------------------------------------------------------ other value types

    def convert_condition_field_eq_val_cidr(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        value: SigmaCIDRExpression = cond.value
        facts = self.field_facts(cond.field, state)
        if facts.get("array"):
            return self.array_match(facts, self.network_alternatives(value.network, facts), False)
        return f'isIpInSubnet({self.quoted(cond.field)}, "{value.network}")'

    @staticmethod
    def network_alternatives(network, facts: dict) -> list[list]:
        """isIpInSubnet sees one flattened element at a time, so on an array member every spelling of an
        address in the network is matched in the array's JSON text instead (a finite language: exact)."""
        if network.version == 4:
            items = patterns.ipv4_network_items(network)
        else:
            items = [patterns.Raw(patterns.ipv6_network_regex(network))]
        return patterns.without_trailing_dot(items, False) if facts.get("strip_trailing_dot") else [items]

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        facts = self.field_facts(cond.field, state)
        if facts.get("array"):
            return self.array_match(facts, [patterns.literal_items(str(cond.value.number))], False)
        return f"{self.quoted(cond.field)} = {cond.value.number}"

    def convert_condition_field_compare_op_val(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        if self.field_facts(cond.field, state).get("array"):
            raise unsupported(f"numeric comparison on the array field '{cond.field}'", cond)
        value: SigmaCompareExpression = cond.value
        return f"{self.quoted(cond.field)} {self.compare_operators[value.op]} {value.number.number}"

    def convert_condition_field_eq_val_timestamp_part(self, cond, state: ConversionState) -> str:
        raise unsupported(f"timestamp parts (|minute, |hour, ...) on '{cond.field}': the logs' own timestamps are ISO text", cond)

    def convert_condition_field_eq_val_bool(self, cond, state: ConversionState) -> str:
        raise unsupported(f"boolean value on '{cond.field}': Route 53 logs carry no booleans", cond)

    def convert_condition_field_eq_val_null(self, cond, state: ConversionState) -> str:
        facts = self.field_facts(cond.field, state)
        if facts.get("array") or facts.get("dash_absent"):
            return f"not ({self.convert_condition_field_exists(cond, state)})"
        return f"not ispresent({self.quoted(cond.field)})"

    def convert_condition_field_exists(self, cond, state: ConversionState) -> str:
        facts = self.field_facts(cond.field, state)
        if facts.get("array"):
            regex = patterns.array_member_regex(facts["array"], facts["member"], facts.get("element_depth", 0), None)
            return f"@message =~ /(?s){regex}[^n]/"  # a member whose value is not null
        if facts.get("dash_absent"):
            return f'(ispresent({self.quoted(cond.field)}) and {self.quoted(cond.field)} != "-")'
        return f"ispresent({self.quoted(cond.field)})"

    def convert_condition_field_not_exists(self, cond, state: ConversionState) -> str:
        return f"not ({self.convert_condition_field_exists(cond, state)})"

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        """Always `not (...)`: how far `not` reaches without parentheses is undocumented."""
        return f"not ({self.convert_condition(cond.args[0], state)})"

    def convert_condition_field_eq_field(self, cond, state: ConversionState) -> str:
        ref: SigmaFieldReference = cond.value
        for name in (cond.field, ref.field):
            facts = self.field_facts(name, state)
            if facts.get("array") or facts.get("strip_trailing_dot"):
                raise unsupported(f"|fieldref with '{name}' (an array member or a field compared without its trailing dot)", cond)
        if ref.starts_with or ref.ends_with:
            raise unsupported("|fieldref with |startswith or |endswith", cond)
        expression = f"tolower({self.quoted(cond.field)}) = tolower({self.quoted(ref.field)})"
        return self.dash_guarded(cond.field, self.field_facts(cond.field, state), expression)

    # ------------------------------------------------------------------ keywords (no field)

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        """A keyword matches the whole raw line, or a whole string value anywhere in a JSON record; the
        values of fields compared without their trailing dot (query_name, answers.Rdata) match without it."""
        value: SigmaString = cond.value
        ci = not isinstance(value, SigmaCasedString)
        items = patterns.items_of(value)
        line = patterns.plain_regex([items], ci)
        columns = state.processing_state.get(STATE_COLUMNS)
        if columns:
            return self.keyword_on_columns(items, ci, columns, f"@message =~ /{line}/")
        # the fields compared without their trailing dot are matched as the engine reads them, below
        stripped = [f for f, facts in self.field_facts_all(state).items() if facts.get("strip_trailing_dot")]
        leaf = patterns.any_string_value(items, ci, stripped)
        tests = [f"@message =~ /{line}/", f"@message =~ /{leaf}/"]
        scalar = patterns.render_scalar(items, ci)
        if scalar is not None:  # a JSON number or true/false, outside every string (the walk from ^)
            tests.append(f'@message =~ /{"(?is)" if ci else "(?s)"}^(?:[^"]|{patterns.JSON_STRING})*[\\[:,]\\s*{scalar}\\s*[,}}\\]]/')
        alternatives = patterns.without_trailing_dot(items, ci)
        if alternatives:  # the leaf test above leaves these fields out, whatever the value
            for field, facts in sorted(self.field_facts_all(state).items()):
                if not facts.get("strip_trailing_dot"):
                    continue
                if facts.get("array"):
                    tests.append(self.array_match(facts, alternatives, ci))
                elif "." not in field:  # a top-level JSON member (Resolver query_name)
                    tests.append(f'@message =~ /(?s){patterns.key(field)}"{patterns.union(alternatives, ci, patterns.render_json)}"/')
        return "(" + " or ".join(tests) + ")"

    def keyword_on_columns(self, items: list, ci: bool, columns: list, line_test: str) -> str:
        """A keyword on a space-separated line (public hosted-zone logs) matches the whole line, or any
        one column, as the engine reads it: a column compared without its trailing dot (queryName) is
        matched so, and a `-` column is absent. Each column is found by its position (`^(?:[^ ]+ ){k}`),
        wildcards stay inside it (`[^ ]*`)."""
        tests = [line_test]
        if any(isinstance(i, patterns.Lit) and i.char.isspace() for i in items):
            return "(" + line_test + ")"  # a column never holds white space
        flags = "(?is)" if ci else "(?s)"
        groups: dict[bool, list[int]] = {}
        for position, (_, strip) in enumerate(columns):
            groups.setdefault(bool(strip), []).append(position)
        for strip, positions in sorted(groups.items()):
            alternatives = patterns.without_trailing_dot(items, ci) if strip else [items]
            if not alternatives:
                continue
            value = patterns.union(alternatives, ci, patterns.render_column)
            if not any(patterns.matches_text(a, "-", ci) for a in alternatives):
                tests.append(f"@message =~ /{flags}^{patterns.column_positions(positions)}{value}(?: |\\z)/")
                continue
            for k in positions:  # `-` would match: the same column must also not be `-`
                before = patterns.column_positions([k])
                tests.append(f"(@message =~ /{flags}^{before}{value}(?: |\\z)/ and @message =~ /^{before}(?:[^ -]|[^ ]{{2,}})(?: |\\z)/)")
        return "(" + " or ".join(tests) + ")"

    def field_facts_all(self, state: ConversionState) -> dict:
        return state.processing_state.get(STATE_FIELDS, {})

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        return self.convert_condition_val_str(ConditionValueExpression(SigmaString(str(cond.value.number))), state)

    def convert_condition_val_re(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        raise unsupported("a regular expression without a field (a keyword regex over @message would also match keys and JSON syntax)", cond)

    def convert_condition_field_eq_query_expr(self, cond, state):
        raise unsupported("query expressions (|expand placeholders need a pipeline that resolves them)", cond)

    # ------------------------------------------------------------------ whole queries

    def fields_line(self, state) -> str:
        processing = state.processing_state if isinstance(state, ConversionState) else state
        fields = processing.get(STATE_FIELDS_LINE) or ["@timestamp", "@message"]
        return "fields " + ", ".join(self.quoted(f) for f in fields)

    def finish_query(self, rule: SigmaRule, query: Any, state: ConversionState) -> Any:
        if isinstance(rule, SigmaCorrelationRule):
            return query
        limit = self.backend_options.get("limit", self.default_limit)
        fields = computed.with_derived(self.fields_line(state), computed.detection_fields(rule), self.field_facts_all(state), self.quoted)
        lines = [fields, f"| filter {query}", "| sort @timestamp desc"]
        if limit:
            lines.append(f"| limit {int(limit)}")
        return "\n".join(lines)

    def convert_correlation_rule_from_template(self, rule: SigmaCorrelationRule, correlation_type: str, method: str) -> list[str]:
        if correlation_type not in ("event_count", "value_count", "temporal", *NUMERIC_AGGREGATES):
            raise unsupported(f"correlation type '{correlation_type}' (rule '{rule.title}')")
        searches, fields_line, states = [], None, []
        for reference in rule.rules:
            referenced = reference.rule
            states.extend(referenced.get_conversion_states() or [])
            rule_searches = []
            for query in referenced.get_conversion_result():
                lines = query.split("\n")
                fields_line = fields_line or lines[0]
                rule_searches.append(lines[1][len("| filter "):])
            searches.append(" or ".join(f"({s})" for s in rule_searches) if len(rule_searches) > 1 else rule_searches[0])
        search = " or ".join(f"({s})" for s in searches) if len(searches) > 1 else searches[0]
        facts = states[0].processing_state.get(STATE_FIELDS, {}) if states else {}
        group_fields = [self.correlation_field(f) for f in rule.group_by or []]
        value_field = self.correlation_field(rule.condition.fieldref) if correlation_type not in ("event_count", "temporal") else None
        # a `-` column means no value: such events have no group, and no value to count
        guards = [f'{self.quoted(f)} != "-"' for f in dict.fromkeys(group_fields + [value_field]) if f and facts.get(f, {}).get("dash_absent")]
        if value_field and guards and self.holds_at_zero(rule):
            raise unsupported(f"value_count of '{value_field}' whose condition holds for 0 values (rule '{rule.title}'): events without a value cannot be kept as groups", rule)
        if guards:
            search = f"({search}) and " + " and ".join(guards)
        window = f"bin({self.convert_timespan(rule.timespan)})"
        fields_line = computed.with_derived(fields_line, group_fields + [value_field], facts, self.quoted)
        lines = [fields_line, f"| filter {search}"]
        markers = []
        if correlation_type == "temporal":
            # one 0/1 marker per referenced rule (the documented general function if(condition, a, b)),
            # summed per window: all rules must have matched
            if rule.condition is not None and getattr(rule.condition, "count", len(searches)) != len(searches):
                raise unsupported(f"temporal correlation with a condition other than 'all rules' (rule '{rule.title}')")
            markers = ["| fields " + ", ".join(f"if({s}, 1, 0) as rule_{n}" for n, s in enumerate(searches))]
        lines += markers
        unnested, names = computed.unnest_array_members(rule, correlation_type, group_fields, value_field, facts,
                                                         bool(value_field) and self.holds_at_zero(rule))
        lines += unnested
        group_by = "".join(", " + names.get(f, self.quoted(f)) for f in group_fields)
        if correlation_type == "temporal":
            lines.append("| stats " + ", ".join(f"sum(rule_{n}) as rule_{n}_events" for n in range(len(searches))) + f" by {window}{group_by}")
            lines.append("| filter " + " and ".join(f"rule_{n}_events > 0" for n in range(len(searches))))
        else:
            function = {"event_count": "count", "value_count": "count_distinct", **NUMERIC_AGGREGATES}[correlation_type]
            name, value = correlation_type, names.get(value_field, self.quoted(value_field)) if value_field else "*"
            aggregate = f"{function}({value}) as {name}"
            op = self.correlation_condition_mapping[rule.condition.op]
            lines += [f"| stats {aggregate} by {window}{group_by}", f"| filter {name} {op} {rule.condition.count}", f"| sort {name} desc"]
        # The Sigma correlation spec asks a backend bound to fixed windows to warn: the note travels with
        # the query (a Logs Insights `#` comment) into every output and saved query.
        lines.append(f"# r53sigma: {NUMERIC_WINDOW_NOTE if correlation_type in NUMERIC_AGGREGATES else WINDOW_NOTE}")
        rule.set_conversion_states(states[:1])
        return ["\n".join(lines)]

    def holds_at_zero(self, rule) -> bool:
        """Whether the correlation condition holds when nothing was counted."""
        count, op = rule.condition.count, rule.condition.op
        return {
            SigmaCorrelationConditionOperator.LT: 0 < count, SigmaCorrelationConditionOperator.LTE: 0 <= count,
            SigmaCorrelationConditionOperator.GT: 0 > count, SigmaCorrelationConditionOperator.GTE: 0 >= count,
            SigmaCorrelationConditionOperator.EQ: count == 0, SigmaCorrelationConditionOperator.NEQ: count != 0,
        }[op]

    def correlation_field(self, name: str) -> str:
        """Correlation fields pass through the referenced rules' pipeline field mapping."""
        mapped = self.last_processing_pipeline.field_mappings.get(name) if self.last_processing_pipeline else None
        if mapped:
            return sorted(mapped)[0]
        return name

    def finalize_query(self, rule, query, index: int, state: ConversionState, output_format: str):
        if isinstance(query, str) and len(query) > MAX_QUERY_LENGTH:
            raise QueryTooLongError(
                f"CloudWatch Logs Insights: rule '{rule.title}': the query is {len(query)} characters, more than "
                f"the {MAX_QUERY_LENGTH} Logs Insights accepts; split the rule or shorten its value lists (a threat "
                f"feed: the Splunk lookup or Athena join table take any size)", source=rule.source,
            )
        return super().finalize_query(rule, query, index, state, output_format)

    def log_groups(self, state) -> list[str]:
        processing = state.processing_state if isinstance(state, ConversionState) else (state or {})
        source = processing.get(STATE_LOG_SOURCE)
        option = self.backend_options.get(f"log_group_{source}") if source else None
        option = option or self.backend_options.get("log_group")
        groups = option or processing.get(STATE_LOG_GROUP)
        if not groups:
            return []
        return [g.strip() for g in groups.split(",")] if isinstance(groups, str) else list(groups)

    def query_definition(self, rule, query: str, state) -> dict:
        prefix = self.backend_options.get("name_prefix", "r53sigma/")
        definition = {"name": f"{prefix}{rule.title}"[:255], "queryString": query}
        groups = self.log_groups(state)
        if groups:
            definition["logGroupNames"] = groups
        return definition

    def finalize_query_query_definition(self, rule, query: str, index: int, state: ConversionState) -> dict:
        return self.query_definition(rule, query, state)

    def finalize_output_query_definition(self, queries: list[dict]) -> str:
        return json.dumps(queries, indent=2)

    finalize_query_cloudformation = finalize_query_query_definition

    def finalize_output_cloudformation(self, queries: list[dict]) -> str:
        resources = {}
        for definition in queries:
            logical_id = "".join(part.capitalize() for part in re.findall(r"[A-Za-z0-9]+", definition["name"]))[:240] or "Query"
            base, n = logical_id, 2
            while logical_id in resources:
                logical_id, n = f"{base}{n}", n + 1
            properties = {"Name": definition["name"], "QueryString": definition["queryString"]}
            if definition.get("logGroupNames"):
                properties["LogGroupNames"] = definition["logGroupNames"]
            resources[logical_id] = {"Type": "AWS::Logs::QueryDefinition", "Properties": properties}
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "CloudWatch Logs Insights saved queries generated by r53sigma from Sigma rules",
            "Resources": resources,
        }
        return json.dumps(template, indent=2)

