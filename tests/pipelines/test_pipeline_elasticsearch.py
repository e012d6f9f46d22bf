"""route53_elasticsearch: golden queries, and what they select on real Lucene over ECS documents."""
import pytest
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaTransformationError

from r53sigma import catalogue
from support import convert, resolver_rule

ECS_TYPES = {"source.ip": "ip", "source.port": "long"}
CASELESS = ["dns.question.name", "dns.answers.data", "event.action"]


@pytest.fixture(scope="module")
def lucene():
    from r53sigma.targets.elasticsearch.lucene_engine import LuceneEngine, LuceneUnavailable

    try:
        return LuceneEngine()
    except LuceneUnavailable as reason:
        pytest.skip(f"real Lucene unavailable: {reason}")


def matches(lucene, query: str, documents: list[dict]) -> set[int]:
    from r53sigma.targets.elasticsearch.lucene_engine import flatten

    result = lucene.search([flatten(d, ECS_TYPES, CASELESS) for d in documents], {"q": query})["q"]
    assert not isinstance(result, str), f"Lucene could not parse {query!r}: {result}"
    return result


def raw_matches(lucene, query: str, raw_records: list[dict]) -> set[int]:
    """Raw Resolver records -> ECS documents as the pack's ingest pipeline writes them -> Lucene."""
    from r53sigma.targets.elasticsearch import document_from_raw, indexed_fields
    from r53sigma.targets.elasticsearch.ingestion import field_mappings

    types = {n: m["type"] for n, m in field_mappings(catalogue.load()["resolver"]).items()}
    types.update({f"{n}.caseless": "keyword" for n in types})
    documents = []
    for raw in raw_records:
        fields = indexed_fields(document_from_raw(raw, "resolver"), "resolver")
        documents.append([(n, types.get(n, "keyword") if types.get(n) in ("ip", "long") else "keyword", str(v))
                          for n, values in fields.items() for v in values])
    result = lucene.search(documents, {"q": query})["q"]
    assert not isinstance(result, str), f"Lucene could not parse {query!r}: {result}"
    return result


def resolver_record(name: str, answers: list[tuple[str, str]]) -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": "2026-01-01T00:00:00Z", "query_name": name + ".", "query_type": "A",
            "query_class": "IN", "rcode": "NOERROR", "srcaddr": "10.0.0.5", "srcport": "40000",
            "transport": "UDP", "srcids": {},
            "answers": [{"Rdata": data, "Type": kind, "Class": "IN"} for kind, data in answers]}


def test_cidr_on_answers_uses_the_ip_companion_field(lucene):
    query = convert(resolver_rule("sel:\n  answers.Rdata|cidr: [10.0.0.0/8, 'fc00::/7']\ncondition: sel"), "lucene")
    assert query == "dns.resolved_ip:10.0.0.0\\/8 OR dns.resolved_ip:fc00\\:\\:\\/7"
    records = [
        resolver_record("a.example.com", [("CNAME", "b.example.com."), ("A", "10.1.2.3")]),
        resolver_record("a.example.com", [("AAAA", "fd12::1")]),
        resolver_record("a.example.com", [("A", "8.8.8.8")]),
        resolver_record("10.example.com", [("CNAME", "10.0.0.0.example.net.")]),
        resolver_record("a.example.com", []),
    ]
    assert raw_matches(lucene, query, records) == {0, 1}


def test_cidr_with_other_values_keeps_both_fields():
    query = convert(resolver_rule("sel:\n  answers.Rdata|cidr: 10.0.0.0/8\nother:\n  answers.Rdata: evil.example\ncondition: sel or other"), "lucene")
    assert query == "dns.resolved_ip:10.0.0.0\\/8 OR dns.answers.data.caseless:evil.example"


def test_cidr_on_a_keyword_field_without_ip_companion_is_refused():
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="not expressible in Elasticsearch: |cidr"):
        convert(resolver_rule("sel:\n  query_name|cidr: 10.0.0.0/8\ncondition: sel"), "lucene")


def test_modifiers_apply_once_when_values_move_to_the_caseless_field():
    query = convert(resolver_rule("sel:\n  query_name|base64|contains: abc\ncondition: sel"), "lucene")
    assert query == "dns.question.name.caseless:*ywjj*"  # base64('abc') = YWJj, once


def dns(name: str, qtype: str = "A", answers=(), ip: str = "10.0.0.5", port: int = 40000, rcode: str = "NOERROR") -> dict:
    """An ECS document as the ingest pipeline writes it (trailing dot already gone)."""
    return {
        "dns": {"question": {"name": name, "type": qtype}, "response_code": rcode,
                "answers": [{"data": a, "type": "A", "class": "IN"} for a in answers]},
        "source": {"ip": ip, "port": port},
        "network": {"transport": "udp"},
    }


