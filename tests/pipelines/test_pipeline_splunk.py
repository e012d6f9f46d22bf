"""route53_splunk: CIM names for DNS, raw names for CloudTrail, every query scoped by sourcetype."""
import pytest
from sigma.exceptions import SigmaTransformationError

from r53sigma import catalogue
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.events import event_from_raw
from support import convert, resolver_rule


def splunk_matches(query: str, raw_records: list) -> set[int]:
    """Raw records -> events as the pack's add-on extracts them -> the SPL model."""
    return {i for i, raw in enumerate(raw_records) if spl_model.selects(query, event_from_raw(raw))}


def resolver_record(name: str, qtype: str = "A", answers=(), rcode: str = "NOERROR") -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": "2026-01-01T00:00:00Z", "query_name": name, "query_type": qtype,
            "query_class": "IN", "rcode": rcode, "srcaddr": "10.0.0.5", "srcport": "40000",
            "transport": "UDP", "srcids": {},
            "answers": [{"Rdata": data, "Type": kind, "Class": "IN"} for kind, data in answers]}


def test_every_catalogued_field_is_mapped_to_its_splunk_name():
    for log_source in catalogue.log_sources():
        logsource = ", ".join(f"{k}: {v}" for k, v in log_source.logsource.items())
        sourcetype = log_source.targets["splunk"]["sourcetype"]
        for name, field in log_source.fields.items():
            if field.type != "string" or name == log_source.timestamp:
                continue
            query = convert(f"""
                title: t
                status: test
                logsource: {{{logsource}}}
                detection:
                    sel:
                        {name}: 'v'
                    condition: sel
                """, "splunk")
            splunk_name = field.target("splunk").name
            quoted = f'"{splunk_name}"' if "{" in splunk_name else splunk_name
            assert query == f'sourcetype="{sourcetype}" {quoted}="v"', (log_source.source, name)


def test_dns_fields_use_cim_names():
    query = convert(resolver_rule("""
        sel:
          query_name|endswith: '.evil.com'
          query_type: TXT
          rcode: NXDOMAIN
          answers.Rdata: 1.2.3.4
          srcaddr|cidr: 10.0.0.0/8
        condition: sel"""), "splunk")
    assert query == ('sourcetype="aws:route53:resolver" query="*.evil.com" record_type="TXT" '
                     'reply_code="NXDOMAIN" answer="1.2.3.4" src="10.0.0.0/8"')


def test_public_zone_is_scoped_by_its_sourcetype():
    query = convert("""
        title: t
        status: test
        logsource: {product: aws, service: route53}
        detection:
            sel:
                queryType: [ANY, AXFR]
            condition: sel
        """, "splunk")
    assert query == 'sourcetype="aws:route53:public" record_type IN ("ANY", "AXFR")'


def test_cloudtrail_keeps_raw_names_and_array_paths():
    query = convert("""
        title: t
        status: test
        logsource: {product: aws, service: cloudtrail}
        detection:
            sel:
                eventName: ChangeResourceRecordSets
                requestParameters.changeBatch.changes.resourceRecordSet.type: NS
            condition: sel
        """, "splunk")
    assert query == ('sourcetype="aws:cloudtrail" eventName="ChangeResourceRecordSets" '
                     '"requestParameters.changeBatch.changes{}.resourceRecordSet.type"="NS"')


def test_sourcetype_condition_binds_to_the_whole_or():
    query = convert(resolver_rule("""
        a:
          query_type: TXT
        b:
          query_type: 'NULL'
        condition: a or b"""), "splunk")
    assert query == 'sourcetype="aws:route53:resolver" record_type IN ("TXT", "NULL")'
    query = convert(resolver_rule("""
        a:
          query_type: TXT
        b:
          rcode: NXDOMAIN
        condition: a or b"""), "splunk")
    # Splunk's search evaluates OR before the implicit AND: this is sourcetype AND (TXT OR NXDOMAIN).
    assert query == 'sourcetype="aws:route53:resolver" record_type="TXT" OR reply_code="NXDOMAIN"'


def test_cased_value_becomes_case_sensitive_regex():
    query = convert(resolver_rule("sel:\n  query_name|cased: 'Evil*'\ncondition: sel"), "splunk")
    assert query == ('sourcetype="aws:route53:resolver" \n'
                     '| eval r53sigma_regex_1=if(isnotnull(mvfind(\'query\', "(?s:^Evil.*$)")), "true", "false")\n'
                     '| search sourcetype="aws:route53:resolver" r53sigma_regex_1="true"')


