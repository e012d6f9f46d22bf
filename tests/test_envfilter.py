"""Environment filters (pySigma `filter:` documents) applied by `r53sigma scan/convert/package --filter`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from r53sigma import conversion, envfilter, rules as rules_mod
from r53sigma.scan import derived_fields
from r53sigma.cli import main
from support import REPO

RULES = """
title: Private answer
id: 7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c01
logsource: {product: aws, service: route53resolver}
detection:
    sel: {answers.Rdata|cidr: 10.0.0.0/8}
    condition: sel
level: low
---
title: NX base
id: 7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c02
name: nx_base
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: NX burst
id: 7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c03
correlation: {type: event_count, rules: [nx_base], group-by: [srcaddr], timespan: 5m, condition: {gte: 3}}
level: medium
"""

OWN_ZONE = """
title: Own private zone
id: 7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c10
logsource: {product: aws, service: route53resolver}
filter:
    rules: [7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c01]
    own_zone: {query_name|endswith: .corp.example.com}
    condition: not own_zone
"""

SCANNER = """
title: Sanctioned scanner
id: 7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c11
logsource: {product: aws, service: route53resolver}
filter:
    rules: [nx_base]
    scanner: {srcaddr: 10.0.0.9}
    condition: not scanner
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def event(name: str, rcode: str = "NOERROR", answer: str | None = None, src: str = "10.0.0.9", second: int = 0) -> str:
    answers = [{"Rdata": answer, "Type": "A", "Class": "IN"}] if answer else []
    return json.dumps({"query_timestamp": f"2024-05-01T10:00:{second:02d}Z", "query_name": name + ".", "query_type": "A",
                       "rcode": rcode, "srcaddr": src, "answers": answers})


