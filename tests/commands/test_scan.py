"""`r53sigma scan`: alerts as JSON lines, problems reported with file and line, bundled defaults."""
from __future__ import annotations

import gzip
import io
import json
import sys
import textwrap

from r53sigma import rules as rules_mod
from r53sigma.cli import main
from r53sigma.commands.scan import SAMPLES_DIR

RULES = """
title: Resolver NXDOMAIN
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c01
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
level: low
---
title: NX block
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c02
name: nx_block
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: NX burst
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c03
correlation: {type: event_count, rules: [nx_block], group-by: [srcaddr], timespan: 5m, condition: {gte: 3}}
level: medium
"""


def nx(i: int) -> str:
    return json.dumps({"query_timestamp": f"2024-05-01T10:00:{i % 60:02d}Z", "query_name": f"n{i}.example.",
                       "query_type": "A", "rcode": "NXDOMAIN", "srcaddr": "10.0.0.9", "answers": []})


def rule_file(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(textwrap.dedent(RULES))
    return str(path)


def scan(capsys, *argv):
    status = main(["scan", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def test_malformed_lines_and_truncated_gzip_are_reported_and_every_good_line_alerts(tmp_path, capsys):
    good = [nx(i) for i in range(6)]
    text = "\n".join([good[0], "{not json", good[1], "garbage", good[2]]) + "\n"
    last = ("\n".join(good[3:]) + "\n").encode()
    truncated = gzip.compress(last + b'{"query_timestamp": "2024-05-01T10:00:59Z", "query_na' * 300)
    log = tmp_path / "q.log.gz"
    log.write_bytes(gzip.compress(text.encode()) + truncated[: len(truncated) - 40])
    status, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), str(log))
    plain = [a for a in alerts if a["title"] == "Resolver NXDOMAIN"]
    assert sorted(a["event"]["query_name"] for a in plain) == sorted(f"n{i}.example." for i in range(6))
    assert [a["origin"].rsplit(":", 1)[1] for a in plain] == ["1", "3", "5", "6", "7", "8"]
    assert f"{log}:2: invalid JSON" in err and f"{log}:4: neither JSON" in err
    assert f"{log}:9: truncated gzip member" in err
    assert "3 skipped" in err and status == 0


def test_correlation_alert_carries_group_and_window(tmp_path, capsys):
    log = tmp_path / "q.jsonl"
    log.write_text("\n".join(nx(i) for i in range(3)) + "\n")
    _, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), str(log))
    burst = [a for a in alerts if a["title"] == "NX burst"]
    assert burst == [{
        "rule_id": "5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c03", "title": "NX burst", "level": "medium",
        "correlation": "event_count", "group": {"srcaddr": "10.0.0.9"},
        "window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:00:02Z"}, "value": 3,  # first and last event
        "sample_origins": [f"{log}:1", f"{log}:2", f"{log}:3"],
    }]
    assert "NX burst" in err  # summary table


def test_output_file_is_written_whole(tmp_path, capsys):
    log = tmp_path / "q.jsonl"
    log.write_text(nx(1) + "\n")
    target = tmp_path / "out" / "alerts.jsonl"
    status, stdout_alerts, _ = scan(capsys, "--rules", rule_file(tmp_path), "--output", str(target), str(log))
    assert stdout_alerts == [] and status == 0
    assert [json.loads(l)["title"] for l in target.read_text().splitlines()] == ["Resolver NXDOMAIN"]
    assert [p.name for p in target.parent.iterdir()] == ["alerts.jsonl"]  # no temporary file left


def test_stdin(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO((nx(1) + "\n").encode()))))
    _, alerts, _ = scan(capsys, "--rules", rule_file(tmp_path), "-")
    assert [a["origin"] for a in alerts] == ["<stdin>:1"]


def test_rule_error_is_reported_and_other_rules_still_run(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("title: typo\nlogsource: {product: aws, service: route53resolver}\ndetection: {sel: {rcod: x}, condition: sel}\n")
    log = tmp_path / "q.jsonl"
    log.write_text(nx(1) + "\n")
    status, alerts, err = scan(capsys, "--rules", rule_file(tmp_path), "--rules", str(bad), str(log))
    assert "field 'rcod'" in err and status == 1
    assert [a["title"] for a in alerts] == ["Resolver NXDOMAIN"]


def test_missing_log_path_fails(tmp_path, capsys):
    status, _, err = scan(capsys, "--rules", rule_file(tmp_path), str(tmp_path / "nope.log"))
    assert status == 1 and "no such file or folder" in err


def test_default_scan_of_bundled_samples_gives_real_alerts(capsys):
    status, alerts, err = scan(capsys)
    assert alerts and "skipped" in err and " 0 skipped" in err
    # Every bundled rule that names a coverage slug listed here must fire on the samples.
    expected = {
        "mining_pool_query", "base64_label", "imds_rebind_answer", "metadata_hostname", "dns_over_tcp", "uncommon_qtype",
        "txt_null_burst", "subdomain_fanout", "long_label", "hex_base32_label", "nxdomain_burst", "nxdomain_dga",
        "refused_servfail_burst", "rare_rcode", "txt_answer_exec", "oast_domains", "cobaltstrike_dns", "tunnel_services",
        "telegram_api", "dynamic_dns", "low_rep_tld", "onion_tor", "doh_resolver_lookup", "firewall_block_alert",
        "firewall_block_burst", "ptr_sweep", "kerberos_coercion", "zone_enum_any_axfr", "subdomain_bruteforce",
        "resolver_querylog_deleted", "public_querylog_deleted", "dns_firewall_tamper", "transfer_lock_disabled",
        "domain_transfer", "registrar_ns_change", "phz_vpc_association", "record_hijack", "hosted_zone_deleted",
        "dnssec_disabled", "outbound_forward_rule", "dns_enumeration",
    }
    loaded = rules_mod.load()
    slug_of = {str(r.id): r.custom_attributes.get("coverage") for r in loaded.collection.rules}
    present = {s for s in slug_of.values() if s} & expected
    fired = {slug_of.get(a["rule_id"]) for a in alerts}
    assert present - fired == set()


def test_samples_are_read_without_problems():
    from r53sigma.scan.records import read_paths

    errors = []
    events = list(read_paths([SAMPLES_DIR], errors.append))
    assert errors == [] and {e.source for e in events} == {"resolver", "public_zone", "cloudtrail"}
