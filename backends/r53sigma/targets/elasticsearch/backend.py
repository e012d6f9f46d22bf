"""pySigma's ES|QL backend with hopping correlation windows: two bucketings of the span, the second
offset by half a span, every event counted in both.

ES|QL has no sliding window (no window function), so the nearest construction is two epoch-aligned
``date_trunc`` bucketings, one shifted by half the span, joined per event with ``mv_append``: a row
whose ``timebucket`` is multivalued is counted in every value's group by ``STATS ... BY`` (Elastic,
ES|QL "STATS": "If the grouping key is multivalued then the input row is in all groups"). Every
interval of half the span lies inside one bucket of one of the bucketings, so the query **catches any
burst that fits within half the span** (for conditions that grow with events: gt, gte, temporal all
rules); a burst longer than that may be missed. A firing bucket is an interval of one span, so the
query never fires where the sliding window does not. Bursts are not merged: one burst may give up
to three overlapping rows (Kibana's alert suppression per group dedupes them).
"""
from __future__ import annotations

from typing import ClassVar

from r53sigma.targets.elasticsearch.esql import ESQLBackend  # the pack's ES|QL (negations exact), with hopping windows on top

WINDOW_GUARANTEE = 0.5  # fraction of the span any caught burst may last: hop = span / 2
NOTE = "catches any burst that fits within half the correlation timespan (hopping buckets; the Sigma spec's window slides)"
# A bucket holds more events than the sliding window it contains: a count only grows, an average or a
# sum of signed numbers can move either way, so for them the half-span guarantee does not hold.
NUMERIC_NOTE = ("approximate: sum/average over hopping buckets of the correlation timespan, not the Sigma spec's sliding "
                "window (a bucket's other events can raise or dilute the value; a sum of non-negative numbers with gt/gte "
                "catches any burst within half the span)")
_BUCKETS = ("| eval timebucket=mv_append(date_trunc({timespan}, @timestamp), "
            "date_trunc({timespan}, @timestamp - @HALF@) + @HALF@)")


def half_span(seconds: int) -> str:
    """Half a span as an ES|QL time-duration literal (whole seconds where possible)."""
    return f"{seconds // 2}seconds" if seconds % 2 == 0 else f"{seconds * 500}milliseconds"


class HoppingESQLBackend(ESQLBackend):
    event_count_aggregation_expression: ClassVar[dict[str, str]] = {
        "stats": _BUCKETS + " | stats event_count=count(){fields}{groupby}"}
    value_count_aggregation_expression: ClassVar[dict[str, str]] = {
        "stats": _BUCKETS + " | stats value_count=count_distinct({field}){fields}{groupby}"}
    temporal_aggregation_expression: ClassVar[dict[str, str]] = {
        "stats": _BUCKETS + " | stats event_type_count=count_distinct(event_type){fields}{groupby}"}
    # Sigma 2.1's sum and average: ES|QL SUM and AVG (ES|QL reference, aggregation functions: numeric
    # fields, nulls skipped). Percentile and median stay refused: ES|QL's PERCENTILE and MEDIAN are
    # "(usually) approximate" (TDigest; https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/aggregation-functions/percentile),
    # so not even the buckets' numbers would be the engines'.
    value_sum_aggregation_expression: ClassVar[dict[str, str]] = {
        "stats": _BUCKETS + " | stats value_sum=sum({field}){fields}{groupby}"}
    value_avg_aggregation_expression: ClassVar[dict[str, str]] = {
        "stats": _BUCKETS + " | stats value_avg=avg({field}){fields}{groupby}"}
    value_sum_condition_expression: ClassVar[dict[str, str]] = {"stats": "| where value_sum {op} {count}"}
    value_avg_condition_expression: ClassVar[dict[str, str]] = {"stats": "| where value_avg {op} {count}"}

    def convert_correlation_aggregation_from_template(self, rule, correlation_type, method, search) -> str:
        text = super().convert_correlation_aggregation_from_template(rule, correlation_type, method, search)
        return text.replace("@HALF@", half_span(int(rule.timespan.seconds)))

    def convert_correlation_rule_from_template(self, rule, correlation_type, method) -> list[str]:
        # The Sigma correlation spec asks a backend bound to fixed windows to warn: the note travels
        # with the query (an ES|QL line comment, EsqlBaseLexer.g4 LINE_COMMENT) into every output.
        note = NUMERIC_NOTE if correlation_type in ("value_sum", "value_avg") else NOTE
        return [f"{query}\n// r53sigma: {note}" for query in super().convert_correlation_rule_from_template(rule, correlation_type, method)]
