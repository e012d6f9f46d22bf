"""The rule pack's content conventions, checked on every rule file in sigma_rules/.

One test per convention; per-file tests are parametrised so a failure names the file.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaLevel, SigmaRule, SigmaStatus

from r53sigma import attack, rules
from support import REPO, SHARED

RULES_DIR = REPO / "sigma_rules"
CASES_SUFFIX = rules.CASES_SUFFIX  # a rule's test cases: <stem>.cases.yaml beside the rule, shipped with it
COVERAGE_MD = SHARED / "design" / "COVERAGE.md"
RULE_FILES = rules.discover([RULES_DIR])
LOADED = rules.load([RULES_DIR])
ALLOWED_STATUS = {SigmaStatus.EXPERIMENTAL, SigmaStatus.TEST, SigmaStatus.STABLE}


def by_file(param):
    return pytest.mark.parametrize("path", RULE_FILES, ids=[str(p.relative_to(RULES_DIR)) for p in RULE_FILES])(param)


def documents(path: Path) -> list[SigmaRule | SigmaCorrelationRule]:
    if path not in LOADED.files:
        pytest.fail(f"{path.name} does not parse: {[str(e) for e in LOADED.errors if e.path == path]}")
    return LOADED.files[path]


def all_documents() -> list[SigmaRule | SigmaCorrelationRule]:
    return [doc for docs in LOADED.files.values() for doc in docs]


def duplicates(values) -> list:
    return sorted(value for value, count in Counter(values).items() if count > 1)


def test_pack_has_rules():
    assert RULE_FILES, f"no rule files under {RULES_DIR}"


@by_file
def test_rule_file_parses_without_errors(path):
    errors = [e.message for e in LOADED.errors if e.path == path]
    assert not errors
    assert documents(path)


def test_rule_references_resolve():
    # rules.load records a correlation naming an unknown rule as an error of the pack
    assert not LOADED.errors, [str(e) for e in LOADED.errors]


def test_ids_are_unique_across_all_documents():
    assert not duplicates(str(doc.id) for doc in all_documents())


def test_titles_are_unique():
    assert not duplicates(doc.title for doc in all_documents())


def test_rule_names_are_unique():
    assert not duplicates(doc.name for doc in all_documents() if doc.name)


@by_file
def test_ids_are_random_uuids(path):
    for doc in documents(path):
        assert doc.id is not None and doc.id.version == 4, doc.title


@by_file
def test_file_stem_is_slug_of_main_title(path):
    assert path.stem == rules.slug(rules.main_rule(documents(path)).title)


@by_file
def test_required_attributes_present(path):
    for doc in documents(path):
        where = f"{path.name}: {doc.title!r}"
        assert doc.title and doc.description and doc.author, where
        assert doc.status in ALLOWED_STATUS, where
        assert doc.references and all(re.match(r"^https://\S+$", ref) for ref in doc.references), where
        assert isinstance(doc.date, dt.date) and dt.date(2020, 1, 1) <= doc.date, where
        assert isinstance(doc.level, SigmaLevel), where
        assert doc.falsepositives and all(isinstance(fp, str) and fp for fp in doc.falsepositives), where
        assert doc.tags, where


@by_file
def test_multi_document_files_end_with_their_correlation(path):
    docs = documents(path)
    if len(docs) > 1:
        assert isinstance(docs[-1], SigmaCorrelationRule)
        assert all(isinstance(doc, SigmaRule) and doc.name for doc in docs[:-1])


@by_file
def test_correlation_references_base_rules_of_the_pack(path):
    names = {doc.name for doc in all_documents() if isinstance(doc, SigmaRule) and doc.name}
    for doc in documents(path):
        if isinstance(doc, SigmaCorrelationRule):
            referenced = {str(ref.reference) for ref in doc.rules or []}
            assert referenced and referenced <= names, referenced - names


@by_file
def test_main_rule_has_investigation_guide_and_blind_spots(path):
    attributes = rules.main_rule(documents(path)).custom_attributes
    investigation = attributes.get("investigation")
    assert isinstance(investigation, str) and len(investigation.strip().splitlines()) > 1
    blind_spots = attributes.get("blind_spots")
    assert isinstance(blind_spots, list) and blind_spots
    assert all(isinstance(spot, str) and spot.strip() for spot in blind_spots)
    assert re.fullmatch(r"[a-z0-9_]+", str(attributes.get("coverage", "")))


@by_file
def test_attack_tags_are_known_and_consistent(path):
    for doc in documents(path):
        tags = attack.tags_of(doc)
        where = f"{path.name}: {doc.title!r}"
        assert tags.techniques, f"{where}: no ATT&CK technique tag"
        technique_tactics = {}
        for tid in tags.techniques:
            try:
                technique_tactics[tid] = set(attack.technique(tid).tactics)
            except attack.UnknownAttackId as error:
                pytest.fail(f"{where}: {error}")
        for name in tags.tactics:
            try:
                attack.tactic(name)
            except attack.UnknownAttackId as error:
                pytest.fail(f"{where}: {error}")
        justified = set().union(*technique_tactics.values())
        assert set(tags.tactics) <= justified, f"{where}: tactic tags without a technique: {set(tags.tactics) - justified}"
        for tid, tactics in technique_tactics.items():
            assert tactics & set(tags.tactics), f"{where}: {tid} needs one of the tactic tags {sorted(tactics)}"


@by_file
def test_every_rule_file_has_test_cases_beside_it(path):
    assert (path.parent / f"{path.stem}{CASES_SUFFIX}").is_file()


def test_every_case_file_lies_beside_its_rule_and_names_it():
    case_files = sorted(RULES_DIR.rglob(f"*{CASES_SUFFIX}"))
    assert case_files, "no case files found"
    for case_file in case_files:
        rule_file = case_file.with_name(case_file.name[: -len(CASES_SUFFIX)] + ".yml")
        assert rule_file.is_file(), f"{case_file}: no rule {rule_file.name} beside it"
        rule = LOADED.find(str(yaml.safe_load(case_file.read_text(encoding="utf-8"))["rule"]))
        assert rule is not None and LOADED.path_of(rule) == rule_file, f"{case_file}: names another rule"


def test_no_case_files_outside_the_rule_folders():
    assert not (REPO / "tests" / "rules").exists(), "rule test cases live beside the rules, not under tests/"
    stray = [p for p in RULES_DIR.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
             and not p.name.endswith(CASES_SUFFIX) and p.suffix != ".yml"]
    assert stray == [], f"a .yaml file that is not a case file: {stray}"


def test_case_files_ship_with_the_rules():
    import tomllib

    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert f"*/*{CASES_SUFFIX}" in package_data["r53sigma.rules_files"]


def coverage_slugs(markdown: str) -> set[str]:
    return set(re.findall(r"^\| ([a-z0-9_]+) \|", markdown, re.MULTILINE)) - {"slug"}


def readme_coverage_section() -> str:
    """The README's table of detections added after COVERAGE.md's first pack (its own `## ` section)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Coverage beyond the first pack\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return found.group(1) if found else ""


