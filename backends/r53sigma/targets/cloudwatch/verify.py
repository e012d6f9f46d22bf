"""CloudWatch's verify adapter: a case's events as one log group holds them, run by the Logs Insights
model (`cwli`) or, for metric filters, by the filter-pattern model (`filter_pattern`), which sees each
event's message as CloudWatch Logs stores it, and for their correlations by the Contributor Insights
model (`contributor_insights`)."""
from __future__ import annotations

import json
import re
from typing import Any

from sigma.correlations import SigmaCorrelationRule

from r53sigma.targets.spec import ModelGap, Rejected, Verifier, bursts_of_buckets


class CloudWatchVerifier(Verifier):
    def evaluate(self, language: str, query: str, rule: Any, case: Any, source: Any) -> Any:
        from r53sigma.targets.cloudwatch import insights_model

        if language == "filter_pattern":
            return self.evaluate_filter_pattern(query, case, source)
        if language == "contributor_insights":
            return self.evaluate_contributor_insights(query, rule, case, source)
        events = []
        for number, (raw, event) in enumerate(zip(case.raws, case.events), 1):
            if source is not None and event.source != source.source:
                continue  # another log group
            view = insights_model.event(raw if isinstance(raw, str) else json.dumps(raw), event.time or 0.0)
            view.fields["@ptr"] = number  # Logs Insights' own per-event pointer field
            events.append(view)
        try:
            rows = insights_model.Query.parse(query).run(events)
        except insights_model.QuerySyntaxError as error:
            raise ModelGap(f"Logs Insights model: {error}") from error
        if isinstance(rule, SigmaCorrelationRule):
            bucket = next(iter(rows[0]), "") if rows else ""  # the model names the bin column first (group0)
            aggregate = re.compile(r"(event_count|value_count|rule_\d+_events)$").match
            return bursts_of_buckets(rows, bucket, aggregate, rule.timespan.seconds)
        return {row["@ptr"] for row in rows}

    def evaluate_filter_pattern(self, query: str, case: Any, source: Any) -> set[int]:
        from r53sigma.targets.cloudwatch import filter_pattern_model as model

        try:
            pattern = model.Pattern.parse(query)
        except model.RejectedPattern as error:
            raise Rejected(f"CloudWatch Logs would reject the filter pattern: {error}") from error
        except model.FilterPatternError as error:
            raise ModelGap(f"filter-pattern model: {error}") from error
        return {
            number for number, (raw, event) in enumerate(zip(case.raws, case.events), 1)
            if (source is None or event.source == source.source)
            and pattern.matches(raw if isinstance(raw, str) else json.dumps(raw))
        }

    def evaluate_contributor_insights(self, query: str, rule: Any, case: Any, source: Any) -> int:
        """Bursts the alarm reports: breaching (period, contributor) pairs, adjacent periods of one
        contributor joined as one burst (as the sliding-window definition joins them)."""
        from r53sigma.targets.cloudwatch import contributor_insights_model as model

        events = [(event.time or 0.0, raw if isinstance(raw, str) else json.dumps(raw))
                  for raw, event in zip(case.raws, case.events) if source is None or event.source == source.source]
        try:
            breaching = model.alarms(json.loads(query), events)
        except model.RejectedRule as error:
            raise Rejected(f"CloudWatch would reject the Contributor Insights rule: {error}") from error
        except NotImplementedError as error:
            raise ModelGap(f"Contributor Insights model: {error}") from error
        rows = [{"period": b["period"], "contributor": str(b["contributor"])} for b in breaching]
        return bursts_of_buckets(rows, "period", lambda column: False, rule.timespan.seconds)
