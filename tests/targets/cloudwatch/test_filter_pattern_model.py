"""The filter-pattern model: what AWS's filter-pattern pages document, and what they say the service rejects."""
from __future__ import annotations

import json

import pytest

from r53sigma.targets.cloudwatch.filter_pattern_model import FilterPatternError, Pattern, RejectedPattern


def matches(pattern: str, **record) -> bool:
    return Pattern.parse(pattern).matches(json.dumps(record))


def test_string_equality_is_exact_and_case_sensitive():
    assert matches('{ $.rcode = "NXDOMAIN" }', rcode="NXDOMAIN")
    assert not matches('{ $.rcode = "NXDOMAIN" }', rcode="nxdomain")


def test_wildcard_matches_any_text():
    assert matches('{ $.query_name = "*.evil.com." }', query_name="a.b.evil.com.")
    assert not matches('{ $.query_name = "*.evil.com." }', query_name="evil.com.")


def test_nested_selector_and_index():
    assert matches('{ $.srcids.instance = "i-1" }', srcids={"instance": "i-1"})
    assert matches('{ $.answers[1].Rdata = "1.2.3.4" }', answers=[{"Rdata": "x"}, {"Rdata": "1.2.3.4"}])
    assert not matches('{ $.answers[2].Rdata = "1.2.3.4" }', answers=[{"Rdata": "1.2.3.4"}])


def test_missing_field_fails_every_comparison_but_not_exists():
    assert not matches('{ $.rcode != "NOERROR" }', query_name="x")
    assert matches('{ $.rcode NOT EXISTS }', query_name="x")
    assert matches('{ $.rcode IS NULL }', rcode=None)
    assert not matches('{ $.rcode IS NULL }', query_name="x")


def test_regex_searches_the_value():
    assert matches("{ $.m = %AUTHORIZED% }", m="UNAUTHORIZED REQUEST")
    assert not matches("{ $.m = %^AUTHORIZED% }", m="UNAUTHORIZED REQUEST")


def test_numbers_compare_numerically():
    assert matches("{ $.n >= 10 }", n=12)
    assert not matches("{ $.n >= 10 }", n="12")


def test_and_or_with_parentheses():
    pattern = '{ ($.a = "1" || $.b = "2") && $.c = "3" }'
    assert matches(pattern, b="2", c="3")
    assert not matches(pattern, a="1", c="4")


def test_mixing_and_or_without_parentheses_is_not_read():
    with pytest.raises(FilterPatternError):
        Pattern.parse('{ $.a = "1" || $.b = "2" && $.c = "3" }')


def test_parentheses_in_a_regex_are_rejected():
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %(ab)+% }")


def test_unsupported_regex_character_is_rejected():
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %something!% }")


def test_multibyte_regex_is_rejected():
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %é% }")


def test_three_regexes_are_rejected():
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %a% || $.b = %b% || $.c = %c% }")


def test_pattern_longer_than_1024_is_rejected():
    with pytest.raises(RejectedPattern):
        Pattern.parse('{ $.a = "' + "x" * 1020 + '" }')


def test_a_json_pattern_never_matches_a_text_line():
    assert not Pattern.parse('{ $.a = "1" }').matches("2024 a=1")


def test_a_regex_compared_with_not_equal_is_not_read():
    with pytest.raises(FilterPatternError):
        Pattern.parse("{ $.a != %b% }")


@pytest.mark.parametrize("regex", [r"\bword", r"a\nb", r"\Aabc", r"abc\Z", r"\-1", r"a\/b", r"\x{41}", r"\xé1", r"a\\"[:-1]])
def test_regex_escapes_outside_the_documented_ones_are_rejected(regex):
    # RE "Usage of supported operators": `\` before an operator, \d \D \s \S \w \W, \xhh; nothing else
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %" + regex + "% }")


