"""The reference engine's Sigma semantics, one behaviour per test, rules inline."""
from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection

from r53sigma.scan.reference import Engine, EngineError, values_at
from r53sigma.scan.records import parse_record


def resolver(**fields):
    record = {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
        "query_timestamp": "2024-05-01T10:00:00Z", "query_name": "www.example.com.", "query_type": "A",
        "query_class": "IN", "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701",
        "transport": "UDP", "srcids": {"instance": "i-0abc"},
    }
    record.update(fields)
    return parse_record(record)


def dns_rule(detection: str, logsource: str = "{product: aws, service: route53resolver}"):
    text = f"title: t\nlogsource: {logsource}\ndetection:\n" + "\n".join("  " + l for l in detection.strip().splitlines())
    return SigmaCollection.from_yaml(text).rules[0]


def match(detection: str, event, **kw) -> bool:
    return Engine().matches(dns_rule(detection, **kw), event)


def test_string_match_is_case_insensitive_and_whole_value():
    assert match("sel: {rcode: nxdomain}\ncondition: sel", resolver(rcode="NXDOMAIN"))
    assert not match("sel: {rcode: nx}\ncondition: sel", resolver(rcode="NXDOMAIN"))


def test_cased_modifier_matches_exact_case_only():
    assert match("sel: {rcode|cased: NXDOMAIN}\ncondition: sel", resolver(rcode="NXDOMAIN"))
    assert not match("sel: {rcode|cased: nxdomain}\ncondition: sel", resolver(rcode="NXDOMAIN"))


def test_wildcards_star_and_question_mark():
    assert match("sel: {query_name: 'w?w.*.COM'}\ncondition: sel", resolver())
    assert not match("sel: {query_name: 'w?.*.com'}\ncondition: sel", resolver())


def test_escaped_wildcard_is_literal():
    assert match(r"sel: {query_name: 'a\*b.example.com'}" + "\ncondition: sel", resolver(query_name="a*b.example.com."))
    assert not match(r"sel: {query_name: 'a\*b.example.com'}" + "\ncondition: sel", resolver(query_name="axxb.example.com."))


def test_contains_startswith_endswith():
    event = resolver(query_name="abc.evil.example.com.")
    assert match("sel: {query_name|contains: EVIL}\ncondition: sel", event)
    assert match("sel: {query_name|startswith: abc.}\ncondition: sel", event)
    assert match("sel: {query_name|endswith: .example.com}\ncondition: sel", event)
    assert not match("sel: {query_name|endswith: .example}\ncondition: sel", event)


def test_trailing_dot_is_stripped_once_at_reading():
    event = resolver(query_name="evil.com.")
    assert event.record["query_name"] == "evil.com" and event.raw["query_name"] == "evil.com."
    assert match("sel: {query_name|endswith: evil.com}\ncondition: sel", event)


def test_all_modifier_needs_every_value():
    event = resolver(query_name="a.b.c.")
    assert match("sel: {query_name|contains|all: [a., b.]}\ncondition: sel", event)
    assert not match("sel: {query_name|contains|all: [a., x.]}\ncondition: sel", event)


def test_list_of_values_is_or():
    assert match("sel: {query_type: [TXT, A]}\ncondition: sel", resolver())


def test_re_is_search_and_case_sensitive_unless_i():
    event = resolver(query_name="ABC123.example.com.")
    assert match("sel: {query_name|re: '[0-9]{3}\\.'}\ncondition: sel", event)
    assert not match("sel: {query_name|re: '^abc'}\ncondition: sel", event)
    assert match("sel: {query_name|re|i: '^abc'}\ncondition: sel", event)


def test_re_multiline_and_dotall_flags():
    event = resolver(answers=[{"Rdata": "line1\nline2", "Type": "TXT", "Class": "IN"}])
    assert not match("sel: {answers.Rdata|re: '^line2'}\ncondition: sel", event)
    assert match("sel: {answers.Rdata|re|m: '^line2'}\ncondition: sel", event)
    assert match("sel: {answers.Rdata|re|s: 'line1.line2'}\ncondition: sel", event)


