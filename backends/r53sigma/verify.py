"""Every rule, every target, proven on the same events: the converted queries against the reference engine.

For each rule and each of its test cases, :func:`run` converts the rule for every target, evaluates the
converted query on that target's own view of the case's raw events, and compares with the reference
engine (:mod:`r53sigma.scan.reference`): the set of matching events for a plain rule, the number of firing
bursts for a correlation (one per group and burst of the sliding window; a target with fixed or
hopping buckets has its firing rows of one group merged into bursts where their buckets overlap or touch).

Targets, their engines and their view of a raw record (each target's verify adapter,
``r53sigma/targets/<target>/verify.py``, declared by the target's ``TARGET``):

- **elasticsearch**: single-event rules in Lucene, run by the real Lucene (``lucene_engine``, Java) on
  documents as the pack's ingest pipeline writes them (``documents.document_from_raw``) with the
  index template's field types (``ingestion.field_mappings``); all queries and documents go to Java in
  one call. Correlations in ES|QL, parsed, type-checked against the index template and run by
  ``esql_model`` on the same documents. A query only sees documents of its rule's own log source
  (its index pattern).
- **splunk**: ``spl_model`` on ``splunk.events.event_from_raw`` (what the add-on extracts). The
  query sees every event: its ``sourcetype`` term does the scoping.
- **cloudwatch**: ``cloudwatch.insights_model`` on the raw text (``@message`` plus the discovered
  JSON fields), the events of the rule's own log group only.

Cells: ``agree``; ``approximate`` (a target bound to fixed or hopping buckets, whose declared
``window_guarantee`` is weaker than the spec's sliding window, answered a correlation case within that
guarantee but not exactly: it caught every burst that fits within the guaranteed fraction of the span,
and fired no more often than the spec; outside that it is ``DISAGREE``); ``DISAGREE`` (a case's result differs, or the target would reject the query);
``not expressible`` (the backend or pipeline refused the rule, with its reason); ``skipped`` (the
target's engine is missing here, e.g. no Java for Lucene, with the reason); ``MODEL GAP`` (the
query uses something the target model does not cover: fix the model). Only ``agree``,
``approximate``, ``not expressible`` and ``skipped`` pass.

Group-by nulls: the reference engine leaves an event without a group-by value out of a
correlation, as Splunk's ``stats ... by`` and Logs Insights' ``stats ... by`` do. ES|QL's ``STATS ...
BY`` puts such rows in a null group; ``esql_model`` models that, so an ES|QL correlation that does
not filter the null out disagrees here where a case has such events.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationTimespan

from r53sigma import catalogue, conversion, first_seen
from r53sigma import rules as rules_mod
from r53sigma import testcases
from r53sigma.scan.reference import Engine, EngineError
from r53sigma.scan.records import Event, RecordError, parse_record
from r53sigma.targets import registry
from r53sigma.targets.spec import ModelGap, Rejected, Unavailable, Verifier

AGREE, DISAGREE, NOT_EXPRESSIBLE, SKIPPED, MODEL_GAP = "agree", "DISAGREE", "not expressible", "skipped", "MODEL GAP"
APPROXIMATE = "approximate"
PASSING = (AGREE, APPROXIMATE, NOT_EXPRESSIBLE, SKIPPED)


@dataclass
class Case:
    """Raw events a rule is checked on; ``events`` are the reference engine's view of them."""

    rule_ref: str
    name: str
    raws: list[Any]
    events: list[Event] = field(default_factory=list)


@dataclass
class Mismatch:
    case: str
    expected: Any  # matching event numbers (1-based), a count of bursts, or a WindowBound
    got: Any

    def __str__(self) -> str:
        return f"case {self.case!r}: reference engine {_show(self.expected)}, target {_show(self.got)}"


@dataclass
class Cell:
    rule_id: str
    rule: str  # the rule file's stem, or its title
    target: str
    language: str
    status: str = AGREE
    reason: str = ""
    query: str | None = None
    cases: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status in PASSING


@dataclass
class Report:
    cells: list[Cell] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    targets: tuple[str, ...] = field(default_factory=conversion.siem_targets)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.passed for c in self.cells)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {t: {} for t in self.targets}
        for cell in self.cells:
            out[cell.target][cell.status] = out[cell.target].get(cell.status, 0) + 1
        return out


# ---------------------------------------------------------------- cases


