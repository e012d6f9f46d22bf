"""Elasticsearch ingestion mappings: the pipeline JSON, the templates, and document_from_raw agreeing with them.

A tiny interpreter runs the rendered ingest pipeline (the processors it uses, with Elasticsearch's
semantics) so a change to the pipeline that document_from_raw does not follow fails a test.
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re
from pathlib import Path

import pytest
from publicsuffixlist import PublicSuffixList
from hypothesis import given, settings, strategies as st
from sigma.processing.transformations import FieldMappingTransformation

from r53sigma import catalogue
from r53sigma.targets.elasticsearch import document_from_raw, indexed_fields
from r53sigma.targets.elasticsearch import documents, ingestion as es, ioc_enrich
from sigma.pipelines.route53.elasticsearch import RouteValues, route53_elasticsearch_pipeline

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
SAMPLES = SHARED / "corpus" / "samples"
KNOWN_PROCESSORS = {
    "rename", "json", "grok", "gsub", "lowercase", "uppercase", "convert", "date", "remove", "set",
    "append", "foreach", "registered_domain", "script", "pipeline", "enrich",
}
# What the simulated cluster holds besides the pipeline run: pipelines a `pipeline` processor may call
# and the enrich indices of executed policies ({policy: (match_field, enrich_fields, documents)}).
CLUSTER: dict[str, dict] = {"pipelines": {}, "enrich": {}}


# ---------------------------------------------------------------- a small ingest interpreter


class Failed(Exception):
    pass


def get(doc, dotted, ctx=None):
    if dotted.startswith("_ingest._value"):
        node = ctx["_value"]
        rest = dotted[len("_ingest._value") :].lstrip(".")
        parts = rest.split(".") if rest else []
    else:
        node, parts = doc, dotted.split(".")
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(doc, dotted, value, ctx=None):
    if dotted.startswith("_ingest._value."):
        node, parts = ctx["_value"], dotted[len("_ingest._value.") :].split(".")
    else:
        node, parts = doc, dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def delete(doc, dotted, ctx=None):
    if dotted.startswith("_ingest._value."):
        node, parts = ctx["_value"], dotted[len("_ingest._value.") :].split(".")
    else:
        node, parts = doc, dotted.split(".")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        return False
    del node[parts[-1]]
    return True


def condition(expr: str, doc) -> bool:
    """The Painless subset the pipeline uses: null-safe paths, ==, !=, endsWith, instanceof String, !, &&."""
    result = True
    for term in expr.split(" && "):
        term = term.strip()
        negate = term.startswith("!")
        term = term.lstrip("!")
        m = re.fullmatch(r"ctx\.([\w@?.]+?)\.endsWith\('([^']*)'\)", term)
        if m:
            value = get(doc, m.group(1).replace("?", ""))
            ok = isinstance(value, str) and value.endswith(m.group(2))
        elif term.endswith(" instanceof String"):  # Painless: false on null (and on a Map or List)
            ok = isinstance(get(doc, term[len("ctx."):-len(" instanceof String")].replace("?", "")), str)
        else:
            m = re.fullmatch(r"ctx\.([\w@?.]+) (==|!=) (null|'[^']*')", term)
            assert m, f"condition the interpreter does not know: {term}"
            value = get(doc, m.group(1).replace("?", ""))
            other = None if m.group(3) == "null" else m.group(3)[1:-1]
            ok = (value == other) if m.group(2) == "==" else (value != other)
        result = result and (not ok if negate else ok)
    return result


INGEST_TIMESTAMP = "2024-05-01T10:20:30.123456789Z"  # what `_ingest.timestamp` renders to in a simulated run


def mustache(template: str, doc):
    m = re.fullmatch(r"\{\{\{\s*([\w@.]+)\s*\}\}\}", template)
    if m and m.group(1) == "_ingest.timestamp":  # ingest metadata: the node's time when the pipeline ran
        return INGEST_TIMESTAMP
    return str(get(doc, m.group(1))) if m else template


def grok_regex(pattern: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def group(m):
        names.append(m.group(2))
        body = {"NOTSPACE": r"\S+", "GREEDYDATA": ".*"}[m.group(1)]
        return f"(?P<g{len(names) - 1}>{body})"

    return re.sub(r"%\{(\w+):([\w@.]+)\}", group, pattern), names


def related_script(doc, params):
    node = doc
    for key in params["answers"]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    for answer in node if isinstance(node, list) else []:
        if not isinstance(answer, dict) or answer.get(params["data"]) is None:
            continue
        kind = answer.get(params["type"])
        bucket = "ip" if kind in params["address_types"] else "hosts" if kind in params["host_types"] else None
        if bucket:
            values = doc.setdefault("related", {}).setdefault(bucket, [])
            if answer[params["data"]] not in values:
                values.append(answer[params["data"]])
            if bucket == "ip" and params["resolved_ip"]:
                holder = doc
                for key in params["resolved_ip_parent"]:
                    holder = holder.setdefault(key, {})
                resolved = holder.setdefault(params["resolved_ip"], [])
                if answer[params["data"]] not in resolved:
                    resolved.append(answer[params["data"]])


def run_processor(kind: str, p: dict, doc, ctx=None):
    if "if" in p and not condition(p["if"], doc):
        return
    try:
        _run(kind, p, doc, ctx)
    except Failed:
        if not p.get("ignore_failure"):
            raise


def _run(kind, p, doc, ctx):
    field = p.get("field")
    value = get(doc, field, ctx) if isinstance(field, str) else None
    missing = value is None
    if kind in {"rename", "gsub", "lowercase", "uppercase", "convert", "date", "json", "grok", "registered_domain"} and missing:
        if p.get("ignore_missing"):
            return
        raise Failed(f"{kind}: {field} missing")
    if kind == "rename":
        if get(doc, p["target_field"], ctx) is not None:
            raise Failed("rename target exists")
        delete(doc, field, ctx)
        put(doc, p["target_field"], value, ctx)
    elif kind == "json":
        try:
            put(doc, p["target_field"], json.loads(value))
        except ValueError as error:
            raise Failed(str(error))
    elif kind == "grok":
        regex, names = grok_regex(p["patterns"][0])
        m = re.search(regex, value)
        if not m:
            raise Failed("grok: no match")
        for i, name in enumerate(names):
            if m.group(f"g{i}") is not None:
                put(doc, name, m.group(f"g{i}"))
    elif kind == "gsub":
        put(doc, field, re.sub(p["pattern"], p["replacement"], value), ctx)
    elif kind in ("lowercase", "uppercase"):
        put(doc, field, value.lower() if kind == "lowercase" else value.upper(), ctx)
    elif kind == "convert":
        try:
            if p["type"] == "long":
                converted = int(value)
            else:
                ipaddress.ip_address(value)
                converted = value
        except ValueError as error:
            raise Failed(str(error))
        put(doc, p.get("target_field", field), converted, ctx)
    elif kind == "date":
        assert p["formats"] == ["ISO8601"]
        try:
            put(doc, p["target_field"], documents.iso_millis(value))
        except ValueError as error:
            raise Failed(str(error))
    elif kind == "remove":
        if not delete(doc, field, ctx) and not p.get("ignore_missing"):
            raise Failed("remove: missing")
    elif kind == "set" and "copy_from" in p:  # Elasticsearch set processor: copy_from, ignore_empty_value
        copied = get(doc, p["copy_from"], ctx)
        if copied in (None, "") and p.get("ignore_empty_value"):
            return
        put(doc, field, copy.deepcopy(copied), ctx)
    elif kind == "set":  # Elasticsearch renders a string value as a Mustache template
        put(doc, field, mustache(p["value"], doc) if isinstance(p["value"], str) else p["value"], ctx)
    elif kind == "append":
        new = mustache(p["value"], doc)
        current = get(doc, field, ctx)
        values = [] if current is None else current if isinstance(current, list) else [current]
        if p.get("allow_duplicates", True) or new not in values:
            values.append(new)
        put(doc, field, values, ctx)
    elif kind == "foreach":
        if missing:
            if p.get("ignore_missing"):
                return
            raise Failed("foreach: missing")
        if not isinstance(value, list):
            raise Failed("foreach: not a list")
        ((inner_kind, inner),) = p["processor"].items()
        for i, element in enumerate(value):
            inner_ctx = {"_value": element}
            run_processor(inner_kind, inner, doc, inner_ctx)
            value[i] = inner_ctx["_value"]
    elif kind == "registered_domain":
        registered_domain_processor(doc, p, value)
    elif kind == "pipeline":  # pipeline processor: ignore_missing_pipeline, else a missing one fails
        inner = CLUSTER["pipelines"].get(p["name"])
        if inner is None:
            if p.get("ignore_missing_pipeline"):
                return
            raise Failed(f"pipeline with id [{p['name']}] does not exist")
        for processor in inner["processors"]:
            ((inner_kind, inner_p),) = processor.items()
            run_processor(inner_kind, inner_p, doc, ctx)
    elif kind == "enrich":
        enrich_processor(doc, p, value, ctx)
    elif kind == "script" and p.get("tag") == "r53sigma_ioc_candidates":
        assert p["source"] == ioc_enrich.CANDIDATES
        ioc_candidates_script(doc, p["params"])
    elif kind == "script" and p.get("tag") == es.NAME_LENGTH_TAG:
        assert p["source"] == es.NAME_LENGTH
        name = get(doc, ".".join(p["params"]["source"]))
        if isinstance(name, str):  # Painless String.length()
            put(doc, ".".join(p["params"]["target"]), len(name))
    elif kind == "script":
        assert p["tag"] == es.RELATED_FROM_ANSWERS_TAG, p
        assert p["source"] == es.RELATED_FROM_ANSWERS
        related_script(doc, p["params"])
    else:
        raise AssertionError(f"processor the interpreter does not know: {kind}")


def enrich_processor(doc: dict, p: dict, value, ctx) -> None:
    """Elasticsearch's enrich processor on a `match` policy: a list value is a terms query (any
    value), one value a term query (MatchProcessor.getQueryBuilder); each hit gives the match_field
    and enrich_fields; `max_matches` > 1 writes an array, else one object; no hit writes nothing;
    `override: false` leaves a set target alone.
    https://www.elastic.co/guide/en/elasticsearch/reference/current/enrich-processor.html"""
    if value is None:
        if p.get("ignore_missing"):
            return
        raise Failed(f"enrich: {p['field']} missing")
    if p["policy_name"] not in CLUSTER["enrich"]:
        raise Failed(f"no enrich index exists for policy with name [{p['policy_name']}]")
    match_field, enrich_fields, index = CLUSTER["enrich"][p["policy_name"]]
    wanted = value if isinstance(value, list) else [value]
    max_matches = int(p.get("max_matches", 1))
    assert 1 <= max_matches <= 128
    hits = [{k: d[k] for k in [match_field, *enrich_fields] if k in d} for d in index if d.get(match_field) in wanted]
    hits = hits[:max_matches]
    if not hits or (p.get("override") is False and get(doc, p["target_field"], ctx) is not None):
        return
    put(doc, p["target_field"], hits if max_matches > 1 else hits[0], ctx)


