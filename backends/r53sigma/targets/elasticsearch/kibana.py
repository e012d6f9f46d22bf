"""Kibana detection rules (`POST /api/detection_engine/rules/_import`) and the Elasticsearch bodies.

Each rule starts from pySigma's own `siem_rule_ndjson` output (LuceneBackend for single-event rules,
ESQLBackend for correlations), filled with the query r53sigma.conversion produced, then completed:
pySigma's `threat` needs MITRE data downloaded at run time, so `finalize_output_threat_model` is
replaced by one built from r53sigma.attack (shipped data); the rest is set from the rule and the
catalogue (index patterns, severity, schedule, note, the fields the rule needs, the integration
that ships its data, what must be installed). Every line is validated against the rule-import
schemas of two stack versions (SCHEMA_FILES).

Late data and repeats (issue 13): every rule reads `event.ingested` (TIMESTAMP_OVERRIDE), which our
ingest pipelines and Fleet's final pipeline set, and looks back interval + delivery delay +
correlation span (r53sigma.schedule). Overlapping look-backs then see an event more than once:
a custom-query rule's alert id is derived from the source document, so Kibana writes one alert per
event and rule whatever the overlap (detection engine deduplication); an ES|QL aggregation has no
source document, so correlations carry `alert_suppression` by their group-by for as long as any
run can see the same burst (lookback + span, as the Splunk throttle).

Versions: `version` comes from VERSION_LOCK (rule_id -> version and the sha256 of the rule's
content without its version); a rule whose content changed gets the locked version + 1, and
`r53sigma package` writes the bumped lock (tests fail when the committed lock is stale).
"""
from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import jsonschema
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetection

from r53sigma import attack, catalogue, ioc
from r53sigma import rules as rule_loading
from r53sigma.targets.elasticsearch import ingestion, ioc_enrich
from r53sigma.targets.elasticsearch.esql import ESQLBackend
from r53sigma.targets.elasticsearch.lucene import LuceneBackend

if TYPE_CHECKING:
    from r53sigma.packaged import PackagedRule

TARGET = "elasticsearch"
RULES_FILE = "elastic/rules.ndjson"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# Kibana's rule-import fields for two stack versions (see each file's description for its source).
SCHEMA_FILES = {"8": SCHEMAS / "kibana_rule_import.json", "9": SCHEMAS / "kibana_rule_import_9.json"}
SCHEMA_FILE = SCHEMA_FILES["8"]
VERSION_LOCK = "sigma_rules/kibana.version.lock.json"  # repository-relative, kept by `r53sigma package`
TIMESTAMP_OVERRIDE = "event.ingested"
# Elastic's AWS integration (Fleet package `aws`) and the data stream each log source arrives in.
# The range is the one Elastic's own prebuilt Route 53 rules declare today: "AWS Route 53 Resolver Query
# Log Configuration Deleted" (rule 453183fa-f903-11ee-8e88-f661ea17fbce, version 7, as packaged in
# elastic/integrations packages/security_detection_engine/kibana/security_rule/453183fa-..._7.json;
# detection-rules rules/integrations/aws/defense_evasion_route53_dns_query_resolver_config_deletion.toml,
# `integration = ["aws"]`, updated 2025/12/10) has {"package": "aws", "integration": "cloudtrail",
# "version": "^6.0.0"}; its version 2 had "^2.0.0", the range this pack used before (issue 14).
INTEGRATION_PACKAGE = "aws"
INTEGRATION_VERSION = "^6.0.0"
DATA_STREAMS = {"resolver": "route53_resolver_logs", "public_zone": "route53_public_logs", "cloudtrail": "cloudtrail"}
HUNTING_TAG = "Hunting"
SUPPRESSION_MAX_FIELDS = 3  # AlertSuppressionGroupBy: maxItems 3 (Kibana rule schema)
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


def rule_fields(rule) -> list[str]:
    """The (pipeline-mapped) fields a rule's detections and group-by name, base rules included."""
    names: list[str] = []

    def walk(detection):
        for entry in detection.detection_items:
            if isinstance(entry, SigmaDetection):
                walk(entry)
            elif entry.field:
                names.append(entry.field)

    if isinstance(rule, SigmaCorrelationRule):
        for reference in rule.rules:
            names += rule_fields(reference.rule)
        names += list(rule.group_by or ())
    else:
        for detection in rule.detection.detections.values():
            walk(detection)
    return list(dict.fromkeys(names))


def query_fields(item: PackagedRule) -> list[str]:
    """The fields the rule's query reads: the threat-feed rule's enrich form (lucene.py) reads the name
    field and the lookup's field, not the list match as Sigma wrote it."""
    names = rule_fields(item.rule)
    match = ioc.list_match(item.rule)
    if match is None:
        return names
    field = catalogue.load()[item.source].field_for(match.field)
    name = field.target(TARGET).name if field else match.field
    return list(dict.fromkeys([name if n == match.field else n for n in names] + [ioc_enrich.MATCHED_DOMAIN]))


