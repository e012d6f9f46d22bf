"""`r53sigma package`: determinism, the manifest, partial builds, atomic replacement, the exports and the layer."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import jsonschema
import pytest

from r53sigma import attack, cli, navigator, owned_folder, package
from support import REPO
from test_package_support import (
    EXAMPLE, NOT_FOR_CLOUDWATCH, break_cloudwatch_for, TARGETS, build_rules, bundled_build, bundled_conversions, resolver_rule, text,
    write_rules,
)

DIST = REPO / "dist"
LAYER_SCHEMA = REPO / "backends" / "r53sigma" / "schemas" / "attack_navigator_layer_4_5.json"


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_build_is_byte_identical(tmp_path):
    package.write(tmp_path / "a", package.build().files)
    package.write(tmp_path / "b", package.build().files)
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert first == second
    assert set(first) == set(bundled_build().files)


def test_layout_matches_the_dist_contract():
    files = set(bundled_build().files)
    expected = {
        "elastic/rules.ndjson", "splunk/r53sigma_route53.spl",
        "splunk/r53sigma_route53/default/app.conf", "splunk/r53sigma_route53/default/savedsearches.conf",
        "splunk/r53sigma_route53/default/props.conf", "splunk/r53sigma_route53/metadata/default.meta",
        "splunk/r53sigma_route53/app.manifest", "cloudwatch/template.json", "cloudwatch/query_definitions.json",
        "cloudwatch/field_index_policies.json", "cloudwatch/transformers.json", "queries/queries.json",
        "queries/queries.csv", "queries/COVERAGE.md", "attack-navigator-layer.json", "MANIFEST.json",
    }
    assert expected <= files
    for kind in ("index_templates", "component_templates", "ingest_pipelines"):
        assert any(f.startswith(f"elastic/{kind}/") and f.endswith(".json") for f in files), kind


def test_manifest_lists_every_other_file_with_its_sha256():
    build = bundled_build()
    manifest = json.loads(text(build, package.MANIFEST))
    others = {p: data for p, data in build.files.items() if p != package.MANIFEST}
    assert manifest == {p: hashlib.sha256(data).hexdigest() for p, data in others.items()}


def test_bundled_rules_package_without_problems():
    assert bundled_build().problems == []


def test_committed_dist_is_up_to_date():
    if not DIST.is_dir():
        pytest.skip("dist/ is not committed yet: run `r53sigma package --out dist` and commit it")
    stale = package.differences(DIST, bundled_build().files)
    assert not stale, f"dist/ is stale, run `r53sigma package --out dist`: {stale[:10]}"


def test_rule_a_target_cannot_express_is_left_out_of_that_target_only(tmp_path):
    build = build_rules(tmp_path / "rules", example=EXAMPLE, answer_regex=NOT_FOR_CLOUDWATCH)
    title = "Answer Matches A Regular Expression"
    assert build.problems == []  # a target's documented limit is no build failure
    kibana = [json.loads(line) for line in text(build, "elastic/rules.ndjson").splitlines()]
    assert title in {r["name"] for r in kibana}
    assert f"action.correlationsearch.label = {title}\n" in text(build, "splunk/r53sigma_route53/default/savedsearches.conf")
    definitions = json.loads(text(build, "cloudwatch/query_definitions.json"))
    assert [d["name"] for d in definitions] == ["r53sigma/resolver/Example Domain Queried"]
    record = {r["title"]: r for r in json.loads(text(build, "queries/queries.json"))}[title]
    assert record["queries"]["cloudwatch"]["not_expressible"] and "query" in record["queries"]["splunk"]
    assert str(tmp_path) not in text(build, "queries/queries.json")  # no machine-specific paths in dist/
    assert f"| {title} | low | resolver | T1071.004 DNS | lucene | spl | not expressible |" in text(build, "queries/COVERAGE.md")


def test_rule_failing_for_one_target_is_left_out_of_that_target_only(tmp_path, monkeypatch):
    title = "Example Domain Queried"
    break_cloudwatch_for(monkeypatch, title)
    build = build_rules(tmp_path / "rules", example=EXAMPLE)
    assert len(build.problems) == 1 and build.problems[0].startswith("cloudwatch:") and title in build.problems[0]
    assert title in {json.loads(line)["name"] for line in text(build, "elastic/rules.ndjson").splitlines()}
    assert json.loads(text(build, "cloudwatch/query_definitions.json")) == []
    assert f"| {title} | high | resolver | T1071.004 DNS | lucene | spl | **failed** |" in text(build, "queries/COVERAGE.md")


def test_partial_build_exits_nonzero_and_writes_nothing_unless_allowed(tmp_path, capsys, monkeypatch):
    break_cloudwatch_for(monkeypatch, "Example Domain Queried")
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    out = tmp_path / "dist"
    package.write(out, {"previous.txt": b"old build"})
    before = tree(out)
    assert cli.main(["package", str(rules), "--out", str(out)]) == 1
    assert tree(out) == before
    assert "left out" in capsys.readouterr().err
    assert cli.main(["package", str(rules), "--out", str(out), "--allow-partial"]) == 0
    assert "previous.txt" not in tree(out) and "elastic/rules.ndjson" in tree(out)


def test_failure_while_staging_leaves_the_previous_dist_untouched(tmp_path, monkeypatch):
    out = tmp_path / "dist"
    package.write(out, {"a.txt": b"old", "sub/b.txt": b"old"})
    before = tree(out)
    real_write_bytes = Path.write_bytes

    def disk_full_on_the_second_file(self, data):
        if self.name == "b.txt":
            raise OSError(28, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_on_the_second_file)
    with pytest.raises(owned_folder.FolderError, match="No space left"):
        package.write(out, {"a.txt": b"new", "sub/b.txt": b"new"})
    assert tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.json", "a.txt", "sub"]  # no staging left behind


def test_write_removes_only_files_of_the_previous_build(tmp_path):
    out = tmp_path / "dist"
    package.write(out, {"gone.txt": b"x", "kept.txt": b"1"})
    (out / "notes.txt").write_text("mine")
    package.write(out, {"kept.txt": b"2"})
    assert tree(out) == {"kept.txt": b"2", "notes.txt": b"mine", "MANIFEST.json": owned_folder.manifest_bytes({"kept.txt": b"2"})}


def test_check_reports_a_stale_folder_and_writes_nothing(tmp_path, capsys):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    out = tmp_path / "dist"
    assert cli.main(["package", str(rules), "--out", str(out)]) == 0
    assert cli.main(["package", str(rules), "--out", str(out), "--check"]) == 0
    (out / "queries" / "queries.csv").write_text("edited")
    assert cli.main(["package", str(rules), "--out", str(out), "--check"]) == 1
    assert "stale: queries/queries.csv" in capsys.readouterr().err
    assert (out / "queries" / "queries.csv").read_text() == "edited"


def test_queries_json_holds_each_targets_conversion():
    records = json.loads(text(bundled_build(), "queries/queries.json"))
    converted = bundled_conversions()
    assert len(records) == len({rule_id for _, rule_id in converted})
    for record in records:
        for target in TARGETS:
            original = converted[(target, record["rule_id"])]
            if original.ok:
                assert record["queries"][target] == {"language": original.language, "query": original.query}
            else:  # a target's documented limit: the reason is exported instead of a query
                assert original.not_expressible and record["queries"][target]["not_expressible"] is True
        assert record["file"].startswith("sigma_rules/") and record["level"] and record["logsource"]


def test_queries_csv_has_the_same_queries_as_the_json():
    build = bundled_build()
    records = {r["rule_id"]: r for r in json.loads(text(build, "queries/queries.json"))}
    rows = list(csv.DictReader(io.StringIO(text(build, "queries/queries.csv"))))
    assert len(rows) == len(records)
    for row in rows:
        record = records[row["rule_id"]]
        assert row["title"] == record["title"] and row["tags"].split() == record["tags"]
        assert {t: row[t] for t in TARGETS} == {t: record["queries"][t].get("query", "") for t in TARGETS}


def test_coverage_table_has_a_row_per_rule_naming_its_techniques():
    build = bundled_build()
    coverage = text(build, "queries/COVERAGE.md")
    for record in json.loads(text(build, "queries/queries.json")):
        row = next(line for line in coverage.splitlines() if line.startswith(f"| {record['title']} |"))
        for technique in record["attack_techniques"]:
            assert f"{technique} {attack.technique(technique).name}" in row


def layer_validator():
    return jsonschema.Draft202012Validator(json.loads(LAYER_SCHEMA.read_text()))


def test_navigator_layer_validates_against_the_layer_format():
    layer = json.loads(text(bundled_build(), "attack-navigator-layer.json"))
    assert list(layer_validator().iter_errors(layer)) == []
    assert layer["techniques"]


def test_layer_schema_refuses_what_the_navigator_would_not_load():
    layer = navigator.layer([])
    bad = [dict(layer, versions={"navigator": "5.1.0", "layer": "4.4"}),
           dict(layer, domain="enterprise"),
           dict(layer, techniques=[{"techniqueID": "1071.004"}])]
    for document in bad:
        assert list(layer_validator().iter_errors(document)), document


def test_layer_scores_the_rules_covering_each_technique():
    records = [
        {"title": "A", "attack_techniques": ["T1071.004"], "queries": {"splunk": {"query": "x"}}},
        {"title": "B", "attack_techniques": ["T1071.004", "T1496"], "queries": {"splunk": {"query": "x"}}},
        {"title": "C", "attack_techniques": ["T1572"], "queries": {"splunk": {"error": "no"}}},  # converts nowhere
    ]
    techniques = {t["techniqueID"]: t for t in navigator.layer(records)["techniques"]}
    assert techniques["T1071.004"]["score"] == 2 and techniques["T1496"]["score"] == 1
    assert "T1572" not in techniques
    assert techniques["T1071"] == {"techniqueID": "T1071", "enabled": True, "showSubtechniques": True}


def test_rule_with_a_malformed_schedule_is_reported_and_left_out(tmp_path):
    broken = resolver_rule("Badly Scheduled", "selection:\n    query_name: a.example\ncondition: selection",
                           extra="schedule:\n        interval: 7m")
    build = build_rules(tmp_path / "rules", example=EXAMPLE, broken=broken)
    assert len(build.problems) == 3 and all("Badly Scheduled" in p for p in build.problems)
    assert "Badly Scheduled" not in text(build, "elastic/rules.ndjson")
    assert "Example Domain Queried" in text(build, "elastic/rules.ndjson")
