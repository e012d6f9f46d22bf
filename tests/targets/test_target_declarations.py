"""What a target declares on its Target spec, and the shared code only reads: its first-seen field
limit and form, and whether its correlations read rules it cannot convert on their own."""
from __future__ import annotations

import dataclasses
import textwrap

from r53sigma import cli, conversion, first_seen, verify
from r53sigma import rules as rules_mod
from r53sigma.scan import baseline
from r53sigma.scan.records import parse_record
from r53sigma.scan.reference import Engine
from r53sigma.targets import registry
from support import REPO

FOUR_FIELDS = """
title: First seen four fields
id: 7a1f3c2e-7d1a-4f0b-9a55-2d7e61f0a0f4
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        rcode: NOERROR
    condition: sel
first_seen: {fields: [account_id, query_name, query_type, vpc_id], history: 1d}
level: low
"""

ANSWER_TYPE = """
title: First seen answer type
id: 7a1f3c2e-7d1a-4f0b-9a55-2d7e61f0a0f5
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        rcode: NOERROR
    condition: sel
first_seen: {fields: [account_id, answers.Type], history: 1d}
level: low
"""

# The base rule is an `exists` test, which a metric filter pattern does not state; the Contributor
# Insights rule of the correlation reads the base rule's condition and states it.
FLOOD = """
title: Any query
id: 7a1f3c2e-7d1a-4f0b-9a55-2d7e61f0a0f6
name: declarations_any_query
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|exists: true
    condition: sel
---
title: Query flood
id: 7a1f3c2e-7d1a-4f0b-9a55-2d7e61f0a0f7
status: test
correlation:
    type: event_count
    rules: [declarations_any_query]
    group-by: [srcaddr]
    timespan: 1m
    condition: {gt: 100}
level: low
"""


def write(tmp_path, text, name="rule.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def record(seconds: int, name: str, qtype: str = "A") -> dict:
    stamp = f"2026-12-01T00:{seconds // 60:02d}:{seconds % 60:02d}Z"
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": stamp, "query_name": name, "query_type": qtype, "query_class": "IN", "rcode": "NOERROR",
            "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701", "transport": "UDP", "srcids": {"instance": "i-0abc"}}


def test_the_definition_takes_any_number_of_fields_and_kibana_alone_refuses_more_than_three(tmp_path):
    path = write(tmp_path, FOUR_FIELDS)
    (rule,) = rules_mod.load([path]).top_level()
    assert len(first_seen.of(rule).fields) == 4  # the Sigma-level definition: no target's limit
    by_target = {c.target: c for c in conversion.convert_paths([path], ["elasticsearch", "splunk"])[0]}
    kibana = by_target["elasticsearch"]
    assert kibana.not_expressible and "4 fields; a Kibana new_terms rule combines up to three fields" in kibana.error
    assert "elastic.co/docs/solutions/security/detect-and-alert/new-terms" in kibana.error
    assert by_target["splunk"].ok and by_target["splunk"].first_seen["fields"] == ["account_id", "query", "record_type", "vpc_id"]


def test_the_local_engines_alert_on_a_new_combination_of_four_fields(tmp_path):
    loaded = rules_mod.load([write(tmp_path, FOUR_FIELDS)])
    records = [record(1, "a.example."), record(2, "a.example."), record(3, "a.example.", qtype="TXT")]
    events = [parse_record(r, file="t", line=n) for n, r in enumerate(records, 1)]
    alerts = baseline.first_seen_alerts(Engine(loaded.collection).scan(events), baseline.Baseline())
    assert [a.event.record["query_type"] for a in alerts] == ["A", "TXT"]  # the second A is not new


def test_a_first_seen_field_splunk_cannot_name_is_refused_through_the_cli_like_any_refusal(tmp_path, capsys):
    path = write(tmp_path, ANSWER_TYPE)
    assert cli.main(["convert", "-t", "splunk", str(path)]) == 0  # a target's documented limit, as others
    err = capsys.readouterr().err
    refusal = [line for line in err.splitlines() if line.startswith("not expressible:")]
    assert refusal == [f"not expressible: {path}: First seen answer type: splunk: splunk cannot state a first-seen "
                       "rule (first_seen): answers{}.Type is not a plain field name for the baseline's stats/lookup by-clause"]
    assert "internal error" not in err
    assert cli.main(["convert", "-t", "cloudwatch", str(path)]) == 0  # the other refusals' exit code
    assert "not expressible:" in capsys.readouterr().err


def test_correlating_unconverted_rules_is_the_targets_declaration(tmp_path):
    path = write(tmp_path, FLOOD)
    declared = registry.get("cloudwatch_metric_filter")
    assert declared.correlates_unconverted_rules
    converted = {c.title: c for c in conversion.convert_loaded(rules_mod.load([path]), declared)}
    assert converted["Query flood"].ok and '"Contribution"' in converted["Query flood"].query
    undeclared = dataclasses.replace(declared, correlates_unconverted_rules=False)
    converted = {c.title: c for c in conversion.convert_loaded(rules_mod.load([path]), undeclared)}
    assert not converted["Query flood"].ok and "SigmaExists" in converted["Query flood"].error


def test_verify_names_each_targets_own_first_seen_form(tmp_path):
    rule = REPO / "sigma_rules" / "resolver" / "first_seen_dns_query_name_in_account.yml"
    report = verify.run(None, [rule], ("elasticsearch", "splunk"))
    reasons = {c.target: c.reason for c in report.cells if c.status == verify.AGREE}
    for target, reason in reasons.items():
        assert f"({registry.get(target).first_seen_form})" in reason
    assert "Kibana new_terms rule" in reasons.get("elasticsearch", "Kibana new_terms rule")
    assert "KV store baseline" in reasons["splunk"]


def test_shared_modules_name_no_target_in_what_they_say_or_create():
    """Names and notes a target owns (its lookup, table, index, its first-seen form) live in its room:
    the shared modules' strings (docstrings aside) name no target."""
    import ast
    import inspect

    from r53sigma import ioc

    products = ("kibana", "splunk", "athena", "elasticsearch", "cloudwatch", "logs insights", "lucene", "esql")
    for module in (ioc, verify, first_seen, conversion):
        tree = ast.parse(inspect.getsource(module))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        said = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                and id(n) not in docstrings]
        assert not [(module.__name__, text) for text in said if any(p in text.lower() for p in products)]
