"""`r53sigma verify`: the pack's queries, on every target, select what the reference engine selects."""
import shutil
from pathlib import Path

import pytest
import yaml

from r53sigma import cli, conversion, verify
from r53sigma.targets import registry

# Cells a target cannot state, each with the backend's or pipeline's documented reason.
NOT_EXPRESSIBLE = {
    # temporal_ordered: no ordered-sequence template in the ES|QL or Splunk backend, none in ours for
    # Logs Insights; the two chains across Resolver logs and CloudTrail also use aliases (refused too)
    *((chain, target) for chain in (
        "route_53_domain_hijack_transfer_lock_disabled_then_transfer_or_name_server_change",
        "dns_firewall_blocks_followed_by_rule_group_disassociation_in_the_same_vpc",
        "query_logging_deleted_after_dns_firewall_matches_in_the_same_account",
    ) for target in ("elasticsearch", "splunk", "cloudwatch")),
    # registered_domain/subdomain come from the Public Suffix List: Splunk SPL and CloudWatch (no
    # transformer, no Insights function) have none (the catalogue's `unavailable` reasons)
    *((rule, target) for rule in (
        "many_distinct_subdomains_of_one_registered_domain",
        "burst_of_queries_to_one_registered_domain_from_one_source",
        "burst_of_nxdomain_responses_under_one_registered_domain",
        "first_seen_registered_domain_queried_in_account",
    ) for target in ("splunk", "cloudwatch")),
    # first-seen rules (first_seen attribute): Logs Insights keeps no state between runs
    ("first_seen_dns_query_name_in_account", "cloudwatch"),
}


@pytest.fixture(scope="module")
def pack_report():
    return verify.run()


def test_every_pack_rule_and_target_is_verified(pack_report):
    assert not pack_report.problems
    rules = {c.rule for c in pack_report.cells}
    assert len(rules) == 59
    assert {c.target for c in pack_report.cells} == set(conversion.siem_targets())
    assert len(pack_report.cells) == 59 * 3
    assert not [c for c in pack_report.cells if c.status == verify.MODEL_GAP], verify.format_report(pack_report)


def test_every_pack_cell_agrees_or_is_documented_as_not_expressible(pack_report):
    if any(c.status == verify.SKIPPED for c in pack_report.cells):
        pytest.skip("Lucene unavailable: " + next(c.reason for c in pack_report.cells if c.status == verify.SKIPPED))
    assert not [c for c in pack_report.cells if not c.passed], verify.format_report(pack_report)
    not_expressible = {(c.rule, c.target) for c in pack_report.cells if c.status == verify.NOT_EXPRESSIBLE}
    assert not_expressible == NOT_EXPRESSIBLE, verify.format_report(pack_report)


def test_correlations_use_esql_and_single_event_rules_lucene(pack_report):
    languages = {c.rule: c.language for c in pack_report.cells if c.target == "elasticsearch"}
    assert languages["dns_query_flood_from_one_source"] == "esql"
    assert languages["telegram_bot_api_domain_queried"] == "lucene"


# ---------------------------------------------------------------- a rule of our own, its cases

RESOLVER_RULE = """
title: Verify fixture
id: 8b0e5a52-9a43-4a6b-9d51-3f0e2c1d7a10
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|endswith: '.evil.example'
    answer:
        answers.Rdata: 203.0.113.66
    condition: sel or answer
level: low
"""


def resolver(name: str, answers=(), **fields) -> dict:
    record = {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
        "query_timestamp": "2026-11-27T12:00:05Z", "query_name": name, "query_type": "A", "query_class": "IN",
        "rcode": "NOERROR", "answers": [{"Rdata": d, "Type": t, "Class": "IN"} for t, d in answers],
        "srcaddr": "10.0.1.23", "srcport": "53211", "transport": "UDP", "srcids": {"instance": "i-0abc"},
    }
    record.update(fields)
    return record


CASES = [
    {"name": "names in any case, answers in any position", "alerts": 3, "events": [
        resolver("WWW.Evil.Example."),
        resolver("cdn.example.com.", answers=[("CNAME", "edge.example.net."), ("A", "203.0.113.66")]),
        resolver("a.evil.example."),
        resolver("www.example.com.", answers=[("A", "198.51.100.1")]),
    ]},
]


