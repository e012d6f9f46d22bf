"""Elasticsearch ingestion for Route 53 logs, rendered from the field catalogue.

Renders, as request bodies ready for `PUT _ingest/pipeline/<name>`, `PUT _component_template/<name>`
and `PUT _index_template/<name>`:

- an ingest pipeline per Route 53 log source (Resolver JSON, public hosted-zone lines) writing ECS
  as Elastic's AWS integration does: trailing dot removed, `registered_domain`, answers as
  `dns.answers.*`, `related.ip`/`related.hosts`, lower-case `network.transport`, `event.*`.
  The raw record is parsed under `aws.route53` and each catalogued field is moved out to its ECS
  name; whatever the catalogue does not know stays there (kept, not dropped). A record that fails
  to parse is kept with `event.kind: pipeline_error`, a tag and `error.message`;
- the pack's own index templates (one per log source, data streams on the catalogue's index
  patterns), with catalogue types and the `.caseless` sub-fields the route53_elasticsearch
  pipeline queries for mixed-case strings;
- `@custom` component templates adding those sub-fields to Elastic's integration data streams.
"""
from __future__ import annotations

from typing import Any, Iterable

from r53sigma import catalogue
from r53sigma.catalogue import Field, LogSource

from . import ioc_enrich

TARGET = "elasticsearch"
RAW_PREFIX = "aws.route53"  # the parse step puts the raw record here; uncatalogued fields stay
CASELESS = "caseless"  # sub-field queried by route53_elasticsearch for mixed-case strings
NORMALIZER = "r53sigma_lowercase"
FAILURE_TAG = "r53sigma_ingest_failure"
PRIORITY = 150  # above the built-in logs-*-* (100), below Fleet's integration templates (200)
INGEST_SOURCES = ("resolver", "public_zone")
IOC_SOURCE = "resolver"  # the threat-feed rule's log source: its pipeline calls the enrich lookup (ioc_enrich)  # CloudTrail: Elastic's AWS integration has the standard pipeline
ES_TYPES = {"string": "keyword", "ip": "ip", "integer": "long", "date": "date"}
CONVERT_TYPES = {"integer": "long", "ip": "ip"}
TIMESTAMP = "@timestamp"

# ECS fields the pipeline adds that are not renamings of a raw field.
ADDED_FIELDS = {
    "event.original": {"type": "keyword", "index": False, "doc_values": False},
    "event.kind": {"type": "keyword"},
    "event.ingested": {"type": "date"},
    "event.category": {"type": "keyword"},
    "event.type": {"type": "keyword"},
    "event.outcome": {"type": "keyword"},
    "cloud.provider": {"type": "keyword"},
    "network.protocol": {"type": "keyword"},
    "related.ip": {"type": "ip"},
    "related.hosts": {"type": "keyword"},
    "dns.question.registered_domain": {"type": "keyword"},
    "dns.question.subdomain": {"type": "keyword"},
    "dns.question.top_level_domain": {"type": "keyword"},
    "tags": {"type": "keyword"},
    "error.message": {"type": "match_only_text"},
}
ADDRESS_TYPES = ["A", "AAAA"]
HOST_TYPES = ["CNAME", "PTR"]

# Adds answer data to related.ip (address records) or related.hosts (name records), once each, and
# address records also to the ip-typed companion the catalogue names for |cidr (dns.resolved_ip).
RELATED_FROM_ANSWERS_TAG = "r53sigma_related_from_answers"
RELATED_FROM_ANSWERS = (
    "def node = ctx;"
    " for (def key : params.answers) {"
    " if (!(node instanceof Map) || !node.containsKey(key)) { return; } node = node.get(key); }"
    " if (!(node instanceof List)) { return; }"
    " for (def answer : node) {"
    " if (!(answer instanceof Map) || answer.get(params.data) == null) { continue; }"
    " def type = answer.get(params.type);"
    " def bucket = params.address_types.contains(type) ? 'ip' : (params.host_types.contains(type) ? 'hosts' : null);"
    " if (bucket == null) { continue; }"
    " if (ctx.related == null) { ctx.related = new HashMap(); }"
    " if (ctx.related[bucket] == null) { ctx.related[bucket] = new ArrayList(); }"
    " if (!ctx.related[bucket].contains(answer.get(params.data))) { ctx.related[bucket].add(answer.get(params.data)); }"
    " if (bucket == 'ip' && params.resolved_ip != null) {"
    " def holder = ctx; for (def key : params.resolved_ip_parent) {"
    " if (holder[key] == null) { holder[key] = new HashMap(); } holder = holder[key]; }"
    " if (holder[params.resolved_ip] == null) { holder[params.resolved_ip] = new ArrayList(); }"
    " if (!holder[params.resolved_ip].contains(answer.get(params.data))) { holder[params.resolved_ip].add(answer.get(params.data)); } } }"
)


