"""What the Logs Insights backend needs beside its declarations: its refusal, its one-line length
error, and the order in which a collection's rules are converted."""
from __future__ import annotations

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError


def unsupported(message: str, cond=None) -> SigmaFeatureNotSupportedByBackendError:
    source = getattr(cond, "source", None)
    return SigmaFeatureNotSupportedByBackendError(f"CloudWatch Logs Insights: {message}", source=source)


class QueryTooLongError(SigmaFeatureNotSupportedByBackendError):
    """The rule converts, but into more than Logs Insights accepts even factored: not expressible
    there (`sigma convert -s` skips it). One line: never the rule's repr (a SigmaConversionError
    appends `in rule <the whole SigmaRule>`, megabytes for a long list)."""


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
