"""The ES|QL model against examples of Elastic's ES|QL reference (adapted from ROW/employees to documents).

Sources: ES|QL reference "STATS" (grouping by multivalued keys: the row goes in every group; the
employees example with a null `languages` group), "Multivalued fields" (functions return null on
them, with a warning), "LIKE"/"RLIKE", "CIDR_MATCH", "DATE_TRUNC", "ES|QL and flattened fields".
"""
import pytest

from r53sigma.targets.elasticsearch import esql_model as esql

FROM = "from logs-test metadata _id"


def docs(*rows):
    return [{k: (v if isinstance(v, list) else [v]) for k, v in row.items() if v is not None} for row in rows]


def test_stats_by_multivalued_keys_puts_the_row_in_every_group():
    # docs: ROW i=1, a=["a","b"], b=[2,3] | STATS MIN(i) BY a, b -> four groups
    rows = esql.run(f"{FROM} | stats m=min(i) by a, b", docs({"i": 1, "a": ["a", "b"], "b": [2, 3]}))
    assert sorted((r["a"], r["b"], r["m"]) for r in rows) == [("a", 2, 1), ("a", 3, 1), ("b", 2, 1), ("b", 3, 1)]


def test_stats_by_groups_null_keys_together():
    # docs (employees): STATS count = COUNT(emp_no) BY languages has a row for languages = null
    rows = esql.run(f"{FROM} | stats count=count(emp_no) by languages",
                    docs({"emp_no": 1, "languages": 2}, {"emp_no": 2}, {"emp_no": 3}))
    assert sorted(rows, key=lambda r: str(r["languages"])) == [{"languages": 2, "count": 1}, {"languages": None, "count": 2}]


def test_comparisons_on_a_multivalued_field_are_null():
    # docs: ROW a=[1, 2] | WHERE a == 1 returns nothing (single-value functions return null on multivalues)
    rows = esql.run(f'{FROM} | where data == "x"', docs({"data": ["x", "y"]}, {"data": "x"}))
    assert len(rows) == 1
    assert esql.run(f'{FROM} | where not data == "x"', docs({"data": ["x", "y"]})) == []


def test_three_valued_logic():
    documents = docs({"a": "1"}, {"b": "1"})
    assert len(esql.run(f'{FROM} | where a == "1" or b == "1"', documents)) == 2
    assert len(esql.run(f'{FROM} | where not a == "1"', documents)) == 0  # null for the row without a
    assert len(esql.run(f"{FROM} | where a is null", documents)) == 1


def test_like_is_a_whole_value_case_sensitive_wildcard_match():
    # docs: WHERE first_name LIKE """?b*"""
    documents = docs({"first_name": "Ebbe"}, {"first_name": "Eberhardt"}, {"first_name": "EBBE"}, {"first_name": "Sebastian"})
    assert [r["first_name"] for r in esql.run(f'{FROM} | where first_name like """?b*"""', documents)] == ["Ebbe", "Eberhardt"]


def test_rlike_is_a_whole_value_lucene_regex():
    # docs: WHERE first_name RLIKE """.leja.*"""
    documents = docs({"first_name": "Alejandro"}, {"first_name": "xAlejandro"})
    assert [r["first_name"] for r in esql.run(f'{FROM} | where first_name rlike """.leja.*"""', documents)] == ["Alejandro"]


def test_rlike_negated_character_class():
    # Lucene RegExp (https://www.elastic.co/guide/en/elasticsearch/reference/current/regexp-syntax.html):
    # "[^abc]" right after the bracket negates the class; a "^" elsewhere is a plain character.
    documents = docs({"name": "1.2.3.4.bl.example"}, {"name": "1.2.3.4..example"}, {"name": "a^b"})
    assert [r["name"] for r in esql.run(f'{FROM} | where name rlike """([0-9]+\\.){{4}}[^.]+\\..+"""', documents)] == ["1.2.3.4.bl.example"]
    assert [r["name"] for r in esql.run(f'{FROM} | where name rlike """a^b"""', documents)] == ["a^b"]


def test_starts_with_ends_with_are_case_sensitive():
    documents = docs({"name": "Api.Example.COM"}, {"name": "x.example.com"})
    assert len(esql.run(f'{FROM} | where ends_with(name, ".example.com")', documents)) == 1
    assert len(esql.run(f'{FROM} | where starts_with(name, "Api.")', documents)) == 1


def test_cidr_match():
    # docs: WHERE CIDR_MATCH(ip1, "127.0.0.2/32", "127.0.0.3/32")
    documents = docs({"ip1": "127.0.0.2"}, {"ip1": "127.0.0.3"}, {"ip1": "127.0.0.4"}, {"ip1": "::1"})
    assert [r["ip1"] for r in esql.run(f'{FROM} | where cidr_match(ip1, "127.0.0.2/32", "127.0.0.3/32")', documents)] == ["127.0.0.2", "127.0.0.3"]


def test_in_and_date_trunc_buckets_are_epoch_aligned():
    documents = docs(*({"@timestamp": t, "t": "TXT"} for t in
                       ["2026-01-01T00:00:59.000Z", "2026-01-01T00:01:00.000Z", "2026-01-01T00:01:30.000Z"]))
    rows = esql.run(f'{FROM} | where t in ("TXT", "NULL") | eval b=date_trunc(1minutes, @timestamp) '
                    "| stats n=count() by b | where n > 1", documents)
    assert rows == [{"b": 1767225660, "n": 2}]


def test_count_distinct_and_case():
    documents = docs({"u": "a", "k": "x"}, {"u": "a", "k": "y"}, {"u": "a", "k": "x"}, {"u": "b", "k": "z"})
    rows = esql.run(f'{FROM} | eval t=case(k == "x", "one", k == "y", "two") | stats d=count_distinct(t) by u', documents)
    assert sorted((r["u"], r["d"]) for r in rows) == [("a", 2), ("b", 0)]


MAPPING = {"dns.question.name": "keyword", "dns.question.name.caseless": "keyword", "source.ip": "ip",
           "@timestamp": "date", "aws.cloudtrail.flattened.request_parameters": "flattened"}


def test_type_check_rejects_unknown_columns():
    with pytest.raises(esql.QueryTypeError, match="Unknown column"):
        esql.parse(f'{FROM} | where dns.question.nam == "x"', MAPPING)
    esql.parse(f'{FROM} | where dns.question.name.caseless == "x" | stats n=count() by source.ip | where n > 1', MAPPING)


def test_type_check_rejects_keys_inside_a_flattened_field():
    # docs: "ES|QL can access only the root flattened field directly and you must use FIELD_EXTRACT"
    with pytest.raises(esql.QueryTypeError, match="FIELD_EXTRACT"):
        esql.parse(f'{FROM} | where aws.cloudtrail.flattened.request_parameters.ruleType == "FORWARD"', MAPPING)


def test_type_check_rejects_wrong_argument_types():
    with pytest.raises(esql.QueryTypeError, match="ip field"):
        esql.parse(f'{FROM} | where cidr_match(dns.question.name, "10.0.0.0/8")', MAPPING)
    with pytest.raises(esql.QueryTypeError, match="string field"):
        esql.parse(f'{FROM} | where ends_with(source.ip, ".5")', MAPPING)


def test_unmodelled_commands_are_refused_not_guessed():
    with pytest.raises(esql.QuerySyntaxError):
        esql.parse(f"{FROM} | mv_expand x")
