"""`convert --target athena`: Trino SQL over AWS's documented r53_rlogs table, parsed and executed locally."""
from __future__ import annotations

import functools
import json
import re
import textwrap

import duckdb
import pytest
import sqlglot
import yaml

from r53sigma.targets import registry
from r53sigma.targets.spec import bursts_of_buckets
from r53sigma.verify import DISAGREE, WindowBound
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule

from r53sigma import catalogue, conversion, first_seen, ioc, rules as rules_mod
from r53sigma.scan import derived_fields
from r53sigma.targets.athena import backend as athena
from r53sigma.cli import main
from r53sigma.testcases import case_files, case_variables, default_cases_dir

# The documented table's columns as DuckDB types, to load raw records as Athena's JSON SerDe would.
ATHENA_COLUMNS = {
    "version": "VARCHAR", "account_id": "VARCHAR", "region": "VARCHAR", "vpc_id": "VARCHAR",
    "query_timestamp": "VARCHAR", "query_name": "VARCHAR", "query_type": "VARCHAR", "query_class": "VARCHAR",
    "rcode": "VARCHAR", "answers": "STRUCT(Rdata VARCHAR, Type VARCHAR, Class VARCHAR)[]", "srcaddr": "VARCHAR",
    "srcport": "INTEGER", "transport": "VARCHAR", "srcids": "STRUCT(instance VARCHAR, resolver_endpoint VARCHAR)",
    "firewall_rule_action": "VARCHAR", "firewall_rule_group_id": "VARCHAR", "firewall_domain_list_id": "VARCHAR",
}
# Trino functions DuckDB spells differently (sqlglot transpiles the rest).
MACROS = [
    "CREATE MACRO any_match(l, f) AS coalesce(list_bool_or(list_transform(l, f)), false)",
    "CREATE MACRO is_finite(x) AS isfinite(x)",
]


def run_locally(query: str, records: list[dict], tmp_path, ioc_rows: list[tuple] = ()) -> list[tuple]:
    con = duckdb.connect()
    for macro in MACROS:
        con.execute(macro)
    # the list table as CREATE_IOC_TABLE reads r53sigma.ioc.lookup_csv's file
    con.execute(f"CREATE TABLE {athena.IOC_TABLE} (domain VARCHAR, category VARCHAR)")
    if ioc_rows:
        con.executemany(f"INSERT INTO {athena.IOC_TABLE} VALUES (?, ?)", list(ioc_rows))
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in ATHENA_COLUMNS.items()) + "}"
    con.execute(f"CREATE TABLE r53_rlogs AS SELECT * FROM read_json('{data}', format='newline_delimited', columns={columns})")
    return con.execute(sqlglot.transpile(query, read="trino", write="duckdb")[0]).fetchall()


def test_documented_table_has_the_catalogue_fields_athena_queries_use():
    resolver = catalogue.load()["resolver"]
    for name in resolver.fields:
        top = name.split(".")[0]
        assert top in ATHENA_COLUMNS and f"{top} " in athena.CREATE_TABLE
    assert "PARTITIONED BY (`date` string" in athena.CREATE_TABLE and "srcport int" in athena.CREATE_TABLE