def test_cidr_v4_and_v6():
    assert match("sel: {srcaddr|cidr: 10.0.0.0/8}\ncondition: sel", resolver())
    assert not match("sel: {srcaddr|cidr: 192.168.0.0/16}\ncondition: sel", resolver())
    assert match("sel: {srcaddr|cidr: 'fd00::/8'}\ncondition: sel", resolver(srcaddr="fd00:ec2::254"))
    assert not match("sel: {srcaddr|cidr: 'fd00::/8'}\ncondition: sel", resolver(srcaddr="not-an-ip"))


def test_any_answer_matches_and_not_means_none_matches():
    event = resolver(answers=[{"Rdata": "1.2.3.4", "Type": "A", "Class": "IN"},
                              {"Rdata": "169.254.169.254", "Type": "A", "Class": "IN"}])
    assert match("sel: {answers.Rdata: 169.254.169.254}\ncondition: sel", event)
    assert not match("sel: {answers.Rdata: 169.254.169.254}\ncondition: not sel", event)
    assert match("sel: {answers.Rdata: 9.9.9.9}\ncondition: not sel", event)


def test_answer_names_lose_their_trailing_dot():
    event = resolver(answers=[{"Rdata": "host.ec2.internal.", "Type": "PTR", "Class": "IN"}])
    assert match("sel: {answers.Rdata: host.ec2.internal}\ncondition: sel", event)


def test_exists_and_null():
    blocked = resolver(firewall_rule_action="BLOCK")
    assert match("sel: {firewall_rule_action|exists: true}\ncondition: sel", blocked)
    assert not match("sel: {firewall_rule_action|exists: true}\ncondition: sel", resolver())
    assert match("sel: {firewall_rule_action|exists: false}\ncondition: sel", resolver())
    assert match("sel: {firewall_rule_action: null}\ncondition: sel", resolver())
    assert match("sel: {firewall_rule_action: null}\ncondition: sel", resolver(firewall_rule_action=None))
    assert not match("sel: {firewall_rule_action: null}\ncondition: sel", blocked)


def test_null_on_empty_answers():
    assert match("sel: {answers.Rdata: null}\ncondition: sel", resolver(answers=[]))


def test_numeric_comparison_on_numeric_strings():
    event = resolver(srcport="48701")
    assert match("sel: {srcport|gt: 1024}\ncondition: sel", event)
    assert match("sel: {srcport|lte: 48701}\ncondition: sel", event)
    assert not match("sel: {srcport|lt: 1024}\ncondition: sel", event)


def test_number_equality_against_string_field():
    assert match("sel: {srcport: 48701}\ncondition: sel", resolver(srcport="48701"))
    assert not match("sel: {srcport: 53}\ncondition: sel", resolver(srcport="48701"))


def test_base64offset_expansion_matches_encoded_text():
    import base64

    encoded = base64.b64encode(b"xxsecretyy").decode().rstrip("=")
    event = resolver(query_name=f"{encoded}.example.com.")
    assert match("sel: {query_name|base64offset|contains: secret}\ncondition: sel", event)
    assert not match("sel: {query_name|base64offset|contains: public}\ncondition: sel", event)


def test_windash_expansion():
    event = resolver(answers=[{"Rdata": "cmd /c whoami", "Type": "TXT", "Class": "IN"}])
    assert match("sel: {answers.Rdata|windash|contains: ' -c '}\ncondition: sel", event)


def test_keywords_match_any_value_or_raw_line():
    assert match("keywords: [NXDOMAIN]\ncondition: keywords", resolver(rcode="NXDOMAIN"))
    assert not match("keywords: [NXDOMAIN]\ncondition: keywords", resolver())
    line = parse_record("1.0 2017-12-13T08:15:50.342Z Z1 bad.example.com A NXDOMAIN UDP IAD12 55.36.5.7 -")
    assert match("keywords: ['* NXDOMAIN *']\ncondition: keywords", line, logsource="{product: aws, service: route53}")


def test_one_of_and_all_of_selectors():
    detection = "sel_a: {query_type: A}\nsel_b: {rcode: NXDOMAIN}\ncondition: "
    assert match(detection + "1 of sel_*", resolver())
    assert not match(detection + "all of sel_*", resolver())
    assert match(detection + "all of sel_*", resolver(rcode="NXDOMAIN"))
    assert match(detection + "1 of them", resolver())


