"""The Logs Insights model against examples from AWS's query-syntax documentation (CWL_QuerySyntax-*),
and against its own refusals of ambiguous text."""
from __future__ import annotations

import json

import pytest

from r53sigma.targets.cloudwatch import insights_model as model


def events(*records):
    return [model.event(json.dumps(r), t) for t, r in enumerate(records)]


def test_filter_one_condition_sort_limit():  # CWL_QuerySyntax-Filter, "Filter log events using one condition"
    query = "fields @timestamp, @message | filter (range>3000) | sort @timestamp desc | limit 20"
    rows = model.run(query, events({"range": 5000}, {"range": 10}, {"range": 4000}))
    assert [r["range"] for r in rows] == [4000, 5000]


def test_filter_two_conditions():  # same page, "more than one condition"
    query = "fields @timestamp, @message | filter (range>3000 and accountId=123456789012) | sort @timestamp desc | limit 20"
    rows = model.run(query, events({"range": 5000, "accountId": "123456789012"}, {"range": 5000, "accountId": "1"}))
    assert len(rows) == 1


def test_special_character_field_in_backticks():  # CWL_QuerySyntax-Guidelines
    query = 'filter @`aws.tag.aws:cloudformation:stack-name` = "my-stack"'
    rows = model.run(query, [model.Event("x", 0, {"@aws.tag.aws:cloudformation:stack-name": "my-stack"}),
                             model.Event("y", 0, {"@aws.tag.aws:cloudformation:stack-name": "other"})])
    assert len(rows) == 1


def test_like_regex_and_not_like():
    assert model.selects("filter @message like /Exception/", "java.lang.Exception: x")
    assert not model.selects("filter @message not like /RequestId|Verbose/", "RequestId: 1")
    assert model.selects('filter @message like "Exc"', "Exception")
    assert not model.selects('filter @message like "exc"', "Exception")  # like "..." is case-sensitive


def test_case_insensitive_flag():
    assert model.selects("filter @message like /(?i)exception/", "EXCEPTION")


def test_in_list_and_not_in():
    assert model.selects('filter level in ["ERROR", "WARN"]', json.dumps({"level": "WARN"}))
    assert not model.selects('filter level not in ["ERROR", "WARN"]', json.dumps({"level": "WARN"}))


def test_stats_count_by_bin_is_epoch_aligned():
    rows = model.run("stats count(*) as n by bin(5m)", [model.event("{}", t) for t in (0, 299, 300, 601)])
    assert sorted((r["group0"], r["n"]) for r in rows) == [(0, 2), (300, 1), (600, 1)]


def test_arrays_are_flattened_by_index_and_message_is_raw():
    raw = json.dumps({"answers": [{"Rdata": "a."}, {"Rdata": "b."}], "srcids": {}})
    (row,) = model.run("fields @message", [model.event(raw)])
    assert row["answers.0.Rdata"] == "a." and row["answers.1.Rdata"] == "b." and row["@message"] == raw
    assert "srcids" not in row


def test_public_zone_line_fields():
    (row,) = model.run("filter queryType = \"AAAA\"", [model.event("1.0 2017-12-13T08:15:50.235Z Z123 example.com AAAA NOERROR TCP IAD12 55.36.5.7 192.168.222.0/24")])
    assert row["queryName"] == "example.com"


@pytest.mark.parametrize("text", ["filter a = 1 and b = 2 or c = 3", "filter not a = 1", "filter a =~ /(?=x)/", "filter a =~ /x\\Z/"])
def test_model_refuses_ambiguous_or_non_portable_text(text):
    with pytest.raises(model.QuerySyntaxError):
        model.Query.parse(text)


def test_if_general_function_marks_events_for_stats():  # CWL_QuerySyntax-operations-functions, General functions
    query = "fields if(range > 3000, 1, 0) as big | stats sum(big) as bigs, count(*) as n"
    assert model.run(query, events({"range": 5000}, {"range": 10}, {"range": 4000})) == [{"bigs": 2, "n": 3}]


def test_substr_strlen_arithmetic_documented_examples():  # CWL_QuerySyntax-operations-functions, String functions
    def value(expression, record=None):
        (row,) = model.run(f"fields {expression} as v", [model.event(json.dumps(record or {}))])
        return row.get("v")
    assert value('substr("xyZfooxyZ", 3, 3)') == "foo" and value('substr("xyZfooxyZ", 3)') == "fooxyZ"
    assert value('rtrim("xyZfooxyxyZ", "xyZ")') == "xyZfoo"  # every trailing character of the set
    assert value('strlen("h\u00e9.")') == 3 and value("strlen(name) - 1", {"name": "abc"}) == 2
    assert value("greatest(strlen(name) - 1, 0)", {"name": ""}) == 0
    assert value("substr(name, 0, 1)") is None  # absent field: no value


@pytest.mark.parametrize("call", ['substr("abc", 4)', 'substr("abc", -1)', 'substr("abc", 1, 3)', 'substr("", 0, 0 - 1)'])
def test_substr_outside_the_string_is_refused(call):  # undocumented: a query must never rely on it
    with pytest.raises(model.QuerySyntaxError, match="outside"):
        model.run(f"fields {call} as v", [model.event("{}")])


