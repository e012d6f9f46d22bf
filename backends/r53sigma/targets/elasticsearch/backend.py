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

    def convert_correlation_aggregation_from_template(self, rule, correlation_type, method, search) -> str:
        text = super().convert_correlation_aggregation_from_template(rule, correlation_type, method, search)
        return text.replace("@HALF@", half_span(int(rule.timespan.seconds)))

    def convert_correlation_rule_from_template(self, rule, correlation_type, method) -> list[str]:
        # The Sigma correlation spec asks a backend bound to fixed windows to warn: the note travels
        # with the query (an ES|QL line comment, EsqlBaseLexer.g4 LINE_COMMENT) into every output.
        return [f"{query}\n// r53sigma: {NOTE}" for query in super().convert_correlation_rule_from_template(rule, correlation_type, method)]