# A derived length (catalogue `by: name_length`): Painless String.length() of the name the earlier steps
# stripped of its trailing dot, written at params.target (parents created); no name, no field.
NAME_LENGTH_TAG = "r53sigma_name_length"
NAME_LENGTH = (
    "def node = ctx;"
    " for (def key : params.source) {"
    " if (!(node instanceof Map) || !node.containsKey(key)) { return; } node = node.get(key); }"
    " if (!(node instanceof String)) { return; }"
    " def holder = ctx; for (int i = 0; i < params.target.size() - 1; i++) {"
    " if (holder[params.target[i]] == null) { holder[params.target[i]] = new HashMap(); } holder = holder[params.target[i]]; }"
    " holder[params.target[params.target.size() - 1]] = node.length();"
)


def role_names(log_source: LogSource) -> dict[str, str]:
    """ECS name of each catalogue DNS role this log source has (question_name, answer_data ...)."""
    return {f.role: es_name(f) for f in log_source.fields.values() if f.role}


def pipeline_name(source: str) -> str:
    return f"r53sigma-{source}"


def es_name(field: Field) -> str:
    return field.target(TARGET).name


def is_flattened(name: str) -> bool:
    """Inside an object the catalogue says Elastic maps as `flattened` (keys: no sub-fields, no normalizer)."""
    return any(log_source.is_flattened(TARGET, name) for log_source in catalogue.log_sources())


def caseless_fields(log_source: LogSource) -> list[str]:
    """ECS names that get a `.caseless` sub-field: mixed-case strings outside flattened objects, and
    the keyword companions of ip fields (the address as written: `2001:DB8::1` stays upper-case for
    |re and |cased, as the rule's engine reads it)."""
    return [
        es_name(f)
        for f in log_source.fields.values()
        if f.is_string and f.target(TARGET).values == "mixed" and not is_flattened(es_name(f))
    ] + [f.target(TARGET).keyword for f in log_source.fields.values() if f.target(TARGET).keyword]


def painless_path(dotted: str) -> str:
    """`ctx.a?.b?.c`: a null-safe Painless reference to a document field."""
    parts = dotted.split(".")
    return "ctx." + "?.".join(parts)


def cidr_companion(log_source: LogSource, name: str) -> str | None:
    """The ip-typed field the catalogue names for |cidr on the ECS field ``name``, if any."""
    for f in log_source.fields.values():
        if es_name(f) == name:
            return f.target(TARGET).cidr
    return None


def array_groups(log_source: LogSource) -> dict[str, list[Field]]:
    groups: dict[str, list[Field]] = {}
    for f in log_source.fields.values():
        if f.array:
            groups.setdefault(f.array, []).append(f)
    return groups


def parent(dotted: str) -> str:
    return dotted.rsplit(".", 1)[0]


def es_array_path(fields: list[Field]) -> str:
    parents = {parent(es_name(f)) for f in fields}
    if len(parents) != 1:
        raise ValueError(f"array fields {[f.name for f in fields]} map to several ECS objects: {sorted(parents)}")
    return parents.pop()


def grok_pattern(log_source: LogSource) -> str:
    # A column holding `-` is absent; extra trailing columns a future format adds are kept.
    columns = [f"(?:-|%{{NOTSPACE:{RAW_PREFIX}.{c}}})" for c in log_source.columns]
    return "^" + " ".join(columns) + f"(?: %{{GREEDYDATA:{RAW_PREFIX}.extra_columns}})?$"


def _case_processor(f: Field, target_values: str, value_ref: str) -> dict | None:
    if target_values == f.values or target_values == "mixed":
        return None
    kind = "lowercase" if target_values == "lower" else "uppercase"
    return {kind: {"field": value_ref, "ignore_missing": True}}


