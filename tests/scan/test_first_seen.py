"""First-seen rules on the local engines: the `first_seen` attribute, the baseline file, `scan --baseline`."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from r53sigma import rules as rules_mod
from r53sigma.cli import main
from r53sigma.scan import baseline
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record

RULE = """
title: First-seen registered domain
id: 7b7e1f4e-8c1a-4d3e-9f2a-5c6d7e8f9a01
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NOERROR, registered_domain|exists: true}, condition: sel}
first_seen: {fields: [account_id, registered_domain], history: 1d}
level: low
"""
RULE_ID = "7b7e1f4e-8c1a-4d3e-9f2a-5c6d7e8f9a01"


def record(time: str, name: str, account: str = "111122223333", rcode: str = "NOERROR") -> dict:
    return {"version": "1.100000", "account_id": account, "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": time, "query_name": name, "query_type": "A", "query_class": "IN", "rcode": rcode,
            "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701", "transport": "UDP", "srcids": {"instance": "i-0abc"}}


def rule_file(tmp_path, text: str = RULE) -> str:
    path = tmp_path / "rule.yml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def alerts_of(tmp_path, records, rows=()):
    loaded = rules_mod.load([Path(rule_file(tmp_path))])
    assert not loaded.errors, loaded.errors
    (rule,) = loaded.top_level()
    events = [parse_record(r, file="t", line=n) for n, r in enumerate(records, 1)]
    seen = baseline.Baseline.from_rows({**row, "rule_id": RULE_ID} for row in rows)
    return [(a.event.record["query_name"], a.event.record["account_id"])
            for a in baseline.first_seen_alerts(Engine(loaded.collection).scan(events), seen)]


def test_each_value_alerts_at_its_first_event_in_time_and_again_only_after_the_history(tmp_path):
    records = [
        record("2026-12-01T10:05:00Z", "b.new.net."),  # same registered domain, later: not its first
        record("2026-12-01T10:00:00Z", "a.new.net."),  # earliest, though given second
        record("2026-12-01T10:00:00Z", "a.new.net.", account="444455556666"),  # another account: its own value
        record("2026-12-01T22:00:00Z", "c.new.net."),  # within 1d of the last sighting
        record("2026-12-03T00:00:00Z", "d.new.net."),  # absent for more than 1d: new again
        record("2026-12-01T10:00:00Z", "x.other.org.", rcode="NXDOMAIN"),  # no candidate
    ]
    assert alerts_of(tmp_path, records) == [("a.new.net", "111122223333"), ("a.new.net", "444455556666"),
                                            ("d.new.net", "111122223333")]


def test_a_value_in_the_baseline_within_the_history_is_not_new_and_an_older_one_is(tmp_path):
    records = [record("2026-12-01T10:00:00Z", "www.known.com."), record("2026-12-01T10:00:00Z", "www.stale.com.")]
    rows = [{"values": ["111122223333", "known.com"], "last_seen": "2026-11-30T10:00:01Z"},
            {"values": ["111122223333", "stale.com"], "last_seen": "2026-11-30T09:59:59Z"}]
    assert alerts_of(tmp_path, records, rows) == [("www.stale.com", "111122223333")]


@pytest.mark.parametrize("attribute, reason", [
    ("{fields: [no_such_field], history: 14d}", "no_such_field not a field"),
    ("{fields: [query_name, query_name], history: 14d}", "one or more distinct field names"),  # no count limit: targets say theirs
    ("{fields: [query_name], history: two weeks}", "not a duration"),
    ("[query_name]", "must be a mapping"),
])
def test_a_malformed_first_seen_attribute_is_the_files_load_error(tmp_path, attribute, reason):
    text = RULE.replace("{fields: [account_id, registered_domain], history: 1d}", attribute)
    loaded = rules_mod.load([Path(rule_file(tmp_path, text))])
    assert loaded.files == {} and len(loaded.errors) == 1 and reason in loaded.errors[0].message


def scan(capsys, *argv):
    status = main(["scan", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def logs(tmp_path) -> list[str]:
    """Two files whose events are out of time order across them."""
    late, early = tmp_path / "late.json", tmp_path / "early.json"
    late.write_text("\n".join(json.dumps(r) for r in [record("2026-12-02T10:00:00Z", "a.new.net."),
                                                         record("2026-12-02T11:00:00Z", "z.fresh.io.")]) + "\n")
    early.write_text(json.dumps(record("2026-12-01T10:00:00Z", "b.new.net.")) + "\n")
    return [str(late), str(early)]


def test_both_engines_give_the_same_first_seen_alerts_and_write_the_same_baseline(tmp_path, capsys):
    pytest.importorskip("duckdb")
    results = {}
    for engine in ("reference", "duckdb"):
        path = tmp_path / f"{engine}.csv"
        status, alerts, err = scan(capsys, "--engine", engine, "--rules", rule_file(tmp_path), "--baseline", str(path),
                                   "--baseline-update", *logs(tmp_path))
        assert status == 0, err
        results[engine] = ([a["event"]["query_name"] for a in alerts], path.read_text())
    assert results["reference"] == results["duckdb"]
    names, text = results["reference"]
    assert names == ["b.new.net.", "z.fresh.io."]
    assert text.splitlines()[0] == baseline.MARKER


def test_the_baseline_a_scan_wrote_is_the_next_scans_history(tmp_path, capsys):
    path = tmp_path / "seen.csv"
    assert scan(capsys, "--engine", "reference", "--rules", rule_file(tmp_path), "--baseline", str(path),
                "--baseline-update", *logs(tmp_path))[0] == 0
    status, alerts, err = scan(capsys, "--engine", "reference", "--rules", rule_file(tmp_path), "--baseline", str(path),
                               *logs(tmp_path))
    assert (status, alerts) == (0, [])


def test_baseline_update_never_overwrites_a_file_it_did_not_write(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    text = "rule_id,values,first_seen,last_seen\n"  # a readable baseline, but not r53sigma's
    path.write_text(text)
    status, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), "--baseline", str(path), "--baseline-update",
                               *logs(tmp_path))
    assert status == 2 and alerts == [] and "not written by r53sigma" in err and str(path) in err
    assert path.read_text() == text


def test_a_file_that_is_no_baseline_is_a_one_line_error_naming_it(tmp_path, capsys):
    path = tmp_path / "notes.csv"
    path.write_text("rule_id,values,first_seen,last_seen\nx,not json,,2026-01-01T00:00:00Z\n")
    status, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), "--baseline", str(path), *logs(tmp_path))
    assert status == 2 and alerts == [] and f"{path}: line 2" in err and len(err.strip().splitlines()) == 1


def test_without_a_baseline_first_seen_rules_are_skipped_with_the_reason(tmp_path, capsys):
    status, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), *logs(tmp_path))
    assert status == 2 and alerts == [] and "rule skipped: First-seen registered domain" in err and "--baseline" in err
