"""One test per Sigma feature: the exact query (golden) AND agreement with the reference engine on events
run through the Logs Insights model."""
from __future__ import annotations

import pytest
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cw_support import (  # noqa: E402
    answer, assert_agree, convert, filter_line, resolver, rule_yaml,
)


def test_exact_value_on_single_case_field_is_folded_and_exact():
    rule = rule_yaml("  sel:\n    rcode: nxdomain\n  condition: sel")
    query = assert_agree(rule, [resolver(rcode="NXDOMAIN"), resolver(rcode="NOERROR")], [True, False])
    assert filter_line(query) == 'rcode = "NXDOMAIN"'


def test_value_list_on_single_case_field_is_in_list():
    rule = rule_yaml("  sel:\n    query_type: [txt, 'null']\n  condition: sel")
    query = assert_agree(rule, [resolver(query_type="TXT"), resolver(query_type="NULL"), resolver(query_type="A")], [True, True, False])
    assert filter_line(query) == 'query_type in ["TXT", "NULL"]'


def test_mixed_case_field_is_caseless_regex_and_ignores_trailing_dot():
    rule = rule_yaml("  sel:\n    query_name: Evil.COM\n  condition: sel")
    raws = [resolver("evil.com."), resolver("EVIL.com"), resolver("evil.com.."), resolver("xevil.com."), resolver("evil.co.")]
    query = assert_agree(rule, raws, [True, True, False, False, False])
    assert filter_line(query) == r"query_name =~ /(?is)^Evil\.COM\.?\z/"


@pytest.mark.parametrize(
    "modifier, value, golden, expected",
    [
        ("contains", "evil", r"query_name =~ /(?is)^.*evil.*\z/", [True, True, True, False]),
        ("startswith", "a.evil", r"query_name =~ /(?is)^a\.evil.*\z/", [True, False, False, False]),
        ("endswith", "evil.com", r"query_name =~ /(?is)^.*evil\.com\.?\z/", [True, True, False, False]),
        ("contains", "com.", r"query_name =~ /(?is)^(?:.*com\..*\.|.*com\..*[^.])\z/", [False, False, True, False]),
    ],
)
def test_contains_startswith_endswith_against_trailing_dot(modifier, value, golden, expected):
    rule = rule_yaml(f"  sel:\n    query_name|{modifier}: '{value}'\n  condition: sel")
    raws = [resolver("a.evil.com."), resolver("b.EVIL.com"), resolver("evil.com.x."), resolver("other.org.")]
    query = assert_agree(rule, raws, expected)
    assert filter_line(query) == golden


def test_wildcards_star_and_question_mark():
    rule = rule_yaml("  sel:\n    query_name: 'a?c.*.org'\n  condition: sel")
    query = assert_agree(rule, [resolver("abc.x.org."), resolver("ac.x.org."), resolver("abc..org")], [True, False, True])
    assert filter_line(query) == r"query_name =~ /(?is)^a.c\..*\.org\.?\z/"


def test_cased_value_is_exact():
    rule = rule_yaml("  sel:\n    srcids.instance|cased: i-0ABC\n  condition: sel")
    query = assert_agree(rule, [resolver(srcids={"instance": "i-0ABC"}), resolver(srcids={"instance": "i-0abc"})], [True, False])
    assert filter_line(query) == '`srcids.instance` = "i-0ABC"' or filter_line(query) == 'srcids.instance = "i-0ABC"'


def test_cased_value_on_trailing_dot_field_is_case_sensitive_regex():
    rule = rule_yaml("  sel:\n    query_name|cased: Evil.com\n  condition: sel")
    query = assert_agree(rule, [resolver("Evil.com."), resolver("evil.com.")], [True, False])
    assert filter_line(query) == r"query_name =~ /(?s)^Evil\.com\.?\z/"


def test_all_modifier_requires_every_value():
    rule = rule_yaml("  sel:\n    query_name|contains|all: [abc, xyz]\n  condition: sel")
    query = assert_agree(rule, [resolver("abc.xyz.com."), resolver("abc.com.")], [True, False])
    assert filter_line(query) == r"query_name =~ /(?is)^.*abc.*\z/ and query_name =~ /(?is)^.*xyz.*\z/"