def load_cases(cases_dir: Path | None, loaded: rules_mod.LoadedRules, *, all_rules: bool = True,
               rule_paths: list[Path] | None = None) -> tuple[list[tuple[Any, Case]], list[str]]:
    """(rule, case) pairs from the test case files, and the problems met reading them.

    With ``all_rules`` false (the user named some rule files), a case file for a rule not loaded is
    passed over: it belongs to a rule not asked for."""
    pairs: list[tuple[Any, Case]] = []
    problems: list[str] = []
    files, missing = testcases.find_case_files(cases_dir, rule_paths)
    if missing:
        return pairs, [missing]
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            ref, cases = testcases.validate(doc)  # the one shape `r53sigma test` reads
        except yaml.YAMLError as error:
            problems.append(f"{path}: not a case file ({rules_mod.yaml_reason(error)})")
            continue
        except (OSError, ValueError) as error:
            problems.append(f"{path}: not a case file ({' '.join(str(error).split())})")
            continue
        rule = loaded.find(ref)
        if rule is None:
            if not all_rules:
                continue
            problems.append(f"{path}: no rule with id, name or file stem {ref!r}")
            continue
        for case in cases:
            pairs.append((rule, Case(ref, str(case.get("name")), list(case.get("events") or []))))
    return pairs, problems


def run(cases_dir: Path | None = None, rule_paths: list[Path] | None = None,
        targets: Iterable[str] | None = None) -> Report:
    """Verify the rules at ``rule_paths`` (default: the pack's) on the cases in ``cases_dir``."""
    paths = [Path(p) for p in rule_paths] if rule_paths else None
    files, _ = testcases.find_case_files(cases_dir, paths)
    variables = testcases.case_variables_of(files)  # placeholder values: the same for engine and targets
    loaded = rules_mod.load(paths, variables)
    pairs, problems = load_cases(cases_dir, loaded, all_rules=paths is None, rule_paths=paths)
    cased = {id(rule) for rule, _ in pairs}
    problems += [f"{loaded.path_of(r) or r.title}: no test case names this rule, nothing to verify"
                 for r in loaded.top_level() if id(r) not in cased]
    report = verify(paths, loaded, pairs, tuple(targets) if targets is not None else None, variables)
    report.problems = [f"broken rule: {e.path}: {e.message}" for e in loaded.errors] + problems + report.problems
    return report


def verify(paths: list[Path] | None, loaded: rules_mod.LoadedRules, pairs: list[tuple[Any, Case]],
           targets: tuple[str, ...] | None = None, variables: dict | None = None) -> Report:
    """Verify (rule, case) pairs; ``loaded`` holds the rules as written (no pipeline applied)."""
    targets = tuple(targets) if targets is not None else conversion.siem_targets()
    report = Report(targets=targets)
    engine = Engine(loaded.collection)
    by_rule: dict[str, tuple[Any, list[Case]]] = {}
    for rule, case in pairs:
        try:
            case.events = [parse_record(raw, file=case.rule_ref, line=n) for n, raw in enumerate(case.raws, 1)]
        except RecordError as error:
            report.problems.append(f"{case.rule_ref}: case {case.name!r}: {error}")
            continue
        by_rule.setdefault(str(rule.id), (rule, []))[1].append(case)
    expected: dict[tuple[str, int], Any] = {}
    for rule_id, (rule, cases) in by_rule.items():
        for number, case in enumerate(cases):
            try:
                expected[(rule_id, number)] = _reference(engine, rule, case)
            except EngineError as error:
                report.problems.append(f"{case.rule_ref}: the reference engine cannot evaluate it: {error}")
    for target in targets:
        conversions = {c.rule_id: c for c in conversion.convert_paths(paths, [target], variables)[0]}
        checker = _Checker(target)
        guarantee = registry.get(target).window_guarantee
        for rule_id, (rule, cases) in by_rule.items():
            conv = conversions.get(rule_id)
            cell = Cell(rule_id, _rule_name(loaded, rule), target, conv.language if conv else "?",
                        query=conv.query if conv else None, cases=len(cases))
            report.cells.append(cell)
            if conv is None:
                cell.status, cell.reason = DISAGREE, "no conversion was produced for this rule"
            elif not conv.ok:
                cell.status, cell.reason = (NOT_EXPRESSIBLE if conv.not_expressible else DISAGREE), conv.error
            else:
                wanted = [expected.get((rule_id, n)) for n in range(len(cases))]
                if guarantee is not None and isinstance(rule, SigmaCorrelationRule):
                    wanted = [None if want is None else WindowBound(want, _tight(engine, rule, case, guarantee), guarantee)
                              for want, case in zip(wanted, cases)]
                checker.add(cell, conv, rule, cases, wanted)
        checker.finish()
    for cell in report.cells:  # a first-seen rule: what its cell proves, and what it does not
        rule = by_rule[cell.rule_id][0]
        if cell.status == AGREE and first_seen.of(rule) is not None:
            cell.reason = first_seen_note(registry.get(cell.target).first_seen_form)
    return report