def ioc_candidates_script(doc: dict, params: dict) -> None:
    """The Painless of ioc_enrich.CANDIDATES, read independently: the lower-cased name, then the text
    after each dot."""
    node = doc
    for key in params["name"]:
        if not isinstance(node, dict) or node.get(key) is None:
            return
        node = node[key]
    name, keys = str(node).lower(), []
    while True:
        keys.append(name)
        if "." not in name:
            break
        name = name.split(".", 1)[1]
    doc[params["keys"]] = keys


def registered_domain_processor(doc: dict, p: dict, fqdn) -> None:
    """Elasticsearch's registered_domain processor (RegisteredDomainProcessor over httpclient's
    PublicSuffixMatcher, ICANN and private rules; a name without a known rule ends in a one-label
    suffix): `domain`, `registered_domain` (lower case), `subdomain` (as written), `top_level_domain`;
    a name that is itself a suffix gets `domain` and `top_level_domain` only; no suffix fails.
    https://www.elastic.co/guide/en/elasticsearch/reference/current/registered-domain-processor.html"""
    psl = PublicSuffixList()
    if not isinstance(fqdn, str):
        raise Failed("registered_domain: not a string")
    if "" in fqdn.split("."):  # an empty label: the processor's output is unspecified; the pack writes none
        raise Failed("not a domain name")
    registered = psl.privatesuffix(fqdn.lower())
    target = p["target_field"]
    if registered is None:
        if not psl.is_public(fqdn.lower()):
            raise Failed("unable to extract the registered domain")
        put(doc, f"{target}.domain", fqdn)
        put(doc, f"{target}.top_level_domain", fqdn)
        return
    put(doc, f"{target}.domain", fqdn)
    put(doc, f"{target}.registered_domain", registered)
    put(doc, f"{target}.top_level_domain", registered.split(".", 1)[1])
    if len(fqdn) > len(registered):
        put(doc, f"{target}.subdomain", fqdn[: len(fqdn) - len(registered) - 1])


