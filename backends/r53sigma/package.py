"""Building `dist/`: every deployable artifact, from one conversion of the rules, byte-for-byte reproducible.

Layout (shared with `r53sigma deploy`): elastic/ (Kibana rules NDJSON, index/component templates,
ingest pipelines), splunk/ (the app folder and its .spl), cloudwatch/ (CloudFormation, query
definitions, field-index policies, transformers), queries/ (JSON, CSV, COVERAGE.md),
attack-navigator-layer.json and MANIFEST.json ({path: sha256}, written last).

Queries come only from `r53sigma.conversion`. A rule that fails for one target is left out of that
target's package only and reported. Each target's packaging lives in its own room
(targets/<target>/); this module only gathers what they need and writes the tree through
r53sigma.owned_folder: never into a folder of someone else's, never deleting a file we did not write.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path


from r53sigma import attack, catalogue, conversion, first_seen, navigator, owned_folder, schedule
from r53sigma import rules as rule_loading
from r53sigma.packaged import PackagedRule, Schedule
from r53sigma.targets import registry

MANIFEST = "MANIFEST.json"
REPO_PREFIX = "repo:"  # a renderer's file that lives in the repository, not in dist/ (e.g. a version lock)


class PackageError(ValueError):
    """A rule carries package settings that cannot be honoured (e.g. a malformed schedule)."""


@dataclass
class Build:
    files: dict[str, bytes]
    problems: list[str] = field(default_factory=list)  # broken rule files and conversion errors
    rule_count: int = 0  # rules that converted for at least one target
    repo_files: dict[str, bytes] = field(default_factory=dict)  # repository-relative; `package` keeps them for the bundled rules


def schedule_of(rule, source: str) -> Schedule:
    """The rule's schedule over its catalogued log source (r53sigma.schedule derives it)."""
    try:
        return schedule.derive(rule, catalogue.load()[source])
    except schedule.ScheduleError as error:
        raise PackageError(str(error)) from error


def note_of(rule) -> str:
    """Markdown for the analyst: the rule's investigation guide, then its blind spots."""
    attributes = rule.custom_attributes or {}
    parts = []
    investigation = str(attributes.get("investigation") or "").strip()
    if investigation:
        parts.append("## Investigation\n\n" + investigation)
    blind_spots = attributes.get("blind_spots") or []
    if isinstance(blind_spots, str):
        blind_spots = [blind_spots]
    if blind_spots:
        parts.append("## Blind spots\n\n" + "\n".join(f"- {str(b).strip()}" for b in blind_spots))
    return "\n\n".join(parts)


def source_of(logsource: dict) -> str:
    found = catalogue.for_logsource(logsource.get("category"), logsource.get("product"), logsource.get("service"))
    if found is None:
        raise PackageError(f"log source {logsource} is not catalogued")
    return found[0].source


def packaged(conv: conversion.Conversion) -> PackagedRule:
    source = source_of(conv.logsource)
    item = PackagedRule(conv, source, schedule_of(conv.rule, source), note_of(conv.rule))
    if conv.first_seen is not None:  # a first-seen form compares each run with the history before it
        history = first_seen.of(conv.rule).history_seconds // 60
        if history <= item.schedule.lookback:
            raise PackageError(f"first_seen.history ({history}m) must be longer than the rule's look-back "
                               f"({item.schedule.lookback}m), or every value of a run would be new")
    return item


def relative_file(path: Path | None, roots: list[Path]) -> str | None:
    """A rule file's path as the export shows it: under the repository, else under the given root."""
    if path is None:
        return None
    path = path.resolve()
    for root in [rule_loading.REPO_ROOT, *[(r if r.is_dir() else r.parent).resolve().parent for r in roots]]:
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


# --- queries/ -------------------------------------------------------------------------------------

def query_records(conversions: list[conversion.Conversion], roots: list[Path]) -> list[dict]:
    """One record per rule: metadata once, then each target's query (or its error)."""
    records: dict[str, dict] = {}
    for conv in conversions:
        record = records.setdefault(conv.rule_id, {
            "rule_id": conv.rule_id,
            "title": conv.title,
            "level": conv.level,
            "tags": conv.tags,
            "logsource": conv.logsource,
            "file": relative_file(conv.path, roots),
            "attack_techniques": list(attack.tags_of(conv.rule).techniques),
            "queries": {},
        })
        entry = {"language": conv.language}
        if conv.ok:
            entry["query"] = conv.query
        else:
            entry["error"] = _without_path(conv.error, conv.path, record["file"])
            entry["not_expressible"] = conv.not_expressible
        record["queries"][conv.target] = entry
    return list(records.values())


def _without_path(message: str, path: Path | None, shown: str | None) -> str:
    """Error text with the rule file as the export shows it: no machine-specific absolute path."""
    return message.replace(str(path), shown) if path and shown else message


