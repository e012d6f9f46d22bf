"""Rules given together are one collection; a correlation finds its base rules in the files given, their
folders, or the pack; two rules with one id are a collision; `r53sigma test <one rule>` runs its cases only."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from r53sigma import rules as rules_mod
from r53sigma.cli import main
from support import REPO

BASE = """
title: NX building block
id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1b02
name: split_nx_block
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
"""
CORRELATION = """
title: NX burst in its own file
id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1b03
correlation:
  type: event_count
  rules: [split_nx_block]
  group-by: [srcaddr]
  timespan: 5m
  condition: {gte: 2}
level: medium
"""
CASES = """
rule: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1b03
cases:
  - name: two NXDOMAIN from one source fire
    events:
      - {query_timestamp: "2024-05-01T10:00:00Z", srcaddr: 10.0.0.1, rcode: NXDOMAIN, query_name: a.example.}
      - {query_timestamp: "2024-05-01T10:00:30Z", srcaddr: 10.0.0.1, rcode: NXDOMAIN, query_name: b.example.}
    alerts: 1
  - name: NOERROR does not count
    events:
      - {query_timestamp: "2024-05-01T10:00:00Z", srcaddr: 10.0.0.1, rcode: NXDOMAIN, query_name: a.example.}
      - {query_timestamp: "2024-05-01T10:00:30Z", srcaddr: 10.0.0.1, rcode: NOERROR, query_name: b.example.}
    alerts: 0
"""


def split_pack(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nx_block.yml").write_text(textwrap.dedent(BASE))
    (rules / "nx_burst.yml").write_text(textwrap.dedent(CORRELATION))
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "nx_burst.yml").write_text(textwrap.dedent(CASES))
    return rules, cases


def test_a_correlation_and_its_base_rules_in_two_files_are_one_collection(tmp_path):
    rules, _ = split_pack(tmp_path)
    loaded = rules_mod.load([rules])
    assert loaded.errors == []
    assert [r.title for r in loaded.top_level()] == ["NX burst in its own file"]


def test_a_correlation_file_alone_finds_its_base_rule_in_its_folder(tmp_path):
    rules, _ = split_pack(tmp_path)
    loaded = rules_mod.load([rules / "nx_burst.yml"])
    assert loaded.errors == []
    assert list(loaded.files) == [rules / "nx_burst.yml"]  # the base rule serves, it is not a rule of the load
    assert loaded.top_level()[0].rules[0].rule.title == "NX building block"


def test_a_correlation_file_alone_finds_its_base_rule_in_the_pack(tmp_path):
    text = (REPO / "sigma_rules" / "resolver" / "dns_query_flood_from_one_source.yml").read_text()
    (tmp_path / "flood.yml").write_text(text.split("\n---\n")[1])
    loaded = rules_mod.load([tmp_path / "flood.yml"])
    assert loaded.errors == []
    assert loaded.top_level()[0].rules[0].rule.name == "r53_resolver_any_query"


def test_a_correlation_naming_no_known_rule_costs_its_own_file_only(tmp_path, capsys):
    rules, _ = split_pack(tmp_path)
    (rules / "orphan.yml").write_text(textwrap.dedent(CORRELATION).replace("split_nx_block", "no_such_rule")
                                      .replace("1b03", "1b09"))
    assert main(["convert", "-t", "splunk", str(rules)]) == 1
    captured = capsys.readouterr()
    assert "orphan.yml" in captured.err and "'no_such_rule'" in captured.err
    assert "NX burst in its own file" in captured.out


def test_test_and_verify_run_a_correlation_split_over_two_files(tmp_path, capsys):
    rules, cases = split_pack(tmp_path)
    assert main(["test", "--cases", str(cases), str(rules)]) == 0
    assert "2/2 cases passed" in capsys.readouterr().out
    assert main(["test", "--cases", str(cases), str(rules / "nx_burst.yml")]) == 0
    capsys.readouterr()
    assert main(["verify", "--cases", str(cases), "-t", "splunk", str(rules)]) == 0, capsys.readouterr()


def test_test_of_one_rule_file_runs_its_cases_only(capsys):
    one = REPO / "sigma_rules" / "resolver" / "rare_dns_response_code.yml"
    assert main(["test", str(one)]) == 0
    out = capsys.readouterr().out
    assert "unknown rule" not in out and "0 problem(s)" in out
    assert {line.split()[1] for line in out.splitlines() if line.startswith("PASS")} == {"rare_dns_response_code"}


def test_two_rules_with_one_id_are_reported_and_only_one_is_packaged(tmp_path, capsys):
    rules, _ = split_pack(tmp_path)
    (rules / "zz_copy.yml").write_text(textwrap.dedent(BASE).replace("split_nx_block", "another_name"))
    assert main(["convert", "-t", "splunk", str(rules)]) == 1
    err = capsys.readouterr().err
    assert "zz_copy.yml: duplicate rule id 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1b02: already used by" in err
    out = tmp_path / "dist"
    assert main(["package", str(rules), "--out", str(out), "--allow-partial"]) == 0
    ids = [record["rule_id"] for record in json.loads((out / "queries" / "queries.json").read_text())]
    assert len(ids) == len(set(ids))


def test_two_rules_with_one_name_in_one_file_are_reported(tmp_path):
    (tmp_path / "twice.yml").write_text(textwrap.dedent(BASE) + "---\n" + textwrap.dedent(BASE).replace("1b02", "1b07"))
    loaded = rules_mod.load([tmp_path])
    assert [str(e) for e in loaded.errors] == [f"{tmp_path / 'twice.yml'}: duplicate rule name 'split_nx_block' within the file"]


def test_a_correlation_naming_no_rule_is_its_files_error_and_the_rest_packages(tmp_path, capsys):
    rules, _ = split_pack(tmp_path)
    (rules / "empty.yml").write_text(textwrap.dedent(CORRELATION).replace("[split_nx_block]", "[]").replace("1b03", "1b0e"))
    loaded = rules_mod.load([rules])
    assert [(e.path.name, e.message) for e in loaded.errors] == [
        ("empty.yml", "rule 'NX burst in its own file': a correlation must name at least one rule")]
    out = tmp_path / "dist"
    assert main(["package", str(rules), "--out", str(out), "--allow-partial"]) == 0
    assert "NX burst in its own file" in (out / "queries" / "COVERAGE.md").read_text()


def test_test_of_a_users_rule_runs_the_cases_beside_it(tmp_path, capsys):
    one = REPO / "sigma_rules" / "resolver" / "rare_dns_response_code.yml"
    mine = tmp_path / "my_rule.yml"
    mine.write_text(re.sub(r"(?m)^id: .*$", "id: 9a3c1f0e-0000-4000-8000-0000000000ab",
                           one.read_text().replace("title: ", "title: My ", 1)))
    cases = one.with_name("rare_dns_response_code.cases.yaml").read_text()
    (tmp_path / "my_rule.cases.yaml").write_text(cases.replace("rule: rare_dns_response_code", "rule: my_rule"))
    assert main(["test", str(mine)]) == 0
    out = capsys.readouterr().out
    assert {line.split()[1] for line in out.splitlines() if line.startswith("PASS")} == {"my_rule"}