def simulate(pipeline: dict, message: str) -> dict:
    doc = {"message": message}
    try:
        for processor in pipeline["processors"]:
            ((kind, p),) = processor.items()
            run_processor(kind, p, doc)
    except Failed as failure:
        for processor in pipeline["on_failure"]:
            ((kind, p),) = processor.items()
            if kind == "set" and "on_failure_message" in p["value"]:
                put(doc, p["field"], str(failure))
            else:
                run_processor(kind, p, doc)
    return doc


def comparable(doc: dict) -> dict:
    """A failed document is compared by what it must keep, not by its partial content; the arrival
    time is the cluster's, not the record's, so it is checked on its own (test_pipeline_sets_event_ingested)."""
    doc = copy.deepcopy(doc)
    doc.get("event", {}).pop("ingested", None)
    if doc.get("event", {}).get("kind") == "pipeline_error":
        return {"original": doc["event"]["original"], "tags": doc["tags"], "has_error": bool(doc["error"]["message"])}
    return doc


def pipeline(source: str) -> dict:
    return es.ingest_pipeline(catalogue.load()[source])


# ---------------------------------------------------------------- samples


def corpus_lines(name: str) -> list[str]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"../shared corpus absent: {path}")
    return [line for line in path.read_text().splitlines() if line.strip()]