def required_fields(item: PackagedRule) -> list[dict]:
    """name + type of every field the rule reads, typed as the index template maps it."""
    log_source = catalogue.load()[item.source]
    mapped = {name: m["type"] for name, m in ingestion.field_mappings(log_source).items()}
    fields = {TIMESTAMP_OVERRIDE: "date"}
    for name in query_fields(item):
        root = next((r for r in log_source.flattened_roots(TARGET) if name.startswith(r + ".")), None)
        if root is not None:  # a key of a flattened object: Kibana sees the object field
            name = root + "." + name[len(root) + 1:].split(".", 1)[0]
            fields[name] = "flattened"
            continue
        if name.endswith("." + ingestion.CASELESS) and name not in mapped:
            name = name[: -len(ingestion.CASELESS) - 1]
        fields[name] = mapped.get(name, "keyword")
    return [{"name": n, "type": t} for n, t in sorted(fields.items())]


def suppression_fields(item: PackagedRule) -> list[str]:
    return list(item.rule.group_by or ()) if item.is_correlation else []


def severity_mapping(item: PackagedRule, severity: str) -> list[dict]:
    """CloudTrail: a call AWS denied (errorCode AccessDenied) is an attempt, not a change: low severity.
    Resolver and public-zone records have no field that grades a match, so their rules keep one severity;
    no log source has a numeric field that could be a risk score (risk_score_mapping stays empty)."""
    log_source = catalogue.load()[item.source]
    error = log_source.field_for("errorCode")
    if error is None or severity == "low" or item.is_correlation:  # an ES|QL row has no errorCode column
        return []
    return [{"field": error.target(TARGET).name, "operator": "equals", "value": "AccessDenied", "severity": "low"}]


def suppression_minutes(item: PackagedRule) -> int:
    """A burst's events arrive within span + delay of each other; every run that holds enough of them
    runs within that spread + lookback of the first, so one suppression period covers all its alerts."""
    s = item.schedule
    return s.lookback + s.span + s.delay


def investigation_fields(item: PackagedRule) -> list[str]:
    """What an analyst looks at first: a correlation's group-by; for a single event, who asked for
    what (the log source's entity fields), then the fields the rule reads."""
    if item.is_correlation:  # an ES|QL aggregation's alert holds only its output columns: the group-by
        return suppression_fields(item)
    log_source = catalogue.load()[item.source]
    names = [
        f.target(TARGET).name for role in ("source_ip", "question_name", "response_code", "question_type")
        if (f := log_source.with_role(role)) is not None
    ]
    names += [n.removesuffix("." + ingestion.CASELESS) for n in query_fields(item)]
    return list(dict.fromkeys(names))


def setup_guide(item: PackagedRule) -> str:
    """What must be installed before the rule can match, with the commands."""
    log_source = catalogue.load()[item.source]
    stream = DATA_STREAMS[item.source]
    lines = [
        "## Setup",
        "",
        f"1. Install Elastic's AWS integration (`{INTEGRATION_PACKAGE}` {INTEGRATION_VERSION}) and collect "
        f"the `{stream}` data stream ({log_source.title}).",
    ]
    if item.source in ingestion.INGEST_SOURCES:
        name = ingestion.pipeline_name(item.source)
        lines += [
            "2. Install r53sigma's ingest pipeline, component and index templates (they set `event.ingested`, "
            "the time these rules search on, and the `.caseless` sub-fields the queries use):",
            "",
            "```",
            "r53sigma deploy elastic --url https://ES:9200 --kibana-url https://KIBANA:5601   # or by hand, from dist/elastic/:",
            f"PUT _ingest/pipeline/{name}            ingest_pipelines/{name}.json",
            f"PUT _component_template/{name}@mappings component_templates/{name}@mappings.json",
            f"PUT _index_template/{name}             index_templates/{name}.json",
            "```",
        ]
    else:
        custom = ingestion.integration_custom_name(log_source)
        lines += [
            f"2. Install r53sigma's `{custom}` component template (the `.caseless` sub-fields the queries use): "
            f"`PUT _component_template/{custom}` with dist/elastic/component_templates/{custom}.json, then roll "
            "the data stream over. Fleet's final pipeline sets `event.ingested`.",
        ]
    if ioc.list_match(item.rule) is not None:
        lines += [
            f"3. Load your threat feed into the enrich policy `{ioc_enrich.POLICY}` (source index "
            f"`{ioc_enrich.SOURCE_INDEX}`); the Resolver pipeline then writes `{ioc_enrich.MATCHED_DOMAIN}` and "
            f"`{ioc_enrich.MATCHED_CATEGORY}` for every listed domain a query name falls under. Re-run it when the feed changes:",
            "",
            "```",
            "r53sigma deploy elastic --url https://ES:9200 --kibana-url https://KIBANA:5601 --ioc-domains FEED_FILE",
            "```",
        ]
    lines += ["", "Alert suppression on correlation rules needs a Platinum subscription; without it Kibana keeps the setting but does not apply it."]
    return "\n".join(lines)