def test_every_coverage_slug_has_exactly_one_rule():
    if not COVERAGE_MD.is_file():
        pytest.skip(f"../shared design docs absent: {COVERAGE_MD}")
    wanted = coverage_slugs(COVERAGE_MD.read_text(encoding="utf-8")) | coverage_slugs(readme_coverage_section())
    covered = Counter(str(rules.main_rule(docs).custom_attributes.get("coverage")) for docs in LOADED.files.values())
    assert not duplicates(covered.elements())
    assert sorted(wanted - set(covered)) == [], "COVERAGE.md detections without a rule"
    assert sorted(set(covered) - wanted) == [], "rules whose coverage slug is not in COVERAGE.md"


def test_attack_data_is_consistent():
    tactic_names = {t.shortname for t in attack.tactics()}
    assert all(re.fullmatch(r"TA[0-9]{4}", t.id) for t in attack.tactics())
    for tid in attack._data()["techniques"]:
        technique = attack.technique(tid)
        assert re.fullmatch(r"T[0-9]{4}(\.[0-9]{3})?", tid)
        assert technique.name and technique.tactics and set(technique.tactics) <= tactic_names, tid
        if technique.parent:
            assert set(technique.tactics) <= set(attack.technique(technique.parent).tactics), tid


def test_tags_of_splits_techniques_from_tactics():
    from support import rule

    (parsed,) = rule(
        """
        title: t
        logsource: {product: aws, service: route53}
        detection: {selection: {queryType: ANY}, condition: selection}
        tags: [attack.t1071.004, attack.command-and-control, attack.g0007, cve.2021-44228]
        """
    ).rules
    assert attack.tags_of(parsed) == attack.AttackTags(("T1071.004",), ("command-and-control",))


PURPOSES = {"alert", "hunting"}  # `purpose`: alert (default) or hunting (packaged, not scheduled as an alert)


@by_file
def test_purpose_is_alert_or_hunting_and_hunting_rules_are_low_level(path):
    main = rules.main_rule(documents(path))
    purpose = main.custom_attributes.get("purpose", "alert")
    assert purpose in PURPOSES, f"{path.name}: purpose {purpose!r} is not one of {sorted(PURPOSES)}"
    if purpose == "hunting":
        assert main.level in (SigmaLevel.INFORMATIONAL, SigmaLevel.LOW), f"{path.name}: a hunting query is low or informational"


@by_file
def test_main_rule_says_what_the_efficacy_benchmark_showed(path):
    main = rules.main_rule(documents(path))
    assert any("benchmark" in str(fp).lower() for fp in main.falsepositives), path.name
    assert any("benchmark" in str(spot).lower() for spot in main.custom_attributes.get("blind_spots", [])), path.name
