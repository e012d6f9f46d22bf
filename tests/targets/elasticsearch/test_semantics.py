"""Elasticsearch bug classes of issue 12: each rule inline, converted by the pack, then run on the
real Lucene (via ``r53sigma verify``'s harness) or the ES|QL model and compared with the reference
engine on raw events that sit on both sides of each value."""
from __future__ import annotations

import textwrap

import pytest
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from r53sigma import catalogue
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
    rule = resolver_rule("sel:\n  query_name|re: 'a@b|c~d|e<1-2>|\"q\"|[+/]{2}x'\ncondition: sel")
    names = ["xa@b.example", "ab.example", "c~d.example", "cd.example", "e<1-2>.example", "e1.example", "\"q\"",
             "a+/x.example", "a++.example"]
    assert_agrees(elastic_cell(tmp_path, rule, [resolver_record(n) for n in names]))


@pytest.mark.parametrize("pattern, reason", [
    ("a^b", "anchor"), ("evil\\b", "word boundaries"), ("(?=a)b", "look-ahead"), ("(a)\\1", "back-references"),
])
def test_regex_lucene_cannot_state_is_refused(pattern, reason):
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=f"not expressible in Elasticsearch: .*{reason}"):
        convert(resolver_rule(f"sel:\n  query_name|re: '{pattern}'\ncondition: sel"), "lucene")


# ---------------------------------------------------------------- 2. every value type routed to .caseless


def test_windash_expansion_goes_to_the_caseless_field_like_plain_values(tmp_path):
    rule = resolver_rule("sel:\n  query_name|windash|contains: '-EVIL'\ncondition: sel")
    names = ["x-evil.example", "x/Evil.example", "X-EVIL.example", "xevil.example"]
    cell = elastic_cell(tmp_path, rule, [resolver_record(n) for n in names])
    assert_agrees(cell)
    assert cell.query.startswith("dns.question.name.caseless:")


def test_base64offset_expansion_goes_to_the_caseless_field(tmp_path):
    rule = resolver_rule("sel:\n  query_name|base64offset|contains: abc\ncondition: sel")
    names = ["ywjj.example", "YWJj.example", "x.ywjj.example", "yw.example"]
    assert_agrees(elastic_cell(tmp_path, rule, [resolver_record(n) for n in names]))


def test_expansion_on_a_single_case_field_is_folded_like_plain_values(tmp_path):
    rule = resolver_rule("sel:\n  rcode|windash: '-nxdomain'\ncondition: sel")
    raws = [resolver_record("a.example", rcode=code) for code in ("-NXDOMAIN", "/NXDOMAIN", "NXDOMAIN")]
    assert_agrees(elastic_cell(tmp_path, rule, raws))


# ---------------------------------------------------------------- 3. ip-typed fields


def test_prefix_on_an_ip_field_uses_the_keyword_companion(tmp_path):
    rule = resolver_rule("sel:\n  srcaddr|startswith: '172.31.'\ncondition: sel")
    raws = [resolver_record("a.example", srcaddr=a) for a in ("172.31.86.159", "172.3.1.1", "10.172.31.1", "fd00::172:31")]
    cell = elastic_cell(tmp_path, rule, raws)
    assert_agrees(cell)
    assert cell.query == "source.address:172.31.*"


def test_contains_and_regex_on_an_ip_field_use_the_keyword_companion(tmp_path):
    rule = resolver_rule("sel:\n  srcaddr|contains: ':ABCD:'\nre:\n  srcaddr|re: '\\.5$'\ncondition: sel or re")
    raws = [resolver_record("a.example", srcaddr=a) for a in ("fd00:abcd::1", "fd00::1", "10.0.0.5", "10.0.0.50")]
    assert_agrees(elastic_cell(tmp_path, rule, raws))


def test_cidr_and_exact_addresses_on_an_ip_field(tmp_path):
    rule = resolver_rule("sel:\n  srcaddr|cidr: 10.0.0.0/8\nhost:\n  srcaddr: 192.0.2.7\ncondition: sel or host")
    raws = [resolver_record("a.example", srcaddr=a) for a in ("10.1.2.3", "11.0.0.1", "192.0.2.7", "192.0.2.70")]
    cell = elastic_cell(tmp_path, rule, raws)
    assert_agrees(cell)
    assert "source.ip:10.0.0.0" in cell.query


def test_pattern_on_a_numeric_field_is_refused():
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="'srcport', a field Elasticsearch maps as long"):
        convert(resolver_rule("sel:\n  srcport|startswith: '4'\ncondition: sel"), "lucene")