@pytest.fixture
def fixture_rule(tmp_path):
    rules = tmp_path / "rules"
    cases = tmp_path / "cases"
    rules.mkdir()
    cases.mkdir()
    (rules / "verify_fixture.yml").write_text(RESOLVER_RULE)
    (cases / "verify_fixture.yml").write_text(yaml.safe_dump({"rule": "verify_fixture", "cases": CASES}))
    return rules, cases


def cells(rules: Path, cases: Path) -> dict[str, verify.Cell]:
    report = verify.run(cases, [rules])
    assert not report.problems
    return {c.target: c for c in report.cells}


def test_fixture_agrees_on_every_target(fixture_rule):
    result = cells(*fixture_rule)
    assert {t: c.status for t, c in result.items()} in (
        {t: verify.AGREE for t in conversion.siem_targets()},
        {"elasticsearch": verify.SKIPPED, "splunk": verify.AGREE, "cloudwatch": verify.AGREE},
    )


def _with_extra_steps(monkeypatch, target: str, *items):
    """Break one target's pipeline by appending processing items to it."""
    from sigma.processing.pipeline import ProcessingPipeline

    original = conversion._pipeline

    def broken(name):
        pipeline = original(name)
        if name == registry.get(target).pipeline:
            pipeline = pipeline + ProcessingPipeline(items=list(items))
        return pipeline
    monkeypatch.setattr(conversion, "_pipeline", broken)


def test_a_wrong_field_name_makes_verify_fail(fixture_rule, monkeypatch):
    from sigma.processing.pipeline import ProcessingItem
    from sigma.processing.transformations import FieldMappingTransformation

    _with_extra_steps(monkeypatch, "splunk", ProcessingItem(FieldMappingTransformation({"query": "dns_query"})))
    result = cells(*fixture_rule)
    assert result["splunk"].status == verify.DISAGREE
    assert "dns_query" in result["splunk"].query
    assert result["cloudwatch"].status == verify.AGREE


def test_a_dropped_case_folding_makes_verify_fail(fixture_rule, monkeypatch):
    if shutil.which("java") is None:
        pytest.skip("Lucene unavailable: no java")
    from sigma.pipelines.route53 import elasticsearch as es_pipeline

    monkeypatch.setattr(es_pipeline, "is_caseless", lambda value: False)  # values stay on the case-sensitive keyword
    result = cells(*fixture_rule)
    assert result["elasticsearch"].status == verify.DISAGREE
    assert result["elasticsearch"].mismatches[0].expected == {1, 2, 3}
    assert result["elasticsearch"].mismatches[0].got == {2, 3}


def test_an_any_answer_bug_makes_verify_fail(fixture_rule, monkeypatch):
    from sigma.pipelines.route53 import cloudwatch as cw_pipeline

    facts = cw_pipeline.field_facts

    def first_answer_only(view):  # as if arrays were not catalogued: the field is read as a plain field
        return {name: {k: v for k, v in entry.items() if k not in ("array", "member")}
                for name, entry in facts(view).items()}
    monkeypatch.setattr(cw_pipeline, "field_facts", first_answer_only)
    result = cells(*fixture_rule)
    assert result["cloudwatch"].status == verify.DISAGREE
    assert result["cloudwatch"].mismatches[0].got == {1, 3}


def test_a_refused_rule_is_not_expressible_with_the_reason(tmp_path):
    rules, cases = tmp_path / "rules", tmp_path / "cases"
    rules.mkdir()
    cases.mkdir()
    (rules / "cased_answer.yml").write_text(RESOLVER_RULE.replace("answers.Rdata: 203.0.113.66",
                                                                  "answers.Rdata|re: '^203\\.0\\.113\\.6[0-9]$'"))
    (cases / "cased_answer.yml").write_text(yaml.safe_dump({"rule": "cased_answer", "cases": CASES}))
    result = cells(rules, cases)
    assert result["cloudwatch"].status == verify.NOT_EXPRESSIBLE
    assert "regular expression" in result["cloudwatch"].reason
    assert result["cloudwatch"].passed