def test_every_catalogued_field_is_mapped_to_its_ecs_name():
    for log_source in catalogue.log_sources():
        logsource = ", ".join(f"{k}: {v}" for k, v in log_source.logsource.items())
        for name, field in log_source.fields.items():
            if field.type != "string" or name == log_source.timestamp:
                continue
            query = convert(f"""
                title: t
                status: test
                logsource: {{{logsource}}}
                detection:
                    sel:
                        {name}|cased: 'V'
                    condition: sel
                """, "lucene")
            assert query == f"{field.target('elasticsearch').name}:V", (log_source.source, name)


def test_mixed_case_field_uses_caseless_subfield_and_lowercases(lucene):
    query = convert(resolver_rule("sel:\n  query_name|endswith: '.Evil.COM'\ncondition: sel"), "lucene")
    assert query == "dns.question.name.caseless:*.evil.com"
    assert matches(lucene, query, [dns("x.EVIL.com"), dns("x.evil.com"), dns("xevil.com")]) == {0, 1}


def test_trailing_dot_is_not_part_of_the_value(lucene):
    query = convert(resolver_rule("sel:\n  query_name: 'example.com'\ncondition: sel"), "lucene")
    assert matches(lucene, query, [dns("example.com"), dns("www.example.com")]) == {0}


def test_upper_case_field_folds_rule_value(lucene):
    query = convert(resolver_rule("sel:\n  query_type: txt\ncondition: sel"), "lucene")
    assert query == "dns.question.type:TXT"
    assert matches(lucene, query, [dns("a.b", "TXT"), dns("a.b", "A")]) == {0}


def test_transport_is_lower_case_in_ecs():
    assert convert(resolver_rule("sel:\n  transport: TCP\ncondition: sel"), "lucene") == "network.transport:tcp"


def test_cased_value_matches_original_field_exactly(lucene):
    query = convert(resolver_rule("sel:\n  query_name|cased: 'Example.com'\ncondition: sel"), "lucene")
    assert query == "dns.question.name:Example.com"
    assert matches(lucene, query, [dns("Example.com"), dns("example.com")]) == {0}


def test_regex_goes_to_original_field_case_sensitive(lucene):
    query = convert(resolver_rule("sel:\n  query_name|re: '[A-Z]+\\.com'\ncondition: sel"), "lucene")
    assert query.startswith("dns.question.name:/")
    assert matches(lucene, query, [dns("ABC.com"), dns("abc.com")]) == {0}


def test_any_answer_matches(lucene):
    query = convert(resolver_rule("sel:\n  answers.Rdata: '169.254.169.254'\ncondition: sel"), "lucene")
    docs = [dns("a.b", answers=["1.1.1.1", "169.254.169.254"]), dns("a.b", answers=[]), dns("a.b", answers=["1.1.1.1"])]
    assert matches(lucene, query, docs) == {0}


def test_not_any_answer_means_no_answer(lucene):
    query = convert(resolver_rule("sel:\n  query_name: 'a.b'\nbad:\n  answers.Rdata: '1.1.1.1'\ncondition: sel and not bad"), "lucene")
    docs = [dns("a.b", answers=["2.2.2.2", "1.1.1.1"]), dns("a.b", answers=["2.2.2.2"]), dns("a.b", answers=[])]
    assert matches(lucene, query, docs) == {1, 2}


def test_cidr_and_numbers(lucene):
    query = convert(resolver_rule("sel:\n  srcaddr|cidr: 10.0.0.0/8\n  srcport|gte: 1024\ncondition: sel"), "lucene")
    docs = [dns("a", ip="10.1.1.1", port=5000), dns("a", ip="11.1.1.1", port=5000), dns("a", ip="10.1.1.1", port=53)]
    assert matches(lucene, query, docs) == {0}


def test_hostile_value_stays_one_term(lucene):
    query = convert(resolver_rule("sel:\n  query_name: 'a\" OR *:* OR (x'\ncondition: sel"), "lucene")
    assert matches(lucene, query, [dns('a" or *:* or (x'), dns("anything")]) == {0}


def test_generic_dns_names_map_onto_resolver_fields():
    query = convert("""
        title: t
        status: test
        logsource: {category: dns}
        detection:
            sel:
                query|contains: Telegram
                record_type: txt
                answer: 1.2.3.4
                src_ip|cidr: 10.0.0.0/8
            condition: sel
        """, "lucene")
    assert query == ("dns.question.name.caseless:*telegram* AND dns.question.type:TXT AND "
                     "dns.answers.data.caseless:1.2.3.4 AND source.ip:10.0.0.0\\/8")


def test_cloudtrail_event_name_is_case_insensitive():
    query = convert("""
        title: t
        status: test
        logsource: {product: aws, service: cloudtrail}
        detection:
            sel:
                eventSource: Route53Domains.amazonaws.com
                eventName: updateDomainContact
            condition: sel
        """, "lucene")
    assert query == "event.provider:route53domains.amazonaws.com AND event.action.caseless:updatedomaincontact"


