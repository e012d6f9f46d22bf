"""dist/elastic/: Kibana rules NDJSON (validated against the import-field schema) and the ingestion bodies."""
from __future__ import annotations

import json
import socket

import pytest

from r53sigma import attack, catalogue
from r53sigma.targets.elasticsearch import kibana
from support import REPO
from test_package_support import EXAMPLE, build_rules, bundled_build, bundled_conversions, resolver_rule, text


def kibana_rules(build) -> dict[str, dict]:
    return {r["name"]: r for r in map(json.loads, text(build, kibana.RULES_FILE).splitlines())}


def test_every_line_validates_against_the_import_schema():
    lines = text(bundled_build(), kibana.RULES_FILE).splitlines()
    converted = [c for (t, _), c in bundled_conversions().items() if t == "elasticsearch" and c.ok]
    assert len(lines) == len(converted)
    for line in lines:
        kibana.validate(json.loads(line))


@pytest.mark.parametrize("change", [
    {"severity": "informational"}, {"risk_score": 101}, {"version": "1"}, {"language": "esql"},
    {"threat": [{"framework": "MITRE ATT&CK", "tactic": {"id": "TA0011", "name": "C2", "reference": "x"}}]},
    {"enabld": False},
])
def test_schema_refuses_lines_kibana_would_reject(change):
    document = dict(next(iter(kibana_rules(bundled_build()).values())), type="query", language="lucene", index=["x-*"])
    document.update(change)
    with pytest.raises(ValueError):
        kibana.validate(document)


def test_single_event_rules_are_lucene_queries_on_the_catalogue_index():
    rules = kibana_rules(bundled_build())
    for c in (c for (t, _), c in bundled_conversions().items() if t == "elasticsearch" and c.ok):
        document = rules[c.title]
        assert document["rule_id"] == c.rule_id and document["query"] == c.query
        if c.language == "lucene":
            source = catalogue.for_logsource(c.logsource.get("category"), c.logsource.get("product"), c.logsource.get("service"))[0]
            rule_type = "new_terms" if c.first_seen else "query"  # first-seen rules: Kibana's new terms type
            assert (document["type"], document["language"]) == (rule_type, "lucene")
            assert document["index"] == list(source.targets["elasticsearch"]["index"])
        else:  # correlations: ES|QL names its indices in FROM
            assert (document["type"], document["language"]) == ("esql", "esql") and "index" not in document


def test_rule_fields_come_from_the_sigma_rule(tmp_path):
    document = kibana_rules(build_rules(tmp_path / "rules", example=EXAMPLE))["Example Domain Queried"]
    assert document["enabled"] is False
    assert (document["severity"], document["risk_score"]) == ("high", 73)
    assert document["references"] == ["https://example.org/Example-Domain-Queried"]
    assert document["false_positives"] == ["Test traffic."]
    assert document["note"] == (
        "## Investigation\n\n1. Find the instance behind srcaddr.\n\n## Blind spots\n\n- Cached answers are not logged."
    )
    # r53sigma.schedule: 5m interval + 15m Resolver delivery delay (Firehose)
    assert (document["interval"], document["from"], document["to"]) == ("5m", "now-20m", "now")
    assert "attack.t1071.004" in document["tags"] and document["version"] == 1


def test_threat_groups_techniques_under_their_tactics_with_shipped_names(tmp_path):
    rule = resolver_rule("Tagged", "selection:\n    query_name: a.example\ncondition: selection", tags=(
        "attack.exfiltration", "attack.t1048.003", "attack.command-and-control", "attack.t1071.004"))
    threat = kibana_rules(build_rules(tmp_path / "rules", tagged=rule))["Tagged"]["threat"]
    by_tactic = {t["tactic"]["name"]: t for t in threat}
    assert set(by_tactic) == {"Exfiltration", "Command and Control"}
    exfiltration = by_tactic["Exfiltration"]
    assert exfiltration["tactic"]["id"] == attack.tactic("exfiltration").id
    assert [(t["id"], t["name"]) for t in exfiltration["technique"]] == [("T1048", attack.technique("T1048").name)]
    assert [(s["id"], s["name"]) for s in exfiltration["technique"][0]["subtechnique"]] == [
        ("T1048.003", attack.technique("T1048.003").name)]
    assert by_tactic["Command and Control"]["technique"][0]["subtechnique"][0]["id"] == "T1071.004"


def test_informational_level_maps_to_low_severity(tmp_path):
    rule = resolver_rule("Informational", "selection:\n    query_name: a.example\ncondition: selection", level="informational")
    document = kibana_rules(build_rules(tmp_path / "rules", info=rule))["Informational"]
    assert (document["severity"], document["risk_score"]) == ("low", 1)


