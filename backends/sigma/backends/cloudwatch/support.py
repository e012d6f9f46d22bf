"""What the Logs Insights backend needs beside its declarations: its refusal, its one-line length
error, and the order in which a collection's rules are converted."""
from __future__ import annotations

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError


# Sigma 2.1's sum and average as the Logs Insights stats functions sum() and avg() (Logs Insights query
# syntax, "stats": aggregation functions over numeric fields,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html). pct() is left out:
# AWS does not say how it ranks, so it is not the engines' percentile. A bin holds more events than a
# sliding window, and an average (or a sum of signed numbers) can move either way, hence its own note.
NUMERIC_AGGREGATES = {"value_sum": "sum", "value_avg": "avg"}
NUMERIC_WINDOW_NOTE = ("fixed bin() windows: a sum/average over each bin, not over the Sigma spec's sliding window "
                       "(a bin's other events can raise or dilute the value)")


def unsupported(message: str, cond=None) -> SigmaFeatureNotSupportedByBackendError:
    source = getattr(cond, "source", None)
    return SigmaFeatureNotSupportedByBackendError(f"CloudWatch Logs Insights: {message}", source=source)


class QueryTooLongError(SigmaFeatureNotSupportedByBackendError):
    """The rule converts, but into more than Logs Insights accepts: not expressible in the target (a
    refusal, as a long ``%ioc_domains%`` list is), not a broken rule. One line: pySigma's own
    SigmaError appends `in rule <the whole SigmaRule repr>`, megabytes for a long list."""

    def __str__(self) -> str:
        return SigmaError.__str__(self)


def referenced_first(rules: list) -> list:
    """The rules in their order, except that every rule a correlation references comes before it."""
    ordered, placed = [], set()

    def place(rule) -> None:
        if id(rule) in placed:
            return
        placed.add(id(rule))
        if isinstance(rule, SigmaCorrelationRule):
            for reference in rule.rules:
                if getattr(reference, "rule", None) is not None:
                    place(reference.rule)
        ordered.append(rule)

    for rule in rules:
        place(rule)
    return ordered
