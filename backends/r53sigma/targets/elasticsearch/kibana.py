"""Kibana detection rules (`POST /api/detection_engine/rules/_import`) and the Elasticsearch bodies.

Each rule starts from pySigma's own `siem_rule_ndjson` output (LuceneBackend for single-event rules,
ESQLBackend for correlations), filled with the query r53sigma.conversion produced, then completed:
pySigma's `threat` needs MITRE data downloaded at run time, so `finalize_output_threat_model` is
replaced by one built from r53sigma.attack (shipped data); the rest is set from the rule and the
catalogue (index patterns, severity, schedule, note). Every line is validated against
schemas/kibana_rule_import.json, written from Kibana's documented rule fields.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import jsonschema
from sigma.conversion.state import ConversionState

from r53sigma import attack, catalogue
from r53sigma.targets.elasticsearch import ingestion
from r53sigma.targets.elasticsearch.esql import ESQLBackend
from r53sigma.targets.elasticsearch.lucene import LuceneBackend

if TYPE_CHECKING:
    from r53sigma.packaged import PackagedRule

TARGET = "elasticsearch"
RULES_FILE = "elastic/rules.ndjson"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "kibana_rule_import.json"
ATTACK_URL = "https://attack.mitre.org"
LICENSE = "Apache-2.0"  # the pack's licence, for rules that name none
SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
PACK_TAGS = ["r53sigma", "Amazon Route 53"]
# pySigma fields that the import API ignores, deprecates or would get wrong for us: `id` is the saved
# object id Kibana assigns; `immutable` is for Elastic's prebuilt rules; `output_index`, `meta` and
# the rule-level `throttle` are deprecated / UI-only (actions carry their own frequency).
DROPPED = ("id", "immutable", "output_index", "meta", "throttle")


class OfflineThreat:
    """pySigma's threat model, from r53sigma.attack instead of a download.

    Each tactic tag gets the rule's techniques that belong to it (pySigma pairs tags by position).
    """

    def finalize_output_threat_model(self, tags) -> list[dict]:
        return threat([t for t in tags if t.namespace == "attack"])


class OfflineLucene(OfflineThreat, LuceneBackend):
    pass


class OfflineESQL(OfflineThreat, ESQLBackend):
    pass


def threat(attack_tags) -> list[dict]:
    tags = attack.tags_of(SimpleNamespace(tags=attack_tags))
    entries = []
    for shortname in tags.tactics:
        tactic = attack.tactic(shortname)
        techniques: dict[str, dict] = {}
        for tid in tags.techniques:
            technique = attack.technique(tid)
            if shortname not in technique.tactics:
                continue
            top = attack.technique(technique.parent) if technique.parent else technique
            entry = techniques.setdefault(top.id, {
                "id": top.id, "name": top.name, "reference": f"{ATTACK_URL}/techniques/{top.id}/", "subtechnique": [],
            })
            if technique.parent:
                entry["subtechnique"].append({
                    "id": technique.id, "name": technique.name,
                    "reference": f"{ATTACK_URL}/techniques/{technique.id.replace('.', '/')}/",
                })
        entries.append({
            "framework": "MITRE ATT&CK",
            "tactic": {"id": tactic.id, "name": tactic.name, "reference": f"{ATTACK_URL}/tactics/{tactic.id}/"},
            "technique": list(techniques.values()),
        })
    return entries


def index_patterns(source: str) -> list[str]:
    return list(catalogue.load()[source].targets[TARGET]["index"])


def duration(minutes: int) -> str:
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def kibana_rule(item: PackagedRule) -> dict:
    rule = item.rule
    backend = OfflineESQL() if item.is_correlation else OfflineLucene(index_names=index_patterns(item.source))
    document = backend.finalize_query_siem_rule_ndjson(rule, item.query, 0, ConversionState())
    for key in DROPPED:
        document.pop(key, None)
    level = str(rule.level.name).lower() if rule.level else "low"
    version = (rule.custom_attributes or {}).get("version", 1)
    document.update({
        "rule_id": str(rule.id),
        "name": rule.title,
        "description": (rule.description or rule.title).strip(),
        "version": int(version),
        "enabled": False,  # imported rules are reviewed, then switched on
        "severity": SEVERITY[level],
        "risk_score": backend.severity_risk_mapping[level.upper()],
        "interval": duration(item.schedule.interval),
        "from": f"now-{duration(item.schedule.lookback)}",
        "to": "now",
        "author": [rule.author] if rule.author else [],
        "license": rule.license or LICENSE,
        "references": list(rule.references or []),
        "false_positives": list(rule.falsepositives or []),
        "tags": PACK_TAGS + [str(t) for t in rule.tags],
        "threat": threat([t for t in rule.tags if t.namespace == "attack"]),
        "note": item.note,
        "query": item.query,
    })
    if item.is_correlation:
        document.pop("index", None)  # an ES|QL rule names its indices in FROM
    return dict(sorted(document.items()))


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate(document: dict) -> None:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top)"
        raise ValueError(f"Kibana rule {document.get('name')!r}: {where}: {errors[0].message}")


def ndjson(items: list[PackagedRule]) -> str:
    lines = []
    for item in items:
        document = kibana_rule(item)
        validate(document)
        lines.append(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n" if lines else ""


def render(items: list[PackagedRule]) -> dict[str, str]:
    """dist/elastic/: the rules NDJSON, and the ingestion bodies as mappings/elasticsearch has them."""
    files = {RULES_FILE: ndjson(items)}
    for path, body in ingestion.render().items():  # elasticsearch/<kind>/<name>.json
        files["elastic/" + path.split("/", 1)[1]] = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return files