def resolver_samples() -> list[str]:
    lines = corpus_lines("elastic_integrations/route53_resolver_logs__test-route53.log")
    for name in ("aws_docs/resolver-query-log-example.json", "opensearch_security_analytics/dns-sample.json"):
        path = SAMPLES / name
        if path.is_file():
            lines.append(json.dumps(json.loads(path.read_text())))
    return lines


def public_samples() -> list[str]:
    return corpus_lines("elastic_integrations/route53_public_logs__test-route53.log")


def leaves(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item, prefix)
    else:
        yield prefix, value


# ---------------------------------------------------------------- tests


def test_pipelines_are_json_of_known_processors():
    for path, body in es.render().items():
        json.loads(json.dumps(body))
        if "ingest_pipelines" not in path:
            continue
        for processor in body["processors"] + body["on_failure"]:
            ((kind, p),) = processor.items()
            assert kind in KNOWN_PROCESSORS, (path, kind)
            if kind == "foreach":
                ((inner, _),) = p["processor"].items()
                assert inner in KNOWN_PROCESSORS


def _written_fields(body: dict) -> set[str]:
    written = set()
    for processor in body["processors"] + body["on_failure"]:
        ((kind, p),) = processor.items()
        if kind in ("rename", "date", "convert") and not p.get("field", "").startswith("_ingest"):
            written.add(p.get("target_field", p["field"]))
        elif kind in ("set", "append"):
            written.add(p["field"])
        elif kind == "registered_domain":
            written |= {f"{p['target_field']}.{k}" for k in ("registered_domain", "subdomain", "top_level_domain")}
        elif kind == "foreach" and "rename" in p["processor"]:
            array = next(proc["rename"]["target_field"] for proc in body["processors"]
                         if "rename" in proc and proc["rename"]["field"] == p["field"])
            written.add(array + "." + p["processor"]["rename"]["target_field"].split(".", 2)[2])
    return written