# ---------------------------------------------------------------- harness as strict as Elasticsearch


@pytest.fixture(scope="module")
def lucene():
    from r53sigma.targets.elasticsearch.lucene_engine import LuceneEngine, LuceneUnavailable

    try:
        return LuceneEngine()
    except LuceneUnavailable as reason:
        pytest.skip(f"real Lucene unavailable: {reason}")


@pytest.mark.parametrize("query", ["source.ip:172.31.*", "source.ip:/172\\..*/", "source.port:4*", "@timestamp:2026*",
                                   "source.ip:notanaddress", "source.port:abc"])
def test_harness_fails_wildcard_regexp_and_bad_terms_on_typed_fields(lucene, query):
    document = [("source.ip", "ip", "172.31.0.1"), ("source.port", "long", "40000"), ("@timestamp", "date", "2026-01-01T00:00:00.000Z")]
    answer = lucene.search([document], {"q": query})["q"]
    assert isinstance(answer, str), f"Elasticsearch rejects {query!r}, the harness matched {answer}"


@pytest.mark.parametrize("query", ["f.caseless:EVIL*", "f.caseless:/EVIL.*/", "f.caseless:Evil.example", "f.caseless:*VIL?example"])
def test_harness_normalizes_wildcard_regexp_and_term_text_on_a_normalized_keyword(lucene, query):
    document = [("f", "keyword", "Evil.Example"), ("f.caseless", "normalized", "evil.example")]
    assert lucene.search([document], {"q": query})["q"] == {0}


# ---------------------------------------------------------------- 6. sourceIPAddress|cidr


def cloudtrail_record(source_ip: str, **extra) -> dict:
    record = {"eventVersion": "1.08", "eventTime": "2026-01-01T00:00:00Z", "eventSource": "route53.amazonaws.com",
              "eventName": "ChangeResourceRecordSets", "awsRegion": "us-east-1", "sourceIPAddress": source_ip,
              "userAgent": "aws-cli/2", "eventID": "1cdbea14-e162-43bb-8853-f9f86d4739ca", "eventType": "AwsApiCall",
              "recipientAccountId": "111122223333",
              "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a", "accountId": "111122223333"}}
    record.update(extra)
    return record


CLOUDTRAIL_RULE = """
title: test
id: 6a1d9c3e-0000-4000-8000-000000000002
status: test
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        sourceIPAddress|cidr: 203.0.113.0/24
    condition: sel
level: low
"""


def test_cloudtrail_source_ip_cidr_uses_source_ip(tmp_path):
    raws = [cloudtrail_record(a) for a in ("203.0.113.9", "203.0.114.9", "route53.amazonaws.com", "2001:db8::1")]
    cell = elastic_cell(tmp_path, CLOUDTRAIL_RULE, raws)
    assert_agrees(cell)
    assert cell.query == "source.ip:203.0.113.0\\/24"


# ---------------------------------------------------------------- 5. a single case only where AWS guarantees it


def cloudtrail_rule(detection: str) -> str:
    return f"""
title: test
id: 6a1d9c3e-0000-4000-8000-000000000003
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
{textwrap.indent(textwrap.dedent(detection).strip(), '    ')}
level: low
"""


def record_set_change(name: str, action: str = "CREATE") -> dict:
    return cloudtrail_record("192.0.2.1", requestParameters={
        "hostedZoneId": "Z1D633PJN98FT9",
        "changeBatch": {"changes": [{"action": action, "resourceRecordSet": {"name": name, "type": "A"}}]}})


def test_caller_written_record_set_name_is_not_claimed_lower_case():
    field = catalogue.load()["cloudtrail"].fields["requestParameters.changeBatch.changes.resourceRecordSet.name"]
    assert field.values == "mixed"


def test_letterless_value_on_a_caller_written_flattened_key_matches_exactly(tmp_path):
    rule = cloudtrail_rule("sel:\n  requestParameters.changeBatch.changes.resourceRecordSet.name|startswith: '\\*.'\ncondition: sel")
    raws = [record_set_change(n) for n in ("*.Example.COM.", "*.example.com.", "www.example.com.", "x*.example.com.")]
    assert_agrees(elastic_cell(tmp_path, rule, raws))


