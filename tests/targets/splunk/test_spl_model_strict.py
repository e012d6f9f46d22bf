"""The SPL model reads what Splunk reads and rejects what Splunk rejects (one rule per test).

Sources: Search Manual "SPL and regular expressions" (PCRE, backslashes); pcre2pattern(3) (option
settings, escapes, POSIX classes, quantifiers); Search Reference "eval" (quoted field names, no
boolean results), "Multivalue eval functions" (mvfind), "multisearch".
"""
import pytest

from r53sigma.targets.splunk import spl_model as spl


def ids(query, events):
    return [e["id"] for e in spl.run(query, events)]


def values(*texts):
    return [{"id": n, "f": t} for n, t in enumerate(texts, 1)]


def test_an_option_setting_in_mid_group_applies_to_the_rest_of_the_group_and_later_branches():
    # pcre2pattern: "(a(?i)b|c)" matches "ab", "aB", "c" and "C"; Python refuses mid-pattern flags
    assert ids('| regex f="^(a(?i)b|c)$"', values("ab", "aB", "AB", "c", "C")) == [1, 2, 4, 5]


def test_posix_classes_are_pcre_classes():
    assert ids('| regex f="^[[:digit:]]+$"', values("123", "abc", ":")) == [1]


def test_lower_z_is_the_very_end_upper_z_allows_a_final_newline():
    assert ids('| regex f="a\\z"', values("a", "a\n")) == [1]
    assert ids('| regex f="a\\Z"', values("a", "a\n", "a\nb")) == [1, 2]


def test_d_and_w_are_ascii_only():
    assert ids('| regex f="^\\d$"', values("3", "\u0663")) == [1]


def test_a_brace_that_starts_no_quantifier_is_a_literal():
    assert ids('| regex f="^x{,3}$"', values("x{,3}", "xx", "")) == [1]


@pytest.mark.parametrize("pattern", ["(?U)a+", "\\p{L}", "(*UTF)a", "(?|a|b)", "a\\Kb", "[[:nope:]]"])
def test_pcre_constructs_python_lacks_are_refused_not_guessed(pattern):
    with pytest.raises(spl.QuerySyntaxError):
        spl.run(f'| regex f="{pattern}"', values("a"))


def test_eval_string_backslashes_other_than_quote_and_backslash_reach_the_regex():
    # the Search Reference's match() example writes "^\d{1,3}\.\d{1,3}..." with single backslashes
    assert ids('| where match(f, "^\\d{1,3}\\.\\d{1,3}$")', values("10.20", "10x20")) == [1]
    assert ids('| where match(f, "^a\\\\\\\\b$")', values("a\\b", "ab")) == [1]  # "\\\\" -> regex \\


def test_eval_field_names_with_dots_or_braces_need_single_quotes():
    events = [{"id": 1, "answers{}.Type": ["TXT"]}]
    assert ids("| where 'answers{}.Type'=\"TXT\"", events) == [1]
    with pytest.raises(spl.QuerySyntaxError):
        spl.run('| where answers{}.Type="TXT"', events)
    with pytest.raises(spl.QuerySyntaxError):
        spl.run('| eval x=if(isnull(requestParameters.name), "a", "b")', events)


def test_eval_cannot_assign_a_boolean():
    with pytest.raises(spl.InvalidSearch):
        spl.run('| eval x=(f="a")', values("a"))


def test_mvfind_finds_any_value_of_a_multivalue_field():
    events = [{"id": 1, "a": ["x.example", "evil.example"]}, {"id": 2, "a": ["x.example"]}, {"id": 3}]
    query = '| eval hit=if(isnotnull(mvfind(a, "^evil\\\\.")), "true", "false") | search hit="true"'
    assert ids(query, events) == [1]


def test_multisearch_brackets_inside_quoted_strings_are_text():
    query = ('| multisearch [ search kind="a" | eval t=if(match(f, "^[a-z][0-9]$"), "x", "y") ] '
             '[ search kind="b" | eval t="z" ]')
    rows = spl.run(query, [{"kind": "a", "f": "a1"}, {"kind": "b"}])
    assert sorted(r["t"] for r in rows) == ["x", "z"]


def test_eval_function_names_are_lower_case_and_true_is_a_function():
    assert ids('| where f="a" AND true()', values("a", "b")) == [1]
    with pytest.raises(spl.QuerySyntaxError):
        spl.run('| where IF(f="a", true(), false())', values("a"))
    assert ids("| where true", values("a")) == []  # a field named "true", absent


def test_multisearch_subsearches_must_be_streaming():
    with pytest.raises(spl.InvalidSearch):
        spl.run('| multisearch [ search a=1 | stats count ] [ search b=1 ]', [{}])


def raws(*texts):
    return [{"id": n, "_raw": t} for n, t in enumerate(texts, 1)]


def test_a_bare_term_matches_whole_segments_of_raw_not_a_substring():
    # Search Manual "Event segmentation and searching": _raw is cut at major and minor breakers
    # (segmenters.conf [default]); a term covers whole segments, case-insensitively
    events = raws('{"a": "evil.com"}', '{"a": "xevil.com"}', '{"a": "evil.comx"}', "q EVIL.COM. z", "evil-com")
    assert ids('"evil.com"', events) == [1, 4]
    assert ids("vil", raws("evil", "v-vil")) == [2]


def test_a_term_that_begins_with_a_breaker_needs_no_boundary_before_it():
    assert ids('".com"', raws("evil.com", "evilcom", "evil.comx")) == [1]


def test_a_wildcard_inside_a_bare_term_is_not_modelled():
    # the same page: a wildcard in the middle of a term "might return inconsistent results"
    with pytest.raises(spl.QuerySyntaxError, match="inside a term"):
        spl.run("ev*il", raws("evil"))
    assert ids("evil*", raws("evil.com", "devil")) == [1]