def flat_properties(properties: dict, prefix: str = "") -> dict[str, dict]:
    flat = {}
    for name, mapping in properties.items():
        full = f"{prefix}.{name}" if prefix else name
        if "properties" in mapping:
            flat.update(flat_properties(mapping["properties"], full))
        else:
            flat[full] = mapping
            for sub, sub_mapping in mapping.get("fields", {}).items():
                flat[f"{full}.{sub}"] = sub_mapping
    return flat


@pytest.mark.parametrize("source", es.INGEST_SOURCES)
def test_every_field_the_pipeline_writes_is_declared_in_the_template(source):
    log_source = catalogue.load()[source]
    declared = flat_properties(es.component_template(log_source)["template"]["mappings"]["properties"])
    objects = {name.rsplit(".", i)[0] for name in declared for i in range(1, name.count(".") + 1)}
    written = _written_fields(es.ingest_pipeline(log_source))
    assert "dns.answers.data" in written or source != "resolver"
    assert written - set(declared) - objects == set()


def _query_fields_by_source() -> dict[str, set[str]]:
    """Every field name route53_elasticsearch can put in a query, per catalogue log source."""
    found: dict[str, set[str]] = {}
    for item in route53_elasticsearch_pipeline().items:
        source = next((s for s in catalogue.load() if item.identifier and item.identifier.endswith(("_" + s, "_" + s + "_dns"))), None)
        if source is None:
            continue
        if isinstance(item.transformation, FieldMappingTransformation):
            for target in item.transformation.mapping.values():
                found.setdefault(source, set()).update([target] if isinstance(target, str) else target)
        elif isinstance(item.transformation, RouteValues):  # .caseless sub-fields and ip companions
            found.setdefault(source, set()).update(item.transformation.mapping.values())
    return found


def test_every_field_the_query_pipeline_uses_is_mapped_with_a_compatible_type():
    compatible = {"string": {"keyword"}, "ip": {"ip"}, "integer": {"long"}, "date": {"date"}}
    query_fields = _query_fields_by_source()
    assert set(query_fields) == set(catalogue.load())
    assert "dns.question.name.caseless" in query_fields["resolver"]
    assert "dns.resolved_ip" in query_fields["resolver"]
    companions = {f.target("elasticsearch").cidr for ls in catalogue.log_sources() for f in ls.fields.values()} - {None}
    for source, fields in query_fields.items():
        log_source = catalogue.load()[source]
        if source in es.INGEST_SOURCES:
            template = es.component_template(log_source)
        else:
            template = es.integration_custom_template(log_source)
        declared = flat_properties(template["template"]["mappings"]["properties"])
        by_es_name = {es.es_name(f): f for f in log_source.fields.values()}
        for name in fields:
            if es.is_flattened(name):
                assert not name.endswith(".caseless"), f"{name}: a flattened field has no sub-fields"
                continue
            if source not in es.INGEST_SOURCES and not name.endswith(".caseless"):
                continue  # the integration's own template declares the field itself
            assert name in declared, f"{source}: {name} is queried but not mapped"
            base = by_es_name.get(name.removesuffix(".caseless"))
            if base is not None and not name.endswith(".caseless"):
                assert declared[name]["type"] in compatible[base.type], name
            if name.endswith(".caseless"):
                assert declared[name]["normalizer"] == es.NORMALIZER
            if name in companions:
                assert declared[name]["type"] == "ip", name


