"""Splunk add-on: the conf files parse, produce every field route53_splunk queries, and event_from_raw agrees with them."""
from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import pytest
from sigma.processing.transformations import FieldMappingTransformation

from r53sigma import catalogue
from r53sigma.targets.splunk import addon, event_from_raw
from r53sigma.targets.splunk.events import json_fields
from sigma.pipelines.route53.splunk import route53_splunk_pipeline

SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "samples"


def conf(name: str) -> configparser.ConfigParser:
    """Splunk's .conf rules: `key = value`, case-sensitive keys, no interpolation, duplicates are errors."""
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=("#",), strict=True, empty_lines_in_values=False
    )
    parser.optionxform = str
    parser.read_string(addon.render()[f"splunk/{addon.APP}/default/{name}"])
    return parser


def interpret(raw: str, source: str) -> dict:
    """What Splunk search-time extraction makes of a raw event, read from props/transforms."""
    log_source = catalogue.load()[source]
    stanza = conf("props.conf")[log_source.targets["splunk"]["sourcetype"]]
    event: dict = {}
    if stanza["KV_MODE"] == "json":
        event.update(json_fields(json.loads(raw)))
    for key, value in stanza.items():
        if key.startswith("REPORT-"):
            regex = conf("transforms.conf")[value]["REGEX"].replace("(?<", "(?P<")
            m = re.search(regex, raw)
            assert m, raw
            event.update({k: v for k, v in m.groupdict().items() if v is not None})
    for key, value in stanza.items():
        if key.startswith("FIELDALIAS-"):
            source_name, target = re.fullmatch(r"'?(.+?)'? AS (\S+)", value).groups()
            if source_name in event:
                event[target] = event[source_name]
    extracted = dict(event)  # props.conf.spec: calculated fields are evaluated independently of each other
    for key, value in stanza.items():
        if not key.startswith("EVAL-"):
            continue
        name = key[len("EVAL-"):]
        if m := re.fullmatch(r'"(.*)"', value):
            event[name] = m.group(1)
        elif m := re.fullmatch(r"mvmap\('(.+)', replace\('\1', \"(.+)\", \"\"\)\)", value):
            if m.group(1) in event:
                event[name] = [re.sub(m.group(2), "", v) for v in event[m.group(1)]]
        elif m := re.fullmatch(r"replace\((\w+), \"(.+)\", \"\"\)", value):
            if m.group(1) in event:
                event[name] = re.sub(m.group(2), "", event[m.group(1)])
        elif m := re.fullmatch(r"len\(replace\((\w+), \"(.+)\", \"\"\)\)", value):
            if m.group(1) in extracted:
                event[name] = str(len(re.sub(m.group(2), "", extracted[m.group(1)])))
        else:
            raise AssertionError(f"EVAL this test does not interpret: {value}")
    return event


def event_tags(source: str) -> list[str]:
    """The tags Splunk gives an event of the source: eventtypes.conf matches it, tags.conf tags it."""
    sourcetype = catalogue.load()[source].targets["splunk"]["sourcetype"]
    eventtypes, tags = conf("eventtypes.conf"), conf("tags.conf")
    names = [n for n in eventtypes.sections() if eventtypes[n]["search"] == f'sourcetype="{sourcetype}"']
    return [t for n in names for t, v in tags[f"eventtype={n}"].items() if v == "enabled"]


def without_meta(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("_raw", "_time", "sourcetype", "tag")}


def corpus(name: str) -> list[str]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"../shared corpus absent: {path}")
    return [line for line in path.read_text().splitlines() if line.strip()]


def resolver_lines() -> list[str]:
    lines = corpus("elastic_integrations/route53_resolver_logs__test-route53.log")
    for name in ("aws_docs/resolver-query-log-example.json", "opensearch_security_analytics/dns-sample.json"):
        if (SAMPLES / name).is_file():
            lines.append(json.dumps(json.loads((SAMPLES / name).read_text())))
    return lines


