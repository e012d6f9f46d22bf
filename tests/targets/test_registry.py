"""The target registry: a fifth target is one package, found without touching any shared module."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml

from r53sigma import cli, conversion, package, verify
from r53sigma.targets import registry

RULE = """
title: Registry fixture
id: 0c6f3c2e-7d1a-4f0b-9a55-2d7e61f0a001
status: test
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        query_name|endswith: '.evil.example'
    condition: sel
level: low
"""

# The whole fake target: one package. Its queries are Splunk's (a pySigma backend and our pipeline
# by name); its package is one text file of queries; its verify adapter says every event matches,
# so verify must disagree wherever the rule does not select every event.
FAKE_TARGET = '''
"""A fake fifth target for the registry tests."""
from r53sigma.targets.spec import Target, Verifier


class EverythingMatches(Verifier):
    def evaluate(self, language, query, rule, case, source):
        return set(range(1, len(case.events) + 1))


def render_package(rules, roots):
    return {"fakesiem/queries.txt": "".join(r.query + "\\n" for r in rules)}


TARGET = Target(
    "fakesiem", "route53_splunk", "sigma.backends.splunk:SplunkBackend", "sigma.backends.splunk:SplunkBackend",
    "fakeql", "fakeql", ".fake", ".fake", order=50,
    render_package=render_package, verifier=EverythingMatches,
)
'''


def _record(name: str) -> dict:
    return {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
        "query_timestamp": "2026-11-27T12:00:05Z", "query_name": name, "query_type": "A", "query_class": "IN",
        "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.1.23", "srcport": "53211", "transport": "UDP",
        "srcids": {"instance": "i-0abc"},
    }


@pytest.fixture
def fake_target(tmp_path, monkeypatch):
    (tmp_path / "fake_siem").mkdir()
    (tmp_path / "fake_siem" / "__init__.py").write_text(FAKE_TARGET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(registry.ENVIRONMENT, "fake_siem")
    registry.clear()
    yield tmp_path
    sys.modules.pop("fake_siem", None)
    monkeypatch.delenv(registry.ENVIRONMENT)
    registry.clear()


@pytest.fixture
def rule_folder(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "registry_fixture.yml").write_text(textwrap.dedent(RULE))
    return rules


def test_the_built_in_targets_are_registered_in_order():
    assert registry.names() == ("elasticsearch", "splunk", "cloudwatch", "athena", "cloudwatch_metric_filter", "splunk_data_model")
    assert registry.siem_names() == ("elasticsearch", "splunk", "cloudwatch")
    assert set(registry.deployable()) == {"elastic", "splunk", "cloudwatch"}


def test_a_fifth_target_is_a_convert_choice(fake_target, rule_folder, capsys):
    assert cli.main(["convert", "--target", "fakesiem", "--format", "json", str(rule_folder)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [(e["target"], e["language"]) for e in exported] == [("fakesiem", "fakeql")]
    assert "evil.example" in exported[0]["query"]


def test_a_fifth_target_is_converted_by_convert_all(fake_target, rule_folder):
    conversions, _ = conversion.convert_paths([rule_folder], list(conversion.siem_targets()))
    assert [c.target for c in conversions] == ["elasticsearch", "splunk", "cloudwatch", "fakesiem"]


def test_a_fifth_target_is_packaged(fake_target, rule_folder):
    build = package.build([rule_folder])
    assert not build.problems
    assert b"evil.example" in build.files["fakesiem/queries.txt"]
    assert build.files["queries/queries.csv"].splitlines()[0].decode().endswith(",cloudwatch,fakesiem")


def test_a_fifth_target_is_verified_with_its_own_adapter(fake_target, rule_folder, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    events = [_record("a.evil.example."), _record("www.example.com.")]
    (cases / "registry_fixture.yml").write_text(yaml.safe_dump(
        {"rule": "registry_fixture", "cases": [{"name": "one of two", "events": events, "alerts": 1}]}))
    report = verify.run(cases, [rule_folder], ("splunk", "fakesiem"))
    assert not report.problems
    status = {c.target: c.status for c in report.cells}
    assert status == {"splunk": verify.AGREE, "fakesiem": verify.DISAGREE}  # the fake claims event 2 too


def test_the_registry_forgets_the_fifth_target_without_its_package():
    assert "fakesiem" not in registry.names()
