"""Splunk: values a search term cannot state (`?`, `|cased`, a literal `*`, `|re`) keep the rule's meaning.

Each test converts an inline rule with route53_splunk, runs the query in the SPL model on the events
the add-on extracts, and checks that it selects exactly the records the reference engine selects
(and that the records sit on both sides of the rule, so agreement is not vacuous).
"""
import pytest

from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.events import event_from_raw
from support import convert, resolver_rule, rule


def record(name: str, qtype: str = "A", rcode: str = "NOERROR", answers=()) -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": "2026-01-01T00:00:00Z", "query_name": name, "query_type": qtype,
            "query_class": "IN", "rcode": rcode, "srcaddr": "10.0.0.5", "srcport": "40000",
            "transport": "UDP", "srcids": {},
            "answers": [{"Rdata": data, "Type": "A", "Class": "IN"} for data in answers]}


RECORDS = [
    record("abc.example.", "TXT"), record("aXc.example."), record("ac.example."), record("abbc.example."),
    record("Evil.example.", rcode="NXDOMAIN"), record("evil.example."), record("EVIL.example.", "TXT"),
    record("a*c.example."), record("x.example.", answers=["10.0.0.1", "evil.example."]),
    record("y.example.", "TXT", "NXDOMAIN", answers=["evil.example."]),
    record("Evil.example.", "TXT"), record("a*c.example.", "TXT"), record("z.example.", rcode="NXDOMAIN"),
    record('q"u\\o|t{e}\'.example.'),
    record("-abc.example."), record("/aXc.example."), record("-ac.example."), record("/abbc.example."),
]


def agree(text: str) -> set[int]:
    """Indexes of the records the Splunk query selects, asserted equal to the engine's."""
    query = convert(text, "splunk")
    sigma_rule = rule(text).rules[0]
    engine = Engine()
    expected = {i for i, r in enumerate(RECORDS) if engine.matches(sigma_rule, parse_record(r))}
    selected = {i for i, r in enumerate(RECORDS) if spl_model.selects(query, event_from_raw(r))}
    assert selected == expected, query
    assert 0 < len(expected) < len(RECORDS), "records must sit on both sides of the rule"
    return selected


def test_single_character_wildcard_matches_exactly_one_character():
    text = resolver_rule("sel:\n  query_name: 'a?c.example'\ncondition: sel")
    assert agree(text) == {0, 1, 7, 11}  # not ac.example, not abbc.example


@pytest.mark.parametrize("condition", [
    "plain or special", "special or plain", "(plain or special) and rcode", "not (plain and special)",
    "not (plain or special)", "plain and not special", "rcode and not (plain or special)",
])
@pytest.mark.parametrize("special", [
    "query_name|cased: 'Evil.example'", "query_name|re: '^[Ee]vil\\.'", "query_name: 'a\\*c.example'",
    "answers.Rdata|re: '^evil'",
])
def test_plain_and_regex_terms_keep_their_boolean_structure(condition, special):
    text = resolver_rule(f"""
        plain:
          query_type: TXT
        special:
          {special}
        rcode:
          rcode: NXDOMAIN
        condition: {condition}""")
    agree(text)


def test_a_value_list_mixing_plain_and_regex_values_stays_or_ed():
    text = resolver_rule("sel:\n  query_name|cased:\n    - 'Evil.example'\n    - 'abc.example'\n"
                         "  query_type: TXT\ncondition: not sel")
    agree(text)


def test_a_regex_on_a_multivalue_field_matches_any_value_under_or():
    text = resolver_rule("a:\n  query_type: TXT\nb:\n  answers.Rdata|re: '^evil\\.'\ncondition: a or b")
    assert agree(text) == {0, 6, 8, 9, 10, 11}


def test_a_keyword_with_a_single_character_wildcard_is_one_character_of_a_whole_value():
    # was refused; now an exact regex over _raw (query_name compared without its trailing dot)
    text = resolver_rule("keywords:\n  - 'a?c.example'\ncondition: keywords")
    assert agree(text) == {0, 1, 7, 11}  # abc, aXc, a*c (twice); not ac, abbc


def test_plain_detections_every_match_needs_narrow_the_base_search_before_the_eval():
    text = resolver_rule("a:\n  query_type: TXT\nb:\n  query_name|re: '^[Ee]vil'\n"
                         "c:\n  rcode: NXDOMAIN\ncondition: a and (b or c)")
    assert agree(text) == {9, 10}
    base = convert(text, "splunk").split("|")[0]
    narrowed = {i for i, r in enumerate(RECORDS) if spl_model.selects(base, event_from_raw(r))}
    assert narrowed == {i for i, r in enumerate(RECORDS) if r["query_type"] == "TXT"}


def test_quotes_backslashes_pipes_and_braces_in_a_regex_value_stay_inside_the_eval_string():
    text = resolver_rule("a:\n  query_type: TXT\nb:\n  query_name|cased: 'q\"u\\\\o|t{e}''.example'\n"
                         "condition: a or b")
    assert agree(text) == {0, 6, 9, 10, 11, 13}  # the TXT records and the odd name


def test_an_expanded_value_with_a_single_character_wildcard_is_routed_like_any_value():
    text = resolver_rule("a:\n  query_type: TXT\nb:\n  query_name|windash: '-a?c.example'\ncondition: a or b")
    assert agree(text) == {0, 6, 9, 10, 11, 14, 15}


def base_search(text: str) -> set[int]:
    base = convert(text, "splunk").split("\n|")[0]
    return {i for i, r in enumerate(RECORDS) if spl_model.selects(base, event_from_raw(r))}


def test_a_required_literal_keyword_narrows_the_base_search_by_its_term():
    # the segment term is a superset of the exact regex (the value stands between breakers in _raw)
    text = resolver_rule("keywords:\n  - evil.example\nsel:\n  query_type: TXT\ncondition: keywords and sel")
    selected = agree(text)
    assert selected == {6, 9, 10}
    assert selected <= base_search(text) < set(range(len(RECORDS)))


def test_keywords_under_not_or_with_wildcards_leave_the_base_search_to_the_scope():
    for condition in ("not keywords", "keywords or sel"):
        text = resolver_rule(f"keywords:\n  - evil.example\nsel:\n  query_type: TXT\ncondition: {condition}")
        agree(text)
        assert base_search(text) == set(range(len(RECORDS)))
    text = resolver_rule("keywords:\n  - 'evil.ex*'\ncondition: keywords")
    agree(text)
    assert base_search(text) == set(range(len(RECORDS)))