def queries_csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    target_names = conversion.siem_targets()
    writer.writerow(["rule_id", "title", "level", "logsource", "tags", *target_names])
    for r in records:
        logsource = " ".join(f"{k}:{v}" for k, v in r["logsource"].items())
        cells = [r["queries"].get(t, {}).get("query", "") for t in target_names]
        writer.writerow([r["rule_id"], r["title"], r["level"] or "", logsource, " ".join(r["tags"]), *cells])
    return buffer.getvalue()


def coverage_md(records: list[dict]) -> str:
    target_names = conversion.siem_targets()

    def cell(record: dict, target: str) -> str:
        entry = record["queries"].get(target)
        if entry is None:
            return "-"
        if "query" in entry:
            return entry["language"]
        return "not expressible" if entry.get("not_expressible") else "**failed**"

    def techniques(record: dict) -> str:
        return "<br>".join(f"{t} {attack.technique(t).name}" for t in record["attack_techniques"])

    lines = [
        "# Coverage",
        "",
        f"Generated by `r53sigma package`: {len(records)} rules; the query language each target runs,",
        "*not expressible* (the target cannot state the rule; `queries.json` gives the reason) or **failed**",
        f"(left out of that target's package). ATT&CK Enterprise {attack.version()}.",
        "",
        "| rule | level | log source | ATT&CK | " + " | ".join(target_names) + " |",
        "|---|---|---|---|" + "---|" * len(target_names),
    ]
    def source(record: dict) -> str:  # a rule outside the catalogue is a reported problem, not the build's end
        try:
            return source_of(record["logsource"])
        except PackageError:
            return "?"

    for r in sorted(records, key=lambda r: (source(r), r["title"])):
        cells = [r["title"].replace("|", "\\|"), r["level"] or "", source(r), techniques(r)]
        cells += [cell(r, t) for t in target_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- the build ------------------------------------------------------------------------------------

def _json(document) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def build(rule_paths: list[Path] | None = None, filters: list[Path] | None = None) -> Build:
    """Every dist/ file (relative path -> bytes), in memory; nothing is written."""
    target_names = conversion.siem_targets()
    roots = [Path(p) for p in (rule_paths or rule_loading.default_rule_paths())]
    companions = [c for t in target_names for c in registry.get(t).package_companions if c not in target_names]
    converted, rule_errors = conversion.convert_paths(roots, list(target_names) + companions, filters=filters)
    conversions = [c for c in converted if c.target in target_names]
    problems = [f"broken rule file {error}" for error in rule_errors]
    # A target's documented limit leaves the rule out of that package (COVERAGE.md says why) but is no
    # problem; a broken rule or a conversion error is.
    problems += [f"{c.target}: rule {c.title!r} [{c.rule_id}] left out: {c.error}" for c in conversions if c.failed]
    by_target: dict[str, list[PackagedRule]] = {t: [] for t in target_names}
    for c in conversions:
        if not c.ok:
            continue
        try:
            by_target[c.target].append(packaged(c))
        except PackageError as error:
            c.error = str(error)  # reported and left out like a conversion error
            problems.append(f"{c.target}: rule {c.title!r} [{c.rule_id}] left out: {error}")

    for c in converted:  # companions' refusals too: the package says why a rule got no alarm
        if c.target in companions and (c.ok or c.not_expressible):
            try:
                by_target.setdefault(c.target, []).append(packaged(c))
            except PackageError:
                pass  # the same rule's own target reports it

    files: dict[str, str | bytes] = {}
    for name in target_names:
        target = registry.get(name)
        if target.render_package is not None:
            extra = [item for companion in target.package_companions for item in by_target.get(companion, [])]
            files.update(target.render_package(by_target[name] + extra, roots))
    repo_files = {p[len(REPO_PREFIX):]: _bytes(files.pop(p)) for p in [p for p in files if p.startswith(REPO_PREFIX)]}
    records = query_records(conversions, roots)
    files["queries/queries.json"] = _json(records)
    files["queries/queries.csv"] = queries_csv(records)
    files["queries/COVERAGE.md"] = coverage_md(records)
    files["attack-navigator-layer.json"] = _json(navigator.layer(records))
    encoded = {path: _bytes(content) for path, content in sorted(files.items())}
    encoded[MANIFEST] = _bytes(_json({path: hashlib.sha256(data).hexdigest() for path, data in encoded.items()}))
    return Build(encoded, problems, len({c.rule_id for c in conversions if c.ok}), repo_files)


def write(out_dir: Path, files: dict[str, bytes], force: bool = False) -> list[str]:
    """Write a build into ``out_dir`` (see r53sigma.owned_folder: a folder that is empty or holds our
    MANIFEST.json, else only with ``force``; no file the manifest does not list is ever deleted).

    Returns the files of the previous build that were removed.
    """
    return owned_folder.write(Path(out_dir), files, force=force)


def differences(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """How ``out_dir`` differs from a build: stale, missing and extra files."""
    out_dir = Path(out_dir)
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()} if out_dir.is_dir() else set()
    problems = [f"missing: {p}" for p in files if p not in present]
    problems += [f"stale: {p}" for p in files if p in present and (out_dir / p).read_bytes() != files[p]]
    problems += [f"extra: {p}" for p in sorted(present - set(files))]
    return problems