def scan(tmp_path, engine: str, *filters: Path) -> list[dict]:
    logs = write(tmp_path, "logs.jsonl", "\n".join([
        event("db.corp.example.com", answer="10.1.2.3"),
        event("rebind.attacker.example", answer="10.1.2.4"),
        *[event(f"n{i}.example", rcode="NXDOMAIN", second=i) for i in range(4)],
        *[event(f"m{i}.example", rcode="NXDOMAIN", src="10.0.0.10", second=i) for i in range(4)],
    ]) + "\n")
    out = tmp_path / f"alerts-{engine}-{len(filters)}.jsonl"
    args = ["scan", "--no-progress", "--engine", engine, "--rules", str(write(tmp_path, "rules.yml", RULES)), "-o", str(out)]
    for f in filters:
        args += ["--filter", str(f)]
    assert main([*args, str(logs)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_scan_filter_removes_only_the_environments_events(tmp_path, engine):
    pytest.importorskip("duckdb") if engine == "duckdb" else None
    before = scan(tmp_path, engine)
    after = scan(tmp_path, engine, write(tmp_path, "own.yml", OWN_ZONE))
    names = lambda alerts: sorted(a["event"]["query_name"] for a in alerts if "event" in a)
    assert names(before) == ["db.corp.example.com.", "rebind.attacker.example."]
    assert names(after) == ["rebind.attacker.example."]


@pytest.mark.parametrize("engine", ["reference", "duckdb"])
def test_filter_on_a_base_rule_changes_its_correlation(tmp_path, engine):
    pytest.importorskip("duckdb") if engine == "duckdb" else None
    groups = lambda alerts: sorted(a["group"]["srcaddr"] for a in alerts if "correlation" in a)
    assert groups(scan(tmp_path, engine)) == ["10.0.0.10", "10.0.0.9"]
    assert groups(scan(tmp_path, engine, write(tmp_path, "scanner.yml", SCANNER))) == ["10.0.0.10"]


def test_convert_of_a_filtered_rule_equals_the_rule_written_with_the_exclusion(tmp_path):
    rules = write(tmp_path, "rules.yml", RULES)
    inline = write(tmp_path, "inline.yml", RULES.replace(
        "    sel: {answers.Rdata|cidr: 10.0.0.0/8}\n    condition: sel",
        "    sel: {answers.Rdata|cidr: 10.0.0.0/8}\n    own_zone: {query_name|endswith: .corp.example.com}\n"
        "    condition: (sel) and (not own_zone)"))
    for target in conversion.siem_targets():
        filtered, errors = conversion.convert_paths([rules], [target], filters=[write(tmp_path, "own.yml", OWN_ZONE)])
        written, _ = conversion.convert_paths([inline], [target])
        assert not errors
        query = {c.title: c.query for c in filtered}["Private answer"]
        assert query == {c.title: c.query for c in written}["Private answer"]
        assert "corp" in query and "example" in query  # the exclusion is in the query (escaped per target)


def test_convert_cli_filter_option(tmp_path, capsys):
    rules = write(tmp_path, "rules.yml", RULES)
    assert main(["convert", "-t", "splunk", str(rules), "--filter", str(write(tmp_path, "own.yml", OWN_ZONE))]) == 0
    assert "corp.example.com" in capsys.readouterr().out


@pytest.mark.parametrize("text, reason", [
    (OWN_ZONE.replace("7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c01", "no_such_rule"), "names rule 'no_such_rule', which is not loaded"),
    (SCANNER.replace("[nx_base]", "[7b1e0c52-1d86-4d6a-9a3e-0d6a1f0b2c03]"), "names the correlation 'NX burst'"),
    (RULES, "holds detection rules"),
    ("filter: [unclosed", "filter.yml"),
])
def test_a_filter_that_cannot_apply_stops_the_command_with_one_line(tmp_path, capsys, text, reason):
    bad = write(tmp_path, "filter.yml", text)
    out = tmp_path / "alerts.jsonl"
    logs = write(tmp_path, "logs.jsonl", event("x.example", rcode="NXDOMAIN") + "\n")
    code = main(["scan", "--no-progress", "--rules", str(write(tmp_path, "rules.yml", RULES)), "--filter", str(bad), "-o", str(out), str(logs)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert reason in err and str(bad) in err
    assert main(["convert", "-t", "splunk", str(tmp_path / "rules.yml"), "--filter", str(bad)]) == 2


def test_the_example_environment_filter_applies_to_the_pack():
    example = REPO / "bench" / "anycompany_filter.yml"
    loaded = rules_mod.load([REPO / "sigma_rules"], filters=[example])
    assert not loaded.errors
    filtered = [r for r in loaded.rules if any("_filt_" in name for name in getattr(getattr(r, "detection", None), "detections", {}))]
    assert len(filtered) >= 6  # every rule the example names, none silently skipped (check_references)
    documents = example.read_text(encoding="utf-8").count("\n---\n") + 1
    assert len(envfilter.load([example])) == documents  # every document loads (one rule per document: see the file header)


def test_one_filter_on_several_rules_converts_each_for_every_target():
    # the example's shared-resolver document names four base rules: each gets its own copy, so the
    # pipelines' in-place field renaming happens once per rule
    conversions, errors = conversion.convert_paths([REPO / "sigma_rules"], list(conversion.siem_targets()),
                                                   filters=[REPO / "bench" / "anycompany_filter.yml"])
    assert not errors and not [c for c in conversions if c.failed]
    dga = [c for c in conversions if c.title.startswith("Possible DGA") and c.target == "splunk"]
    assert dga and "10.2.11.64" in dga[0].query


def test_stock_sigma_convert_accepts_the_example_filter(tmp_path):
    sigma = shutil.which("sigma", path=str(Path(sys.executable).parent))
    if sigma is None:
        pytest.skip("sigma-cli is not installed next to this Python")
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("evil.example\n")  # the threat-intel rule needs its %ioc_domains% list
    # The rule files Splunk can state: those naming registered-domain fields are refused (no Public
    # Suffix List in SPL), and sigma-cli's -s does not skip a refusal raised by a pipeline.
    loaded = rules_mod.load([REPO / "sigma_rules" / "resolver"])
    files = [str(p) for p, docs in loaded.files.items() if not any(derived_fields.named_by(d) for d in docs)]
    assert len(files) < len(loaded.files)
    done = subprocess.run([sigma, "convert", "-t", "splunk", "-p", "route53_splunk", "--filter",
                           str(REPO / "bench" / "anycompany_filter.yml"), *sorted(files)],
                          capture_output=True, text=True, env={**os.environ, "R53SIGMA_IOC_DOMAINS": str(iocs)})
    assert done.returncode == 0, done.stderr  # one rule per document: stock pySigma converts every expressible rule
    assert "corp.anycompany.com" in done.stdout and "10.2.11.64" in done.stdout