def test_correlation_becomes_esql_on_the_log_source_index():
    query = convert("""
        title: base
        name: base
        status: test
        logsource: {product: aws, service: route53resolver}
        detection:
            sel:
                rcode: nxdomain
            condition: sel
        ---
        title: burst
        status: test
        correlation:
            type: event_count
            rules: [base]
            group-by: [srcaddr]
            timespan: 5m
            condition: {gt: 50}
        """, "esql")
    assert query.startswith("from logs-aws.route53_resolver_logs-* ")
    assert 'dns.response_code=="NXDOMAIN"' in query and "by timebucket, source.ip" in query


def test_unknown_field_is_rejected_with_known_fields():
    with pytest.raises(SigmaTransformationError, match=r"field 'query_nam' is not a field of Route 53 Resolver.*known fields: .*query_name"):
        convert(resolver_rule("sel:\n  query_nam: x\ncondition: sel"), "lucene")


def test_unknown_logsource_is_rejected():
    with pytest.raises(SigmaTransformationError, match="not a Route 53 log source"):
        convert("""
            title: t
            status: test
            logsource: {product: windows, category: process_creation}
            detection:
                sel:
                    Image: x
                condition: sel
            """, "lucene")


def test_all_modifier_keeps_every_value_required_on_the_caseless_field(lucene):
    query = convert(resolver_rule("sel:\n  query_name|contains|all: [UWhRCAAAAA, BAAAA]\ncondition: sel"), "lucene")
    assert query == "dns.question.name.caseless:*uwhrcaaaaa* AND dns.question.name.caseless:*baaaa*"
    assert matches(lucene, query, [dns("x1UWhRCAAAAAbaaaa.example"), dns("x1uwhrcaaaaa.example")]) == {0}


FLATTENED_CORRELATION = """
title: base
name: forward_rule
status: test
logsource: {product: aws, service: cloudtrail}
detection:
    sel:
        eventName: CreateResolverRule
        requestParameters.ruleType: FORWARD
    condition: sel
---
title: many forward rules
status: test
correlation:
    type: event_count
    rules: [forward_rule]
    group-by: [userIdentity.arn]
    timespan: 1h
    condition: {gte: 3}
"""


def test_correlation_on_a_flattened_key_reads_its_keyword_companion_in_esql():
    """ES|QL reads a flattened field only whole: a catalogued key is read from its keyword companion."""
    query = convert(FLATTENED_CORRELATION, "esql")
    assert 'r53sigma.cloudtrail.request_parameters.ruleType=="FORWARD"' in query and "aws.cloudtrail.flattened" not in query


def test_correlation_on_a_flattened_key_without_a_companion_is_not_expressible_in_esql():
    rule = FLATTENED_CORRELATION.replace("requestParameters.ruleType: FORWARD", "responseElements.firewallRuleGroupAssociation.vpcId: vpc-1")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="flattened"):
        convert(rule, "esql")


def test_single_event_rule_on_a_flattened_key_converts_for_lucene():
    query = convert(FLATTENED_CORRELATION.split("---")[0], "lucene")
    assert "aws.cloudtrail.flattened.request_parameters.ruleType:FORWARD" in query


def test_regex_searches_anywhere_like_sigma(lucene):
    query = convert(resolver_rule("sel:\n  query_name|re: 'ev[a-z]l'\ncondition: sel"), "lucene")
    assert query == "dns.question.name:/.*(ev[a-z]l).*/"
    assert matches(lucene, query, [dns("www.evil.com"), dns("evil"), dns("www.EVIL.com"), dns("good.com")]) == {0, 1}


def test_regex_anchors_become_lucene_whole_value_matching(lucene):
    query = convert(resolver_rule("sel:\n  query_name|re: '^evil\\.com$'\ncondition: sel"), "lucene")
    assert query == "dns.question.name:/(evil\\.com)/"
    assert matches(lucene, query, [dns("evil.com"), dns("www.evil.com"), dns("evil.com.net")]) == {0}


def test_regex_ignorecase_flag_becomes_case_classes(lucene):
    query = convert(resolver_rule("sel:\n  query_name|re|i: 'Evil[a-c]'\ncondition: sel"), "lucene")
    assert query == "dns.question.name:/.*([Ee][vV][iI][lL][a-cABC]).*/"
    assert matches(lucene, query, [dns("x.EVILB.com"), dns("evila"), dns("evild")]) == {0, 1}


def test_regex_with_an_anchor_inside_a_sequence_is_not_expressible():
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="anchor that is not at the start or end"):
        convert(resolver_rule("sel:\n  query_name|re: 'a^b'\ncondition: sel"), "lucene")
