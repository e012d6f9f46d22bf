"""The app's savedsearches.conf: time bounds that search every event once, per-group throttling,
Enterprise Security correlation-search settings, names keyed by rule id, a [default] Splunk's spec knows."""
from __future__ import annotations

import json
import re

import pytest

from r53sigma import attack, schedule
from r53sigma.targets.splunk import app, savedsearches
from support import REPO
from test_package_splunk import APP_DIR, by_label, parse_conf, searches
from test_package_support import EXAMPLE, build_rules, bundled_build, bundled_conversions, resolver_rule, text

MINUTE = 60


def relative(spec: str, now: int) -> int:
    """Splunk's relative time modifiers as the pack writes them: `now`, or `-<N>m@m` (N minutes back,
    snapped down to the minute). https://docs.splunk.com/Documentation/Splunk/latest/Search/Specifytimemodifiersinyoursearch"""
    if spec == "now":
        return now
    match = re.fullmatch(r"-(\d+)m@m", spec)
    assert match, f"unexpected time modifier {spec!r}"
    back = now - int(match.group(1)) * MINUTE
    return back - back % MINUTE


def interval_of(cron: str) -> int:
    minutes = re.fullmatch(r"\*/(\d+) \* \* \* \*", cron)
    if minutes:
        return int(minutes.group(1))
    hours = re.fullmatch(r"0 (?:\*/(\d+)|\*) \* \* \*", cron)
    assert hours, cron
    return 60 * int(hours.group(1) or 1)


def selected_by(stanza: dict, run: int, event_time: int, indexed: int, searchable: int) -> bool:
    """Whether the run scheduled at ``run`` returns the event: searchable by then, and inside the
    `_time` range and the index-time range (earliest inclusive, latest exclusive)."""
    if searchable > run:
        return False
    if not relative(stanza["dispatch.earliest_time"], run) <= event_time < relative(stanza["dispatch.latest_time"], run):
        return False
    if "dispatch.index_earliest" in stanza:
        return relative(stanza["dispatch.index_earliest"], run) <= indexed < relative(stanza["dispatch.index_latest"], run)
    return True


def packaged_stanzas():
    stanzas = searches(bundled_build())
    defaults = stanzas.pop("default")
    items = {}
    for (target, rule_id), conv in bundled_conversions().items():
        if target == "splunk" and conv.ok:
            from r53sigma import package

            items[f"r53sigma-{rule_id}"] = (package.packaged(conv), {**defaults, **stanzas[f"r53sigma-{rule_id}"]})
    return items


