"""First-seen rules: the ``first_seen`` attribute, the one definition each target's native form is built from.

Sigma cannot say "a value not seen in the last N days" (no state, no history window), so a first-seen
rule is a plain Sigma rule whose detection selects the candidate events, plus::

    first_seen:
        fields: [account_id, registered_domain]   # catalogue names, one or more, distinct
        history: 14d                              # how far back a value counts as seen (m, h or d)

An event alerts when its combination of ``fields`` values was not seen by the rule's candidate events
in the ``history`` before it. Stock sigma-cli sees a plain rule (custom attributes are ignored) and
would alert on every candidate event: the rule's description says so. The targets read this
definition to build their native form: Kibana's ``new_terms`` rule, a Splunk lookup-backed baseline,
the ``r53sigma scan --baseline`` file (:mod:`r53sigma.scan.baseline`); the others refuse with a reason.
Only what the definition itself needs is checked here; a target's own limits (Kibana's three fields)
are declared on its Target (``first_seen_max_fields``) and refused there, with its reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from r53sigma.scan.sigma_names import SigmaRule  # no pySigma import (warm start)

from r53sigma import catalogue

ATTRIBUTE = "first_seen"
_HISTORY = re.compile(r"^([1-9][0-9]*)([mhd])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class FirstSeenError(ValueError):
    """A ``first_seen`` attribute that cannot be honoured."""


@dataclass(frozen=True)
class FirstSeen:
    fields: tuple[str, ...]  # catalogue names
    history: str  # as written: 14d
    history_seconds: int

    @property
    def history_unit(self) -> tuple[int, str]:
        found = _HISTORY.match(self.history)
        return int(found.group(1)), found.group(2)


def of(rule) -> FirstSeen | None:
    """The rule's first-seen definition, None for an ordinary rule; FirstSeenError when malformed."""
    attributes = getattr(rule, "custom_attributes", None) or {}
    if ATTRIBUTE not in attributes:
        return None
    spec = attributes[ATTRIBUTE]
    if not isinstance(rule, SigmaRule):
        raise FirstSeenError("`first_seen` belongs on a plain rule (its detection selects the candidate events), not a correlation")
    if not isinstance(spec, dict) or set(spec) != {"fields", "history"}:
        raise FirstSeenError("`first_seen` must be a mapping with `fields` (a list of field names) and `history` (e.g. 14d)")
    fields, history = spec["fields"], spec["history"]
    if isinstance(fields, str):
        fields = [fields]
    if (not isinstance(fields, list) or not fields
            or not all(isinstance(f, str) and f for f in fields) or len(set(fields)) != len(fields)):
        raise FirstSeenError("`first_seen.fields` must list one or more distinct field names")
    found = _HISTORY.match(str(history))
    if not found:
        raise FirstSeenError(f"`first_seen.history` {history!r} is not a duration like 14d, 12h or 90m")
    ls = rule.logsource
    source = catalogue.for_logsource(ls.category, ls.product, ls.service)
    if source is None:
        raise FirstSeenError("`first_seen`: the rule's log source is not catalogued")
    log_source, generic = source
    unknown = [f for f in fields if log_source.field_for(f, generic_dns=generic) is None]
    if unknown:
        raise FirstSeenError(f"`first_seen.fields`: {', '.join(unknown)} not a field of {log_source.title}")
    names = tuple(log_source.field_for(f, generic_dns=generic).name for f in fields)  # Sigma DNS names -> catalogue
    return FirstSeen(names, str(history), int(found.group(1)) * _SECONDS[found.group(2)])


def catalogue_fields(rule, spec: FirstSeen) -> list[catalogue.Field]:
    """The catalogue entries of the rule's first-seen fields (for a target's own field names)."""
    ls = rule.logsource
    log_source, generic = catalogue.for_logsource(ls.category, ls.product, ls.service)
    return [log_source.field_for(name, generic_dns=generic) for name in spec.fields]


def refusal(target: str, why: str) -> str:
    """A target's refusal of a first-seen rule, in one form everywhere."""
    return f"{target} cannot state a first-seen rule ({ATTRIBUTE}): {why}"