def test_and_or_not_are_parenthesised():
    rule = rule_yaml(
        "  a:\n    query_type: A\n  b:\n    rcode: NXDOMAIN\n  c:\n    transport: TCP\n  condition: a or (b and not c)"
    )
    raws = [resolver(), resolver(query_type="AAAA", rcode="NXDOMAIN"), resolver(query_type="AAAA", rcode="NXDOMAIN", transport="TCP")]
    query = assert_agree(rule, raws, [True, True, False])
    assert filter_line(query) == 'query_type = "A" or (rcode = "NXDOMAIN" and (not (transport = "TCP")))'


def test_one_of_and_all_of():
    rule = rule_yaml("  sel_a:\n    query_type: TXT\n  sel_b:\n    transport: TCP\n  condition: 1 of sel_* and not all of sel_*")
    raws = [resolver(query_type="TXT"), resolver(query_type="TXT", transport="TCP"), resolver()]
    assert_agree(rule, raws, [True, False, False])


def test_regex_is_case_sensitive_unless_i_flag():
    sensitive = rule_yaml("  sel:\n    query_name|re: '^[a-z]{5}\\.com$'\n  condition: sel")
    query = assert_agree(sensitive, [resolver("abcde.com."), resolver("ABCDE.com.")], [True, False])
    assert filter_line(query) == r'if(query_name =~ /(?s).\.\z/, substr(query_name, 0, greatest(strlen(query_name) - 1, 0)), query_name) =~ /^[a-z]{5}\.com$/'
    caseless = rule_yaml("  sel:\n    query_name|re|i: '^[a-z]{5}\\.com$'\n  condition: sel")
    query = assert_agree(caseless, [resolver("abcde.com."), resolver("ABCDE.com.")], [True, True])
    assert filter_line(query) == r'if(query_name =~ /(?s).\.\z/, substr(query_name, 0, greatest(strlen(query_name) - 1, 0)), query_name) =~ /(?i)^[a-z]{5}\.com$/'


def test_regex_slash_is_escaped_for_the_literal():
    rule = rule_yaml("  sel:\n    userAgent|re: 'aws-cli/2'\n  condition: sel", "logsource: {product: aws, service: cloudtrail}")
    assert filter_line(convert(rule)) == r"userAgent =~ /aws-cli\/2/"


def test_cidr_on_plain_field_uses_isipinsubnet():
    rule = rule_yaml("  sel:\n    srcaddr|cidr: 10.0.0.0/8\n  condition: sel")
    query = assert_agree(rule, [resolver(srcaddr="10.1.2.3"), resolver(srcaddr="192.168.1.1")], [True, False])
    assert filter_line(query) == 'isIpInSubnet(srcaddr, "10.0.0.0/8")'


def test_cidr_on_answers_matches_any_answer():
    rule = rule_yaml("  sel:\n    answers.Rdata|cidr: 172.16.0.0/12\n  condition: sel")
    raws = [
        resolver(answers=[answer("ns.example.com.", "CNAME"), answer("172.20.1.1")]),
        resolver(answers=[answer("172.32.0.1")]),
        resolver(answers=[answer("172.16.evil.com.", "CNAME")]),
        resolver(answers=[]),
    ]
    assert_agree(rule, raws, [True, False, False, False])


def test_exists_and_null():
    exists = rule_yaml("  sel:\n    firewall_rule_action|exists: true\n  condition: sel")
    query = assert_agree(exists, [resolver(firewall_rule_action="BLOCK"), resolver()], [True, False])
    assert filter_line(query) == "ispresent(firewall_rule_action)"
    null = rule_yaml("  sel:\n    firewall_rule_action: null\n  condition: sel")
    query = assert_agree(null, [resolver(firewall_rule_action="BLOCK"), resolver()], [False, True])
    assert filter_line(query) == "not ispresent(firewall_rule_action)"


def test_exists_on_array_member():
    rule = rule_yaml("  sel:\n    answers.Rdata|exists: true\n  condition: sel")
    assert_agree(rule, [resolver(answers=[answer("1.2.3.4")]), resolver(answers=[])], [True, False])


def test_numeric_comparisons():
    rule = rule_yaml("  sel:\n    srcport|gte: 1024\n  sel2:\n    srcport|lt: 60000\n  condition: sel and sel2")
    query = assert_agree(rule, [resolver(srcport="53000"), resolver(srcport="53"), resolver(srcport="61000")], [True, False, False])
    assert filter_line(query) == "srcport >= 1024 and srcport < 60000"


