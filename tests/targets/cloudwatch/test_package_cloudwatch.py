"""dist/cloudwatch/: the CloudFormation template (cfn-lint), query definitions, field indexes and transformers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r53sigma import catalogue, package
from r53sigma.targets.cloudwatch import package as cloudwatch_package
from support import REPO
from test_package_support import bundled_build, bundled_conversions, text

TEMPLATE = "cloudwatch/template.json"


def template() -> dict:
    return json.loads(text(bundled_build(), TEMPLATE))


def definitions() -> list[dict]:
    return json.loads(text(bundled_build(), "cloudwatch/query_definitions.json"))


def cloudwatch_conversions():
    return [c for (t, _), c in bundled_conversions().items() if t == "cloudwatch" and c.ok]  # refused rules are not packaged


def cfn_lint() -> list[str] | None:
    found = shutil.which("cfn-lint") or str(Path(sys.executable).with_name("cfn-lint"))
    return [found] if os.access(found, os.X_OK) else None


def test_template_is_cfn_lint_clean(tmp_path):
    command = cfn_lint()
    if command is None:
        pytest.skip("cfn-lint is not installed (pip install '.[test]')")
    path = tmp_path / "template.json"
    path.write_bytes(bundled_build().files[TEMPLATE])
    result = subprocess.run(command + [str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_query_definition_per_rule_in_a_folder_per_log_source():
    resources = template()["Resources"]
    queries = {r["Properties"]["Name"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::QueryDefinition"}
    conversions = cloudwatch_conversions()
    assert len(queries) == len(conversions)
    for c in conversions:
        source = package.source_of(c.logsource)
        properties = queries[f"r53sigma/{source}/{c.title}"]
        assert properties["QueryString"] == c.query


def test_log_groups_are_parameters_defaulting_to_the_catalogue():
    document = template()
    parameters = document["Parameters"]
    for source, log_source in catalogue.load().items():
        assert parameters[cloudwatch_package.parameter(source)]["Default"] == log_source.targets["cloudwatch"]["log_group"]
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Logs::QueryDefinition":
            source = resource["Properties"]["Name"].split("/")[1]
            assert resource["Properties"]["LogGroupNames"] == [{"Ref": cloudwatch_package.parameter(source)}]


def test_template_carries_the_transformers_and_field_indexes():
    types = [r["Type"] for r in template()["Resources"].values()]
    assert types.count("AWS::Logs::Transformer") == len(json.loads(text(bundled_build(), "cloudwatch/transformers.json")))
    assert types.count("AWS::Logs::AccountPolicy") == len(json.loads(text(bundled_build(), "cloudwatch/field_index_policies.json")))


def test_query_definitions_json_matches_the_template():
    by_name = {r["Properties"]["Name"]: r["Properties"] for r in template()["Resources"].values()
               if r["Type"] == "AWS::Logs::QueryDefinition"}
    conversions = {c.rule_id: c for c in cloudwatch_conversions()}
    assert len(definitions()) == len(by_name)
    for definition in definitions():
        assert set(definition) == {"name", "queryString", "logGroupNames", "rule_id"}
        assert definition["queryString"] == by_name[definition["name"]]["QueryString"] == conversions[definition["rule_id"]].query
        source = definition["name"].split("/")[1]
        assert definition["logGroupNames"] == [catalogue.load()[source].targets["cloudwatch"]["log_group"]]


def test_policies_and_transformers_are_the_rendered_mappings():
    build = bundled_build()
    for dist_name, pattern in (("field_index_policies", "field-index-policy-{}.json"), ("transformers", "transformer-{}.json")):
        bodies = json.loads(text(build, f"cloudwatch/{dist_name}.json"))
        assert bodies
        for source, body in bodies.items():
            assert body == json.loads((REPO / "mappings" / "cloudwatch" / pattern.format(source)).read_text()), source


def test_hunting_rules_are_only_saved_queries(tmp_path):
    from test_package_support import EXAMPLE, build_rules, resolver_rule, text

    hunting = resolver_rule("Hunt", "selection:\n    query_name: a.example\ncondition: selection", extra="purpose: hunting")
    template = json.loads(text(build_rules(tmp_path / "rules", hunt=hunting, example=EXAMPLE), "cloudwatch/template.json"))
    about_hunt = [(rid, r) for rid, r in template["Resources"].items() if "Hunt" in json.dumps(r)]
    assert about_hunt and {r["Type"] for _, r in about_hunt} == {"AWS::Logs::QueryDefinition"}
    referring = [r for r in template["Resources"].values() if any(rid in json.dumps(r) for rid, _ in about_hunt) and r not in [x for _, x in about_hunt]]
    assert not referring  # no alarm, metric filter or scheduled query points at the hunting query