def test_case_insensitive_value_with_letters_on_a_flattened_key_is_refused(tmp_path):
    rule = cloudtrail_rule("sel:\n  requestParameters.changeBatch.changes.resourceRecordSet.name: www.example.com.\ncondition: sel")
    cell = elastic_cell(tmp_path, rule, [record_set_change(n) for n in ("WWW.Example.com.", "www.example.com.")])
    assert cell.status == verify.NOT_EXPRESSIBLE, cell
    assert "no normalizer" in cell.reason


def test_api_enum_on_a_flattened_key_is_folded_to_its_documented_case(tmp_path):
    rule = cloudtrail_rule("sel:\n  requestParameters.changeBatch.changes.action: upsert\ncondition: sel")
    raws = [record_set_change("a.example.", action) for action in ("UPSERT", "CREATE")]
    assert_agrees(elastic_cell(tmp_path, rule, raws))


def test_contains_on_a_flattened_key_is_refused():
    rule = cloudtrail_rule("sel:\n  requestParameters.changeBatch.changes.resourceRecordSet.name|contains: '123'\ncondition: sel")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="exact and prefix queries"):
        convert(rule, "lucene")


@pytest.mark.parametrize("query, result", [("k.name:*.example", None), ("k.name:/.*x/", None), ("k.name:www*", {0}), ("k.name:www.x", {0})])
def test_harness_takes_only_term_and_prefix_queries_on_flattened_keys(lucene, query, result):
    answer = lucene.search([[("k.name", "flattened", "www.x")]], {"q": query})["q"]
    assert answer == result if result is not None else isinstance(answer, str), answer


# ---------------------------------------------------------------- 4. ES|QL: strings, LIKE, correlations


def esql_agrees(rule_text: str, raws: list) -> str:
    """Convert a single-event rule to ES|QL (stock ESQLBackend + the pack pipeline), type-check it and
    run it on the ES|QL model over the documents the pack's ingest pipeline writes; compare with the
    reference engine. Returns the query."""
    from sigma.collection import SigmaCollection

    from r53sigma.scan.reference import Engine
    from r53sigma.scan.records import parse_record

    query = convert(rule_text, "esql")
    (rule,) = SigmaCollection.from_yaml(textwrap.dedent(rule_text)).rules
    case = verify.Case(rule_ref="inline", name="case", raws=raws)
    case.events = [parse_record(raw, file="inline", line=n) for n, raw in enumerate(raws, 1)]
    expected = verify._reference(Engine(SigmaCollection([rule])), rule, case)
    from r53sigma.targets.elasticsearch.verify import ElasticsearchVerifier

    assert ElasticsearchVerifier().evaluate("esql", query, rule, case, verify._source_of(rule)) == expected, query
    return query


def test_esql_string_escapes_outside_the_grammar_are_syntax_errors():
    from r53sigma.targets.elasticsearch import esql_model

    for literal in ('"a\\*b"', '"a\\?"', '"line\nbreak"', '"a\\.b"'):
        with pytest.raises(esql_model.QuerySyntaxError, match="outside the ES|QL grammar"):
            esql_model.Query.parse(f"from x | where f == {literal}")
    assert esql_model.Query.parse('from x | where f == "t\\\\ab\\"\\n"').steps[0][1].args[1].value == 't\\ab"\n'


def test_esql_literal_wildcard_characters_in_values(tmp_path):
    rule = resolver_rule("sel:\n  query_name|contains: 'a\\*b'\neq:\n  query_name: 'x\\?y'\ncondition: sel or eq")
    query = esql_agrees(rule, [resolver_record(n) for n in ("a*b.example", "axb.example", "x?y", "xzy", "A*B.example")])
    assert '\\*' not in query.replace('\\\\*', '')


def test_esql_like_escapes_a_literal_backslash_for_like_and_for_the_string(tmp_path):
    rule = resolver_rule("sel:\n  query_name|contains: 'a\\\\b'\ncondition: sel")
    query = esql_agrees(rule, [resolver_record(n) for n in ("a\\b.example", "ab.example", "a\\\\b.example", "A\\B")])
    assert 'like "*a\\\\\\\\b*"' in query


CORRELATION = """
title: a
name: rule_a
id: 6a1d9c3e-0000-4000-8000-0000000000a1
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|endswith: '.evil.example'
    condition: sel
level: low
---
title: b
name: rule_b
id: 6a1d9c3e-0000-4000-8000-0000000000b1
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|startswith: 'x.'
    condition: sel
level: low
---
title: correlated
id: 6a1d9c3e-0000-4000-8000-0000000000c1
status: test
correlation:
    type: %s
    rules: [rule_a, rule_b]
    group-by: [srcids.instance]
    timespan: 5m
%s
level: medium
"""