def test_numeric_equality():
    rule = rule_yaml("  sel:\n    srcport: 53000\n  condition: sel")
    query = assert_agree(rule, [resolver(srcport="53000"), resolver(srcport="53")], [True, False])
    assert filter_line(query) == "srcport = 53000"


def test_base64_and_base64offset_values():
    rule = rule_yaml("  sel:\n    query_name|base64offset|contains: 'evil'\n  condition: sel")
    query = convert(rule)
    assert "ZXZpb" in query
    from r53sigma.targets.cloudwatch.insights_model import selects
    assert selects(query, resolver("x.zxzpba.com.")) == selects(query, resolver("x.zxzpba.com."))


def test_windash_expands_to_alternatives():
    rule = rule_yaml("  sel:\n    query_name|windash|contains: '-enc'\n  condition: sel")
    assert_agree(rule, [resolver("x-enc.com."), resolver("x/enc.com."), resolver("xenc.com.")], [True, True, False])


def test_fieldref_is_caseless_equality():
    rule = rule_yaml("  sel:\n    vpc_id|fieldref: region\n  condition: sel")
    query = assert_agree(rule, [resolver(vpc_id="us-east-1"), resolver()], [True, False])
    assert filter_line(query) == "tolower(vpc_id) = tolower(region)"


def test_keyword_matches_a_whole_value_or_the_line():
    rule = rule_yaml("  keywords:\n    - 'vpc-0ABC'\n  condition: keywords")
    assert_agree(rule, [resolver(), resolver(vpc_id="vpc-0abcd")], [True, False])


def test_field_names_needing_backticks_are_quoted():
    from sigma.backends.cloudwatch import CloudWatchLogsInsightsBackend
    backend = CloudWatchLogsInsightsBackend()
    assert backend.escape_and_quote_field("foo-bar") == "`foo-bar`"
    assert backend.escape_and_quote_field("srcids.instance") == "srcids.instance"
    assert backend.escape_and_quote_field("@message") == "@message"


# ------------------------------------------------------------------ arrays: any answer, for any count


@pytest.mark.parametrize("count", [0, 1, 5, 50])
def test_any_answer_matches_for_any_number_of_answers(count):
    rule = rule_yaml("  sel:\n    answers.Rdata: 169.254.169.254\n  condition: sel")
    others = [answer(f"10.0.0.{n}") for n in range(count)]
    with_hit = others[:-1] + [answer("169.254.169.254")] if count else []
    raws = [resolver(answers=others), resolver(answers=with_hit)]
    assert_agree(rule, raws, [False, count > 0])


def test_negated_array_condition_means_no_answer_matches():
    rule = rule_yaml("  sel:\n    answers.Rdata: 1.2.3.4\n  condition: not sel")
    raws = [resolver(answers=[answer("1.2.3.4"), answer("5.6.7.8")]), resolver(answers=[answer("5.6.7.8")]), resolver(answers=[])]
    assert_agree(rule, raws, [False, True, True])


def test_array_value_with_quotes_backslashes_and_trailing_dot():
    rule = rule_yaml("  sel:\n    answers.Rdata|contains: 'v=\"spf1 \\x/'\n  condition: sel")
    raws = [resolver(answers=[answer('x "v="SPF1 \\x/ -all"', "TXT")]), resolver(answers=[answer("v=spf1 x/", "TXT")])]
    assert_agree(rule, raws, [True, False])
    endswith = rule_yaml("  sel:\n    answers.Rdata|endswith: '.example.com'\n  condition: sel")
    assert_agree(endswith, [resolver(answers=[answer("a.example.com.", "CNAME")]), resolver(answers=[answer("a.example.com.x", "CNAME")])], [True, False])


def test_array_member_does_not_match_other_keys_or_string_contents():
    rule = rule_yaml("  sel:\n    answers.Type: CNAME\n  condition: sel")
    decoy = resolver(answers=[answer('x "Type":"CNAME"', "TXT")], query_type="CNAME")
    assert_agree(rule, [decoy, resolver(answers=[answer("a.b.", "CNAME")])], [False, True])


