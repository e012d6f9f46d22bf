"""What the Logs Insights backend needs beside its declarations: its refusal, its one-line length
error, and the order in which a collection's rules are converted."""
from __future__ import annotations

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError


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
