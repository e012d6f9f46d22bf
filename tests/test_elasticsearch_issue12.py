"""Elasticsearch bug classes of issue 12: each rule inline, converted by the pack, then run on the
real Lucene (via ``r53sigma verify``'s harness) or the ES|QL model and compared with the reference
engine on raw events that sit on both sides of each value."""
from __future__ import annotations

import textwrap

import pytest
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from r53sigma import rules as rule_loading
from r53sigma import verify
from support import convert, resolver_rule


def resolver_record(name: str, answers=(), srcaddr: str = "10.0.0.5", **extra) -> dict:
    record = {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
              "query_timestamp": "2026-01-01T00:00:00Z", "query_name": name + ".", "query_type": "A",
              "query_class": "IN", "rcode": "NOERROR", "srcaddr": srcaddr, "srcport": "40000",
              "transport": "UDP", "srcids": {"instance": "i-0123456789abcdef0"},
              "answers": [{"Rdata": data, "Type": kind, "Class": "IN"} for kind, data in answers]}
    record.update(extra)
    return record


def elastic_cell(tmp_path, rule_text: str, raws: list) -> verify.Cell:
    """The Elasticsearch cell of ``r53sigma verify`` for one inline rule on ``raws``: the query run on
    real Lucene (single-event rules) or the ES|QL model (correlations) against the reference engine."""
    path = tmp_path / "rule.yml"
    path.write_text(textwrap.dedent(rule_text), encoding="utf-8")
    loaded = rule_loading.load([path])
    assert not loaded.errors, loaded.errors
    (rule,) = loaded.top_level()
    case = verify.Case(rule_ref=str(path), name="case", raws=raws)
    report = verify.verify([path], loaded, [(rule, case)], ("elasticsearch",))
    assert not report.problems, report.problems
    (cell,) = report.cells
    if cell.status == verify.SKIPPED:
        pytest.skip(cell.reason)
    return cell


def assert_agrees(cell: verify.Cell) -> None:
    assert cell.status == verify.AGREE, f"{cell.status}: {cell.reason} {[str(m) for m in cell.mismatches]}\n{cell.query}"


# ---------------------------------------------------------------- 1. |re through its parsed structure


def test_regex_top_level_alternation_keeps_each_branch_anchor(tmp_path):
    rule = resolver_rule("sel:\n  query_name|re: '^wpad\\.|\\.local$'\ncondition: sel")
    names = ["wpad.corp.example", "host.local", "x.wpad.corp", "local.example", "wpad.local", "good.example"]
    cell = elastic_cell(tmp_path, rule, [resolver_record(n) for n in names])
    assert_agrees(cell)
    assert cell.query == "dns.question.name:/(wpad\\.).*|.*(\\.local)/"


def test_regex_inner_anchor_in_a_leading_group_converts(tmp_path):
    rule = resolver_rule("sel:\n  query_name|re: '(^|\\.)evil\\.net$'\ncondition: sel")
    names = ["evil.net", "a.evil.net", "notevil.net", "evil.net.example", "b.a.evil.net"]
    assert_agrees(elastic_cell(tmp_path, rule, [resolver_record(n) for n in names]))


def test_regex_scoped_ignorecase_group_and_shorthand_classes(tmp_path):
    rule = resolver_rule("sel:\n  query_name|re: '^x(?i:ab)\\d+[^\\w.]'\ncondition: sel")
    names = ["xAB12-y.example", "xab1_y.example", "XAB1-y.example", "xAb9-", "xab-1.example"]
    assert_agrees(elastic_cell(tmp_path, rule, [resolver_record(n) for n in names]))


def test_regex_lucene_operator_characters_are_literals(tmp_path):
    rule = resolver_rule("sel:\n  query_name|re: 'a@b|c~d|e<1-2>|\"q\"'\ncondition: sel")
    names = ["xa@b.example", "ab.example", "c~d.example", "cd.example", "e<1-2>.example", "e1.example", "\"q\""]
    assert_agrees(elastic_cell(tmp_path, rule, [resolver_record(n) for n in names]))


@pytest.mark.parametrize("pattern, reason", [
    ("a^b", "anchor"), ("evil\\b", "word boundaries"), ("(?=a)b", "look-ahead"), ("(a)\\1", "back-references"),
])
def test_regex_lucene_cannot_state_is_refused(pattern, reason):
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=f"not expressible in Elasticsearch: .*{reason}"):
        convert(resolver_rule(f"sel:\n  query_name|re: '{pattern}'\ncondition: sel"), "lucene")