def _field_steps(log_source: LogSource, f: Field) -> Iterable[dict]:
    source = f"{RAW_PREFIX}.{f.name}"
    target = es_name(f)
    if f.name == log_source.timestamp:
        yield {"date": {"field": source, "target_field": target, "formats": ["ISO8601"], "timezone": "UTC"}}
        yield {"remove": {"field": source, "ignore_missing": True}}
        return
    if f.strip_trailing_dot:
        yield {"gsub": {"field": source, "pattern": r"\.$", "replacement": "", "ignore_missing": True}}
    if any(d.derived.source_field == f.name and d.derived.by == "public_suffix_list" and TARGET in d.targets
           for d in log_source.derived.values()):
        # The catalogue's derived fields (Public Suffix List). Elastic's integration skips reverse-lookup
        # names; ignore_failure: names without a public suffix
        yield {
            "registered_domain": {
                "field": source,
                "target_field": parent(target),
                "ignore_missing": True,
                "ignore_failure": True,
                "if": f"{painless_path(source)} != null && !{painless_path(source)}.endsWith('.arpa')",
            }
        }
        yield {"remove": {"field": parent(target) + ".domain", "ignore_missing": True}}
    if target != source:
        yield {"rename": {"field": source, "target_field": target, "ignore_missing": True}}
    if f.type in CONVERT_TYPES:
        yield {"convert": {"field": target, "type": CONVERT_TYPES[f.type], "ignore_missing": True}}
    keyword = f.target(TARGET).keyword
    if keyword:  # the address as text, for string matches an `ip` field cannot answer
        yield {"set": {"field": keyword, "copy_from": target, "ignore_empty_value": True}}
    case = _case_processor(f, f.target(TARGET).values, target)
    if case:
        yield case


def _array_steps(name: str, fields: list[Field]) -> Iterable[dict]:
    source = f"{RAW_PREFIX}.{name}"
    target = es_array_path(fields)
    for f in fields:
        key = f.name[len(name) + 1 :]
        new_key = es_name(f)[len(target) + 1 :]
        element = f"_ingest._value.{key}"
        steps = []
        if f.strip_trailing_dot:
            steps.append({"gsub": {"field": element, "pattern": r"\.$", "replacement": "", "ignore_missing": True}})
        if new_key != key:
            steps.append({"rename": {"field": element, "target_field": f"_ingest._value.{new_key}", "ignore_missing": True}})
            element = f"_ingest._value.{new_key}"
        case = _case_processor(f, f.target(TARGET).values, element)
        if case:
            steps.append(case)
        for step in steps:
            yield {"foreach": {"field": source, "ignore_missing": True, "processor": step}}
    yield {"rename": {"field": source, "target_field": target, "ignore_missing": True}}


def _derived_steps(log_source: LogSource) -> Iterable[dict]:
    """Lower-case the derived fields the `registered_domain` step wrote, as the catalogue stores them."""
    for f in log_source.derived.values():
        if TARGET in f.targets and f.derived.by == "name_length":
            yield {"script": {"tag": NAME_LENGTH_TAG, "lang": "painless", "source": NAME_LENGTH,
                              "params": {"source": es_name(es_source(log_source, f)).split("."), "target": es_name(f).split(".")}}}
        elif TARGET in f.targets:
            if es_name(f) != f"{parent(es_name(es_source(log_source, f)))}.{f.derived.part}":
                raise catalogue.CatalogueError(f"{f.name}: the registered_domain processor writes {f.derived.part} beside the name, not {es_name(f)}")
            yield {"lowercase": {"field": es_name(f), "ignore_missing": True}}


def es_source(log_source: LogSource, derived: Field) -> Field:
    return log_source.fields[derived.derived.source_field]


