"""The metric-filter format (`cloudwatch_metric_filter`): each feature's pattern selects the events the
reference engine selects, on the filter-pattern model."""
from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from cw_support import engine_says, resolver, rule_yaml
from r53sigma.targets.cloudwatch.filter_pattern_model import Pattern
from sigma.backends.cloudwatch import CloudWatchMetricFilterBackend
from sigma.pipelines.route53 import pipelines


def pattern_of(yaml_text: str) -> str:
    return CloudWatchMetricFilterBackend(pipelines["route53_cloudwatch"]()).convert(SigmaCollection.from_yaml(yaml_text))[0]


def assert_agree(detection: str, raws: list[str], expected: list[bool]) -> str:
    text = rule_yaml(detection)
    pattern = Pattern.parse(pattern_of(text))
    for raw, want in zip(raws, expected):
        assert engine_says(text, raw) is want, raw
        assert pattern.matches(raw) is want, (pattern_of(text), raw)
    return pattern_of(text)


def test_caseless_endswith_list_ignores_the_trailing_dot():
    pattern = assert_agree(
        "  sel: {query_name|endswith: ['.evil.com', '.bad.org']}\n  condition: sel",
        [resolver("x.EVIL.com."), resolver("a.bad.org"), resolver("evil.com."), resolver("x.evil.com.au.")],
        [True, True, False, False],
    )
    assert pattern.count("%") == 2  # one field's list is one regex


def test_negation_is_true_on_a_missing_field():
    assert_agree(
        "  sel: {query_type: TXT}\n  f: {rcode: NXDOMAIN}\n  condition: sel and not f",
        [resolver(query_type="TXT"), resolver(query_type="TXT", rcode="NXDOMAIN"),
         resolver(query_type="TXT").replace('"rcode": "NOERROR", ', "")],
        [True, False, True],
    )


def test_negated_or_of_values():
    assert_agree(
        "  sel: {query_type: [TXT, 'NULL']}\n  condition: not sel",
        [resolver(query_type="TXT"), resolver(query_type="A"), resolver(query_type="NULL")],
        [False, True, False],
    )


def test_cased_wildcard_is_a_quoted_wildcard_string():
    pattern = assert_agree(
        "  sel: {query_name|cased|startswith: 'wpad'}\n  condition: sel",
        [resolver("wpad.corp."), resolver("WPAD.corp."), resolver("x.wpad.corp.")],
        [True, False, False],
    )
    assert "%" not in pattern


def test_numeric_comparison_and_its_negation():
    assert_agree(
        "  sel: {srcport|gte: 1024}\n  condition: not sel",
        [resolver(srcport=80), resolver(srcport=2000), resolver().replace('"srcport": "53000", ', "")],
        [True, False, True],
    )


@pytest.mark.parametrize("detection", [
    "  sel: {query_name|re: '^a.*'}\n  condition: sel",  # rule regexes are not translated
    "  sel: {answers.Rdata: 10.0.0.1}\n  condition: sel",  # array members: selectors index elements only
    "  sel: ['evil']\n  condition: sel",  # keywords
    "  sel: {query_name|contains: 'a b'}\n  condition: sel",  # white space has no regex form
])
def test_refused_with_a_reason(detection):
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="CloudWatch metric filter"):
        pattern_of(rule_yaml(detection))


def test_too_many_regexes_are_refused():
    detection = ("  a: {query_name|contains: x}\n  b: {query_name|contains: y}\n  c: {query_name|contains: z}\n"
                 "  condition: a and b and c")
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="3 regular expressions"):
        pattern_of(rule_yaml(detection))


def test_verify_cells_for_every_bundled_rule_agree_or_are_refused_with_a_reason():
    from r53sigma import verify

    report = verify.run(None, None, ("cloudwatch_metric_filter",))
    cells = [c for c in report.cells if c.target == "cloudwatch_metric_filter"]
    assert cells and all(c.status in verify.PASSING for c in cells), [(c.rule, c.status, c.reason) for c in cells if c.status not in verify.PASSING]
    assert any(c.status == verify.AGREE for c in cells)
    assert all(c.reason for c in cells if c.status == verify.NOT_EXPRESSIBLE)


def test_both_formats_read_the_same_pipeline_state_keys():
    from sigma.backends.cloudwatch import cloudwatch, metric_filter

    assert (metric_filter.STATE_FIELDS, metric_filter.STATE_COLUMNS) == (cloudwatch.STATE_FIELDS, cloudwatch.STATE_COLUMNS)


def test_a_negated_caseless_value_is_refused_rather_than_a_negated_regex():
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="negated match"):
        pattern_of(rule_yaml("  sel: {query_type: TXT}\n  f: {query_name|startswith: www}\n  condition: sel and not f"))


def test_cased_and_caseless_values_of_one_field_are_two_tests():
    assert_agree(
        "  a: {query_name|cased: 'Ab.example'}\n  b: {query_name: 'cd.example'}\n  condition: a or b",
        [resolver("Ab.example."), resolver("ab.example."), resolver("CD.example.")],
        [True, False, True],
    )