def test_caseless_subfields_are_declared_in_every_template_of_the_source():
    for log_source in catalogue.log_sources():
        custom = flat_properties(es.integration_custom_template(log_source)["template"]["mappings"]["properties"])
        for name in es.caseless_fields(log_source):
            assert custom[f"{name}.caseless"] == {"type": "keyword", "normalizer": es.NORMALIZER}
        settings_ = es.integration_custom_template(log_source)["template"]["settings"]
        assert settings_["analysis"]["normalizer"][es.NORMALIZER]["filter"] == ["lowercase"]


def test_flattened_request_parameters_are_never_redeclared():
    cloudtrail = catalogue.load()["cloudtrail"]
    flattened = [f for f in cloudtrail.fields.values() if es.is_flattened(es.es_name(f))]
    assert flattened
    custom = flat_properties(es.integration_custom_template(cloudtrail)["template"]["mappings"]["properties"])
    assert not any(es.is_flattened(name) for name in custom)


def test_index_templates_use_the_catalogue_patterns_and_the_pipeline():
    for source in es.INGEST_SOURCES:
        log_source = catalogue.load()[source]
        template = es.index_template(log_source)
        assert template["index_patterns"] == list(log_source.targets["elasticsearch"]["index"])
        assert template["template"]["settings"]["index"]["default_pipeline"] == es.pipeline_name(source)
        assert 100 < template["priority"] < 200


def test_integration_custom_template_names():
    names = {es.integration_custom_name(ls) for ls in catalogue.log_sources()}
    assert names == {"logs-aws.route53_resolver_logs@custom", "logs-aws.route53_public_logs@custom", "logs-aws.cloudtrail@custom"}


def test_related_script_is_the_interpreted_one():
    # The interpreter above implements this exact script; edit both together.
    assert hashlib.sha256(es.RELATED_FROM_ANSWERS.encode()).hexdigest()[:12] == "037d3b4c6b6c" or pytest.fail(
        "the related-from-answers Painless script changed: update related_script() in this test, then this hash: "
        + hashlib.sha256(es.RELATED_FROM_ANSWERS.encode()).hexdigest()[:12]
    )


def test_document_from_raw_agrees_with_the_pipeline_on_the_corpus():
    for source, lines in (("resolver", resolver_samples()), ("public_zone", public_samples())):
        for line in lines:
            assert comparable(document_from_raw(line, source)) == comparable(simulate(pipeline(source), line)), line


def test_corpus_samples_pass_without_failure_or_dropped_field():
    for source, lines in (("resolver", resolver_samples()), ("public_zone", public_samples())):
        for line in lines:
            doc = document_from_raw(line)
            assert "tags" not in doc and doc["event"]["kind"] == "event", line
            values = {str(v) for name, v in leaves(doc) if name != "event.original"}
            raw = json.loads(line) if source == "resolver" else dict(zip(catalogue.load()[source].columns, line.split(" ")))
            for name, value in leaves(raw):
                if value in ("-", None) or isinstance(value, (dict, list)):
                    continue
                field = catalogue.load()[source].fields.get(name)
                if field is not None and field.name == catalogue.load()[source].timestamp:
                    assert doc["@timestamp"].startswith(str(value)[:19])
                    continue
                expected = str(value).rstrip(".") if str(value) != "." else value
                assert expected in values or expected.lower() in values, f"{name}={value} dropped from {line}"