def test_and_or_not_precedence():
    detection = "a: {query_type: A}\nb: {rcode: NXDOMAIN}\nc: {transport: TCP}\ncondition: a or b and c"
    assert match(detection, resolver())  # a or (b and c)
    assert not match(detection.replace("a or b and c", "(a or b) and c"), resolver())


def test_generic_dns_names_map_to_resolver_fields():
    event = resolver(query_name="x.example.com.", query_type="TXT",
                     answers=[{"Rdata": "v=spf1", "Type": "TXT", "Class": "IN"}])
    rule = "sel: {query: x.example.com, record_type: TXT, answer|startswith: v=}\ncondition: sel"
    assert match(rule, event, logsource="{category: dns}")


def test_rule_applies_only_to_its_own_log_source():
    trail = parse_record({"eventSource": "route53.amazonaws.com", "eventName": "DeleteHostedZone",
                          "eventTime": "2024-01-01T00:00:00Z"})
    assert not match("sel: {query_name|exists: false}\ncondition: sel", trail)


def test_cloudtrail_array_field_any_change():
    trail = parse_record({"eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
                          "eventTime": "2024-01-01T00:00:00Z", "requestParameters": {"changeBatch": {"changes": [
                              {"action": "CREATE", "resourceRecordSet": {"name": "a.example.com.", "type": "A"}},
                              {"action": "UPSERT", "resourceRecordSet": {"name": "example.com.", "type": "NS"}}]}}})
    rule = "sel: {eventName: changeresourcerecordsets, requestParameters.changeBatch.changes.resourceRecordSet.type: NS}\ncondition: sel"
    assert match(rule, trail, logsource="{product: aws, service: cloudtrail}")


def test_public_zone_line_fields():
    line = parse_record("1.0 2017-12-13T08:15:50.342Z Z1 bad.example.com A NXDOMAIN UDP IAD12 55.36.5.7 -")
    rule = "sel: {queryName: bad.example.com, responseCode: nxdomain, ednsClientSubnet: null}\ncondition: sel"
    assert match(rule, line, logsource="{product: aws, service: route53}")


def test_fieldref_compares_two_fields():
    event = resolver(query_name="10.0.0.5.", srcaddr="10.0.0.5")
    assert match("sel: {query_name|fieldref: srcaddr}\ncondition: sel", event)
    assert not match("sel: {query_name|fieldref: srcaddr}\ncondition: sel", resolver())


def test_unknown_field_is_an_error_naming_rule_and_field():
    with pytest.raises(EngineError, match="field 'qname'.*Route 53 Resolver"):
        match("sel: {qname: x}\ncondition: sel", resolver())


def test_unknown_logsource_is_an_error():
    with pytest.raises(EngineError, match="log source .*windows"):
        match("sel: {a: x}\ncondition: sel", resolver(), logsource="{product: windows}")


def test_values_at_walks_lists():
    record = {"a": [{"b": [1, 2]}, {"b": 3}, {"c": 4}]}
    assert values_at(record, ("a", "b")) == [1, 2, 3]


from hypothesis import given, settings, strategies as st  # noqa: E402

from r53sigma.scan import matchplan, predicates  # noqa: E402
from sigma.types import SigmaCasedString, SigmaString  # noqa: E402

_alphabet = st.sampled_from(list("aAbB.-*?"))
_texts = st.text(alphabet=st.sampled_from(list("aAbB.-")), max_size=8)


def _reference(pattern: str, text: str, cased: bool) -> bool:
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL | (0 if cased else re.IGNORECASE)) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=_alphabet, max_size=6), st.booleans()), min_size=1, max_size=4), _texts)
def test_merged_string_tests_agree_with_wildcard_regexes(patterns, text):
    values = [SigmaCasedString(p) if cased else SigmaString(p) for p, cased in patterns]
    expected = any(_reference(p, text, cased) for p, cased in patterns)
    plan = matchplan.strings_plan(values, dns_rule("sel: {rcode: x}\ncondition: sel"), "f")
    assert predicates.value_test(plan)(text) == expected