def content_hash(document: dict) -> str:
    meaningful = {k: v for k, v in document.items() if k != "version"}
    return hashlib.sha256(json.dumps(meaningful, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_lock(root: Path | None = None) -> dict[str, dict]:
    path = (root or rule_loading.REPO_ROOT) / VERSION_LOCK
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def versioned(document: dict, lock: dict[str, dict]) -> dict:
    """The locked version while the content is the locked one, else the next."""
    digest = content_hash(document)
    entry = lock.get(document["rule_id"])
    version = 1 if entry is None else entry["version"] + (entry["sha256"] != digest)
    return dict(document, version=version)


def lock_of(documents: list[dict], lock: dict[str, dict]) -> dict[str, dict]:
    """The lock after these documents: theirs updated, other rules' entries kept (a returning rule counts on)."""
    updated = dict(lock)
    for document in documents:
        updated[document["rule_id"]] = {"name": document["name"], "sha256": content_hash(document), "version": document["version"]}
    return dict(sorted(updated.items()))


def kibana_rule(item: PackagedRule) -> dict:
    rule = item.rule
    backend = OfflineESQL() if item.is_correlation else OfflineLucene(index_names=index_patterns(item.source))
    document = backend.finalize_query_siem_rule_ndjson(rule, item.query, 0, ConversionState())
    for key in DROPPED:
        document.pop(key, None)
    level = str(rule.level.name).lower() if rule.level else "low"
    document.update({
        "rule_id": str(rule.id),
        "name": rule.title,
        "description": (rule.description or rule.title).strip(),
        "version": 1,  # set from the version lock by `versioned`
        "enabled": False,  # imported rules are reviewed, then switched on; hunting queries stay off
        "severity": SEVERITY[level],
        "risk_score": backend.severity_risk_mapping[level.upper()],
        "interval": duration(item.schedule.interval),
        "from": f"now-{duration(item.schedule.lookback)}",
        "to": "now",
        "author": [rule.author] if rule.author else [],
        "license": rule.license or LICENSE,
        "references": list(rule.references or []),
        "false_positives": list(rule.falsepositives or []),
        "tags": PACK_TAGS + ([HUNTING_TAG] if item.is_hunting else []) + [str(t) for t in rule.tags],
        "threat": threat([t for t in rule.tags if t.namespace == "attack"]),
        "note": item.note,
        "query": item.query,
        "timestamp_override": TIMESTAMP_OVERRIDE,
        "timestamp_override_fallback_disabled": False,  # documents without event.ingested are still read by @timestamp
        "required_fields": required_fields(item),
        "related_integrations": [
            {"package": INTEGRATION_PACKAGE, "integration": DATA_STREAMS[item.source], "version": INTEGRATION_VERSION}
        ],
        "investigation_fields": {"field_names": investigation_fields(item)},
        "setup": setup_guide(item),
        "severity_mapping": severity_mapping(item, SEVERITY[level]),
        "risk_score_mapping": [],
    })
    group_by = suppression_fields(item)
    if group_by and len(group_by) <= SUPPRESSION_MAX_FIELDS:
        document["alert_suppression"] = {
            "group_by": group_by,
            "duration": {"value": suppression_minutes(item), "unit": "m"},
            "missing_fields_strategy": "suppress",
        }
    if item.is_correlation:
        document.pop("index", None)  # an ES|QL rule names its indices in FROM
    if item.conversion.first_seen:  # Kibana's own first-seen rule type, over the Lucene candidate query
        document.update(new_terms(item))
    return dict(sorted(document.items()))


def new_terms(item: PackagedRule) -> dict:
    """The new_terms settings (targets/elasticsearch/first_seen.py; r53sigma.package checked that the
    history reaches further back than the look-back)."""
    form = dict(item.conversion.first_seen)
    return {key: form[key] for key in ("type", "new_terms_fields", "history_window_start")}


@cache
def validator(stack: str = "8") -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILES[stack].read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate(document: dict, stacks: tuple[str, ...] = tuple(SCHEMA_FILES)) -> None:
    for stack in stacks:
        errors = sorted(validator(stack).iter_errors(document), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(top)"
            raise ValueError(f"Kibana {stack}.x rule {document.get('name')!r}: {where}: {errors[0].message}")


def documents(items: list[PackagedRule], lock: dict[str, dict] | None = None) -> list[dict]:
    lock = load_lock() if lock is None else lock
    return [versioned(kibana_rule(item), lock) for item in items]


def ndjson(items: list[PackagedRule], lock: dict[str, dict] | None = None) -> str:
    lines = []
    for document in documents(items, lock):
        validate(document)
        lines.append(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n" if lines else ""


def lock_text(items: list[PackagedRule], lock: dict[str, dict] | None = None) -> str:
    lock = load_lock() if lock is None else lock
    return json.dumps(lock_of(documents(items, lock), lock), indent=2, ensure_ascii=False) + "\n"


def render(items: list[PackagedRule]) -> dict[str, str]:
    """dist/elastic/: the rules NDJSON, and the ingestion bodies as mappings/elasticsearch has them."""
    lock = load_lock()
    files = {RULES_FILE: ndjson(items, lock), "repo:" + VERSION_LOCK: lock_text(items, lock)}
    for path, body in ingestion.render().items():  # elasticsearch/<kind>/<name>.json
        files["elastic/" + path.split("/", 1)[1]] = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return files
