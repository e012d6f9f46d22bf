"""The generated mappings/ folder: fresh, complete, and within each SIEM's limits."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r53sigma import catalogue
from r53sigma.cli import main
from r53sigma.commands import mappings
from r53sigma.targets.cloudwatch import ingestion as cloudwatch
from r53sigma.targets import ocsf

# cfn-lint (a test extra) sits beside the running interpreter in a venv, else wherever PATH has it
CFN_LINT = next((Path(p) for p in (Path(sys.executable).with_name("cfn-lint"), shutil.which("cfn-lint")) if p and Path(p).exists()),
                None)


def test_committed_mappings_equal_a_fresh_render():
    assert mappings.stale() == [], "run `r53sigma mappings`"


def test_check_lists_stale_missing_and_extra_files(tmp_path, capsys):
    root = tmp_path / "mappings"
    mappings.write(root)
    assert main(["mappings", "--check", "--root", str(root)]) == 0
    (root / "splunk" / "TA-r53sigma-route53" / "default" / "props.conf").write_text("edited\n")
    (root / "ocsf" / "resolver.json").unlink()
    (root / "elasticsearch" / "old.json").write_text("{}\n")
    assert main(["mappings", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "stale: splunk/TA-r53sigma-route53/default/props.conf" in err
    assert "missing: ocsf/resolver.json" in err and "extra: elasticsearch/old.json" in err
    assert main(["mappings", "--root", str(root)]) == 0
    # a file r53sigma did not write is reported, never deleted
    assert mappings.stale(root) == ["extra: elasticsearch/old.json"]
    assert (root / "elasticsearch" / "old.json").read_text() == "{}\n"


def test_render_is_deterministic():
    assert mappings.render() == mappings.render()


def test_readme_table_names_every_catalogued_field_in_every_target():
    text = mappings.render()["README.md"]
    for log_source in catalogue.log_sources():
        for f in log_source.fields.values():
            row = next(line for line in text.splitlines() if line.startswith(f"| `{f.name}` |") and f"`{f.target('ocsf').name}`" in line)
            for target in catalogue.TARGETS:
                assert f"`{f.target(target).name}`" in row


RULE = """
title: {title}
id: {id}
status: test
logsource: {{product: aws, service: route53resolver}}
detection:
    sel:
        {fields}
    condition: sel
level: low
"""


def test_field_index_policy_follows_rule_usage(tmp_path):
    (tmp_path / "a.yml").write_text(RULE.format(title="a", id="0b1a52d4-0000-4000-8000-000000000001",
                                                fields="query_type: TXT\n        srcaddr|cidr: 10.0.0.0/8"))
    (tmp_path / "b.yml").write_text(RULE.format(title="b", id="0b1a52d4-0000-4000-8000-000000000002",
                                                fields="srcaddr|cidr: 10.0.0.0/8\n        answers.Rdata: 1.2.3.4"))
    counts = cloudwatch.rule_field_counts([tmp_path])
    fields = cloudwatch.indexed_fields(catalogue.load()["resolver"], counts["resolver"])
    assert fields == ["srcaddr", "query_type"]  # most used first; the array field answers.Rdata left out


def test_field_index_policies_respect_aws_limits():
    for path, body in cloudwatch.render().items():
        if "field-index-policy" not in path:
            continue
        source = path.rsplit("-", 1)[1].removesuffix(".json")
        names = {f.target("cloudwatch").name for f in catalogue.load()[source].fields.values()}
        assert 1 <= len(body["Fields"]) <= cloudwatch.MAX_INDEXED_FIELDS
        assert len(set(body["Fields"])) == len(body["Fields"])
        assert set(body["Fields"]) <= names
        assert len(json.dumps(body)) <= cloudwatch.MAX_POLICY_DOCUMENT


def test_transformers_parse_each_format_first():
    files = cloudwatch.render()
    assert files["cloudwatch/transformer-public_zone.json"][0] == {"parseRoute53": {}}
    assert files["cloudwatch/transformer-resolver.json"][0] == {"parseJSON": {}}
    assert files["cloudwatch/transformer-resolver-ocsf.json"][0]["parseToOCSF"]["eventSource"] == "Route53Resolver"


def test_cloudformation_template_passes_cfn_lint(tmp_path):
    if CFN_LINT is None:
        pytest.skip("cfn-lint not installed (pip install -e .[test])")
    template = tmp_path / "template.json"
    template.write_text(json.dumps(cloudwatch.render()["cloudwatch/cloudformation.json"]))
    result = subprocess.run([str(CFN_LINT), str(template)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = json.loads(template.read_text())
    broken["Resources"]["PublicZoneTransformer"]["Properties"]["TransformerConfig"] = [{"ParseRoute53": {"Bogus": 1}}]
    template.write_text(json.dumps(broken))
    assert subprocess.run([str(CFN_LINT), str(template)], capture_output=True).returncode != 0


def test_ocsf_mapping_spells_arrays_with_brackets():
    assert ocsf.field_mapping("resolver")["answers.Rdata"] == "answers[].rdata"
    assert ocsf.field_mapping("resolver")["query_name"] == "query.hostname"
