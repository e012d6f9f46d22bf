"""The %ioc_domains% placeholder: list formats, normalisation, bad input, and every way a list is given."""
import json
import textwrap

import pytest
from sigma.backends.elasticsearch import LuceneBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaConfigurationError, SigmaFeatureNotSupportedByBackendError
from sigma.pipelines.route53 import pipelines
from sigma.processing.pipeline import ProcessingPipeline

from sigma.backends.cloudwatch import backends as cloudwatch_backends
from r53sigma import ioc, rules
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.events import event_from_raw

TARGETS = {
    "route53_elasticsearch": LuceneBackend,
    "route53_splunk": SplunkBackend,
    "route53_cloudwatch": cloudwatch_backends["cloudwatch"],
}

RULE = """
title: ioc
id: 6a1d9c3e-0000-4000-8000-00000000ioc1
status: test
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
    condition: selection
level: high
""".replace("00000000ioc1", "000000000101")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def query(name):
    return parse_record({"query_timestamp": "2026-12-02T12:00:05Z", "query_name": name, "query_type": "A",
                         "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.1.23", "srcids": {}})


def test_plain_list_normalises_case_wildcards_dots_and_idna(tmp_path):
    path = write(tmp_path, "l.txt", """
        # feed of 2026-12-02
        Evil.Example.
        *.bad.example
        .dot.example   # leading dot
        bücher.example
        evil.example
    """)
    assert ioc.select(ioc.read(path), None) == ["evil.example", "bad.example", "dot.example", "xn--bcher-kva.example"]


def test_csv_with_category_column_and_category_filter(tmp_path):
    path = write(tmp_path, "l.csv", """
        first_seen,domain,category
        2026-11-01,c2.example,c2
        2026-11-02,phish.example,phishing
        2026-11-03,"other.example",
    """)
    entries = ioc.read(path)
    assert [e.category for e in entries] == ["c2", "phishing", None]
    assert ioc.select(entries, ["C2", "phishing"]) == ["c2.example", "phish.example"]
    assert ioc.domains_from({}, {ioc.ENV_FILE: str(path), ioc.ENV_CATEGORIES: "c2"}) == ["c2.example"]


def test_stix_bundle_takes_domain_indicators_only(tmp_path):
    def indicator(pattern, **extra):
        return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{len(pattern)}", "pattern": pattern,
                "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", **extra}

    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        indicator("[domain-name:value = 'a.example']", indicator_types=["malicious-activity"]),
        indicator("[domain-name:value = 'b.example' OR domain-name:value = 'c.example']"),
        indicator("[domain-name:value = 'revoked.example']", revoked=True),
        indicator("[domain-name:value = 'd.example' AND ipv4-addr:value = '203.0.113.1']"),  # more than a domain
        indicator("[url:value = 'http://e.example/x']"),
        {"type": "domain-name", "id": "domain-name--1", "value": "observed.example"},  # an observation, not an indicator
    ]}
    path = write(tmp_path, "b.json", json.dumps(bundle))
    entries = ioc.read(path)
    assert [e.domain for e in entries] == ["a.example", "b.example", "c.example"]
    assert entries[0].category == "malicious-activity"


@pytest.mark.parametrize("value, reason", [
    ("evil*.example", "not a domain name"),
    ('evil.example" OR 1=1', "not a domain name"),
    ("com", "single label"),
    ("a..example", "not a domain name"),
])
def test_bad_entry_is_refused_with_file_and_line(tmp_path, value, reason):
    path = write(tmp_path, "l.txt", f"good.example\n{value}\n")
    with pytest.raises(ioc.IocListError, match=rf"^{path}:2: .*{reason}"):
        ioc.read(path)


def test_unreadable_file_and_non_bundle_json_are_refused(tmp_path):
    with pytest.raises(ioc.IocListError, match="cannot read"):
        ioc.read(tmp_path / "missing.txt")
    with pytest.raises(ioc.IocListError, match="STIX 2.1 bundle"):
        ioc.read(write(tmp_path, "x.json", '{"objects": []}'))


def test_pipeline_resolves_the_list_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "l.txt", "evil.example\n")))
    (query_text,) = SplunkBackend(pipelines["route53_splunk"]()).convert(SigmaCollection.from_yaml(RULE))
    views = [event_from_raw(q.raw, q.source) for q in (query("x.evil.example."), query("notevil.example."))]
    assert [bool(spl_model.run(query_text, [v])) for v in views] == [True, False]