def test_cloudtrail_documents_carry_every_catalogued_field():
    path = SAMPLES / "aws_docs" / "route53_cloudtrail_examples.jsonl"
    if not path.is_file():
        pytest.skip(f"../shared corpus absent: {path}")
    cloudtrail = catalogue.load()["cloudtrail"]
    for line in path.read_text().splitlines():
        record = json.loads(line)
        flat = indexed_fields(document_from_raw(line))
        for f in cloudtrail.fields.values():
            value = documents._get(record, f.name) if not f.array else None
            if value is not None and not isinstance(value, (dict, list)) and f.name != cloudtrail.timestamp:
                assert value in flat[es.es_name(f)], f.name
        changes = (record.get("requestParameters") or {}).get("changeBatch", {}).get("changes", [])
        if changes:
            assert flat["aws.cloudtrail.flattened.request_parameters.changeBatch.changes.action"] == [c["action"] for c in changes]


def test_cloudtrail_custom_pipeline_fills_the_keyword_companions_documents_py_expects():
    """logs-aws.cloudtrail@custom, run after Elastic's integration (the document without companions),
    gives what documents.py computes: each catalogued request key copied to its companion as written,
    strings only (an object under a key would not fit a keyword field), absent keys left out."""
    cloudtrail = catalogue.load()["cloudtrail"]
    companions = es.flattened_key_companions(cloudtrail)
    assert "aws.cloudtrail.flattened.request_parameters.ruleType" in companions
    record = {"eventTime": "2026-11-27T12:00:00Z", "eventSource": "route53resolver.amazonaws.com", "eventName": "CreateResolverRule",
              "requestParameters": {"ruleType": "FORWARD", "domainName": "Corp.Example.", "vPC": {"vPCId": "vpc-1"},
                                    "hostedZoneId": {"not": "text"}}}
    expected = document_from_raw(json.dumps(record), "cloudtrail")
    integration = copy.deepcopy(expected)
    integration.pop("r53sigma")
    body = es.integration_custom_pipeline(cloudtrail)
    for processor in body["processors"]:
        ((kind, p),) = processor.items()
        run_processor(kind, p, integration)
    assert integration == expected
    assert expected["r53sigma"]["cloudtrail"]["request_parameters"] == {"ruleType": "FORWARD", "domainName": "Corp.Example.", "vPC": {"vPCId": "vpc-1"}}
    template = flat_properties(es.integration_custom_template(cloudtrail)["template"]["mappings"]["properties"])
    assert all(template[c]["type"] == "keyword" and "caseless" in template[c]["fields"] for c in companions.values())


def test_unparseable_records_are_kept_and_tagged():
    for source, line in (("resolver", '{"query_name": "x.", '), ("public_zone", "garbage")):
        doc = document_from_raw(line, source)
        assert doc["event"] == {"original": line, "kind": "pipeline_error"}
        assert doc["tags"] == [es.FAILURE_TAG] and doc["error"]["message"]
        assert comparable(simulate(pipeline(source), line)) == comparable(doc)


def test_indexed_fields_lower_case_the_caseless_subfields():
    line = json.dumps({"query_name": "WwW.Example.COM.", "answers": [{"Rdata": "A.Example.", "Type": "CNAME", "Class": "IN"}],
                       "query_type": "A", "srcaddr": "10.0.0.1", "query_timestamp": "2024-01-01T00:00:00Z"})
    flat = indexed_fields(document_from_raw(line), "resolver")
    assert flat["dns.question.name"] == ["WwW.Example.COM"]
    assert flat["dns.question.name.caseless"] == ["www.example.com"]
    assert flat["dns.answers.data.caseless"] == ["a.example"]
    assert "event.original" not in flat


