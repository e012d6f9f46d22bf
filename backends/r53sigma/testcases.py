"""Rule test cases: raw events each rule must (or must not) alert on, run by the reference engine.

One YAML file per rule, shipped beside it: ``sigma_rules/<source>/<stem>.cases.yaml`` (installed with the
rules as package data). A folder given with ``--cases`` may instead hold any YAML files (names free)::

    rule: <rule UUID, name or file stem>
    cases:
      - name: <what it shows>
        events: [<raw record: a JSON object, or a public hosted-zone log line as a string>, ...]
        alerts: <int>   # matching events for a plain rule; bursts (one per group and burst, r53sigma.scan.correlations) for a correlation
        baseline:       # optional, first-seen rules only: values seen before, as a --baseline file holds them
          - {values: [<value per first_seen field>], last_seen: <ISO 8601 time>}
    vars:               # optional: placeholder values, as pySigma pipeline variables (ioc_domains: [...])

:func:`run` checks every case and also reports, as problems that fail the run: a broken rule file
(with its reason), a case file naming an unknown rule or malformed, and a rule file no case covers.
A rule file counts as covered when a case names one of its rules, or names a correlation that
references one of them (building blocks are tested through their correlation).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.correlations import SigmaCorrelationRule

from r53sigma import first_seen
from r53sigma import rules as rules_mod
from r53sigma.scan import baseline
from r53sigma.scan.reference import Alert, Engine, EngineError
from r53sigma.scan.records import Event, RecordError, format_time, parse_record

CASE_SUFFIXES = (".yml", ".yaml")


def default_cases_dir() -> Path:
    """The pack's rule folder: its cases are the ``*.cases.yaml`` files beside the rules."""
    return rules_mod.default_rule_paths()[0]


def case_files(cases_dir: Path) -> list[Path]:
    """The ``*.cases.yaml`` files under ``cases_dir`` where it has any (a rule folder), else every YAML file."""
    files = sorted(p for p in cases_dir.rglob("*") if p.suffix in CASE_SUFFIXES and p.is_file())
    beside_rules = [p for p in files if p.name.endswith(rules_mod.CASES_SUFFIX)]
    return beside_rules or files


def find_case_files(cases_dir: Path | None, rule_paths: list[Path] | None = None) -> tuple[list[Path], str | None]:
    """The case files to run, and a problem when ``cases_dir`` is no folder. With no ``cases_dir``:
    the ``<stem>.cases.yaml`` beside each given rule file (and under each given folder), then the pack's."""
    if cases_dir is not None:
        cases_dir = Path(cases_dir)
        if not cases_dir.is_dir():
            return [], f"{cases_dir}: no such folder of test cases (give it with --cases DIR)"
        return case_files(cases_dir), None
    found: list[Path] = []
    for given in [Path(p) for p in rule_paths or []]:
        if given.is_dir():
            found += [p for p in case_files(given) if p.name.endswith(rules_mod.CASES_SUFFIX)]
        else:
            beside = given.with_name(given.name.removesuffix(given.suffix) + rules_mod.CASES_SUFFIX)
            found += [beside] if beside.is_file() else []
    found += case_files(default_cases_dir())
    return list(dict.fromkeys(p.resolve() for p in found)), None


def case_variables_of(files: list[Path]) -> dict | None:
    """The placeholder values (``vars``) the case files give, merged; None when none gives any.

    Rules are loaded with them (:func:`r53sigma.rules.load`), so a rule with ``%ioc_domains%`` is
    tested on the list its case file names, whatever the environment says."""
    merged: dict = {}
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # reported when the file is run
        if isinstance(doc, dict) and isinstance(doc.get("vars"), dict):
            merged.update(doc["vars"])
    return merged or None


@dataclass
class CaseResult:
    case_file: Path
    rule_ref: str
    rule_title: str
    name: str
    expected: int
    got: int | None = None
    alerts: list[Alert] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.got == self.expected


@dataclass
class Problem:
    kind: str  # broken rule, unknown rule, bad case file, no case
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.message}"


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rule_files: int = 0
    skipped_cases: int = 0  # case files of rules not asked for

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems


