"""Where rule files are and which files are rules: no pySigma here, so that a warm `scan` (its compiled
run keyed by the rule files' content, r53sigma.scan.compiledrun) finds them without importing it."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_SUFFIXES = (".yml", ".yaml")
# A rule's test cases live beside it as <stem>.cases.yaml (r53sigma.testcases): not a rule. Stock
# sigma-cli reads *.yml only, so it never sees them either.
CASES_SUFFIX = ".cases.yaml"


def default_rule_paths() -> list[Path]:
    """The repository's ``sigma_rules/`` in a checkout, else the copy installed with the package."""
    in_checkout = REPO_ROOT / "sigma_rules"
    if in_checkout.is_dir():
        return [in_checkout]
    return [Path(__file__).resolve().parent / "rules_files"]  # package r53sigma.rules_files (pyproject)


def discover(paths: list[Path]) -> list[Path]:
    """Rule files below the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()
                                and not p.name.endswith(CASES_SUFFIX)))
        else:
            found.append(path)
    return found