def test_regex_inside_or_agrees_on_splunk(tmp_path):
    """pySigma's Splunk backend alone moves `|re` out of an OR into `| rex ... | search OR cond="true"`
    (the base search then requires the other branch, and Splunk rejects a search starting with OR);
    route53_splunk computes the regex as an eval flag before one search that keeps the OR."""
    rules, cases = tmp_path / "rules", tmp_path / "cases"
    rules.mkdir()
    cases.mkdir()
    (rules / "re_or.yml").write_text(RESOLVER_RULE.replace("answers.Rdata: 203.0.113.66", "query_name|re: '^cdn[.]'"))
    (cases / "re_or.yml").write_text(yaml.safe_dump({"rule": "re_or", "cases": CASES}))
    result = cells(rules, cases)
    assert result["splunk"].status == verify.AGREE, result["splunk"]
    assert "search OR" not in result["splunk"].query and " OR " in result["splunk"].query


def test_lucene_unavailable_is_a_skip_with_its_reason(fixture_rule, monkeypatch):
    from r53sigma.targets.elasticsearch import lucene_engine

    def no_java(self):
        raise lucene_engine.LuceneUnavailable("java not found")
    monkeypatch.setattr(lucene_engine.LuceneEngine, "__init__", no_java)
    result = cells(*fixture_rule)
    assert result["elasticsearch"].status == verify.SKIPPED
    assert "java not found" in result["elasticsearch"].reason


def test_esql_leaves_out_null_group_keys_like_the_engine(tmp_path):
    """The settled semantic question: an event without the group-by value. The engine (and Splunk,
    and Logs Insights) leave it out; ES|QL puts it in a null group, so the pack's ES|QL filters the
    null out (the model groups nulls, so a query without the filter would disagree here)."""
    rules, cases = tmp_path / "rules", tmp_path / "cases"
    rules.mkdir()
    cases.mkdir()
    (rules / "by_instance.yml").write_text("""
title: Blocks by instance
id: 3c3f0e61-0a4b-4c8e-9a53-6f5a7e1f2b90
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        firewall_rule_action: BLOCK
    condition: sel
---
title: Many blocks by instance
id: 0c0a8d4e-3e27-4d5e-8a2f-1b9c4d7e6f01
status: test
correlation:
    type: event_count
    rules: [3c3f0e61-0a4b-4c8e-9a53-6f5a7e1f2b90]
    group-by: [srcids.instance]
    timespan: 10m
    condition: {gte: 2}
level: low
""")
    events = [resolver("x.example.com.", srcids={}, firewall_rule_action="BLOCK") for _ in range(3)]
    (cases / "by_instance.yml").write_text(yaml.safe_dump(
        {"rule": "by_instance", "cases": [{"name": "no instance id", "alerts": 0, "events": events}]}))
    result = cells(rules, cases)
    assert result["splunk"].status == verify.AGREE
    assert result["cloudwatch"].status == verify.AGREE
    assert result["elasticsearch"].status == verify.AGREE, result["elasticsearch"].reason
    assert "srcids" not in result["elasticsearch"].query and "cloud.instance.id is not null" in result["elasticsearch"].query


def test_cli_prints_the_matrix_and_exits_by_the_result(fixture_rule, capsys):
    rules, cases = fixture_rule
    code = cli.main(["verify", "--cases", str(cases), str(rules), "-t", "splunk", "-t", "cloudwatch"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["rule", "splunk", "cloudwatch"]
    assert "verify_fixture" in out and "agree (1)" in out


def test_cli_fails_on_a_disagreement(fixture_rule, capsys, monkeypatch):
    from sigma.processing.pipeline import ProcessingItem
    from sigma.processing.transformations import FieldMappingTransformation

    _with_extra_steps(monkeypatch, "splunk", ProcessingItem(FieldMappingTransformation({"answer": "answers{}.Type"})))
    rules, cases = fixture_rule
    assert cli.main(["verify", "--cases", str(cases), str(rules), "-t", "splunk"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREE: verify_fixture on splunk (spl)" in out
    assert "reference engine matches events 1, 2, 3, target matches events 1, 3" in out


def test_a_rule_without_cases_is_a_problem(tmp_path, fixture_rule):
    rules, cases = fixture_rule
    (rules / "other.yml").write_text(RESOLVER_RULE.replace("8b0e5a52-9a43-4a6b-9d51-3f0e2c1d7a10",
                                                           "8b0e5a52-9a43-4a6b-9d51-3f0e2c1d7a11"))
    report = verify.run(cases, [rules], ("splunk",))
    assert not report.ok
    assert any("no test case names this rule" in p for p in report.problems)
