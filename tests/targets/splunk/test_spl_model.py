"""The Splunk model against the Splunk documentation's own examples and rules.

Sources: Splunk Search Manual "Boolean expressions with logical operators" (order of evaluation),
"Backslashes"; Search Reference "search" (CIDR, IN, wildcards), "where", "rex", "regex", "stats",
"bin"; "Use CASE() and TERM()" (searches are case-insensitive).
"""
import pytest

from r53sigma.targets.splunk import spl_model as spl


def ids(query, events):
    return [e["id"] for e in spl.run(query, events)]


ABC = [
    {"id": 1, "A": "1", "B": "2", "C": "0"},
    {"id": 2, "A": "0", "B": "0", "C": "3"},
    {"id": 3, "A": "1", "B": "0", "C": "3"},
]


def test_search_evaluates_or_before_and():
    # Docs: the search command evaluates OR before AND: A=1 AND B=2 OR C=3 is A=1 AND (B=2 OR C=3)
    assert ids("A=1 AND B=2 OR C=3", ABC) == [1, 3]
    assert ids("A=1 B=2 OR C=3", ABC) == [1, 3]  # AND is implied between terms


def test_where_evaluates_and_before_or():
    # ... while eval and where evaluate AND before OR: (A=1 AND B=2) OR C=3
    assert ids("| where A=1 AND B=2 OR C=3", ABC) == [1, 2, 3]


def test_not_applies_to_the_next_term_only():
    events = [{"id": 1, "_raw": "error 403"}, {"id": 2, "_raw": "error 500"}, {"id": 3, "_raw": "ok 404"}]
    assert ids("error NOT (403 OR 404)", events) == [2]  # the Search Manual's example
    assert ids("NOT 403 OR 404", events) == [2, 3]  # (NOT 403) OR 404


def test_in_and_wildcards():
    events = [{"id": n, "status": s, "host": h} for n, (s, h) in
              enumerate([("401", "webserver1"), ("500", "webserver2"), ("200", "db1")], 1)]
    assert ids("status IN (401, 403, 404)", events) == [1]
    assert ids("host=webserver* (status=4* OR status=5*)", events) == [1, 2]
    assert ids('host=webserver* status IN ("4*", "5*")', events) == [1, 2]


def test_values_are_case_insensitive_field_names_are_not():
    events = [{"id": 1, "host": "LOCALHOST"}, {"id": 2, "Host": "localhost"}]
    assert ids("host=localhost", events) == [1]


def test_cidr_values_match_ip_fields_v4_and_v6():
    events = [{"id": n, "ip": ip} for n, ip in enumerate(["127.0.0.9", "127.0.1.1", "2022::5", "2022::9", "not-an-ip"], 1)]
    assert ids('ip="127.0.0.0/24"', events) == [1]
    assert ids('ip="2022::4/126"', events) == [3]


def test_a_backslash_cannot_escape_the_asterisk():
    # Docs: "The backslash symbol can't be used to escape the asterisk in search strings."
    events = [{"id": 1, "name": "*.example.com"}, {"id": 2, "name": "\\052.example.com"}, {"id": 3, "name": "\\x.example.com"}]
    assert ids('name="\\*.*"', events) == [2, 3]  # a literal backslash, then a wildcard
    assert ids('name="\\\\052.*"', events) == [2]  # `\\` is one backslash


def test_multivalue_fields_match_if_any_value_does():
    events = [{"id": 1, "answer": ["a.example.", "10.1.2.3"]}, {"id": 2, "answer": ["8.8.8.8"]}, {"id": 3}]
    assert ids('answer="10.0.0.0/8"', events) == [1]
    assert ids('NOT answer="10.0.0.0/8"', events) == [2, 3]  # NOT keeps events without the field
    assert ids('answer!="10.0.0.0/8"', events) == [2]  # != needs the field
    assert ids("answer=*", events) == [1, 2]
    assert ids("NOT answer=*", events) == [3]