def ingest_pipeline(log_source: LogSource) -> dict[str, Any]:
    processors: list[dict] = [
        # First, so a document that fails later still has it: the Kibana rules search on the time a
        # document arrived (timestamp_override), as Fleet's final pipeline sets it for integrations.
        {"set": {"field": "event.ingested", "value": "{{{_ingest.timestamp}}}"}},
        {
            "rename": {
                "field": "message",
                "target_field": "event.original",
                "ignore_missing": True,
                "if": "ctx.event?.original == null",
            }
        }
    ]
    if log_source.format == "json":
        processors.append({"json": {"field": "event.original", "target_field": RAW_PREFIX}})
    else:
        processors.append({"grok": {"field": "event.original", "patterns": [grok_pattern(log_source)]}})
    for f in log_source.fields.values():
        if not f.array:
            processors.extend(_field_steps(log_source, f))
    for name, fields in array_groups(log_source).items():
        processors.extend(_array_steps(name, fields))
    processors.extend(_derived_steps(log_source))
    roles = role_names(log_source)
    source_ip, answer_data, answer_type = roles.get("source_ip"), roles.get("answer_data"), roles.get("answer_type")
    question_name, question_type, response_code = roles.get("question_name"), roles.get("question_type"), roles.get("response_code")
    if source_ip:
        processors.append(
            {
                "append": {
                    "field": "related.ip",
                    "value": "{{{%s}}}" % source_ip,
                    "allow_duplicates": False,
                    "if": f"{painless_path(source_ip)} != null",
                }
            }
        )
    resolved = cidr_companion(log_source, answer_data) if answer_data else None
    if answer_data and answer_type:
        processors.append(
            {
                "script": {
                    "tag": RELATED_FROM_ANSWERS_TAG,
                    "lang": "painless",
                    "source": RELATED_FROM_ANSWERS,
                    "params": {
                        "answers": parent(answer_data).split("."),
                        "data": answer_data.rsplit(".", 1)[1],
                        "type": answer_type.rsplit(".", 1)[1],
                        "address_types": ADDRESS_TYPES,
                        "host_types": HOST_TYPES,
                        "resolved_ip_parent": parent(resolved).split(".") if resolved else [],
                        "resolved_ip": resolved.rsplit(".", 1)[1] if resolved else None,
                    },
                }
            }
        )
    if question_name:
        condition = f"{painless_path(question_name)} != null"
        if question_type:
            condition += f" && {painless_path(question_type)} != 'PTR'"
        processors.append(
            {
                "append": {
                    "field": "related.hosts",
                    "value": "{{{%s}}}" % question_name,
                    "allow_duplicates": False,
                    "if": condition,
                }
            }
        )
    processors += [
        {"set": {"field": "cloud.provider", "value": "aws"}},
        {"set": {"field": "network.protocol", "value": "dns"}},
        {"set": {"field": "event.kind", "value": "event"}},
        {"append": {"field": "event.category", "value": "network", "allow_duplicates": False}},
        {"append": {"field": "event.type", "value": "protocol", "allow_duplicates": False}},
    ]
    if response_code:
        rc = painless_path(response_code)
        processors += [
            {"set": {"field": "event.outcome", "value": "success", "if": f"{rc} == 'NOERROR'"}},
            {"set": {"field": "event.outcome", "value": "failure", "if": f"{rc} != null && {rc} != 'NOERROR'"}},
        ]
    if log_source.source == IOC_SOURCE and question_name:
        processors.append(ioc_enrich.call_processor())  # the threat-feed lookup, once deploy loaded a feed
    return {
        "description": f"r53sigma: {log_source.title} to ECS (rendered from mappings/catalogue/{log_source.source}.yml)",
        "processors": processors,
        "on_failure": [
            {"set": {"field": "event.kind", "value": "pipeline_error"}},
            {"append": {"field": "tags", "value": FAILURE_TAG}},
            {"set": {"field": "error.message", "value": "{{{ _ingest.on_failure_message }}}"}},
        ],
        "_meta": {"managed_by": "r53sigma", "log_source": log_source.source},
    }


# ---------------------------------------------------------------- templates


def _put(properties: dict, dotted: str, mapping: dict) -> None:
    *parents, leaf = dotted.split(".")
    node = properties
    for part in parents:
        node = node.setdefault(part, {}).setdefault("properties", {})
    node[leaf] = mapping


def _caseless_mapping(base: dict) -> dict:
    return {**base, "fields": {CASELESS: {"type": "keyword", "normalizer": NORMALIZER}}}


def _normalizer_settings() -> dict:
    return {"analysis": {"normalizer": {NORMALIZER: {"type": "custom", "filter": ["lowercase"]}}}}


def field_mappings(log_source: LogSource) -> dict[str, dict]:
    """Flat ECS name -> mapping, for every field the ingest pipeline writes."""
    caseless = set(caseless_fields(log_source))
    flat: dict[str, dict] = {}
    for f in log_source.fields.values():
        name = es_name(f)
        mapping = {"type": ES_TYPES[f.type]}
        flat[name] = _caseless_mapping(mapping) if name in caseless else mapping
        if f.target(TARGET).cidr:
            flat[f.target(TARGET).cidr] = {"type": "ip"}
        if f.target(TARGET).keyword:
            flat[f.target(TARGET).keyword] = _caseless_mapping({"type": "keyword"})
    for f in log_source.derived.values():
        if TARGET in f.targets:
            flat[es_name(f)] = {"type": ES_TYPES[f.type]}
    for name, mapping in ADDED_FIELDS.items():
        flat.setdefault(name, mapping)
    if log_source.source == IOC_SOURCE:
        flat.update(ioc_enrich.mappings())
    return flat


