"""The ECS documents the pack's ingest pipelines write, computed in Python (for the cross-target checks).

`document_from_raw` gives, for one raw record, the `_source` the rendered ingest pipeline produces
(tests run both over the corpus and generated records and compare). The catalogue's derived
`dns.question.registered_domain/subdomain` come from the same Public Suffix List module the local
engines use, and `dns.question.top_level_domain` (the public suffix) beside them. Not emulated: the partial content of a failed document (it
carries `event.original`, `event.kind: pipeline_error`, the failure tag and `error.message`).

CloudTrail has no pack pipeline (Elastic's integration ingests it): its document holds the
catalogued fields under their ECS names, `requestParameters` whole under its `flattened` field, the
keyword companions of its catalogued keys (the pack's `@custom` pipeline copies them), and
`event.original`.

`indexed_fields` lists what Elasticsearch indexes for a document: flattened dotted names with every
value (arrays of objects merged), plus the `.caseless` sub-fields lower-cased, as the normalizer does.
"""
from __future__ import annotations

import copy
import ipaddress
import json
import re
from datetime import datetime, timezone
from typing import Any

from r53sigma import catalogue
from r53sigma.catalogue import LogSource
from r53sigma.scan import registered_domain

from . import ingestion as es
from . import ioc_enrich

NOT_INDEXED = {"event.original"}


class IngestFailure(ValueError):
    """What makes the ingest pipeline run its on_failure handlers."""


def detect_source(raw_record: Any) -> str:
    if isinstance(raw_record, str):
        text = raw_record.strip()
        if not text.startswith("{"):
            return "public_zone"
        try:
            raw_record = json.loads(text)
        except ValueError:
            return "resolver"
    if isinstance(raw_record, dict) and ("eventSource" in raw_record or "eventName" in raw_record):
        return "cloudtrail"
    return "resolver"


def _get(doc: dict, dotted: str, default=None):
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _pop(doc: dict, dotted: str):
    *parents, leaf = dotted.split(".")
    node: Any = doc
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, dict):
        return None
    return node.pop(leaf, None)