def run(cases_dir: Path | None = None, rule_paths: list[Path] | None = None) -> Report:
    """Run every case in ``cases_dir`` against the rules at ``rule_paths`` (defaults: the pack's)."""
    found_files, missing = find_case_files(cases_dir, rule_paths)
    cases_dir = Path(cases_dir) if cases_dir else default_cases_dir()
    loaded = rules_mod.load([Path(p) for p in rule_paths] if rule_paths else None, case_variables_of(found_files))
    report = Report(rule_files=len(loaded.files) + len(loaded.errors))
    report.problems.extend(Problem("broken rule", e.path, e.message) for e in loaded.errors)
    engine = Engine(loaded.collection)
    tested: set[int] = set()
    pack: list = []  # the pack's rules, loaded the first time a case names a rule not given
    if missing:
        report.problems.append(Problem("bad case file", cases_dir, missing))
    for path in found_files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            ref, cases = validate(doc)
        except yaml.YAMLError as error:
            report.problems.append(Problem("bad case file", path, rules_mod.yaml_reason(error)))
            continue
        except (OSError, ValueError) as error:
            report.problems.append(Problem("bad case file", path, " ".join(str(error).split())))
            continue
        rule = loaded.find(ref)
        if rule is None:
            if rule_paths and _pack_holds(ref, pack):  # a case of a pack rule not asked for: passed over
                report.skipped_cases += 1
                continue
            report.problems.append(Problem("unknown rule", path, f"no rule with id, name or file stem {ref!r}"))
            continue
        tested.add(id(rule))
        if isinstance(rule, SigmaCorrelationRule):
            tested.update(id(r.rule) for r in rule.rules or [] if getattr(r, "rule", None) is not None)
        for case in cases:
            report.results.append(_run_case(engine, rule, path, ref, case))
    for path, file_rules in loaded.files.items():
        if not any(id(r) in tested for r in file_rules):
            report.problems.append(Problem("no case", path, f"no test case names a rule of this file (in {cases_dir})"))
    return report


def case_variables(cases_dir: Path) -> dict | None:
    """:func:`case_variables_of` the case files under ``cases_dir``."""
    return case_variables_of(case_files(Path(cases_dir)) if Path(cases_dir).is_dir() else [])


def _pack_holds(ref: str, pack: list) -> bool:
    if not pack:
        pack.append(rules_mod.load(None))
    return pack[0].find(ref) is not None


def validate(doc: Any) -> tuple[str, list[dict]]:
    """The rule reference and cases of a case file; ValueError saying what is wrong."""
    if not isinstance(doc, dict) or "rule" not in doc or "cases" not in doc:
        raise ValueError("a case file is a mapping with `rule` and `cases`")
    if "vars" in doc and not isinstance(doc["vars"], dict):
        raise ValueError("`vars` must be a mapping of placeholder names to values")
    if not isinstance(doc["cases"], list) or not doc["cases"]:
        raise ValueError("`cases` must be a non-empty list")
    for number, case in enumerate(doc["cases"], 1):
        where = f"case {number}"
        if not isinstance(case, dict):
            raise ValueError(f"{where}: a case is a mapping with name, events and alerts")
        missing = {"name", "events", "alerts"} - set(case)
        if missing:
            raise ValueError(f"{where}: missing {', '.join(sorted(missing))}")
        if not isinstance(case["events"], list):
            raise ValueError(f"{where} ({case['name']}): `events` must be a list")
        if isinstance(case["alerts"], bool) or not isinstance(case["alerts"], int) or case["alerts"] < 0:
            raise ValueError(f"{where} ({case['name']}): `alerts` must be a whole number >= 0")
        rows = case.get("baseline", [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("values"), list) and r.get("last_seen")
                                                 for r in rows):
            raise ValueError(f"{where} ({case['name']}): `baseline` must list {{values: [...], last_seen: <time>}} rows")
    return str(doc["rule"]), doc["cases"]