def test_bare_boolean_as_computed_field_is_refused():  # undocumented: the backend must use if(...)
    with pytest.raises(model.QuerySyntaxError, match="if"):
        model.Query.parse("fields (range > 3000) as big | stats sum(big)")


def test_array_members_exist_only_by_index():  # "Supported logs and discovered fields": arrays flattened by index
    raw = json.dumps({"answers": [{"Rdata": "a."}], "srcaddr": "10.0.0.1"})
    assert model.selects('filter answers.0.Rdata = "a."', raw)
    assert not model.selects('filter answers.Rdata = "a."', raw)
    assert not model.selects("filter ispresent(answers.Rdata)", raw)
    (row,) = model.run("stats count_distinct(answers.Rdata) as n by srcaddr", [model.event(raw)])
    assert row["n"] == 0


def test_unnest_documented_example():  # CWL_QuerySyntax-Unnest, first example
    raw = json.dumps({"events": [{"name": "exception"}, {"name": "user action"}]})
    rows = model.run("fields jsonParse(@message) as json_message | unnest json_message.events into event | fields event.name as name", [raw])
    assert [r["name"] for r in rows] == ["exception", "user action"]
    assert model.run("fields jsonParse(@message) as js | unnest js.events into e", [json.dumps({"events": []})]) == []


def test_query_longer_than_the_api_limit_is_refused():  # StartQuery API reference: queryString length <= 10000
    with pytest.raises(model.QuerySyntaxError, match="10000"):
        model.Query.parse("filter a = " + " or a = ".join(['"x"'] * 2000))


@pytest.mark.parametrize("regex", ["a*+", "(?>a)", "(?(1)a|b)", "(?P=n)", "(a)\\1", "(?<=a)b"])
def test_regex_constructs_re2_lacks_are_refused(regex):  # re2 "Syntax": not supported
    with pytest.raises(model.QuerySyntaxError, match="RE2"):
        model.Query.parse(f"filter a =~ /{regex}/")


def test_escaped_quantifier_characters_are_not_mistaken_for_constructs():
    assert model.selects("filter @message =~ /\\*+x[(?=]/", "**x?")


@pytest.mark.parametrize("query", [
    "fields greatest() as g", "fields least() as g", "filter greatest() > 1",  # "Numeric operators": greatest(a, ...numbers)
    "fields strlen(a, b) as n", "fields strlen() as n", 'fields substr("abc") as s', 'fields substr("abc", 0, 1, 2) as s',
    "fields if(a = 1, 2) as x", 'fields trim(a, "x", "y") as t', "filter ispresent()", "filter isIpInSubnet(a)",
    "stats count() by bin(5m)", "stats count(a, b)", "stats sum() by a", "stats count_distinct(*)",
])
def test_calls_with_the_wrong_number_of_arguments_are_refused_when_parsed(query):
    with pytest.raises(model.QuerySyntaxError):
        model.Query.parse(query)  # no event needed: the text itself is invalid


@pytest.mark.parametrize("query", [
    "fields nosuchfunction(a) as x", "filter nosuchfunction(a)", "stats median(a) by b", "filter count(*) > 1",
    "fields sum(a) as s", "filter a = *", "filter a > 5m", "fields bin(5m) as b", "stats count(*) by bin(a)",
    "nosuchcommand a", "dedup a",
])
def test_unknown_functions_commands_and_misplaced_calls_are_refused_when_parsed(query):
    with pytest.raises(model.QuerySyntaxError):
        model.Query.parse(query)


def test_greatest_and_least_documented():  # "Numeric operators": largest / smallest value
    rows = model.run("fields greatest(a, b, 3) as g, least(a, b, 3) as l", events({"a": 1, "b": 7}))
    assert (rows[0]["g"], rows[0]["l"]) == (7, 1)
    assert "g" not in model.run("fields greatest(a, nothere) as g", events({"a": 1}))[0]


@pytest.mark.parametrize("query", ["fields a | limit 0", "fields a | limit -5", "fields a | limit 100001", "fields a | limit 2.5"])
def test_limit_outside_one_to_100000_is_refused(query):  # CWL_QuerySyntax-Limit: "a limit value of up to 100,000"
    with pytest.raises(model.QuerySyntaxError):
        model.Query.parse(query)


def test_a_query_without_limit_returns_at_most_10000_events():  # CWL_QuerySyntax-Limit: "defaults to ... up to 10,000"
    many = [model.Event("x", 0, {"a": 1}) for _ in range(10_005)]
    assert len(model.Query.parse("filter a = 1").run(many)) == 10_000
    assert len(model.Query.parse("filter a = 1 | limit 10003").run(many)) == 10_003


@pytest.mark.parametrize("query", [
    'filter a = 2 and b =~ "x"',  # never evaluated when a = 2 is false: refused all the same
    'filter a = 2 and b like c', "filter a = 2 and b = /x/", "filter a = 2 and b in [/x/]",
    "filter a = 2 and b", "filter a", "filter not (a)", "fields if(a, 1, 0) as x", "fields (a = 1) + 2 as x",
])
def test_operands_without_a_documented_meaning_are_refused_when_parsed(query):
    with pytest.raises(model.QuerySyntaxError):
        model.Query.parse(query)
