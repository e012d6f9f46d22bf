"""The app's `savedsearches.conf`: one scheduled search per rule, an Enterprise Security correlation
search at the same time, named by the rule's id so a renamed rule keeps its schedule and state.

Time bounds (from r53sigma.schedule: interval I, delivery delay D, correlation span S, minutes):

- single-event rules are bounded by index time: each run searches what was indexed in
  ``[-(I+1)m@m, -1m@m)`` (one minute for indexing to settle), and on `_time` back ``I + D + 1``
  minutes, so every event delivered within D is searched by exactly one run (continuous scheduling,
  ``realtime_schedule = 0``, never skips a period);
- correlations look back ``I + D + S`` on `_time` (every burst whole in some run) and are throttled
  per group (``alert.suppress.fields`` = the rule's group-by) for ``I + D + 2S``: every run that can
  see the same burst falls inside that period, so overlapping look-backs alert once.

Enterprise Security settings follow Splunk ESCU's packaged savedsearches.conf: ``action.notable``
and ``action.risk`` with their ``param.*`` keys, ``action.correlationsearch.*`` (label, MITRE ATT&CK
annotations from the offline data in r53sigma/data). Without ES these keys are inert and the search
still runs and tracks its alerts (``alert.track = 1``), as ESCU's own searches do on Splunk Enterprise.
Everything ES-specific is per stanza: ``[default]`` holds only keys of Splunk's savedsearches.conf.spec.

tstats alternates: a rule that reads only CIM Network_Resolution.DNS fields also gets
``[r53sigma-<id>-tstats]``, the same search as `tstats` over the accelerated data model (the
route53_splunk pipeline's `-f data_model`), shipped disabled like every search; an admin whose
Network_Resolution is accelerated enables it *instead of* ``r53sigma-<id>`` (both would alert
twice). Accelerated summaries have no index time, so the alternate is bounded on `_time` only,
back ``I + D + 1`` minutes, and throttled per entity for that long: overlapping runs alert once.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from sigma.backends.splunk import SplunkBackend

from r53sigma import attack, catalogue, schedule

if TYPE_CHECKING:
    from r53sigma.packaged import PackagedRule

TARGET = "splunk"
PREFIX = "r53sigma-"  # stanza names: r53sigma-<rule id>, and r53sigma-<rule id>-tstats for the alternates
TSTATS_SUFFIX = "-tstats"
TSTATS_TARGET = "splunk_data_model"  # the companion conversion the alternates come from
TSTATS_BY = ("src", "query", "record_type", "reply_code")  # the tstats result row's fields (pipeline DATA_MODEL_BY)
MANAGED = re.compile(r"^r53sigma-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:-tstats)?$")
MARKER = "Managed by r53sigma"  # last line of every description: `deploy --prune` deletes only these
SETTLE = 1  # minutes for an indexed event to become searchable
SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}  # alert.severity
RISK_SCORE = {"informational": 10, "low": 25, "medium": 50, "high": 75, "critical": 100}
SECURITY_DOMAIN = {"resolver": "network", "public_zone": "network", "cloudtrail": "audit"}  # ES domains
RISK_OBJECT_TYPE = {"source_ip": "system", "actor": "user"}  # catalogue role -> ES risk object type
ENTITY_ROLES = ("source_ip", "actor", "question_name", "operation")  # single-event throttle keys
BASELINE_SUFFIX = "-baseline"  # a first-seen rule's second search: r53sigma-<rule id>-baseline
SINGLE_EVENT_THROTTLE = 60  # minutes: one alert per entity per hour for single-event rules

# savedsearches.conf.spec keys common to every search (Splunk Admin Manual, savedsearches.conf:
# https://docs.splunk.com/Documentation/Splunk/latest/Admin/Savedsearchesconf). Shipped disabled: an
# admin reviews, then enables.
DEFAULTS = {
    "disabled": "1",
    "enableSched": "1",
    "realtime_schedule": "0",
    "schedule_window": "auto",
    "is_visible": "1",
    "alert.track": "1",
    "counttype": "number of events",
    "relation": "greater than",
    "quantity": "0",
    "dispatch.latest_time": "now",
}
SPEC_KEYS = frozenset({
    "disabled", "enableSched", "realtime_schedule", "schedule_window", "schedule_priority", "cron_schedule",
    "is_visible", "description", "search", "actions", "alert.track", "alert.digest_mode", "alert.suppress",
    "alert.suppress.fields", "alert.suppress.period", "alert.severity", "alert.expires", "alert_condition",
    "counttype", "relation", "quantity", "allow_skew", "dispatch.earliest_time", "dispatch.latest_time",
    "dispatch.index_earliest", "dispatch.index_latest", "request.ui_dispatch_app", "request.ui_dispatch_view",
})


def stanza_name(item: PackagedRule) -> str:
    return PREFIX + item.conversion.rule_id


def cron(interval: int) -> str:
    """A cron expression running every ``interval`` minutes, aligned to the hour or the day."""
    if not schedule.runs_on_cron(interval):
        raise ValueError(f"a schedule interval of {interval} minutes has no cron expression (use a divisor of 60 minutes or 24 hours)")
    if interval < 60:
        return f"*/{interval} * * * *"
    hours = interval // 60
    return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"


def _source(item: PackagedRule):
    logsource = item.conversion.logsource
    return catalogue.for_logsource(logsource.get("category"), logsource.get("product"), logsource.get("service"))


def key_fields(item: PackagedRule) -> list[tuple[str, str | None]]:
    """What one alert is about, as (Splunk field, catalogue role): a correlation's group-by; a
    single-event rule's `fields`, else the log source's entity fields (who asked, for what). The
    pipeline has already mapped group-by and `fields` to the catalogue's Splunk names."""
    log_source, _ = _source(item)
    roles = {f.target(TARGET).name: f.role for f in log_source.fields.values()}
    if item.is_correlation:
        names = list(item.rule.group_by or ())
    elif item.conversion.first_seen:  # one result per new value
        names = list(item.conversion.first_seen["fields"])
    elif getattr(item.rule, "fields", None):
        names = list(item.rule.fields)
    else:
        names = [f.target(TARGET).name for role in ENTITY_ROLES if (f := log_source.with_role(role)) is not None]
    return [(name, roles.get(name)) for name in names]


