"""The pack's own rule test cases (sigma_rules/<source>/<stem>.cases.yaml), and a mutation check on them."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from r53sigma import rules as rules_mod
from r53sigma import testcases

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "sigma_rules"
CASES = RULES  # each rule's cases live beside it
MUTANT = "r53sigma-mutant-value-matches-nothing"


@pytest.fixture(scope="module")
def report():
    if not RULES.is_dir():
        pytest.skip("no sigma_rules/ folder")
    return testcases.run(CASES, [RULES])


def test_every_case_passes(report):
    if report.failures:
        pytest.fail(testcases.format_report(report), pytrace=False)


def test_every_rule_file_has_cases_and_loads(report):
    if report.problems:
        pytest.fail("\n".join(map(str, report.problems)), pytrace=False)


def _mutate(node):
    """Every string value of a detection replaced, so no selection or filter can match any more."""
    if isinstance(node, dict):
        return {k: (v if k == "condition" else _mutate(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_mutate(v) for v in node]
    return MUTANT if isinstance(node, str) else node


def _mutation_targets() -> list[tuple[Path, Path]]:
    """(plain rule file, its case file) for single-rule files whose cases expect an alert."""
    if not RULES.is_dir() or not CASES.is_dir():
        return []
    loaded = rules_mod.load([RULES])
    targets = []
    for case_file in testcases.case_files(CASES):
        doc = yaml.safe_load(case_file.read_text())
        rule = loaded.find(str(doc.get("rule"))) if isinstance(doc, dict) else None
        path = loaded.path_of(rule) if rule is not None else None
        if path is None or len(loaded.files.get(path, [])) != 1 or not hasattr(rule, "detection"):
            continue
        if any(c.get("alerts", 0) > 0 for c in doc.get("cases", []) if isinstance(c, dict)):
            targets.append((path, case_file))
    return targets


def test_a_mutated_rule_fails_its_cases(tmp_path):
    targets = _mutation_targets()
    if not targets:
        pytest.skip("no plain rule with an alerting case in the pack yet")
    survivors = []
    for path, case_file in targets:
        work = tmp_path / path.stem
        (work / "cases").mkdir(parents=True)
        shutil.copy(case_file, work / "cases" / case_file.name)
        doc = yaml.safe_load(path.read_text())
        doc["detection"] = _mutate(doc["detection"])
        (work / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
        if testcases.run(work / "cases", [work / path.name]).ok:
            survivors.append(path.name)
    assert survivors == [], f"cases still pass with every detection value changed: {survivors}"
