"""The catalogue's derived fields (``derived:``), added to a normalised record for the local engines.

Computed after the trailing dot is stripped, from the catalogued source field; a field with no value
(the name is a bare public suffix or a reverse lookup) is left out, as Elasticsearch leaves it out.
"""
from __future__ import annotations

from typing import Any

from r53sigma.catalogue import LogSource
from r53sigma.scan import registered_domain


def add(log_source: LogSource, record: dict[str, Any]) -> None:
    for name, field in log_source.derived.items():
        source = record.get(field.derived.source_field)
        if not isinstance(source, str):
            continue
        value = registered_domain.derive(field.derived.by, field.derived.part, source)
        if value is not None:
            record[name] = value