def time_bounds(item: PackagedRule) -> dict[str, str]:
    s = item.schedule
    if item.is_correlation:
        return {"dispatch.earliest_time": f"-{s.lookback}m@m"}
    return {
        "dispatch.earliest_time": f"-{s.lookback + SETTLE}m@m",
        "dispatch.index_earliest": f"-{s.interval + SETTLE}m@m",
        "dispatch.index_latest": f"-{SETTLE}m@m",
    }


def throttle_minutes(item: PackagedRule) -> int:
    s = item.schedule
    if item.is_correlation:
        return s.lookback + s.span  # first alerting run >= first event; last seeing run <= last event + lookback
    return max(SINGLE_EVENT_THROTTLE, s.lookback)


def _token_text(text: str) -> str:
    """Rule text inside ES token strings: one line, no `$` (ES reads $name$ as a result field)."""
    return " ".join(str(text).replace("$", "").split())


def _search_field(name: str) -> str:
    """A field name in a search: bare when pySigma would leave it bare, else double-quoted."""
    return name if SplunkBackend.field_quote_pattern.match(name) else f'"{name}"'


def enterprise_security(item: PackagedRule, fields: list[str]) -> dict[str, str]:
    level = _level(item)
    log_source, _ = _source(item)
    title = _token_text(item.rule.title)
    about = " ".join(f"{name}=${name}$" for name in fields)
    techniques = [attack.technique(t).id for t in attack.tags_of(item.rule).techniques]  # offline ATT&CK data
    risk_object, role = next(((n, r) for n, r in key_fields(item) if r in RISK_OBJECT_TYPE), (fields[0] if fields else None, None))
    risk_type = RISK_OBJECT_TYPE.get(role, "other")
    drilldown = " ".join([f'sourcetype="{log_source.targets[TARGET]["sourcetype"]}"', *(f'{_search_field(n)}="${n}$"' for n in fields)])
    settings = {
        "action.correlationsearch.enabled": "1",
        "action.correlationsearch.label": title,
        "action.correlationsearch.annotations": json.dumps({"mitre_attack": techniques}),
        "action.notable": "1",
        "action.notable.param.rule_title": f"{title}: {about}" if about else title,
        "action.notable.param.rule_description": _token_text(item.rule.description or title),
        "action.notable.param.security_domain": SECURITY_DOMAIN[log_source.source],
        "action.notable.param.severity": level,
        "action.notable.param.nes_fields": ",".join(fields),
        "action.notable.param.drilldown_searches": json.dumps([{
            "name": f"Events of {title}" + (f" for {about}" if about else ""),
            "search": drilldown,
            "earliest_offset": "$info_min_time$",
            "latest_offset": "$info_max_time$",
        }]),
    }
    if risk_object:
        settings.update({
            "action.risk": "1",
            "action.risk.param._risk": json.dumps([{
                "risk_object_field": risk_object, "risk_object_type": risk_type, "risk_score": RISK_SCORE[level],
            }]),
            "action.risk.param._risk_message": f"{title}: {about}" if about else title,
        })
    return settings


def _level(item: PackagedRule) -> str:
    return str(item.rule.level.name).lower() if item.rule.level else "low"


def hunting_settings(item: PackagedRule) -> dict[str, str]:
    """A `purpose: hunting` rule: a saved search an analyst runs, never scheduled, no alert, no ES
    correlation search (its volume is too high for an alert, see the rule's benchmark note)."""
    return {
        "enableSched": "0",  # is_scheduled = 0 over REST
        "alert.track": "0",
        "action.correlationsearch.enabled": "0",  # ES lists it by its label, as a search, not a correlation search
        "action.correlationsearch.label": _token_text(item.rule.title),
        "cron_schedule": cron(item.schedule.interval),  # kept so an admin can schedule it on purpose
        "dispatch.earliest_time": f"-{item.schedule.lookback}m@m",
    }