def first_seen_note(form: str) -> str:
    """What an agreeing first-seen cell proves; ``form``: the target's word for its native form."""
    return (f"first-seen rule: the candidate query agrees; the target's first-seen form ({form or 'its native form'}) "
            "is generated from the same definition and not run here (no model keeps state across runs); "
            "the local engines' first-seen filter is proven by the rule's cases")


def _reference(engine: Engine, rule, case: Case) -> Any:
    alerts = engine.evaluate(rule, case.events)
    if isinstance(rule, SigmaCorrelationRule):
        return len(alerts)
    position = {id(e): n for n, e in enumerate(case.events, 1)}
    return {position[id(a.event)] for a in alerts}


@dataclass(frozen=True)
class WindowBound:
    """What a target with fixed or hopping buckets must answer for a correlation case: ``exact``
    bursts of the spec's sliding window; it is held only to catching the ``guaranteed`` ones (those
    that fire again with the span shrunk to ``fraction`` of it: they fit in that much time)."""

    exact: int
    guaranteed: int
    fraction: float

    def judge(self, got: Any) -> str:
        if got == self.exact:
            return AGREE
        if isinstance(got, int) and self.guaranteed <= got <= self.exact:
            return APPROXIMATE
        return DISAGREE

    def __str__(self) -> str:
        return f"{self.exact} burst(s), {self.guaranteed} of them within {self.fraction:g} of the span"


def guarantee_text(fraction: float) -> str:
    if fraction <= 0:
        return "approximate: fixed buckets, a burst straddling a bucket boundary may be missed"
    return f"approximate: catches any burst within {fraction:g} of the span"


def _tight(engine: Engine, rule, case: Case, fraction: float) -> int:
    """Bursts of the correlation with its span shrunk to ``fraction``: those any target bound by the
    guarantee must catch (none for fixed buckets)."""
    seconds = int(rule.timespan.seconds * fraction)
    if seconds <= 0:
        return 0
    tight = dataclasses.replace(rule, timespan=SigmaCorrelationTimespan(f"{seconds}s"))
    return len(engine.evaluate(tight, case.events))


def _rule_name(loaded: rules_mod.LoadedRules, rule) -> str:
    path = loaded.path_of(rule)
    return path.stem if path else rule.title


def _show(value: Any) -> str:
    if isinstance(value, WindowBound):
        return f"fires {value}"
    if isinstance(value, set):
        return "matches events " + (", ".join(str(n) for n in sorted(value)) if value else "none")
    return f"fires {value} time(s)"


# ---------------------------------------------------------------- targets


def _source_of(rule) -> catalogue.LogSource | None:
    logsource = conversion.logsource_of(rule)
    found = catalogue.for_logsource(logsource.get("category"), logsource.get("product"), logsource.get("service"))
    return found[0] if found else None


@dataclass
class _Pending:
    cell: Cell
    conv: conversion.Conversion
    rule: Any
    cases: list[Case]
    expected: list[Any]