def test_every_single_event_search_returns_each_event_delivered_within_the_delay_exactly_once():
    checked = 0
    for item, stanza in packaged_stanzas().values():
        if item.is_correlation or item.is_hunting:  # hunting: not scheduled (test_package_splunk)
            continue
        interval, delay = interval_of(stanza["cron_schedule"]) * MINUTE, item.schedule.delay * MINUTE
        runs = range(0, 6 * interval + delay + 3 * MINUTE, interval)
        for event_time in range(interval + 1, 3 * interval, 37):
            for late in (0, delay // 2, delay):  # arrival (index time) up to the documented delay
                for settle in (0, MINUTE - 1):  # indexed -> searchable
                    indexed = event_time + late
                    hits = [r for r in runs if selected_by(stanza, r, event_time, indexed, indexed + settle)]
                    assert len(hits) == 1, (item.rule.title, event_time, late, settle, hits)
        checked += 1
    assert checked > 20


def test_an_event_later_than_the_delay_and_a_run_can_be_missed():
    """The other side of the guarantee: an event arriving after its _time left every run's range."""
    item, stanza = next(v for v in packaged_stanzas().values() if not v[0].is_correlation)
    interval, delay = interval_of(stanza["cron_schedule"]) * MINUTE, item.schedule.delay * MINUTE
    event_time = 10 * interval
    indexed = event_time + delay + interval + 2 * MINUTE
    runs = range(0, 20 * interval + delay, interval)
    assert not [r for r in runs if selected_by(stanza, r, event_time, indexed, indexed)]


def group_by_of(query: str) -> list[str]:
    match = re.search(r"\| stats .* by _time (.+)", query)
    assert match, query
    return match.group(1).split()


def test_every_correlation_sees_each_burst_whole_and_alerts_once_per_group():
    checked = 0
    for item, stanza in packaged_stanzas().values():
        if not item.is_correlation or item.is_hunting:  # hunting searches are not scheduled, nothing to throttle
            continue
        assert stanza["alert.suppress"] == "1" and stanza["alert.digest_mode"] == "0"
        if " by _time " in item.query:  # the throttle keys are the groups the search reports
            assert stanza["alert.suppress.fields"].split(",") == group_by_of(item.query)
        interval, delay = interval_of(stanza["cron_schedule"]) * MINUTE, item.schedule.delay * MINUTE
        span = schedule.span_minutes(item.rule) * MINUTE
        period = int(stanza["alert.suppress.period"].rstrip("m")) * MINUTE
        runs = range(0, 8 * interval + delay + 2 * span + 4 * MINUTE, interval)
        for first in range(interval, 2 * interval, 41):
            for length in {0, span // 2, span - 1}:
                for lates in ((0, 0), (delay, 0), (0, delay), (delay, delay)):
                    events = [(first, first + lates[0]), (first + length, first + length + lates[1])]
                    seeing = [r for r in runs if any(selected_by(stanza, r, e, i, i) for e, i in events)]
                    whole = [r for r in runs if all(selected_by(stanza, r, e, i, i) for e, i in events)]
                    assert whole, (item.rule.title, first, length, lates)
                    # every run that could alert on this burst is throttled by the first one's alert
                    assert seeing[-1] - seeing[0] < period, (item.rule.title, first, length, lates, seeing)
        checked += 1
    assert checked >= 8


def test_single_event_searches_throttle_on_who_asked_for_what():
    stanza = by_label(packaged_stanzas_by_name())["DNS Query To Tunnelling Service Domain"]
    assert stanza["alert.suppress.fields"] == "src,query" and stanza["alert.suppress.period"] == "60m"
    cloudtrail = by_label(packaged_stanzas_by_name())["Route 53 Hosted Zone Deleted"]
    assert cloudtrail["alert.suppress.fields"] == "userIdentity.arn,eventName"


def packaged_stanzas_by_name():
    return {name: stanza for name, (_, stanza) in packaged_stanzas().items()}


def test_every_search_is_an_es_correlation_search_with_notable_risk_and_attack():
    for item, stanza in packaged_stanzas().values():
        if item.is_hunting:  # a saved search to run by hand, not a correlation search
            assert stanza["action.correlationsearch.enabled"] == "0" and "action.notable" not in stanza
            continue
        title = item.rule.title
        assert stanza["action.correlationsearch.enabled"] == "1" and stanza["action.correlationsearch.label"] == title
        techniques = json.loads(stanza["action.correlationsearch.annotations"])["mitre_attack"]
        assert techniques == list(attack.tags_of(item.rule).techniques) and techniques
        assert all(attack.technique(t).name for t in techniques)  # every id is in the offline ATT&CK data
        assert stanza["action.notable"] == "1"
        level = item.rule.level.name.lower()
        assert stanza["action.notable.param.severity"] == level
        fields = stanza["action.notable.param.nes_fields"].split(",")
        assert fields == stanza["alert.suppress.fields"].split(",")
        # the title's tokens are result fields: ES fills them from the notable's own result
        assert set(re.findall(r"\$([^$]+)\$", stanza["action.notable.param.rule_title"])) == set(fields)
        drilldown = json.loads(stanza["action.notable.param.drilldown_searches"])
        assert drilldown[0]["search"].startswith('sourcetype="aws:') and drilldown[0]["earliest_offset"] == "$info_min_time$"
        assert set(re.findall(r"\$([^$]+)\$", drilldown[0]["search"])) == set(fields)
        risk = json.loads(stanza["action.risk.param._risk"])
        assert risk[0]["risk_score"] == savedsearches.RISK_SCORE[level] and risk[0]["risk_object_field"] in fields


def test_risk_objects_are_the_source_address_or_the_calling_principal():
    stanzas = by_label(packaged_stanzas_by_name())
    resolver = json.loads(stanzas["DNS Query Flood From One Source"]["action.risk.param._risk"])[0]
    assert (resolver["risk_object_field"], resolver["risk_object_type"]) == ("src", "system")
    cloudtrail = json.loads(stanzas["Route 53 Configuration Enumerated by One Principal"]["action.risk.param._risk"])[0]
    assert (cloudtrail["risk_object_field"], cloudtrail["risk_object_type"]) == ("userIdentity.arn", "user")


def test_dollar_signs_in_a_rule_title_cannot_forge_an_es_token(tmp_path):
    rule = resolver_rule("Costs $5 $src$", "selection:\n    query_name: a.example\ncondition: selection")
    stanza = next(iter(by_label(searches(build_rules(tmp_path / "rules", dollar=rule))).values()))
    assert stanza["action.notable.param.rule_title"] == "Costs 5 src: src=$src$ query=$query$"


def test_default_stanza_holds_only_keys_of_splunks_savedsearches_spec():
    defaults = searches(bundled_build())["default"]
    assert set(defaults) <= savedsearches.SPEC_KEYS, set(defaults) - savedsearches.SPEC_KEYS
    # ES keys are per search only, so a Splunk without ES reads nothing unknown for every search
    for name, stanza in searches(bundled_build()).items():
        unknown = {k for k in stanza if k not in savedsearches.SPEC_KEYS}
        assert all(k.startswith(("action.correlationsearch.", "action.notable", "action.risk")) for k in unknown), (name, unknown)


def test_a_renamed_rule_keeps_its_search_name(tmp_path):
    rule_id = "5d4c4c36-9f3a-4f57-b7e2-2f1a3c1e0b11"
    before = searches(build_rules(tmp_path / "a", r=resolver_rule("Old Title", "selection:\n    query_name: a.example\ncondition: selection", rule_id=rule_id)))
    after = searches(build_rules(tmp_path / "b", r=resolver_rule("New Title", "selection:\n    query_name: a.example\ncondition: selection", rule_id=rule_id)))
    assert set(before) == set(after) == {"default", f"r53sigma-{rule_id}", f"r53sigma-{rule_id}-tstats"}  # and its tstats alternate
    assert after[f"r53sigma-{rule_id}"]["action.correlationsearch.label"] == "New Title"
    assert savedsearches.MARKER in after[f"r53sigma-{rule_id}"]["description"]


def test_saved_searches_stay_in_the_app_and_only_the_documented_deployer_role_changes_them():
    meta = parse_conf(text(bundled_build(), f"{APP_DIR}/metadata/default.meta"))
    assert meta["savedsearches"]["export"] == "none" and meta["views"]["export"] == "none"
    assert meta["savedsearches"]["access"] == "read : [ * ], write : [ admin, sc_admin, r53sigma_deployer ]"
    assert meta[""]["export"] == "system"  # field extractions, event types and tags serve every app
    assert "power" not in text(bundled_build(), f"{APP_DIR}/metadata/default.meta")
    readme = (REPO / "README.md").read_text()
    assert "r53sigma_deployer" in readme and "schedule_search" in readme  # the role is documented


def test_interval_without_a_cron_expression_is_refused():
    with pytest.raises(ValueError, match="no cron"):
        app.cron(7)


def test_example_rule_lands_in_the_app(tmp_path):
    stanza = by_label(searches(build_rules(tmp_path / "rules", example=EXAMPLE)))["Example Domain Queried"]
    assert stanza["alert.severity"] == "4" and stanza["action.notable.param.severity"] == "high"