def test_generic_dns_rule_converts_to_cim():
    query = convert("""
        title: t
        status: test
        logsource: {category: dns}
        detection:
            sel:
                query|contains: api.telegram.org
                record_type: TXT
            condition: sel
        """, "splunk")
    assert query == 'sourcetype="aws:route53:resolver" query="*api.telegram.org*" record_type="TXT"'


def test_unknown_field_is_rejected():
    with pytest.raises(SigmaTransformationError, match="known fields"):
        convert(resolver_rule("sel:\n  qname: x\ncondition: sel"), "splunk")


def test_trailing_dot_case_and_any_answer_on_add_on_events():
    query = convert(resolver_rule("""
        sel:
          query_name|endswith: '.Evil.com'
          answers.Rdata: 'target.example.net'
        condition: sel"""), "splunk")
    records = [
        resolver_record("www.EVIL.com.", "A", [("CNAME", "target.example.net."), ("A", "203.0.113.5")]),
        resolver_record("www.evil.com.", "A", [("A", "203.0.113.5")]),
        resolver_record("www.notevil.com.", "A", [("CNAME", "target.example.net.")]),
    ]
    assert splunk_matches(query, records) == {0}


def test_sourcetype_scopes_every_branch_of_an_or():
    query = convert(resolver_rule("""
        a:
          query_type: TXT
        b:
          rcode: NXDOMAIN
        condition: a or b"""), "splunk")
    public_line = "1.0 2026-01-01T00:00:00.000Z Z1 example.com TXT NXDOMAIN UDP IAD12 192.0.2.1 -"
    records = [resolver_record("a.example.", "TXT"), resolver_record("b.example.", "A", rcode="NXDOMAIN"),
               resolver_record("c.example."), public_line]
    assert splunk_matches(query, records) == {0, 1}


def test_cased_value_is_case_sensitive_on_add_on_events():
    query = convert(resolver_rule("sel:\n  query_name|cased: 'Evil*'\ncondition: sel"), "splunk")
    assert splunk_matches(query, [resolver_record("Evil.example."), resolver_record("evil.example.")]) == {0}


def test_literal_asterisk_becomes_a_regex_because_spl_cannot_escape_it():
    query = convert("""
        title: t
        status: test
        logsource: {product: aws, service: cloudtrail}
        detection:
            sel:
                requestParameters.changeBatch.changes.resourceRecordSet.name|startswith: '\\*.'
            condition: sel
        """, "splunk")
    assert "| eval" in query and "\\\\*" not in query.split("| eval")[0]

    def change(name):
        return {"eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
                "eventTime": "2026-01-01T00:00:00Z",
                "requestParameters": {"changeBatch": {"changes": [
                    {"action": "CREATE", "resourceRecordSet": {"name": "www.example.com.", "type": "A"}},
                    {"action": "CREATE", "resourceRecordSet": {"name": name, "type": "A"}}]}}}
    assert splunk_matches(query, [change("*.example.com."), change("x.example.com."), change("a*.example.com.")]) == {0}


def _engine_matches(text: str, raw_records: list) -> set[int]:
    from r53sigma.scan.reference import Engine
    from r53sigma.scan.records import parse_record
    from support import rule
    sigma_rule, engine = rule(text).rules[0], Engine()
    return {i for i, raw in enumerate(raw_records) if engine.matches(sigma_rule, parse_record(raw))}


def test_a_keyword_matches_every_json_spelling_of_a_value_and_no_key():
    """AWS or a forwarder may write `\\/`, `\\u00e9` or `\\u00C9`; a key or a substring of a value is no match."""
    template = ('{"version": "1.100000", "account_id": %s, "query_timestamp": "2026-01-01T00:00:00Z",'
                ' "query_name": "q.example.", "query_type": "A", "rcode": "NOERROR", "srcaddr": "10.0.0.5",'
                ' "srcport": 40000, "answers": [], "a\\/b\\u00e9": "x", "flag": true}')
    raws = [template % v for v in ('"a\\/b\\u00e9"', '"A/B\\u00C9"', '"a/b\u00e9"', '"xa/b\\u00e9"', '"a/b\\u00e9 "', '"q"')]
    for keyword, expected in (("a/bé", {0, 1, 2}), ("40000", set(range(6))), ("TRUE", set(range(6))), ("?/b*", {0, 1, 2, 4})):
        text = resolver_rule(f"keywords:\n  - '{keyword}'\ncondition: keywords")
        assert _engine_matches(text, raws) == expected
        assert splunk_matches(convert(text, "splunk"), raws) == expected, keyword


def test_keyword_column_whitespace_is_what_the_engine_splits_on():
    from sigma.pipelines.route53.splunk_keywords import SPACE_CHARS
    assert SPACE_CHARS == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