def test_cloudtrail_change_batch_any_change():
    rule = rule_yaml(
        "  sel:\n    requestParameters.changeBatch.changes.resourceRecordSet.type: ns\n  condition: sel",
        "logsource: {product: aws, service: cloudtrail}",
    )
    import json

    def trail(changes, **extra):
        record = {"eventTime": "2024-05-01T10:00:00Z", "eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
                  "userIdentity": {"type": "NS"}, "requestParameters": {"hostedZoneId": "Z1", "changeBatch": {"changes": changes}}}
        record.update(extra)
        return json.dumps(record)

    def change(rtype, records=("1.2.3.4",)):
        return {"action": "UPSERT", "resourceRecordSet": {"name": "x.example.com.", "type": rtype, "tTL": 300,
                "resourceRecords": [{"value": v} for v in records], "geoLocation": {"countryCode": "NS"}}}

    raws = [trail([change("A"), change("NS")]), trail([change("A")] * 5), trail([])]
    assert_agree(rule, raws, [True, False, False])


# ------------------------------------------------------------------ refusals and limits


def test_regex_on_array_member_is_refused():
    rule = rule_yaml("  sel:\n    answers.Rdata|re: '^1\\.'\n  condition: sel")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="each element"):
        convert(rule)


def test_too_long_query_is_a_one_line_error_naming_the_rule():
    import random
    letters = random.Random(12).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=600 * 40)
    values = "\n".join(f"      - '{''.join(letters[n * 40:(n + 1) * 40])}'" for n in range(600))  # nothing to factor
    rule = rule_yaml(f"  sel:\n    query_name|contains:\n{values}\n  condition: sel", title="Huge list rule")
    with pytest.raises(SigmaError, match="Huge list rule.*10000") as error:
        convert(rule)
    message = str(error.value)
    assert "\n" not in message and "SigmaRule(" not in message and len(message) < 300, message[:500]


def providers_rule(count: int = 300) -> tuple[str, list[str]]:
    """`count` names under a few dynamic-DNS / mining-pool style providers, the shape real lists have."""
    import random
    rng = random.Random(7)
    providers = [f"{rng.choice(['pool', 'dyn', 'ddns', 'node'])}.{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz', k=rng.randint(8, 14)))}.{tld}"
                 for tld in ("com", "net", "org", "io", "xyz") for _ in range(4)]
    names = sorted({f"{rng.choice(['eu', 'us', 'asia', 'xmr', 'etc', 'rvn'])}{rng.randint(1, 99)}.{rng.choice(providers)}" for _ in range(count * 2)})[:count]
    values = "\n".join(f"      - '{n}'" for n in names)
    return rule_yaml(f"  sel:\n    query_name|endswith:\n{values}\n  condition: sel"), names


def test_300_domains_fit_the_limit_as_a_factored_alternation():
    rule, names = providers_rule()
    plain = sum(len(".*" + n.replace(".", "\\.") + "\\.?|") for n in names)
    assert plain > 10_000  # the plain alternation does not fit
    query = filter_line(convert(rule))
    assert len(query) < 6_000, len(query)
    raws = [resolver(names[0] + "."), resolver("x." + names[150].upper()), resolver(names[-1] + ".x."),
            resolver(names[10][1:] + "."), resolver("a" + names[20])]
    assert_agree(rule, raws, [True, True, False, names[10][1:].endswith(tuple(names)), True])


def test_value_list_on_any_answer_is_factored_and_exact():
    rule, names = providers_rule(120)
    rule = rule.replace("query_name|endswith", "answers.Rdata")
    raws = [resolver(answers=[answer("1.2.3.4"), answer(names[5] + ".", "CNAME")]), resolver(answers=[answer("x" + names[5] + ".", "CNAME")])]
    assert_agree(rule, raws, [True, False])


def test_value_ending_in_a_dot_matches_only_a_raw_value_with_two():
    rule = rule_yaml("  sel:\n    query_name: 'evil.com.'\n  condition: sel")
    assert_agree(rule, [resolver("evil.com."), resolver("evil.com..")], [False, True])


def test_empty_value():
    rule = rule_yaml("  sel:\n    query_name: ''\n  condition: sel")
    assert_agree(rule, [resolver(""), resolver("."), resolver("a.")], [True, False, False])


def test_every_query_starts_with_the_fields_line():
    query = convert(rule_yaml("  sel:\n    rcode: NXDOMAIN\n  condition: sel"))
    first = query.splitlines()[0]
    assert first.startswith("fields @timestamp, query_timestamp, ") and first.endswith(", @message")
    assert query.splitlines()[-2:] == ["| sort @timestamp desc", "| limit 10000"]