def test_conf_files_parse_with_splunk_rules():
    for name in ("props.conf", "transforms.conf", "eventtypes.conf", "tags.conf", "app.conf"):
        assert conf(name).sections()
    props = conf("props.conf")
    assert props["aws:route53:resolver"]["KV_MODE"] == "json"
    assert props["aws:route53:resolver"]["SHOULD_LINEMERGE"] == "false"
    assert dict(conf("tags.conf")["eventtype=r53sigma_route53_resolver"]) == {"network": "enabled", "resolution": "enabled", "dns": "enabled"}


def test_timestamps_are_extracted_from_the_catalogue_timestamp():
    props = conf("props.conf")
    line = corpus("elastic_integrations/route53_resolver_logs__test-route53.log")[0]
    prefix = re.search(props["aws:route53:resolver"]["TIME_PREFIX"], line)
    assert line[prefix.end():].startswith(json.loads(line)["query_timestamp"][:19])
    public = corpus("elastic_integrations/route53_public_logs__test-route53.log")[0]
    prefix = re.search(props["aws:route53:public"]["TIME_PREFIX"], public)
    assert public[prefix.end():].startswith(public.split(" ")[1][:19])
    assert event_from_raw(line)["_time"] == 1639262783.0


def _example_record(source: str) -> str:
    log_source = catalogue.load()[source]
    if log_source.columns:
        return " ".join(str(log_source.fields[c].example) for c in log_source.columns)
    record: dict = {}
    for f in log_source.fields.values():
        parts = f.name.split(".")
        if f.array:
            element = record.setdefault(f.array, [{}])[0]
            element[f.name[len(f.array) + 1:]] = f.example
            continue
        node = record
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = f.example
    return json.dumps(record)


def test_every_field_route53_splunk_queries_is_produced():
    for item in route53_splunk_pipeline().items:
        if not isinstance(item.transformation, FieldMappingTransformation):
            continue
        source = next(s for s in addon.ADDON_SOURCES + ("cloudtrail",) if item.identifier.endswith(("_" + s, "_" + s + "_dns")))
        if source == "cloudtrail":
            continue  # the Splunk Add-on for AWS's sourcetype; names are its JSON extraction
        event = event_from_raw(_example_record(source), source)
        for target in item.transformation.mapping.values():
            assert target in event, f"{source}: {target} is queried but not extracted"


def test_event_from_raw_agrees_with_the_conf_files_on_the_corpus():
    for source, lines in (("resolver", resolver_lines()), ("public_zone", corpus("elastic_integrations/route53_public_logs__test-route53.log"))):
        for line in lines:
            event = event_from_raw(line)
            assert event["sourcetype"] == catalogue.load()[source].targets["splunk"]["sourcetype"]
            assert "_time" in event
            assert without_meta(event) == interpret(line, source), line
            assert event["tag"] == event_tags(source)


def test_answer_is_multivalue_over_every_answer_type_without_trailing_dot():
    record = {"query_name": "www.example.com.", "query_timestamp": "2024-01-01T00:00:00Z", "answers": [
        {"Rdata": "alias.example.net.", "Type": "CNAME", "Class": "IN"},
        {"Rdata": "2001:db8::1", "Type": "AAAA", "Class": "IN"},
        {"Rdata": "192.0.2.1", "Type": "A", "Class": "IN"}]}
    event = event_from_raw(json.dumps(record))
    assert event["answer"] == ["alias.example.net", "2001:db8::1", "192.0.2.1"]
    assert event["query"] == "www.example.com"
    assert event["answers{}.Type"] == ["CNAME", "AAAA", "A"]
    assert interpret(json.dumps(record), "resolver")["answer"] == event["answer"]


def test_public_zone_dash_subnet_is_absent_and_trailing_dot_dropped():
    line = "1.0 2017-12-13T08:16:02.130Z Z123 www.example.com. A NOERROR UDP FRA6 192.0.2.7 -"
    event = event_from_raw(line)
    assert event["query"] == "www.example.com" and "edns_client_subnet" not in event
    assert without_meta(event) == interpret(line, "public_zone")
