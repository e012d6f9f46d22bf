"""Splunk's verify adapter: a case's events as Splunk indexes them, searched by the SPL model."""
from __future__ import annotations

from typing import Any

from sigma.correlations import SigmaCorrelationRule

from r53sigma.targets.spec import ModelGap, Rejected, Verifier


class SplunkVerifier(Verifier):
    def evaluate(self, language: str, query: str, rule: Any, case: Any, source: Any) -> Any:
        from r53sigma.targets.splunk import spl_model
        from r53sigma.targets.splunk.events import event_from_raw

        events = []
        for number, (raw, event) in enumerate(zip(case.raws, case.events), 1):
            view = event_from_raw(raw, event.source)
            view["_r53sigma_event"] = number  # which event a result row is (not a Splunk field)
            events.append(view)
        from r53sigma import ioc

        from .lookups import LOOKUP

        listed = ioc.list_match(rule)  # the app's lookup holding the case's list, as transforms.conf defines it
        tables = {LOOKUP: spl_model.LookupTable([{"domain": d, "category": ""} for d in listed.domains or []],
                                                    case_sensitive=False, columns=tuple(ioc.LOOKUP_COLUMNS))} if listed else {}
        try:
            rows = spl_model.run(query, events, tables)
        except spl_model.InvalidSearch as error:
            raise Rejected(f"Splunk would reject the search: {error}") from error
        except spl_model.QuerySyntaxError as error:
            raise ModelGap(f"Splunk model: {error}") from error
        if isinstance(rule, SigmaCorrelationRule):
            return len(rows)
        return {row["_r53sigma_event"] for row in rows}  # one result per matched list entry: the same event
