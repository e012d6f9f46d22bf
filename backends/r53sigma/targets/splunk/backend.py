"""pySigma's Splunk backend with correlations over sliding windows (the Sigma specification's), one
result per burst.

pySigma's Splunk backend counts correlations in epoch-aligned ``bin _time`` buckets, so a burst that
straddles a bucket boundary never fires. Here the referenced rules' events are instead counted with
``streamstats time_window=<span>`` (Splunk Search Reference, "streamstats": a window of events based
on time, the events sorted by time), which is the window ``[t, t + span)`` of every event ``t`` when
the events come newest first; a second ``streamstats time_window`` over the firing events in time
order marks the first of each burst (no firing event within the span before it), and one ``stats``
row per (group, burst) reports its first and last event times. This is the definition of
``r53sigma/scan/correlations.py``: exact for conditions that grow with events (``gt``, ``gte``,
temporal "all rules"); for conditions with ``not``, ``lt``/``lte``/``eq``/``neq`` it is exact except
for events sharing one timestamp (Splunk's window at the earlier-processed of them does not see
the later ones yet).

Events lacking a group-by value are dropped first (``where isnotnull``), as the reference engine and
``stats ... by`` leave them out.
"""
from __future__ import annotations

from typing import ClassVar

from sigma.backends.splunk import SplunkBackend
from sigma.correlations import SigmaCorrelationRule

METHOD = "streamstats"
_WINDOW = "| sort 0 -_time\n| streamstats time_window={timespan} {aggregate} max(_time) as last_time{groupby}"
_BURSTS = (
    "| sort 0 _time\n"
    "| streamstats time_window={timespan} count as firing_in_span{by}\n"
    "| eval burst_start=if(firing_in_span=1, 1, 0)\n"
    "| streamstats sum(burst_start) as burst{by}\n"
    "| stats min(_time) as first_time max(last_time) as last_time max({value}) as {value} by {fields}burst"
)


class SlidingWindowSplunkBackend(SplunkBackend):
    """SplunkBackend whose default correlation method is ``streamstats`` (sliding windows)."""

    correlation_methods: ClassVar[dict[str, str]] = {
        **SplunkBackend.correlation_methods,
        METHOD: "Correlation over sliding windows (streamstats time_window), one result per burst",
    }
    default_correlation_method: ClassVar[str] = METHOD
    default_correlation_query: ClassVar[dict[str, str]] = {
        **SplunkBackend.default_correlation_query,
        METHOD: "{search}\n{{present}}\n{aggregate}\n{condition}\n{{bursts}}",
    }
    event_count_aggregation_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.event_count_aggregation_expression,
        METHOD: _WINDOW.replace("{aggregate}", "count as event_count"),
    }
    value_count_aggregation_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.value_count_aggregation_expression,
        METHOD: _WINDOW.replace("{aggregate}", "dc({field}) as value_count"),
    }
    temporal_aggregation_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.temporal_aggregation_expression,
        METHOD: _WINDOW.replace("{aggregate}", "dc(event_type) as event_type_count"),
    }
    temporal_extended_aggregation_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.temporal_extended_aggregation_expression,
        METHOD: _WINDOW.replace("{aggregate}", "values(event_type) as event_types dc(event_type) as event_type_count"),
    }
    # Sigma 2.1's numeric aggregates over the same windows: streamstats' sum() and avg() (Search
    # Reference, "Statistical and charting functions",
    # https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/CommonStatsFunctions: both read
    # the field's numeric values and skip the others, as the reference engine does). Percentile and
    # median are not here: the same page calls perc/upperperc approximations and gives exactperc and
    # median no rank rule that is the engines' linear interpolation.
    value_sum_aggregation_expression: ClassVar[dict[str, str]] = {METHOD: _WINDOW.replace("{aggregate}", "sum({field}) as value_sum")}
    value_avg_aggregation_expression: ClassVar[dict[str, str]] = {METHOD: _WINDOW.replace("{aggregate}", "avg({field}) as value_avg")}
    value_sum_condition_expression: ClassVar[dict[str, str]] = {METHOD: "| where value_sum {op} {count}"}
    value_avg_condition_expression: ClassVar[dict[str, str]] = {METHOD: "| where value_avg {op} {count}"}
    groupby_expression: ClassVar[dict[str, str]] = {**SplunkBackend.groupby_expression, METHOD: " by {fields}"}
    groupby_field_expression: ClassVar[dict[str, str]] = {**SplunkBackend.groupby_field_expression, METHOD: "{field}"}
    groupby_field_expression_joiner: ClassVar[dict[str, str]] = {**SplunkBackend.groupby_field_expression_joiner, METHOD: " "}
    event_count_condition_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.event_count_condition_expression, METHOD: "| where event_count {op} {count}"}
    value_count_condition_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.value_count_condition_expression, METHOD: "| where value_count {op} {count}"}
    temporal_condition_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.temporal_condition_expression, METHOD: "| where event_type_count {op} {count}"}
    temporal_extended_condition_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.temporal_extended_condition_expression, METHOD: "| search {extended_condition}"}
    extended_correlation_condition_rule_reference_expression: ClassVar[dict[str, str]] = {
        **SplunkBackend.extended_correlation_condition_rule_reference_expression, METHOD: 'event_types="{ruleid}"'}

    _VALUE = {"value_count": "value_count", "temporal": "event_type_count", "temporal_extended": "event_type_count",
              "value_sum": "value_sum", "value_avg": "value_avg"}

    def convert_correlation_rule_from_template(self, rule: SigmaCorrelationRule, correlation_type, method: str) -> list[str]:
        if method != METHOD:
            return super().convert_correlation_rule_from_template(rule, correlation_type, method)
        (query,) = super().convert_correlation_rule_from_template(rule, correlation_type, method)
        by = self.convert_correlation_aggregation_groupby_from_template(rule.group_by, method)
        fields = "".join(f"{self.escape_and_quote_field(f)} " for f in rule.group_by or ())
        present = "".join(f"| where isnotnull({self._eval_name(f)})\n" for f in rule.group_by or ())
        value = self._VALUE.get(correlation_type, "event_count")
        bursts = _BURSTS.format(timespan=self.convert_timespan(rule.timespan, method), by=by, fields=fields, value=value)
        return [query.replace("{present}\n", present).replace("{bursts}", bursts)]

    @staticmethod
    def _eval_name(field: str) -> str:
        # Search Reference, "eval": a field name with characters other than letters, digits and "_"
        # is written in single quotes in eval and where expressions.
        return field if field.replace("_", "a").isalnum() else "'" + field.replace("'", "\\'") + "'"


class DataModelSplunkBackend(SplunkBackend):
    """pySigma's Splunk backend writing its `data_model` format (tstats over CIM Network_Resolution.DNS,
    the route53_splunk pipeline's `-f data_model`) by default: the app's `-tstats` alternates."""

    default_format: ClassVar[str] = "data_model"