class _Checker:
    """Evaluates one target's queries with the target's verify adapter; the languages it batches
    (Lucene: one Java call) are collected and answered in :meth:`finish`."""

    def __init__(self, target: str):
        self.target = target
        declared = registry.get(target).verifier
        self.verifier: Verifier = declared() if declared else Verifier()
        self.batches: dict[str, list[_Pending]] = {}

    def add(self, cell: Cell, conv: conversion.Conversion, rule, cases: list[Case], expected: list[Any]) -> None:
        pending = _Pending(cell, conv, rule, cases, expected)
        if conv.language in self.verifier.batched:
            self.batches.setdefault(conv.language, []).append(pending)
            return
        source = _source_of(rule)
        try:
            for case, want in zip(cases, expected):
                self._compare(cell, case, want, self.verifier.evaluate(conv.language, conv.query, rule, case, source))
        except Rejected as rejected:
            cell.status, cell.reason = DISAGREE, str(rejected)
        except ModelGap as gap:
            cell.status, cell.reason = MODEL_GAP, str(gap)
        except Exception as error:  # a model that cannot evaluate a query fails this cell, not the run
            cell.status, cell.reason = MODEL_GAP, f"{self.target} model failed: {type(error).__name__}: {error}"

    @staticmethod
    def _compare(cell: Cell, case: Case, want: Any, got: Any) -> None:
        if want is None:
            return
        verdict = want.judge(got) if isinstance(want, WindowBound) else (AGREE if got == want else DISAGREE)
        if verdict == AGREE:
            return
        cell.mismatches.append(Mismatch(case.name, want, got))
        if verdict == DISAGREE:
            cell.status = DISAGREE
        elif cell.status == AGREE:
            cell.status, cell.reason = APPROXIMATE, guarantee_text(want.fraction)

    def finish(self) -> None:
        for language, work in self.batches.items():
            try:
                answers = self.verifier.evaluate_batch(
                    language, [(p.conv.query, p.rule, p.cases, _source_of(p.rule)) for p in work])
            except Unavailable as error:
                for pending in work:
                    pending.cell.status, pending.cell.reason = SKIPPED, str(error)
                continue
            for pending, answer in zip(work, answers):
                if isinstance(answer, Rejected):
                    pending.cell.status, pending.cell.reason = DISAGREE, str(answer)
                    continue
                for case, want, got in zip(pending.cases, pending.expected, answer):
                    self._compare(pending.cell, case, want, got)


# ---------------------------------------------------------------- output


def report_json(report: Report) -> dict:
    """The report as one JSON document (`r53sigma verify --format json`)."""
    def value(v):
        return sorted(v) if isinstance(v, set) else v

    return {
        "ok": report.ok,
        "targets": list(report.targets),
        "cells": [{"rule_id": c.rule_id, "rule": c.rule, "target": c.target, "language": c.language,
                   "status": c.status, "passed": c.passed, "reason": c.reason, "cases": c.cases, "query": c.query,
                   "mismatches": [{"case": m.case, "expected": value(m.expected), "got": value(m.got)} for m in c.mismatches]}
                  for c in report.cells],
        "counts": report.counts(),
        "problems": list(report.problems),
    }


def format_report(report: Report, *, show_queries: bool = False, with_problems: bool = True) -> str:
    """The rule x target matrix, then why each failing cell failed, then the counts per target."""
    lines = []
    header = ("rule",) + report.targets
    rows: dict[str, dict[str, Cell]] = {}
    for cell in report.cells:
        rows.setdefault(cell.rule, {})[cell.target] = cell
    table = [header] + [(rule,) + tuple(_cell_text(cells.get(t)) for t in report.targets) for rule, cells in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]  # rule names whole: they are the key
    for row in table:
        lines.append("  ".join(text.ljust(widths[i]) for i, text in enumerate(row)).rstrip())
    notes = [c for c in report.cells if c.reason or c.mismatches]
    if notes:
        lines.append("")
    for cell in notes:
        lines.append(f"{cell.status}: {cell.rule} on {cell.target} ({cell.language}): {cell.reason}".rstrip(": "))
        for mismatch in cell.mismatches:
            lines.append(f"  {mismatch}")
        if show_queries or not cell.passed:
            if cell.query:
                lines.extend("    | " + line for line in cell.query.splitlines()[:12])
    if report.problems and with_problems:
        lines.append("")
        lines.extend(f"problem: {p}" for p in report.problems)
    lines.append("")
    for target, counts in report.counts().items():
        lines.append(f"{target}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    failed = sum(not c.passed for c in report.cells)
    lines.append(f"{len(rows)} rule(s) x {len(report.targets)} target(s): {failed} failing cell(s), "
                 f"{len(report.problems)} problem(s): {'OK' if report.ok else 'FAILED'}")
    return "\n".join(lines)


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.status == AGREE:
        return f"agree ({cell.cases})"
    if cell.status == APPROXIMATE:
        return f"approximate ({cell.cases})"
    return cell.status