def nested(flat: dict[str, dict]) -> dict:
    properties: dict = {}
    for name in sorted(flat):
        _put(properties, name, flat[name])
    return properties


def component_template(log_source: LogSource) -> dict:
    return {
        "template": {
            "settings": _normalizer_settings(),
            "mappings": {
                "dynamic_templates": [
                    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
                ],
                "properties": nested(field_mappings(log_source)),
            },
        },
        "_meta": {"managed_by": "r53sigma", "log_source": log_source.source},
    }


def index_template(log_source: LogSource) -> dict:
    return {
        "index_patterns": list(log_source.targets[TARGET]["index"]),
        "data_stream": {},
        "priority": PRIORITY,
        "composed_of": [f"{pipeline_name(log_source.source)}@mappings"],
        "template": {"settings": {"index": {"default_pipeline": pipeline_name(log_source.source)}}},
        "_meta": {"managed_by": "r53sigma", "log_source": log_source.source},
    }


def integration_custom_name(log_source: LogSource) -> str:
    """`logs-aws.route53_resolver_logs@custom`: the hook Elastic's integration templates compose."""
    pattern = log_source.targets[TARGET]["index"][0]
    return pattern.rstrip("*").rstrip("-") + "@custom"


def integration_custom_template(log_source: LogSource) -> dict:
    flat = {name: _caseless_mapping({"type": "keyword"}) for name in caseless_fields(log_source)}
    return {
        "template": {"settings": _normalizer_settings(), "mappings": {"properties": nested(flat)}},
        "_meta": {"managed_by": "r53sigma", "log_source": log_source.source},
    }


def flattened_key_companions(log_source: LogSource) -> dict[str, str]:
    """Key of a flattened field (ECS name) -> its keyword companion, as the catalogue declares them."""
    return {es_name(f): f.target(TARGET).keyword for f in log_source.fields.values()
            if f.target(TARGET).keyword and is_flattened(es_name(f))}


def integration_custom_pipeline(log_source: LogSource) -> dict[str, Any]:
    """`logs-aws.cloudtrail@custom`, the ingest pipeline Fleet's integration pipeline calls last: copies
    each catalogued key of a flattened field to its keyword companion, as written (a string only: a
    keyword field takes no object), because ES|QL reads a flattened field only whole."""
    processors = [
        {"set": {"tag": FLATTENED_KEY_COPY_TAG, "field": companion, "copy_from": key,
                 "if": f"{painless_path(key)} instanceof String"}}
        for key, companion in flattened_key_companions(log_source).items()
    ]
    return {
        "description": f"r53sigma: keyword companions of flattened keys (rendered from mappings/catalogue/{log_source.source}.yml)",
        "processors": processors,
        "on_failure": [  # keep the document (the integration's own fields are written already), marked
            {"append": {"field": "tags", "value": FAILURE_TAG}},
            {"set": {"field": "error.message", "value": "{{{ _ingest.on_failure_message }}}"}},
        ],
        "_meta": {"managed_by": "r53sigma", "log_source": log_source.source},
    }


FLATTENED_KEY_COPY_TAG = "r53sigma_flattened_key_companion"


def render() -> dict[str, Any]:
    """Relative path under mappings/ -> JSON document."""
    files: dict[str, Any] = {}
    for log_source in catalogue.log_sources():
        name = pipeline_name(log_source.source)
        if log_source.source in INGEST_SOURCES:
            files[f"elasticsearch/ingest_pipelines/{name}.json"] = ingest_pipeline(log_source)
            files[f"elasticsearch/component_templates/{name}@mappings.json"] = component_template(log_source)
            files[f"elasticsearch/index_templates/{name}.json"] = index_template(log_source)
            if log_source.source == IOC_SOURCE and "question_name" in role_names(log_source):
                files.update(ioc_enrich.render(role_names(log_source)["question_name"]))
        files[f"elasticsearch/component_templates/{integration_custom_name(log_source)}.json"] = (
            integration_custom_template(log_source)
        )
        if flattened_key_companions(log_source):
            files[f"elasticsearch/ingest_pipelines/{integration_custom_name(log_source)}.json"] = integration_custom_pipeline(log_source)
    return files
