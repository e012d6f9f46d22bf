"""First-seen rules as Kibana ``new_terms`` rules (r53sigma.first_seen).

Kibana's new terms rule alerts on a value (or combination of up to three fields' values) of documents
matching its query whose first appearance within ``history_window_start`` .. now falls inside the
rule's own run (Elastic, "New terms rules": "generates an alert only when the value has never appeared
in that baseline period"). The query is the rule's Lucene conversion (its candidate events); the
fields are the catalogue's Elasticsearch names, which the index template maps as keyword.
"""
from __future__ import annotations

from r53sigma import first_seen

TARGET = "elasticsearch"


def native_form(rule, spec: first_seen.FirstSeen, query: str) -> dict:
    amount, unit = spec.history_unit
    return {
        "type": "new_terms",
        "new_terms_fields": [f.target(TARGET).name for f in first_seen.catalogue_fields(rule, spec)],
        "history_window_start": f"now-{amount}{unit}",
    }