@pytest.mark.parametrize("count", [0, 1, 5, 50])
def test_ipv6_cidr_on_answers_matches_any_answer_in_any_spelling(count):
    rule = rule_yaml("  sel:\n    answers.Rdata|cidr: 'fd00::/8'\n  condition: sel")
    others = [answer(f"2001:db8::{n:x}", "AAAA") for n in range(count)]
    spellings = ["fd00:ec2::254", "FD00:0EC2:0:0:0:0:0:0254", "fd12::", "fdff::1.2.3.4", "fd00:ec2::254."]
    raws = [resolver(answers=others)] + [resolver(answers=others[:-1] + [answer(s, "AAAA")]) for s in spellings if count]
    query = assert_agree(rule, raws, [False] + [True] * (len(raws) - 1))
    assert "isIpInSubnet" not in query and len(query) < 3000


def test_ipv6_cidr_on_answers_refuses_lookalikes():
    rule = rule_yaml("  sel:\n    answers.Rdata|cidr: '2001:db8::/32'\n  condition: sel")
    lookalikes = ["2001:db9::1", "2001:db8::1::2", "2001:0db80::1", "2001:db8:1:2:3:4:5:6:7", "2001:db8::01.2.3.4",
                  "2001:db8.example.com.", "x2001:db8::1", "::ffff:2001:db8"]
    assert_agree(rule, [resolver(answers=[answer(s, "AAAA")]) for s in lookalikes], [False] * len(lookalikes))
    assert_agree(rule, [resolver(answers=[answer("2001:DB8::", "AAAA")])], [True])


def test_cidr_on_answers_documented_difference_padding_and_zone_id():
    """README, Arrays: the engine (Python ipaddress after strip()) also reads padded values and `%zone`
    suffixes, which Route 53 never writes in Rdata; the array regex matches addresses only."""
    from cw_support import engine_says, model_says
    for network, rdata in (("2001:db8::/32", " 2001:db8::1"), ("fe80::/10", "fe80::1%eth0"), ("10.0.0.0/8", "10.0.0.1 ")):
        rule = rule_yaml(f"  sel:\n    answers.Rdata|cidr: '{network}'\n  condition: sel")
        raw = resolver(answers=[answer(rdata, "AAAA")])
        assert engine_says(rule, raw) and not model_says(convert(rule), raw)


def test_keyword_ignores_the_trailing_dot_of_query_name_and_rdata():
    rule = rule_yaml("  keywords:\n    - 'Evil.com'\n  condition: keywords")
    raws = [resolver("evil.com."), resolver("x.", answers=[answer("EVIL.com.", "CNAME")]), resolver("evil.com.."),
            resolver(vpc_id="evil.com."), resolver(vpc_id="evil.com"), resolver("x.", answers=[answer("evil.com..", "CNAME")])]
    assert_agree(rule, raws, [True, True, False, False, True, False])


def test_several_networks_on_answers_share_one_walk_of_the_array():
    rule = rule_yaml("  sel:\n    answers.Rdata|cidr: ['10.0.0.0/8', 'fc00::/7', '::1/128']\n  condition: sel")
    raws = [resolver(answers=[answer("a.example.", "CNAME"), answer(a, "A")]) for a in ("10.1.2.3", "fd00::1", "0:0::1", "11.0.0.1", "fe00::")]
    query = assert_agree(rule, raws, [True, True, True, False, False])
    assert filter_line(query).count('"answers"') == 1


# ------------------------------------------------------------------ public hosted-zone lines: `-` and keywords


def test_public_zone_dash_column_is_absent_for_null_and_exists():
    from cw_support import PUBLIC, public_line
    lines = [public_line(subnet="-"), public_line(subnet="198.51.100.0/24"), public_line(subnet="-")[:-2]]
    null = rule_yaml("  sel:\n    ednsClientSubnet: null\n  condition: sel", PUBLIC)
    assert_agree(null, lines, [True, False, True])
    exists = rule_yaml("  sel:\n    ednsClientSubnet|exists: true\n  condition: sel", PUBLIC)
    assert filter_line(assert_agree(exists, lines, [False, True, False])) == '(ispresent(ednsClientSubnet) and ednsClientSubnet != "-")'


