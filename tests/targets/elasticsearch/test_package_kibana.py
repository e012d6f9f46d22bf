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
            assert (document["type"], document["language"]) == ("query", "lucene")
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
    bodies = {p: data for p, data in build.files.items() if p.startswith("elastic/") and p != kibana.RULES_FILE}
    assert bodies
    for path, data in bodies.items():
        assert data == (REPO / "mappings" / "elasticsearch" / path.split("/", 1)[1]).read_bytes(), path
