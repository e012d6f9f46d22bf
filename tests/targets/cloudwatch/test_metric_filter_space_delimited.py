"""Public hosted-zone logs are space-delimited lines: the metric-filter format writes the space-delimited
pattern form there, and each pattern selects the lines the reference engine selects, on the
filter-pattern model (whose space-delimited part is written from AWS's page, tested on its examples)."""
from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from cw_support import PUBLIC, engine_says, public_line, rule_yaml
from r53sigma.targets.cloudwatch.filter_pattern_model import FilterPatternError, Pattern, RejectedPattern
from sigma.backends.cloudwatch import CloudWatchMetricFilterBackend
from sigma.pipelines.route53 import pipelines


def pattern_of(detection: str) -> str:
    text = rule_yaml(detection, PUBLIC)
    return CloudWatchMetricFilterBackend(pipelines["route53_cloudwatch"]()).convert(SigmaCollection.from_yaml(text))[0]


def assert_agree(detection: str, lines: list[str], expected: list[bool]) -> str:
    text = rule_yaml(detection, PUBLIC)
    pattern = pattern_of(detection)
    model = Pattern.parse(pattern)
    for line, want in zip(lines, expected):
        assert engine_says(text, line) is want, line
        assert model.matches(line) is want, (pattern, line)
    return pattern


def test_a_list_of_values_is_one_column_entry_joined_by_or():
    pattern = assert_agree("  sel: {queryType: [ANY, AXFR]}\n  condition: sel",
                           [public_line(query_type="ANY"), public_line(query_type="AXFR"), public_line(query_type="A")],
                           [True, True, False])
    assert pattern.startswith("[version, ") and pattern.endswith(", ...]") and " || " in pattern


def test_conditions_on_two_columns_are_anded_across_entries():
    assert_agree("  sel: {queryType: TXT, responseCode: NXDOMAIN}\n  condition: sel",
                 [public_line(query_type="TXT", rcode="NXDOMAIN"), public_line(query_type="TXT"),
                  public_line(query_type="A", rcode="NXDOMAIN")],
                 [True, False, False])


def test_a_negated_list_is_not_equal_joined_by_and_and_holds_on_a_dash_column():
    pattern = assert_agree("  sel: {queryType: TXT}\n  f: {ednsClientSubnet: ['198.51.100.0/24', '203.0.113.0/24']}\n  condition: sel and not f",
                           [public_line(query_type="TXT", subnet="198.51.100.0/24"), public_line(query_type="TXT"),
                            public_line(query_type="TXT", subnet="192.0.2.0/24")],
                           [False, True, True])
    assert "!=" in pattern and " && " in pattern


def test_caseless_name_match_is_a_regex_that_ignores_the_trailing_dot():
    pattern = assert_agree("  sel: {queryName|endswith: '.evil.com'}\n  condition: sel",
                           [public_line("a.EVIL.com"), public_line("a.evil.com."), public_line("evil.com"), public_line("a.evil.com.au")],
                           [True, True, False, False])
    assert "%" in pattern


@pytest.mark.parametrize("detection, reason", [
    ("  a: {queryType: TXT}\n  b: {responseCode: NXDOMAIN}\n  condition: a or b", "OR across fields"),
    ("  sel: {queryType: TXT}\n  f: {queryName|endswith: '.example.com'}\n  condition: sel and not f", "negated match"),
])
def test_what_the_space_delimited_form_cannot_state_is_refused(detection, reason):
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=reason):
        pattern_of(detection)


APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'


@pytest.mark.parametrize("pattern, matches", [
    # the page's own examples, on its own log line
    ("[ip, user, username, timestamp, request, status_code, bytes]", True),
    ("[..., status_code, bytes]", True),
    ("[ip, user, ..., status_code, bytes]", True),
    ("[ip, user, ...]", True),
    ("[ip, user, username, timestamp, request, status_code, bytes > 1000]", True),
    ("[ip, user, username, timestamp, request, status_code = 200, bytes]", False),
    ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", True),
    ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", True),
    ("[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]", True),
    ("[..., request=*.html*, status_code=4*,]", True),
    ("[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]", True),
    ("[ip, user, username, timestamp, request, status_code]", False),  # 7 fields, 6 names, no ellipsis
])
def test_model_reads_the_pages_space_delimited_examples(pattern, matches):
    assert Pattern.parse(pattern).matches(APACHE) is matches


@pytest.mark.parametrize("pattern, error", [
    ("[a, b = x && b = y || b = z]", FilterPatternError),  # && and || mixed: precedence undocumented
    ("[a, b = x && a = y]", FilterPatternError),  # a condition on another field
    ("[..., a, ...]", FilterPatternError),
    ("[a = %x%, b = %y%, c = %z%]", RejectedPattern),  # 3 regexes, 2 allowed
    ("[a = %x(y)%]", RejectedPattern),  # no sub-patterns
])
def test_model_refuses_what_the_page_does_not_document(pattern, error):
    with pytest.raises(error):
        Pattern.parse(pattern)