def test_documented_regex_escapes_read_as_the_page_says():
    assert matches(r"{ $.ip = %^10\.10\.0\.1$% }", ip="10.10.0.1")
    assert not matches(r"{ $.ip = %^10\.10\.0\.1$% }", ip="10x10.0.1")
    assert matches(r"{ $.a = %^\d\d\s\w\W$% }", a="12 x!")
    assert not matches(r"{ $.a = %\d% }", a="\u0663")  # `%\d%` is [0-9]: ASCII digits only
    assert matches(r"{ $.a = %\x3a% }", a="a:b")


def test_whitespace_class_is_tab_space_and_newline_only():
    # RE page: "\s ... includes tab, space and newline"; Python's ASCII \s would also take CR, FF and VT
    assert matches(r"{ $.a = %^x\sy$% }", a="x\ty") and matches(r"{ $.a = %^x\sy$% }", a="x\ny")
    for other in ("\r", "\f", "\v"):
        assert not matches(r"{ $.a = %^x\sy$% }", a=f"x{other}y")
        assert matches(r"{ $.a = %^x\Sy$% }", a=f"x{other}y")
    assert matches(r"{ $.a = %^x[\sz]y$% }", a="x y") and not matches(r"{ $.a = %^x[\sz]y$% }", a="x\ry")


@pytest.mark.parametrize("value", [True, False, 5, 1.5])
def test_a_string_compared_with_a_boolean_or_a_number_is_not_read(value):
    # JSON: booleans are tested with IS TRUE/IS FALSE, numbers with numeric operands; a string on them is on no page
    for pattern in ('{ $.x = "true" }', '{ $.x != "5" }', "{ $.x = %5% }", "{ $.x = tru* }"):
        with pytest.raises(FilterPatternError):
            matches(pattern, x=value)


def test_empty_space_delimited_entries_other_than_a_trailing_comma_are_not_read():
    for pattern in ("[a,,b]", "[,a]", "[a, , ...]"):
        with pytest.raises(FilterPatternError):
            Pattern.parse(pattern)
    # SD's own example: the trailing comma is one unnamed last field
    assert Pattern.parse("[..., request=*.html*, status_code=4*,]").matches(
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534')


@pytest.mark.parametrize("pattern", ["{ $.a = user@example }", "{ $.a = i-0abc }", "{ $.a = a/b }", "{ $.a = 10:00 }",
                                     r'{ $.a = "x\"y" }', r'{ $.a = "x\\y" }', "[a = user@example, b]", "[a = -abc, b]",
                                     r'[a = "x\"y", b]'])
def test_unquoted_values_beyond_alphanumerics_and_quoted_escapes_are_not_read(pattern):
    # FP: terms with characters other than alphanumeric or underscore must be quoted (JSON's example adds
    # `.` and `*`); how a backslash inside quotes is read is on no page
    with pytest.raises(FilterPatternError):
        Pattern.parse(pattern)


def test_documented_unquoted_values_are_read():
    assert matches("{ $.sourceIPAddress != 123.123.* }", sourceIPAddress="10.0.0.1")  # JSON's own example
    assert matches("{ $.eventType = UpdateTrail }", eventType="UpdateTrail")
    assert Pattern.parse("[ip, user, username, timestamp, request, status_code = 4*, bytes]").matches(
        '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534')


@pytest.mark.parametrize("regex", ["a{3}", "a{3,}", "a{3, 5}", "a{5,3}", "a{", "a}", "a*+", "a+?", "a{1,2}?", "a??"])
def test_braces_other_than_m_n_and_stacked_quantifiers_are_rejected(regex):
    # RE documents `{m, n}` (`%a{3,5}%`); Python reads `a{3, 5}` as text and `a*+` as possessive
    with pytest.raises(RejectedPattern):
        Pattern.parse("{ $.a = %" + regex + "% }")


def test_the_documented_bounds_repeat_the_preceding_term():
    assert matches("{ $.a = %^a{3,5}$% }", a="aaaa")
    assert not matches("{ $.a = %^a{3,5}$% }", a="aa")
    assert matches(r"{ $.a = %^x\.{0,1}$% }", a="x.")
