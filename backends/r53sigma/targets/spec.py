"""What a target declares: the one `Target` object each package under r53sigma/targets/ exports as
``TARGET``, and the contract of its verify adapter.

Everything a command needs from a target is here, as declarations (backend and pipeline names) or
as functions that import the target's modules only when called, so listing the targets stays cheap
and the deploy clients (elasticsearch, splunk-sdk, boto3) are imported by `r53sigma deploy` only.
This module imports nothing from the rest of r53sigma: targets and commands both depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from sigma.correlations import SigmaCorrelationRule


class Rejected(Exception):
    """The target itself would reject the query (a disagreement, not a model gap)."""


class ModelGap(Exception):
    """The target's model does not cover the query: the model needs work."""


class Unavailable(Exception):
    """The target's checker cannot run here (e.g. no Java for Lucene): its cells are skipped."""


class Verifier:
    """Evaluates one target's queries on a verify case's events, as the target would.

    ``evaluate`` answers for one case: the set of event numbers (1-based) a plain rule's query
    selects, or how many times a correlation fires. Languages in ``batched`` are collected and
    answered at once by ``evaluate_batch`` (one Java call for every Lucene query, say).
    """

    batched: tuple[str, ...] = ()

    def evaluate(self, language: str, query: str, rule: Any, case: Any, source: Any) -> Any:
        raise ModelGap(f"no engine for {language} queries")

    def evaluate_batch(self, language: str, work: list[tuple[str, Any, list, Any]]) -> list:
        """``work``: (query, rule, cases, source) items; per item a list of answers (one per case) or
        a :class:`Rejected`; raises :class:`Unavailable` when nothing can be checked."""
        raise Unavailable(f"no batch engine for {language} queries")


@dataclass(frozen=True)
class Target:
    """One conversion target: how rules become its queries and what each command does with them."""

    name: str
    pipeline: str  # pySigma pipeline name ("" for a backend that maps fields itself)
    backend: str  # "module:Class" of the backend for single-event rules
    correlation_backend: str  # ... and for correlation rules
    language: str
    correlation_language: str
    suffix: str
    correlation_suffix: str
    order: int = 100  # position in `convert --target all`, package columns and verify reports
    siem: bool = True  # covered by `--target all`, verify and package (else asked for by name)
    # mappings/<name>/ files: () -> {path under mappings/: text or JSON-able content}
    render_ingestion: Callable[[], Mapping[str, Any]] | None = None
    # dist/ files: (packaged rules, rule folders) -> {path under dist/: text or bytes}
    render_package: Callable[[list, list[Path]], Mapping[str, Any]] | None = None
    verifier: Callable[[], Verifier] | None = None
    # `r53sigma deploy <deploy_name>`: () -> (deploy module, name of its target class)
    deployer: Callable[[], tuple[Any, str]] | None = None
    deploy_name: str | None = None
    mapping_column: str | None = None  # the column title in mappings/README.md's field table
    # targets whose conversions (same rules, same filters) render_package also receives, after its own
    package_companions: tuple[str, ...] = ()
    # Correlation windows: None = the spec's sliding window exactly; else the fraction of the span
    # within which any burst is guaranteed to be caught (hopping buckets: 0.5; fixed buckets: 0).
    window_guarantee: float | None = None
    # First-seen rules (r53sigma.first_seen): (rule, first-seen definition, the converted candidate
    # query) -> the target's native form (JSON-able, e.g. Kibana new_terms parameters); None: the
    # target refuses such rules, saying first_seen_refusal. The native form may raise
    # SigmaFeatureNotSupportedByBackendError for a rule it cannot state (a refusal, like any other).
    first_seen: Callable[[Any, Any, str], Mapping[str, Any]] | None = None
    first_seen_refusal: str = "the target keeps no state between runs (no history of values seen)"
    # How many first-seen fields the native form combines (None: any number), and the documented
    # reason a rule with more is refused.
    first_seen_max_fields: int | None = None
    first_seen_max_fields_reason: str = ""
    # What verify says the first-seen form is ("Kibana new_terms rule"): generated, not run there.
    first_seen_form: str = ""
    # The correlation backend reads the referred rules' conditions, not their queries, so a referred
    # rule the single-event backend refuses still gets its correlation (metric filters -> Contributor
    # Insights rules).
    correlates_unconverted_rules: bool = False

    def backend_for(self, rule) -> tuple[str, str, str]:
        if isinstance(rule, SigmaCorrelationRule):
            return self.correlation_backend, self.correlation_language, self.correlation_suffix
        return self.backend, self.language, self.suffix


def bursts_of_buckets(rows: list, bucket: str, aggregates: Callable[[str], bool], span: float) -> int:
    """How many bursts a fixed- or hopping-bucket correlation's result rows make: rows of one group
    (the group: every column but the bucket and the aggregates) whose bucket starts are at most one
    span apart are one burst (their buckets overlap or touch), as
    the sliding-window definition joins overlapping firing windows into one alert."""
    starts: dict[tuple, list[float]] = {}
    for row in rows:
        key = tuple(sorted((k, str(v)) for k, v in row.items() if k != bucket and not aggregates(k)))
        starts.setdefault(key, []).append(float(row[bucket]))
    count = 0
    for values in starts.values():
        values.sort()
        count += 1 + sum(1 for a, b in zip(values, values[1:]) if b - a > span)
    return count