def test_build_needs_no_network_and_no_mitre_download(tmp_path, monkeypatch):
    from sigma.data import mitre_attack

    def refuse(*args, **kwargs):
        raise AssertionError("network or MITRE download attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(mitre_attack, "_load_mitre_attack_data", refuse)
    document = kibana_rules(build_rules(tmp_path / "rules", example=EXAMPLE))["Example Domain Queried"]
    assert document["threat"][0]["technique"][0]["id"] == "T1071"


def test_ingestion_bodies_are_the_rendered_mappings():
    build = bundled_build()
    bodies = {p: data for p, data in build.files.items() if p.startswith("elastic/") and not p.endswith(".ndjson")}
    assert bodies
    for path, data in bodies.items():
        assert data == (REPO / "mappings" / "elasticsearch" / path.split("/", 1)[1]).read_bytes(), path


# ---------------------------------------------------------------- issue 13: late data, repeats

from hypothesis import given, settings, strategies as st  # noqa: E402

from r53sigma import schedule  # noqa: E402
from r53sigma.package import packaged  # noqa: E402


def packaged_kibana():
    return [(packaged(c), c) for (t, _), c in bundled_conversions().items() if t == "elasticsearch" and c.ok]


def minutes(text: str) -> int:
    number, unit = int(text[:-1]), text[-1]
    return number * {"m": 1, "h": 60}[unit]


def test_every_packaged_rule_schedule_is_recomputed_from_the_catalogue_delay_and_span():
    rules = {r["rule_id"]: r for r in map(json.loads, text(bundled_build(), kibana.RULES_FILE).splitlines())}
    for item, c in packaged_kibana():
        expected = schedule.derive(c.rule, catalogue.load()[item.source])
        document = rules[c.rule_id]
        assert minutes(document["interval"]) == expected.interval, c.title
        assert minutes(document["from"].removeprefix("now-")) == expected.lookback, c.title
        assert expected.lookback >= expected.interval + expected.delay + expected.span
        assert document["timestamp_override"] == "event.ingested" and document["to"] == "now"
        if item.is_correlation:  # ES|QL aggregations: one alert per group while any run can see the burst
            suppression = document["alert_suppression"]
            assert suppression["group_by"] == list(c.rule.group_by)
            assert suppression["duration"] == {"value": expected.lookback + expected.span + expected.delay, "unit": "m"}
        else:  # custom query: Kibana's alert id comes from the source document, one alert per event
            assert "alert_suppression" not in document


def runs_that_see(arrivals: list[float], interval: int, lookback: int, horizon: float) -> list[int]:
    """Run times (every ``interval`` from 0) whose window (t - lookback, t] on event.ingested holds every arrival."""
    first, last = min(arrivals), max(arrivals)
    return [t for t in range(0, int(horizon) + 2 * interval, interval) if t - lookback < first and last <= t]


def suppressed_alerts(alert_runs: list[int], duration: int) -> int:
    """Kibana: the first alert of a group opens a suppression period; alerts within it are merged."""
    alerts, until = 0, None
    for t in sorted(alert_runs):
        if until is None or t >= until:
            alerts, until = alerts + 1, t + duration
    return alerts


burst = st.tuples(
    st.floats(0, 600, allow_nan=False),  # burst start (minutes)
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8),  # (position in span, share of delay)
)


@settings(max_examples=200, deadline=None)
@given(burst)
def test_no_event_delivered_within_the_delay_is_missed_and_a_burst_alerts_once(generated):
    start, events = generated
    for item, _ in packaged_kibana():
        s = item.schedule
        arrivals = [start + position * s.span + share * s.delay for position, share in events]
        seeing = runs_that_see(arrivals, s.interval, s.lookback, start + s.span + s.delay)
        assert seeing, (item.rule.title, arrivals)  # some run holds the whole burst (or the one event)
        if item.is_correlation:
            # every run holding any of the burst could alert: all within the suppression period of the first
            partial = [t for t in range(0, int(max(arrivals)) + 2 * s.lookback, s.interval)
                       if any(t - s.lookback < a <= t for a in arrivals)]
            assert suppressed_alerts(partial, kibana.suppression_minutes(item)) == 1, item.rule.title


def test_a_lookback_without_the_delay_misses_late_events():
    # the arrival check above can fail: interval 5, span 5, delay 15, a look-back of interval + span only
    arrivals = [0.0, 5.0 + 15.0]  # first event on time, last one delivered 15 minutes late
    assert runs_that_see(arrivals, 5, 10, 30) == []
    assert runs_that_see(arrivals, 5, 25, 30)


# ---------------------------------------------------------------- issue 14: Elastic Security content


def test_every_line_validates_against_both_stack_schemas():
    lines = [json.loads(line) for line in text(bundled_build(), kibana.RULES_FILE).splitlines()]
    assert set(kibana.SCHEMA_FILES) == {"8", "9"}
    for document in lines:
        for stack in kibana.SCHEMA_FILES:
            assert not list(kibana.validator(stack).iter_errors(document)), (stack, document["name"])