def on_instance(name: str, instance: str | None, second: int = 0) -> dict:
    record = resolver_record(name, query_timestamp=f"2026-01-01T00:00:{second:02d}Z")
    record["srcids"] = {"instance": instance} if instance else {}
    return record


def test_esql_temporal_counts_an_event_for_every_rule_it_matches(tmp_path):
    raws = [on_instance("x.evil.example", "i-1"), on_instance("x.good.example", "i-2"), on_instance("a.evil.example", "i-3")]
    cell = elastic_cell(tmp_path, CORRELATION % ("temporal", ""), raws)
    assert cell.language == "esql"
    assert_agrees(cell)


def test_esql_temporal_leaves_out_events_without_a_group_by_value(tmp_path):
    raws = [on_instance("x.good.example", None), on_instance("a.evil.example", None, 1), on_instance("a.evil.example", "i-1", 2)]
    assert_agrees(elastic_cell(tmp_path, CORRELATION % ("temporal", ""), raws))


def test_esql_event_count_leaves_out_events_without_a_group_by_value(tmp_path):
    rule = CORRELATION % ("event_count", "    condition:\n        gte: 2")
    raws = [on_instance("a.evil.example", None), on_instance("b.evil.example", None, 1), on_instance("c.evil.example", "i-1", 2)]
    assert_agrees(elastic_cell(tmp_path, rule, raws))


# ---------------------------------------------------------------- 14. refusals skip the rule in stock sigma-cli


def test_flattened_key_in_a_plain_esql_rule_reads_its_keyword_companion():
    """ES|QL reads a flattened field only whole: a catalogued request key is read from the keyword
    companion the @custom ingest pipeline fills; Lucene keeps the flattened key."""
    rule = cloudtrail_rule("sel:\n  requestParameters.ruleType: FORWARD\ncondition: sel")
    assert 'r53sigma.cloudtrail.request_parameters.ruleType=="FORWARD"' in convert(rule, "esql")
    assert "aws.cloudtrail.flattened.request_parameters.ruleType:FORWARD" in convert(rule, "lucene")


def test_flattened_key_without_a_companion_is_refused_in_esql():
    rule = cloudtrail_rule("sel:\n  responseElements.firewallRuleGroupAssociation.vpcId: vpc-1\ncondition: sel")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="ES|QL reads a flattened field only whole"):
        convert(rule, "esql")


def test_sigma_cli_skip_unsupported_converts_the_other_rules(tmp_path):
    from click.testing import CliRunner
    from sigma.cli.convert import convert as sigma_convert

    (tmp_path / "flattened.yml").write_text(textwrap.dedent(cloudtrail_rule("sel:\n  responseElements.firewallRuleGroupAssociation.vpcId: vpc-1\ncondition: sel")))
    (tmp_path / "plain.yml").write_text(textwrap.dedent(resolver_rule("sel:\n  query_name|endswith: '.evil.example'\ncondition: sel")))
    result = CliRunner().invoke(sigma_convert, ["-s", "-t", "esql", "-p", "route53_elasticsearch", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("from logs-") == 1
    assert 'ends_with(dns.question.name.caseless, ".evil.example")' in result.output


def test_esql_cloudtrail_source_ip_cidr_and_ip_prefix_on_the_keyword_companion():
    raws = [cloudtrail_record(a) for a in ("203.0.113.9", "203.0.114.9", "route53.amazonaws.com")]
    assert "cidr_match(source.ip" in esql_agrees(CLOUDTRAIL_RULE, raws)
    rule = resolver_rule("sel:\n  srcaddr|startswith: '172.31.'\ncondition: sel")
    query = esql_agrees(rule, [resolver_record("a.example", srcaddr=a) for a in ("172.31.86.159", "172.3.1.1", "10.172.31.1")])
    assert 'starts_with(source.address, "172.31.")' in query


def test_esql_temporal_correlation_with_literal_wildcards_and_backslashes(tmp_path):
    rule = CORRELATION.replace("query_name|endswith: '.evil.example'", "query_name|contains: '.e\\*vil\\\\x'") % ("temporal", "")
    raws = [on_instance("x.e*vil\\x.a", "i-1"), on_instance("x.evil\\x.a", "i-2"), on_instance("x.e*vil\\\\x.a", "i-3")]
    cell = elastic_cell(tmp_path, rule, raws)
    assert_agrees(cell)
    assert 'like "*.e\\\\*vil\\\\\\\\x*"' in cell.query