def settings_of(item: PackagedRule) -> dict[str, str]:
    if item.is_hunting:
        return hunting_settings(item)
    fields = [name for name, _ in key_fields(item)]
    settings = enterprise_security(item, fields)
    settings.update({
        "alert.severity": str(SEVERITY[_level(item)]),
        "alert.suppress.period": f"{throttle_minutes(item)}m",
        "cron_schedule": cron(item.schedule.interval),
        **time_bounds(item),
    })
    # per search, not in [default]: a user's own search in this app is not throttled behind their back
    settings["alert.digest_mode"] = "0"  # one alert per result, so throttling can key on its fields
    settings["alert.suppress"] = "1" if fields else "0"  # nothing to throttle on: every result is its own alert
    if fields:
        settings["alert.suppress.fields"] = ",".join(fields)
    return settings


def description(item: PackagedRule) -> str:
    text = (item.rule.description or "").strip()
    return f"{item.rule.title}: {text}\n{MARKER} (rule {item.conversion.rule_id}); `r53sigma deploy` keeps it in step."


def stanza(item: PackagedRule) -> str:
    settings = settings_of(item)
    settings["description"] = description(item)
    fields = getattr(item.rule, "fields", None)
    settings["search"] = item.query + ("\n| table " + ",".join(fields) if fields else "")  # as pySigma's savedsearches format
    if item.conversion.first_seen:  # the lookup-backed detection (first_seen.py), and its baseline search
        settings["search"] = item.conversion.first_seen["detection_search"]
        return (f"\n[{stanza_name(item)}]" + SplunkBackend._generate_settings(settings)
                + f"\n\n[{stanza_name(item)}{BASELINE_SUFFIX}]" + SplunkBackend._generate_settings(baseline_settings(item)))
    return f"\n[{stanza_name(item)}]" + SplunkBackend._generate_settings(settings)  # pySigma's .conf writer


def baseline_settings(item: PackagedRule) -> dict[str, str]:
    """A first-seen rule's baseline search: scheduled as the rule (hunting rules too: the history must
    keep up), no alert, not an ES correlation search; reads what the rule's own runs read."""
    return {
        "description": f"{item.rule.title}: keeps the KV store baseline {item.conversion.first_seen['lookup']} "
                       f"the rule's search compares with.\n{MARKER} (rule {item.conversion.rule_id}); `r53sigma deploy` keeps it in step.",
        "enableSched": "1",
        "alert.track": "0",
        "action.correlationsearch.enabled": "0",
        "cron_schedule": cron(item.schedule.interval),
        **{k: v for k, v in time_bounds(item).items()},
        "search": item.conversion.first_seen["baseline_search"],
    }


def tstats_stanza(item: PackagedRule, tstats: PackagedRule) -> str:
    """The disabled `-tstats` alternate of ``item``: its settings, its tstats search, `_time` bounds."""
    settings = settings_of(item)
    fields = [name for name, _ in key_fields(item) if name in TSTATS_BY] or ["src", "query"]
    if not item.is_hunting:
        for key in ("dispatch.index_earliest", "dispatch.index_latest"):
            settings.pop(key, None)  # summaries carry _time only
        settings.update(enterprise_security(item, fields))
        settings["action.correlationsearch.label"] += " (tstats)"
        settings["alert.suppress"], settings["alert.suppress.fields"] = "1", ",".join(fields)
        settings["alert.suppress.period"] = f"{max(SINGLE_EVENT_THROTTLE, item.schedule.lookback + SETTLE)}m"
    else:
        settings["action.correlationsearch.label"] += " (tstats)"
    settings["description"] = (f"{item.rule.title} (tstats over the accelerated CIM Network_Resolution data model): enable it "
                               f"instead of {stanza_name(item)}, not with it.\n"
                               f"{MARKER} (rule {item.conversion.rule_id}); `r53sigma deploy` keeps it in step.")
    settings["search"] = tstats.query
    return f"\n[{stanza_name(item)}{TSTATS_SUFFIX}]" + SplunkBackend._generate_settings(settings)


def render(items: list[PackagedRule], header: str) -> str:
    # the companion's refusals come along too (a rule tstats cannot search): those get no alternate
    alternates = {i.conversion.rule_id: i for i in items if i.conversion.target == TSTATS_TARGET and i.conversion.ok}
    ordered = sorted((i for i in items if i.conversion.target != TSTATS_TARGET), key=stanza_name)
    stanzas = []
    for item in ordered:
        stanzas.append(stanza(item))
        if item.conversion.rule_id in alternates and not item.is_correlation:
            stanzas.append(tstats_stanza(item, alternates[item.conversion.rule_id]))
    body = "\n[default]" + SplunkBackend._generate_settings(DEFAULTS) + "\n" + "\n".join(stanzas)
    return header + body.lstrip("\n") + "\n"
