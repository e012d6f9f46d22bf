"""r53sigma convert: every target, broken rules reported without losing the others, atomic output."""
import json
import textwrap

import pytest

from r53sigma.cli import main

GOOD = """
title: Good rule
id: 0e5c2b8a-1111-4c1a-9d1e-000000000001
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|endswith: .evil.com
    condition: sel
level: high
tags: [attack.command-and-control, attack.t1071.004]
"""
BAD_FIELD = GOOD.replace("query_name|endswith", "query_nam|endswith").replace("000000000001", "000000000002").replace("Good rule", "Bad field")
BAD_YAML = "title: [unclosed\n"


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "good.yml").write_text(textwrap.dedent(GOOD))
    return folder


def test_prints_each_target(rules_dir, capsys):
    assert main(["convert", "-t", "all", str(rules_dir)]) == 0
    out = capsys.readouterr().out
    assert "## elasticsearch (lucene)\ndns.question.name.caseless:*.evil.com" in out
    assert '## splunk (spl)\nsourcetype="aws:route53:resolver" query="*.evil.com"' in out
    assert "## cloudwatch (cwli)\nfields @timestamp" in out


def test_json_export_has_rule_metadata(rules_dir, capsys):
    assert main(["convert", "-t", "splunk", "--format", "json", str(rules_dir)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["rule_id"] == "0e5c2b8a-1111-4c1a-9d1e-000000000001"
    assert entry["level"] == "high" and entry["target"] == "splunk" and entry["language"] == "spl"
    assert entry["tags"] == ["attack.command-and-control", "attack.t1071.004"]
    assert entry["logsource"] == {"product": "aws", "service": "route53resolver"}


def test_broken_rules_are_named_and_the_rest_still_converted(rules_dir, capsys):
    (rules_dir / "bad_field.yml").write_text(textwrap.dedent(BAD_FIELD))
    (rules_dir / "bad_yaml.yml").write_text(BAD_YAML)
    assert main(["convert", "-t", "splunk", str(rules_dir)]) == 1
    captured = capsys.readouterr()
    assert 'query="*.evil.com"' in captured.out
    assert "bad_yaml.yml" in captured.err
    assert "bad_field.yml" in captured.err and "query_nam" in captured.err


def test_output_dir_gets_one_complete_file_per_rule_and_target(rules_dir, tmp_path):
    (rules_dir / "bad_field.yml").write_text(textwrap.dedent(BAD_FIELD))
    out = tmp_path / "out"
    assert main(["convert", "-t", "elasticsearch", "-o", str(out), str(rules_dir)]) == 1
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["MANIFEST.json", "elasticsearch/good.lucene"]
    assert (out / "elasticsearch/good.lucene").read_text() == "dns.question.name.caseless:*.evil.com\n"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_a_file_with_two_rules_gives_two_output_files(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    second = GOOD.replace("000000000001", "000000000009").replace(".evil.com", ".bad.example")
    (folder / "two.yml").write_text(textwrap.dedent(GOOD) + "---\n" + textwrap.dedent(second))
    out = tmp_path / "out"
    assert main(["convert", "-t", "splunk", "-o", str(out), str(folder)]) == 0
    contents = sorted(p.read_text() for p in (out / "splunk").iterdir())
    assert len(contents) == 2 and any(".bad.example" in c for c in contents)


def test_a_target_limit_is_reported_but_is_not_a_failure(tmp_path, capsys):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "cidr.yml").write_text(textwrap.dedent(GOOD).replace("query_name|endswith: .evil.com", "query_name|cidr: 10.0.0.0/8"))
    assert main(["convert", "-t", "elasticsearch", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "not expressible: " in err and "cidr.yml" in err and "1 not expressible" in err