def test_public_zone_values_that_would_match_a_dash_exclude_it():
    from cw_support import PUBLIC, public_line
    lines = [public_line(subnet="-"), public_line(subnet="198.51.100.0/24")]
    for value, expected in (("'*'", [False, True]), ("'?'", [False, False]), ("'-'", [False, False]), ("'*/24'", [False, True])):
        assert_agree(rule_yaml(f"  sel:\n    ednsClientSubnet: {value}\n  condition: sel", PUBLIC), lines, expected)
    regex = rule_yaml("  sel:\n    ednsClientSubnet|re: '^.?$'\n  condition: sel", PUBLIC)
    assert_agree(regex, lines, [False, False])
    plain = rule_yaml("  sel:\n    queryType: ANY\n  condition: sel", PUBLIC)
    assert filter_line(assert_agree(plain, [public_line(query_type="ANY"), public_line()], [True, False])) == 'queryType = "ANY"'


def test_public_zone_keyword_matches_any_column():
    from cw_support import PUBLIC, public_line
    lines = [public_line(), public_line(edge="FRA56"), public_line(query_name="iad12.example.com", edge="FRA56"), public_line(resolver_ip="192.0.2.10", edge="FRA56")]
    assert_agree(rule_yaml("  keywords:\n    - 'iad12'\n  condition: keywords", PUBLIC), lines, [True, False, False, False])
    assert_agree(rule_yaml("  keywords:\n    - '192.0.2.1'\n  condition: keywords", PUBLIC), lines, [True, True, True, False])
    assert_agree(rule_yaml("  keywords:\n    - 'IAD*'\n  condition: keywords", PUBLIC), lines, [True, False, True, False])
    assert_agree(rule_yaml("  keywords:\n    - '*.example.com'\n  condition: keywords", PUBLIC), lines, [True, True, True, True])


def test_public_zone_keyword_on_query_name_ignores_its_trailing_dot_and_dash_columns():
    from cw_support import PUBLIC, public_line
    lines = [public_line(query_name="evil.com."), public_line(query_name="evil.com"), public_line(subnet="192.0.2.0/24"), public_line()]
    assert_agree(rule_yaml("  keywords:\n    - 'Evil.com'\n  condition: keywords", PUBLIC), lines, [True, True, False, False])
    assert_agree(rule_yaml("  keywords:\n    - '-'\n  condition: keywords", PUBLIC), lines, [False, False, False, False])
    assert_agree(rule_yaml("  keywords:\n    - '?'\n  condition: keywords", PUBLIC), lines + [public_line(query_type="AAAA")], [True] * 4 + [False])
    assert_agree(rule_yaml("  keywords:\n    - 'UDP IAD12'\n  condition: keywords", PUBLIC), lines, [False, False, False, False])


@pytest.mark.parametrize("regex", ["(?=a)b", "(a)\\1", "(?>a)", "a++", "(a)?(?(1)b|c)"])
def test_rule_regex_constructs_logs_insights_lacks_are_refused(regex):
    rule = rule_yaml(f"  sel:\n    query_name|re: '{regex}'\n  condition: sel")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="RE2"):
        convert(rule)


def test_rule_regex_end_anchor_z_is_the_very_end():
    rule = rule_yaml("  sel:\n    srcids.instance|re: 'i-0abc\\Z'\n  condition: sel")
    assert_agree(rule, [resolver(srcids={"instance": "i-0abc"}), resolver(srcids={"instance": "i-0abc\n"})], [True, False])


def test_timestamp_part_is_refused_as_not_supported():
    rule = rule_yaml("  sel:\n    query_timestamp|hour: 3\n  condition: sel")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="timestamp parts"):
        convert(rule)


def test_keyword_matches_json_numbers_and_booleans_outside_strings():
    """The engine reads every value as text (300, false); a number or Boolean in the JSON has no quotes.
    Look-alikes inside a string (`"b:300,"`) and `null` (no value) do not match."""
    import json
    trail = "logsource: {product: aws, service: cloudtrail}"

    def record(**extra):
        r = {"eventTime": "2024-05-01T10:00:00Z", "eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
             "readOnly": False, "userAgent": "aws-cli:300,x", "requestParameters": {"hostedZoneId": "Z1", "tTL": 300}}
        r.update(extra)
        return json.dumps(r)

    others = {"requestParameters": {"tTL": 1300}, "readOnly": True}
    assert_agree(rule_yaml("  keywords:\n    - '300'\n  condition: keywords", trail), [record(), record(**others)], [True, False])
    assert_agree(rule_yaml("  keywords:\n    - 'FALSE'\n  condition: keywords", trail), [record(), record(**others)], [True, False])
    assert_agree(rule_yaml("  keywords:\n    - '?ull'\n  condition: keywords", trail), [record(userAgent=None)], [False])