def test_every_resolver_rule_converts_to_trino_sql_that_parses():
    conversions, errors = conversion.convert_paths(None, ["athena"], case_variables(default_cases_dir()))
    assert not errors
    derived = [c for c in conversions if derived_fields.named_by(c.rule)]  # no Public Suffix List in Athena
    # a numeric correlation (value_avg of query_length) is refused for its type before its fields are read
    assert derived and all(c.not_expressible and ("not available in Athena" in c.error or
                                                  re.search(r"correlation type value_\w+ has no Athena query", c.error))
                           for c in derived)
    stateful = [c for c in conversions if first_seen.of(c.rule) is not None and c not in derived]  # no state between runs
    assert stateful and all(c.not_expressible and "athena cannot state a first-seen rule" in c.error for c in stateful)
    derived += stateful
    resolver = [c for c in conversions if all(_is_resolver(base) for base in _bases(c.rule)) and c not in derived]
    assert resolver and all(c.ok for c in resolver), [c.error for c in resolver if not c.ok]
    for c in resolver:
        sqlglot.parse_one(c.query, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    others = [c for c in conversions if c not in resolver and c not in derived]
    assert others and all(c.not_expressible for c in others)  # CloudTrail and public zone: a limit, not a failure


def test_convert_cli_prints_athena_sql(tmp_path, capsys):
    rule = tmp_path / "r.yml"
    rule.write_text(textwrap.dedent("""
        title: evil
        id: 0e5c2b8a-1111-4c1a-9d1e-0000000000a1
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {query_name|endswith: .evil.com}, condition: sel}
        level: high
    """))
    assert main(["convert", "-t", "athena", str(rule)]) == 0
    out = capsys.readouterr().out
    assert "FROM r53_rlogs" in out and "LIKE '%.evil.com'" in out


@functools.cache
def pack():
    return rules_mod.load(None, case_variables(default_cases_dir()))  # %ioc_domains% from its case file


def _bases(rule):
    return [r.rule for r in rule.rules] if isinstance(rule, SigmaCorrelationRule) else [rule]


def _is_resolver(rule) -> bool:
    ls = rule.logsource
    found = catalogue.for_logsource(ls.category, ls.product, ls.service)
    return bool(found) and found[0].source == "resolver"


def resolver_cases():
    loaded = pack()
    for path in case_files(default_cases_dir()):
        doc = yaml.safe_load(path.read_text())
        rule = loaded.find(str(doc["rule"]))
        # refused: a correlation joining CloudTrail, and rules on registered-domain fields
        if all(_is_resolver(base) for base in _bases(rule)) and not derived_fields.named_by(rule) \
                and first_seen.of(rule) is None:  # first-seen rules: refused, see above
            for case in doc["cases"]:
                yield pytest.param(str(doc["rule"]), case, id=f"{path.stem}-{case['name'][:40]}")


@pytest.mark.parametrize("reference,case", list(resolver_cases()))
def test_athena_query_run_locally_gives_each_rule_case_its_expected_alerts(reference, case, tmp_path):
    rule = pack().find(reference)
    query = athena.correlation_query(rule) if isinstance(rule, SigmaCorrelationRule) else athena.rule_query(rule)
    if "IPADDRESS" in query:
        pytest.skip("Trino's IPADDRESS type has no DuckDB equivalent: parsed, not executed")
    records = [e for e in case["events"] if isinstance(e, dict)]
    listed = ioc.list_match(rule)
    rows = run_locally(query, records, tmp_path, [(d, None) for d in listed.domains] if listed else ())
    if not isinstance(rule, SigmaCorrelationRule):
        assert len(rows) == case["alerts"]
        return
    # fixed epoch-aligned windows (window_guarantee 0): held to the spec's bursts as verify holds a
    # fixed-bucket target, never more alerts than bursts, an exact answer or an approximate one
    width = len(rule.group_by or [])
    keyed = [{"window_start": r[0], **{f"group{i}": v for i, v in enumerate(r[1:1 + width])}} for r in rows]
    got = bursts_of_buckets(keyed, "window_start", lambda name: False, rule.timespan.seconds)
    assert registry.get("athena").window_guarantee == 0.0
    assert WindowBound(exact=case["alerts"], guaranteed=0, fraction=0.0).judge(got) != DISAGREE


def test_correlation_query_counts_per_epoch_window_and_leaves_out_rows_without_group(tmp_path):
    collection = SigmaCollection.from_yaml(textwrap.dedent("""
        title: nx
        id: 6a1d9c3e-0000-4000-8000-0000000000b1
        name: nx
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {rcode: NXDOMAIN}, condition: sel}
        ---
        title: nx burst
        id: 6a1d9c3e-0000-4000-8000-0000000000b2
        correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 1m, condition: {gte: 2}}
    """))
    correlation = collection.rules[1]
    records = [{"query_timestamp": t, "rcode": "NXDOMAIN", "srcaddr": s} for t, s in [
        ("2024-05-01T10:00:59Z", "a"), ("2024-05-01T10:01:00Z", "a"),  # two windows: no alert
        ("2024-05-01T10:02:00Z", "b"), ("2024-05-01T10:02:30Z", "b"),  # one window: alert
        ("2024-05-01T10:03:00Z", None), ("2024-05-01T10:03:01Z", None),  # no group value: left out
    ]]
    rows = run_locally(athena.correlation_query(correlation), records, tmp_path)
    assert rows == [(1714557720.0, "b", 2)]


def test_the_resolver_rule_cases_are_found():
    assert len(list(resolver_cases())) > 20


IOC_RULE = """
title: listed
id: 6a1d9c3e-0000-4000-8000-0000000000c1
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
    condition: selection
"""


def test_threat_feed_rule_joins_the_list_table_on_the_name_and_its_parents(tmp_path, monkeypatch):
    monkeypatch.delenv(ioc.ENV_FILE, raising=False)  # no list at conversion: the table is the list
    (rule,) = SigmaCollection.from_yaml(IOC_RULE).rules
    query = athena.rule_query(rule)
    sqlglot.parse_one(query, read="trino")
    assert "evil" not in query and f"JOIN {athena.IOC_TABLE} AS i" in query
    names = ["a.b.EVIL.example.", "evil.example.", "notevil.example.", "evil.example.attacker.test.", "example.", None, ""]
    records = [{"query_timestamp": "2024-05-01T10:00:00Z", "query_name": n} for n in names]
    table = [("evil.example", "c2"), ("b.evil.example", "phishing"), ("example.com", None)]
    rows = run_locally(f"SELECT query_name, ioc_domain, ioc_category FROM ({query})", records, tmp_path, table)
    assert sorted(rows) == [("a.b.EVIL.example.", "b.evil.example", "phishing"),
                            ("a.b.EVIL.example.", "evil.example", "c2"), ("evil.example.", "evil.example", "c2")]


def test_list_table_ddl_parses_and_reads_the_lookup_csv_columns():
    sqlglot.parse_one(athena.CREATE_IOC_TABLE, read="athena")
    header = ioc.lookup_csv([ioc.Entry("evil.example", "c2")]).splitlines()[0]
    assert all(f"{c} string" in athena.CREATE_IOC_TABLE for c in header.split(",")) and "skip.header.line.count" in athena.CREATE_IOC_TABLE
