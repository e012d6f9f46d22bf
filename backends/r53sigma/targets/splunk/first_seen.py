"""First-seen rules as a lookup-backed baseline in the Splunk app (r53sigma.first_seen).

One KV store collection per rule holds, per combination of the first-seen fields' values, when its
current streak began (``first_seen``: the first time seen after more than the history without it)
and when it was last seen (``last_seen``), as epoch seconds. Two saved searches share it:

- the **baseline search** (``r53sigma-<id>-baseline``, scheduled like the rule, no alert) merges each
  run's candidate events into the collection and drops rows unseen for longer than the history;
- the **detection search** (``r53sigma-<id>``) takes the run's candidates per value and keeps those the
  collection does not know, knows as unseen for longer than the history, or whose streak began in
  this run (the baseline search got there first).

So the two may run in either order, and overlapping look-backs see a value as new only while its
streak's first event is in their window (the rule's throttle dedupes those runs). Documented
commands: ``lookup``/``inputlookup append=true``/``outputlookup`` (Splunk Search Reference), KV store
lookups (collections.conf, transforms.conf ``external_type = kvstore``); ``stats first()`` keeps the
search's rows ahead of the appended lookup rows.
"""
from __future__ import annotations

import re

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from r53sigma import first_seen

TARGET = "splunk"
_SAFE_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def lookup_name(rule) -> str:
    return "r53sigma_first_seen_" + str(rule.id).replace("-", "_")


def native_form(rule, spec: first_seen.FirstSeen, query: str) -> dict:
    fields = [f.target(TARGET).name for f in first_seen.catalogue_fields(rule, spec)]
    unsafe = [f for f in fields if not _SAFE_FIELD.match(f)]
    if unsafe:  # a name the by-clause would have to quote (answers{}.Type): refused rather than guessed
        raise SigmaFeatureNotSupportedByBackendError(first_seen.refusal(
            TARGET, f"{', '.join(unsafe)} is not a plain field name for the baseline's stats/lookup by-clause"))
    lookup, by, history = lookup_name(rule), " ".join(fields), spec.history_seconds
    gap = f'last_seen < relative_time(first_time, "-{history}s")'  # unseen for longer than the history
    candidates = f"{query}\n| stats min(_time) as first_time max(_time) as last_time count by {by}\n"
    baseline = (
        candidates
        + f"| lookup {lookup} {by} OUTPUT first_seen last_seen\n"
        + f"| eval first_seen=if(isnull(last_seen) OR {gap}, first_time, min(first_seen, first_time))"
        + ", last_seen=max(coalesce(last_seen, last_time), last_time)\n"
        + f"| fields {by} first_seen last_seen\n"
        + f"| inputlookup append=true {lookup}\n"
        + f"| stats first(first_seen) as first_seen max(last_seen) as last_seen by {by}\n"
        + f"| where last_seen >= relative_time(now(), \"-{history}s\")\n"
        + f"| outputlookup {lookup}"
    )
    detection = (
        candidates
        + f"| lookup {lookup} {by} OUTPUT first_seen last_seen\n"
        + f"| where isnull(last_seen) OR {gap} OR first_seen >= first_time\n"
        + f"| fields {by} first_time last_time count"
    )
    return {"lookup": lookup, "fields": fields, "history_seconds": history,
            "baseline_search": baseline, "detection_search": detection}


def collections_conf(items) -> str:
    """collections.conf stanzas of the first-seen rules' KV store collections."""
    stanzas = []
    for item in items:
        form = item.conversion.first_seen
        lines = [f"[{form['lookup']}]"] + [f"field.{name} = string" for name in form["fields"]]
        stanzas.append("\n".join(lines + ["field.first_seen = number", "field.last_seen = number"]))
    return "\n\n".join(stanzas)


def transforms_conf(items) -> str:
    """transforms.conf lookup definitions over those collections."""
    stanzas = []
    for item in items:
        form = item.conversion.first_seen
        stanzas.append("\n".join([
            f"[{form['lookup']}]", "external_type = kvstore", f"collection = {form['lookup']}",
            "fields_list = " + ", ".join(["_key", *form["fields"], "first_seen", "last_seen"]),
        ]))
    return "\n\n".join(stanzas)
