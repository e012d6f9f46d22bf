"""The rule test-case runner (the API behind `r53sigma test`), on small rule packs built in tmp."""
from __future__ import annotations

import textwrap

from r53sigma import testcases
from r53sigma.cli import main

RULE = """
title: Resolver NXDOMAIN
id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1a01
status: experimental
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
level: low
"""
CORRELATION = """
title: NX building block
id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1a02
name: nx_block
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
---
title: NX burst
id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1a03
correlation:
  type: event_count
  rules: [nx_block]
  group-by: [srcaddr]
  timespan: 5m
  condition: {gte: 2}
level: medium
"""
CASES = """
rule: resolver_nxdomain
cases:
  - name: an NXDOMAIN answer alerts
    events:
      - {query_timestamp: "2024-05-01T10:00:00Z", query_name: a.example., rcode: NXDOMAIN, srcaddr: 10.0.0.1}
    alerts: 1
  - name: NOERROR does not
    events:
      - {query_timestamp: "2024-05-01T10:00:00Z", query_name: a.example., rcode: NOERROR, srcaddr: 10.0.0.1}
    alerts: 0
"""
BURST_CASES = """
rule: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1a03
cases:
  - name: two in one window fire once
    events:
      - {query_timestamp: "2024-05-01T10:00:00Z", query_name: a., rcode: NXDOMAIN, srcaddr: 10.0.0.1}
      - {query_timestamp: "2024-05-01T10:01:00Z", query_name: b., rcode: NXDOMAIN, srcaddr: 10.0.0.1}
    alerts: 1
"""


def pack(tmp_path, rules: dict[str, str], cases: dict[str, str]):
    (tmp_path / "rules").mkdir(parents=True)
    (tmp_path / "cases").mkdir()
    for name, text in rules.items():
        (tmp_path / "rules" / f"{name}.yml").write_text(textwrap.dedent(text))
    for name, text in cases.items():
        (tmp_path / "cases" / f"{name}.yml").write_text(textwrap.dedent(text))
    return tmp_path / "cases", [tmp_path / "rules"]


def test_passing_pack(tmp_path):
    cases, rules = pack(tmp_path, {"resolver_nxdomain": RULE, "nx_burst": CORRELATION},
                        {"resolver_nxdomain": CASES, "nx_burst": BURST_CASES})
    report = testcases.run(cases, rules)
    assert report.ok, testcases.format_report(report)
    assert [(r.case_file.stem, r.got) for r in report.results] == [("nx_burst", 1), ("resolver_nxdomain", 1), ("resolver_nxdomain", 0)]


def test_failing_case_shows_expected_got_and_matched_events(tmp_path):
    cases, rules = pack(tmp_path, {"resolver_nxdomain": RULE}, {"resolver_nxdomain": CASES.replace("alerts: 0", "alerts: 2")})
    report = testcases.run(cases, rules)
    assert not report.ok
    text = testcases.format_report(report)
    assert "FAIL" in text and "NOERROR does not" in text and "expected 2 alert(s), got 0" in text
    report = testcases.run(*pack(tmp_path / "b", {"resolver_nxdomain": RULE}, {"resolver_nxdomain": CASES.replace("alerts: 1", "alerts: 0")}))
    text = testcases.format_report(report)
    assert "expected 0 alert(s), got 1" in text and "matched event 1" in text and '"rcode": "NXDOMAIN"' in text


def test_rule_file_without_case_fails(tmp_path):
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": RULE, "nx_burst": CORRELATION}, {"resolver_nxdomain": CASES}))
    assert [(p.kind, p.path.name) for p in report.problems] == [("no case", "nx_burst.yml")]


def test_case_naming_unknown_rule_fails(tmp_path):
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": RULE},
                                 {"resolver_nxdomain": CASES, "ghost": CASES.replace("resolver_nxdomain", "ghost")}))
    assert [(p.kind, p.path.name) for p in report.problems] == [("unknown rule", "ghost.yml")]


def test_broken_rule_file_is_named_with_reason(tmp_path):
    broken = RULE.replace("id: 0b7c3a3e-4f0e-4a53-9f55-6c1f7c0c1a01", "id: not-a-uuid")
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": broken}, {}))
    assert [(p.kind, p.path.name) for p in report.problems] == [("broken rule", "resolver_nxdomain.yml")]
    assert "UUID" in report.problems[0].message


def test_unknown_field_is_a_case_error(tmp_path):
    typo = RULE.replace("rcode: NXDOMAIN", "rcod: NXDOMAIN")
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": typo}, {"resolver_nxdomain": CASES}))
    assert all(r.error and "field 'rcod'" in r.error for r in report.results) and not report.ok


def test_malformed_case_file(tmp_path):
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": RULE},
                                 {"resolver_nxdomain": CASES, "bad": "rule: resolver_nxdomain\ncases: [{name: x, events: []}]"}))
    assert [(p.kind, p.path.name) for p in report.problems] == [("bad case file", "bad.yml")]
    assert "missing alerts" in report.problems[0].message


def test_mutated_rule_makes_its_cases_fail(tmp_path):
    mutated = RULE.replace("rcode: NXDOMAIN", "rcode: SERVFAIL")
    report = testcases.run(*pack(tmp_path, {"resolver_nxdomain": mutated}, {"resolver_nxdomain": CASES}))
    assert [r.passed for r in report.results] == [False, True]


def test_public_zone_lines_as_case_events(tmp_path):
    rule = RULE.replace("{product: aws, service: route53resolver}", "{product: aws, service: route53}").replace("rcode:", "responseCode:")
    cases = """
    rule: resolver_nxdomain
    cases:
      - name: line
        events: ["1.0 2017-12-13T08:15:50.342Z Z1 bad.example.com A NXDOMAIN UDP IAD12 55.36.5.7 -"]
        alerts: 1
    """
    assert testcases.run(*pack(tmp_path, {"resolver_nxdomain": rule}, {"resolver_nxdomain": cases})).ok


def test_cli_exit_status(tmp_path, capsys):
    cases, rules = pack(tmp_path, {"resolver_nxdomain": RULE}, {"resolver_nxdomain": CASES})
    assert main(["test", "--cases", str(cases), *map(str, rules)]) == 0
    assert "2/2 cases passed" in capsys.readouterr().out
    (cases / "resolver_nxdomain.yml").write_text(CASES.replace("alerts: 0", "alerts: 5"))
    assert main(["test", "--cases", str(cases), *map(str, rules)]) == 1