def test_pipeline_variable_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "l.txt", "env.example\n")))
    user = ProcessingPipeline.from_yaml("name: my list\npriority: 10\nvars:\n  ioc_domains: [var.example]\ntransformations: []\n")
    (query_text,) = SplunkBackend(pipelines["route53_splunk"]() + user).convert(SigmaCollection.from_yaml(RULE))
    assert "var.example" in query_text and "env.example" not in query_text


@pytest.mark.parametrize("pipeline", TARGETS)
def test_without_a_list_the_rule_is_not_expressible(pipeline, monkeypatch):
    monkeypatch.delenv(ioc.ENV_FILE, raising=False)
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=ioc.ENV_FILE):
        TARGETS[pipeline](pipelines[pipeline]()).convert(SigmaCollection.from_yaml(RULE))


def test_broken_list_is_a_configuration_error_naming_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "l.txt", "ok.example\nnot a domain\n")
    monkeypatch.setenv(ioc.ENV_FILE, str(path))
    with pytest.raises(SigmaConfigurationError, match=f"{path}:2"):
        SplunkBackend(pipelines["route53_splunk"]()).convert(SigmaCollection.from_yaml(RULE))


def test_engine_resolves_the_same_list_at_rule_load(tmp_path, monkeypatch):
    rule_file = write(tmp_path, "ioc.yml", RULE)
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "l.txt", "evil.example\n")))
    loaded = rules.load([rule_file])
    (rule,) = loaded.rules
    assert not loaded.errors and not rules.needs_ioc_list(rule)
    events = [query("evil.example."), query("a.evil.example."), query("evilexample."), query("evil.example.org.")]
    assert [a.event.record["query_name"] for a in Engine(loaded.collection).evaluate(rule, events)] == ["evil.example", "a.evil.example"]


def test_rule_load_reports_a_broken_list_and_leaves_the_placeholder_without_one(tmp_path, monkeypatch):
    rule_file = write(tmp_path, "ioc.yml", RULE)
    monkeypatch.delenv(ioc.ENV_FILE, raising=False)
    loaded = rules.load([rule_file])
    assert not loaded.errors and rules.needs_ioc_list(loaded.rules[0])
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "l.txt", "bad value\n")))
    loaded = rules.load([rule_file])
    assert [str(e) for e in loaded.errors] == [f"{rule_file}: {tmp_path / 'l.txt'}:1: 'bad value' is not a domain name (letters, digits, '-', '_' and dots only)"]


def test_scan_matches_the_listed_domains_and_passes_the_rule_over_without_a_list(tmp_path, monkeypatch, capsys):
    from r53sigma.cli import main

    rule_file = write(tmp_path, "ioc.yml", RULE)
    logs = tmp_path / "q.jsonl"
    logs.write_text("".join(json.dumps(q.raw) + "\n" for q in (query("a.evil.example."), query("example.org."))))
    monkeypatch.delenv(ioc.ENV_FILE, raising=False)
    assert main(["scan", "--no-progress", "--engine", "reference", "--rules", str(rule_file), str(logs)]) == 2  # no rule left to run
    assert f"no list for %ioc_domains% (set {ioc.ENV_FILE})" in capsys.readouterr().err
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "l.txt", "evil.example\n")))
    assert main(["scan", "--no-progress", "--engine", "reference", "--rules", str(rule_file), str(logs)]) == 0
    alerts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["event"]["query_name"] for a in alerts] == ["a.evil.example."]


def test_cloudwatch_takes_a_list_up_to_the_query_limit_and_refuses_past_it(tmp_path, monkeypatch):
    backend = lambda: cloudwatch_backends["cloudwatch"](pipelines["route53_cloudwatch"]())
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "short.txt", "evil.example\n")))
    (short,) = backend().convert(SigmaCollection.from_yaml(RULE))
    assert len(short) <= 10_000 and "evil" in short
    # names that share no prefix, so the regex cannot fold them into a short trie
    many = "".join(f"q{(i * 7919) % 100_003}z{i}.example\n" for i in range(1200))
    monkeypatch.setenv(ioc.ENV_FILE, str(write(tmp_path, "long.txt", many)))
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=r"more than the 10000 Logs Insights accepts") as refused:
        backend().convert(SigmaCollection.from_yaml(RULE))
    assert "\n" not in str(refused.value)