def _put(doc: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _append_unique(doc: dict, dotted: str, value) -> None:
    values = _get(doc, dotted)
    if values is None:
        values = []
        _put(doc, dotted, values)
    elif not isinstance(values, list):
        values = [values]
        _put(doc, dotted, values)
    if value not in values:
        values.append(value)


def iso_millis(text: str) -> str:
    """The date processor's default output: UTC with milliseconds."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed = parsed.astimezone(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def _convert(value, es_type: str):
    if es_type == "long":
        return int(value)
    if es_type == "ip":
        ipaddress.ip_address(str(value))
    return value


def _recase(value, target_values: str, raw_values: str):
    if not isinstance(value, str) or target_values in (raw_values, "mixed"):
        return value
    return value.lower() if target_values == "lower" else value.upper()


def _strip_dot(value):
    return re.sub(r"\.$", "", value) if isinstance(value, str) else value


def _parse(log_source: LogSource, text: str) -> dict:
    if log_source.format == "json":
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise IngestFailure(f"not JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise IngestFailure("not a JSON object")
        return parsed
    match = re.fullmatch(_line_regex(log_source), text)
    if not match:
        raise IngestFailure("line does not match the public hosted-zone format")
    values = {c: match.group(f"c{i}") for i, c in enumerate(log_source.columns) if match.group(f"c{i}") is not None}
    if match.group("extra") is not None:
        values["extra_columns"] = match.group("extra")
    return values


def _line_regex(log_source: LogSource) -> str:
    columns = [rf"(?:-|(?P<c{i}>\S+))" for i, _ in enumerate(log_source.columns)]
    return " ".join(columns) + r"(?: (?P<extra>.*))?"


def _derive(log_source: LogSource, raw: dict, doc: dict) -> None:
    """The catalogue's derived fields as the registered_domain + lowercase steps write them."""
    parents = {}
    for f in log_source.derived.values():
        source = raw.get(f.derived.source_field)
        if es.TARGET in f.targets and isinstance(source, str) and f.derived.by == "name_length":
            _put(doc, es.es_name(f), len(_strip_dot(source)))  # the script step: String.length()
        elif es.TARGET in f.targets and isinstance(source, str):
            parents[es.parent(es.es_name(f))] = _strip_dot(source)
            value = registered_domain.derive(f.derived.by, f.derived.part, _strip_dot(source))
            if value is not None:
                _put(doc, es.es_name(f), value)
    for parent, name in parents.items():  # the processor also writes the public suffix
        suffix = registered_domain.top_level_domain(name)
        if suffix is not None:
            _put(doc, f"{parent}.top_level_domain", suffix)


def _ingest(log_source: LogSource, doc: dict) -> None:
    raw = _parse(log_source, doc["event"]["original"])
    _put(doc, es.RAW_PREFIX, raw)
    _derive(log_source, raw, doc)
    for f in log_source.fields.values():
        if f.array:
            continue
        value = _pop(doc, f"{es.RAW_PREFIX}.{f.name}")
        if value is None:
            continue
        target = es.es_name(f)
        if f.name == log_source.timestamp:
            try:
                _put(doc, target, iso_millis(value))
            except (TypeError, ValueError) as error:
                raise IngestFailure(f"bad timestamp {value!r}") from error
            continue
        if f.strip_trailing_dot:
            value = _strip_dot(value)
        if f.type in es.CONVERT_TYPES:
            try:
                value = _convert(value, es.CONVERT_TYPES[f.type])
            except (TypeError, ValueError) as error:
                raise IngestFailure(f"{f.name}: cannot convert {value!r}") from error
        _put(doc, target, _recase(value, f.target(es.TARGET).values, f.values))
        if f.target(es.TARGET).keyword:
            _put(doc, f.target(es.TARGET).keyword, str(value))
    for name, fields in es.array_groups(log_source).items():
        elements = _pop(doc, f"{es.RAW_PREFIX}.{name}")
        if elements is None:
            continue
        if not isinstance(elements, list):
            raise IngestFailure(f"{name} is not an array")
        target = es.es_array_path(fields)
        for element in elements:
            if not isinstance(element, dict):
                raise IngestFailure(f"{name} holds a non-object")
            for f in fields:
                key = f.name[len(name) + 1 :]
                if key not in element:
                    continue
                value = element.pop(key)
                if f.strip_trailing_dot:
                    value = _strip_dot(value)
                element[es.es_name(f)[len(target) + 1 :]] = _recase(value, f.target(es.TARGET).values, f.values)
        _put(doc, target, elements)
    _enrich(doc, es.role_names(log_source), log_source)


def _enrich(doc: dict, roles: dict[str, str], log_source: LogSource) -> None:
    source_ip, answer_data, answer_type = roles.get("source_ip"), roles.get("answer_data"), roles.get("answer_type")
    question_name, question_type = roles.get("question_name"), roles.get("question_type")
    if source_ip and _get(doc, source_ip) is not None:
        _append_unique(doc, "related.ip", str(_get(doc, source_ip)))
    if answer_data and answer_type:
        resolved = es.cidr_companion(log_source, answer_data)
        answers = _get(doc, es.parent(answer_data))
        data_key, type_key = answer_data.rsplit(".", 1)[1], answer_type.rsplit(".", 1)[1]
        for answer in answers if isinstance(answers, list) else []:
            if not isinstance(answer, dict) or answer.get(data_key) is None:
                continue
            if answer.get(type_key) in es.ADDRESS_TYPES:
                _append_unique(doc, "related.ip", answer[data_key])
                if resolved:
                    _append_unique(doc, resolved, answer[data_key])
            elif answer.get(type_key) in es.HOST_TYPES:
                _append_unique(doc, "related.hosts", answer[data_key])
    if question_name and _get(doc, question_name) is not None and (not question_type or _get(doc, question_type) != "PTR"):
        _append_unique(doc, "related.hosts", str(_get(doc, question_name)))
    _put(doc, "cloud.provider", "aws")
    _put(doc, "network.protocol", "dns")
    _put(doc, "event.kind", "event")
    _append_unique(doc, "event.category", "network")
    _append_unique(doc, "event.type", "protocol")
    response_code = _get(doc, roles["response_code"]) if "response_code" in roles else None
    if response_code is not None:
        _put(doc, "event.outcome", "success" if response_code == "NOERROR" else "failure")


def _is_address(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _cloudtrail_document(log_source: LogSource, record: dict, original: str) -> dict:
    doc: dict = {"event": {"original": original}}
    flattened_roots: dict[str, str] = {}
    for f in log_source.fields.values():
        target = es.es_name(f)
        if es.is_flattened(target):
            # the ECS name ends with the raw sub-path: what precedes it is the flattened field
            raw_root, _, rest = f.name.partition(".")
            flattened_roots[raw_root] = target[: -len(rest) - 1]
            continue
        value = _get(record, f.name)
        if value is None:
            continue
        _put(doc, target, iso_millis(value) if f.name == log_source.timestamp else value)
        companion = f.target(es.TARGET).cidr
        if companion and _is_address(value):  # the integration's `convert` to ip, ignore_failure: service names stay out
            _put(doc, companion, str(value))
    for raw_root, target in flattened_roots.items():
        if isinstance(record.get(raw_root), dict):
            _put(doc, target, copy.deepcopy(record[raw_root]))
    for key, companion in es.flattened_key_companions(log_source).items():  # the @custom pipeline's copy
        value = _get(doc, key)
        if isinstance(value, str):
            _put(doc, companion, value)
    return doc


def document_from_raw(raw_record: Any, source: str | None = None, ioc_entries: list | None = None) -> dict:
    """The ECS document for one raw record (a JSON text or object, or a public hosted-zone line).

    ``ioc_entries`` (r53sigma.ioc.Entry items, or an ``ioc_enrich.enrich_index`` built once for many
    documents): the feed deploy loaded; the Resolver pipeline's lookup then writes the entries the
    query name falls under (ioc_enrich). None: no feed deployed."""
    source = source or detect_source(raw_record)
    log_source = catalogue.load()[source]
    original = raw_record if isinstance(raw_record, str) else json.dumps(raw_record)
    if source not in es.INGEST_SOURCES:
        record = json.loads(original) if isinstance(raw_record, str) else raw_record
        return _cloudtrail_document(log_source, record, original)
    doc: dict = {"event": {"original": original}}
    try:
        _ingest(log_source, doc)
        if ioc_entries is not None and source == es.IOC_SOURCE:
            _lookup_ioc(log_source, doc, ioc_entries)
    except IngestFailure as failure:
        doc = {
            "event": {"original": original, "kind": "pipeline_error"},
            "tags": [es.FAILURE_TAG],
            "error": {"message": str(failure)},
        }
    return doc


def _lookup_ioc(log_source: LogSource, doc: dict, entries) -> None:
    """The lookup pipeline: every listed entry the query name or a parent domain of it is."""
    name = _get(doc, es.role_names(log_source).get("question_name", ""))
    index = entries if isinstance(entries, dict) else ioc_enrich.enrich_index(entries)
    found = ioc_enrich.matches(str(name), index) if name is not None else []
    if found:
        _put(doc, ioc_enrich.TARGET_FIELD, found)


def _flatten(value, prefix: str, out: dict[str, list]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, prefix, out)
    elif value is not None:
        out.setdefault(prefix, []).append(value)


def caseless_fields(source: str | None = None) -> list[str]:
    """ECS names with a `.caseless` sub-field (for one log source, or any)."""
    sources = [catalogue.load()[source]] if source else list(catalogue.log_sources())
    names: list[str] = []
    for log_source in sources:
        names += [n for n in es.caseless_fields(log_source) if n not in names]
    return names


def indexed_fields(doc: dict, source: str | None = None) -> dict[str, list]:
    """Dotted field -> indexed values, with `<field>.caseless` lower-cased like the normalizer."""
    flat: dict[str, list] = {}
    _flatten(doc, "", flat)
    for name in NOT_INDEXED:
        flat.pop(name, None)
    for name in caseless_fields(source):
        if name in flat:
            flat[f"{name}.{es.CASELESS}"] = [str(v).lower() for v in flat[name]]
    return flat