def test_the_stack_schemas_differ_where_kibana_does():
    document = dict(next(iter(kibana_rules(bundled_build()).values())))
    document["required_fields"] = [{"name": "dns.question.name"}]  # 9.x RequiredFieldInput needs a type
    assert not list(kibana.validator("8").iter_errors(document))
    assert list(kibana.validator("9").iter_errors(document))
    document = dict(document, required_fields=[], alert_suppression={"group_by": ["a", "b", "c", "d"]})
    for stack in kibana.SCHEMA_FILES:  # AlertSuppressionGroupBy: at most 3 fields
        assert list(kibana.validator(stack).iter_errors(document))


def test_required_fields_are_what_the_query_reads_typed_as_the_template_maps_them():
    for item, c in packaged_kibana():
        document = kibana.kibana_rule(item)
        required = {f["name"]: f["type"] for f in document["required_fields"]}
        assert required["event.ingested"] == "date"
        for name in required:
            if required[name] != "flattened":
                assert name in c.query or name == "event.ingested", (c.title, name)
        mapped = kibana.ingestion.field_mappings(catalogue.load()[item.source])
        for name, kind in required.items():
            if kind != "flattened":
                assert mapped[name]["type"] == kind, (c.title, name)
        for name in c.rule.group_by or () if item.is_correlation else ():
            assert name in required


def test_related_integration_is_the_aws_package_data_stream_of_the_rule():
    streams = {}
    for item, _ in packaged_kibana():
        (integration,) = kibana.kibana_rule(item)["related_integrations"]
        assert integration["package"] == "aws" and integration["version"].startswith("^")
        streams[item.source] = integration["integration"]
        assert any(integration["integration"] in p for p in index_patterns_of(item.source))
    assert streams == {"resolver": "route53_resolver_logs", "public_zone": "route53_public_logs", "cloudtrail": "cloudtrail"}


def index_patterns_of(source: str) -> list[str]:
    return kibana.index_patterns(source)


def test_setup_names_what_must_be_installed():
    for item, _ in packaged_kibana():
        setup = kibana.kibana_rule(item)["setup"]
        assert "`aws`" in setup
        if item.source in kibana.ingestion.INGEST_SOURCES:
            name = kibana.ingestion.pipeline_name(item.source)
            assert f"PUT _ingest/pipeline/{name}" in setup and f"PUT _component_template/{name}@mappings" in setup
        else:
            assert "@custom" in setup


def test_investigation_fields_are_the_group_by_or_the_entity_fields():
    for item, c in packaged_kibana():
        fields = kibana.kibana_rule(item)["investigation_fields"]["field_names"]
        if item.is_correlation:  # only the ES|QL output columns exist on the alert
            assert fields == list(c.rule.group_by)
        assert not any(f.endswith(".caseless") for f in fields)


def test_hunting_rules_are_packaged_disabled_and_tagged(tmp_path):
    hunting = resolver_rule("Hunt", "selection:\n    query_name: a.example\ncondition: selection", extra="purpose: hunting")
    rules = kibana_rules(build_rules(tmp_path / "rules", hunt=hunting, example=EXAMPLE))
    assert rules["Hunt"]["enabled"] is False and kibana.HUNTING_TAG in rules["Hunt"]["tags"]
    assert kibana.HUNTING_TAG not in rules["Example Domain Queried"]["tags"]


# ---------------------------------------------------------------- the version lock


def test_committed_version_lock_matches_the_packaged_rules():
    build = bundled_build()
    lock = (REPO / kibana.VERSION_LOCK).read_bytes()
    assert build.repo_files[kibana.VERSION_LOCK] == lock, "content changed without a version bump: run `r53sigma package`"
    locked = json.loads(lock)
    for document in kibana_rules(build).values():
        assert locked[document["rule_id"]]["version"] == document["version"]
        assert locked[document["rule_id"]]["sha256"] == kibana.content_hash(document)


def test_a_changed_query_bumps_the_version_and_the_same_content_keeps_it():
    document = dict(next(iter(kibana_rules(bundled_build()).values())))
    lock = {document["rule_id"]: {"name": document["name"], "sha256": kibana.content_hash(document), "version": 4}}
    assert kibana.versioned(document, lock)["version"] == 4
    changed = kibana.versioned(dict(document, query=document["query"] + " AND x:y"), lock)
    assert changed["version"] == 5
    assert kibana.lock_of([changed], lock)[document["rule_id"]]["version"] == 5
    assert kibana.versioned(dict(document, rule_id="new"), lock)["version"] == 1


def test_denied_cloudtrail_calls_are_mapped_to_low_severity_and_other_rules_keep_theirs():
    mapped = 0
    for item, c in packaged_kibana():
        document = kibana.kibana_rule(item)
        if item.source == "cloudtrail" and not item.is_correlation and document["severity"] != "low":
            assert document["severity_mapping"] == [
                {"field": "aws.cloudtrail.error_code", "operator": "equals", "value": "AccessDenied", "severity": "low"}]
            assert "aws.cloudtrail.error_code" in kibana.ingestion.field_mappings(catalogue.load()["cloudtrail"])
            mapped += 1
        else:
            assert document["severity_mapping"] == [], c.title
        assert document["risk_score_mapping"] == []
    assert mapped