def test_regex_is_case_sensitive_pcre_and_unanchored():
    events = [{"id": 1, "query": "Evil.example"}, {"id": 2, "query": "evil.example"}]
    assert ids('| regex query="^Evil"', events) == [1]
    assert ids('| regex query="vil\\\\.ex"', events) == [1, 2]
    assert ids('| regex query!="^Evil"', events) == [2]


def test_rex_and_eval_give_a_condition_field():
    query = ('* | rex field=query "(?<m>^[a-z]+\\\\.)" | eval c=if(isnotnull(m), "true", "false") '
             '| search c="true"')
    assert ids(query, [{"id": 1, "query": "abc.x"}, {"id": 2, "query": "ABC.x"}, {"id": 3}]) == [1]


def test_where_compares_exactly_and_quotes_odd_field_names():
    events = [{"id": 1, "answers{}.Type": ["TXT"]}, {"id": 2, "answers{}.Type": ["txt"]}]
    assert ids("| where 'answers{}.Type'=\"TXT\"", events) == [1]
    assert ids('| where like(\'answers{}.Type\', "T%")', events) == [1]


def test_bin_and_stats_by_leave_out_events_without_the_field():
    events = [{"_time": t, "src": s, "query": q} for t, s, q in
              [(0, "a", "x"), (30, "a", "y"), (59, "a", "y"), (61, "a", "z"), (10, None, "w")]]
    events[-1].pop("src")
    rows = spl.run("* | bin _time span=1m | stats count as n, dc(query) as d by _time src", events)
    assert sorted((r["_time"], r["src"], r["n"], r["d"]) for r in rows) == [(0, "a", 3, 2), (60, "a", 1, 1)]


def test_stats_by_a_multivalue_field_counts_the_event_in_each_group():
    rows = spl.run("* | stats count by answer", [{"answer": ["1.1.1.1", "2.2.2.2"]}, {"answer": "1.1.1.1"}])
    assert sorted((r["answer"], r["count"]) for r in rows) == [("1.1.1.1", 2), ("2.2.2.2", 1)]


def test_search_after_stats_compares_numbers():
    rows = spl.run("* | stats count as n by src | search n > 1", [{"src": "a"}, {"src": "a"}, {"src": "b"}])
    assert rows == [{"src": "a", "n": 2}]


def test_multisearch_is_the_union_of_its_subsearches():
    query = ('| multisearch [ search kind="a" | eval t="A" ] [ search kind="b" | eval t="B" ]\n'
             "| stats dc(t) as kinds by user | search kinds >= 2")
    events = [{"kind": "a", "user": "u1"}, {"kind": "b", "user": "u1"}, {"kind": "a", "user": "u2"}]
    assert spl.run(query, events) == [{"user": "u1", "kinds": 2}]


def test_multisearch_subsearch_with_a_regex_character_class():
    # brackets inside a quoted regex are text, not the end of the subsearch
    query = ('| multisearch [ search kind="a" | regex name="^[dD][nN][sS]\\..+" | eval t="A" ] [ search kind="b" | eval t="B" ]\n'
             "| stats count as n by t")
    events = [{"kind": "a", "name": "DNS.example"}, {"kind": "a", "name": "www.example"}, {"kind": "b"}]
    assert sorted((r["t"], r["n"]) for r in spl.run(query, events)) == [("A", 1), ("B", 1)]


def test_a_search_starting_with_or_is_rejected_as_splunk_does():
    with pytest.raises(spl.InvalidSearch):
        spl.run('* | search OR c="true"', [{}])


def test_unmodelled_commands_are_refused_not_guessed():
    with pytest.raises(spl.QuerySyntaxError):
        spl.run("* | transaction user", [{}])


def test_rename_moves_a_field_and_an_absent_source_empties_the_target():
    rows = spl.run("search x=1 | rename a AS b", [{"x": "1", "a": "v"}, {"x": "1", "b": "old"}])
    assert rows == [{"x": "1", "b": "v"}, {"x": "1"}]