def test_the_comparison_notices_a_pipeline_change():
    changed = copy.deepcopy(pipeline("resolver"))
    changed["processors"] = [p for p in changed["processors"] if "lowercase" not in p]
    line = resolver_samples()[0]
    assert comparable(document_from_raw(line, "resolver")) != comparable(simulate(changed, line))


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12)
names = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
answer = st.one_of(
    st.builds(lambda ip: {"Rdata": ip, "Type": "A", "Class": "IN"}, ipv4),
    st.builds(lambda ip: {"Rdata": ip, "Type": "AAAA", "Class": "IN"}, ipv6),
    st.builds(lambda n, t: {"Rdata": n + ".", "Type": t, "Class": "IN"}, names, st.sampled_from(["CNAME", "PTR", "NS"])),
    st.builds(lambda t: {"Rdata": '"' + t + '"', "Type": "TXT", "Class": "IN"}, label),
)
resolver_record = st.fixed_dictionaries(
    {
        "version": st.just("1.100000"),
        "account_id": st.just("123456789012"),
        "region": st.sampled_from(["us-east-1", "eu-west-1"]),
        "vpc_id": st.just("vpc-0123"),
        "query_timestamp": st.sampled_from(["2021-12-11T22:46:23Z", "2022-10-13T21:02:36.123Z"]),
        "query_name": st.one_of(names.map(lambda n: n + "."), st.just(".")),
        "query_type": st.sampled_from(["A", "AAAA", "PTR", "TXT", "CNAME"]),
        "query_class": st.just("IN"),
        "rcode": st.sampled_from(["NOERROR", "NXDOMAIN", "SERVFAIL"]),
        "answers": st.lists(answer, max_size=4),
        "srcaddr": st.one_of(ipv4, ipv6),
        "srcport": st.integers(0, 65535).map(str),
        "transport": st.sampled_from(["UDP", "TCP"]),
        "srcids": st.one_of(st.just({}), st.fixed_dictionaries({"instance": st.just("i-0abc")})),
    },
    optional={"firewall_rule_action": st.sampled_from(["ALERT", "BLOCK"]), "firewall_protection": st.just("DGA"), "unknown": label},
)
public_line = st.builds(
    lambda ts, zone, name, rtype, rcode, proto, edge, ip, subnet: " ".join(
        ["1.0", ts, zone, name, rtype, rcode, proto, edge, ip, subnet]
    ),
    st.sampled_from(["2017-12-13T08:16:02.130Z", "2017-12-13T08:16:02Z"]),
    st.just("Z123412341234"),
    st.one_of(names, names.map(lambda n: n + ".")),
    st.sampled_from(["A", "AAAA", "ANY", "TXT"]),
    st.sampled_from(["NOERROR", "NXDOMAIN"]),
    st.sampled_from(["UDP", "TCP"]),
    st.just("IAD12"),
    st.one_of(ipv4, ipv6),
    st.one_of(st.just("-"), st.just("192.168.0.0/24")),
)


@settings(max_examples=150, deadline=None)
@given(resolver_record)
def test_document_from_raw_agrees_with_the_pipeline_on_generated_resolver_records(record):
    line = json.dumps(record)
    doc = document_from_raw(line, "resolver")
    assert comparable(doc) == comparable(simulate(pipeline("resolver"), line))
    assert doc["event"]["kind"] == "event"


@settings(max_examples=100, deadline=None)
@given(public_line)
def test_document_from_raw_agrees_with_the_pipeline_on_generated_public_lines(line):
    doc = document_from_raw(line, "public_zone")
    assert comparable(doc) == comparable(simulate(pipeline("public_zone"), line))
    assert doc["event"]["kind"] == "event"


@pytest.mark.parametrize("source", ["resolver", "public_zone"])
def test_pipeline_sets_event_ingested_even_when_parsing_fails(source):
    line = (resolver_samples() if source == "resolver" else public_samples())[0]
    assert simulate(pipeline(source), line)["event"]["ingested"] == INGEST_TIMESTAMP
    failed = simulate(pipeline(source), "not a log line {")
    assert failed["event"]["kind"] == "pipeline_error" and failed["event"]["ingested"] == INGEST_TIMESTAMP
    mapping = flat_properties(es.component_template(catalogue.load()[source])["template"]["mappings"]["properties"])
    assert mapping["event.ingested"]["type"] == "date"