def _run_case(engine: Engine, rule, path: Path, ref: str, case: dict) -> CaseResult:
    result = CaseResult(path, ref, rule.title, str(case["name"]), case["alerts"])
    events: list[Event] = []
    for number, raw in enumerate(case["events"], 1):
        try:
            events.append(parse_record(raw, file=f"{path.name}#{result.name}", line=number))
        except RecordError as error:
            result.error = f"event {number}: {error}"
            return result
    try:
        result.alerts = engine.evaluate(rule, events)
        if first_seen.of(rule) is not None:  # the candidates, reduced to those not seen before
            seen = baseline.Baseline.from_rows({**row, "rule_id": str(rule.id)} for row in case.get("baseline", []))
            result.alerts = list(baseline.first_seen_alerts(result.alerts, seen))
    except EngineError as error:
        result.error = str(error)
        return result
    except ValueError as error:  # a baseline row's time
        result.error = f"baseline: {error}"
        return result
    result.got = len(result.alerts)
    return result


# ---------------------------------------------------------------- output


def report_json(report: Report) -> dict:
    """The report as one JSON document (`r53sigma test --format json`)."""
    return {
        "ok": report.ok,
        "rule_files": report.rule_files,
        "skipped_cases": report.skipped_cases,
        "results": [{"case_file": str(r.case_file), "rule": r.rule_ref, "rule_title": r.rule_title, "case": r.name,
                     "expected": r.expected, "got": r.got, "passed": r.passed, "error": r.error,
                     "alerts": [_alert_json(a) for a in r.alerts]} for r in report.results],
        "problems": [{"kind": p.kind, "path": str(p.path), "message": p.message} for p in report.problems],
    }


def _alert_json(alert: Alert) -> dict:
    if alert.event is not None:
        return {"event": alert.event.line, "raw": alert.event.raw}
    return {"group": {k: str(v) for k, v in (alert.group or {}).items()}, "window_start": format_time(alert.window_start),
            "window_end": format_time(alert.window_end), "value": alert.value, "events": [e.line for e in alert.events]}


def format_report(report: Report, *, verbose: bool = False, max_events: int = 5, with_problems: bool = True) -> str:
    """A pass/fail table, then what a failing case expected, got and matched, then the problems."""
    lines = []
    rows = [("result", "rule", "case", "expected", "got")]
    for r in report.results:
        status = "PASS" if r.passed else ("ERROR" if r.error else "FAIL")
        rows.append((status, r.case_file.name.removesuffix(rules_mod.CASES_SUFFIX).removesuffix(r.case_file.suffix), r.name, str(r.expected), "-" if r.got is None else str(r.got)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    shown = report.results if verbose else report.failures
    for r in shown:
        lines.append("")
        lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.case_file}: {r.rule_title!r} case {r.name!r}")
        if r.error:
            lines.append(f"  error: {r.error}")
            continue
        lines.append(f"  expected {r.expected} alert(s), got {r.got}")
        for alert in r.alerts[:max_events]:
            lines.append("  " + describe_alert(alert))
        if len(r.alerts) > max_events:
            lines.append(f"  ... and {len(r.alerts) - max_events} more")
    if report.problems and with_problems:
        lines.append("")
        lines.extend(str(p) for p in report.problems)
    passed = len(report.results) - len(report.failures)
    lines.append("")
    lines.append(
        f"{passed}/{len(report.results)} cases passed, {len(report.problems)} problem(s), "
        f"{report.rule_files} rule file(s): {'OK' if report.ok else 'FAILED'}"
    )
    return "\n".join(lines)


def describe_alert(alert: Alert, width: int = 240) -> str:
    if alert.event is not None:
        raw = alert.event.raw if isinstance(alert.event.raw, str) else json.dumps(alert.event.raw, sort_keys=False)
        return f"matched event {alert.event.line}: {_cut(raw, width)}"
    group = ", ".join(f"{k}={v}" for k, v in (alert.group or {}).items()) or "(no group)"
    return (
        f"fired for {group} in window {format_time(alert.window_start)}..{format_time(alert.window_end)}"
        f" (value {alert.value}; events {', '.join(str(e.line) for e in alert.events[:10])})"
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
