"""Efficacy benchmark: benign alerts per million queries and attack recall on real-name traffic.

    python bench/efficacy.py [--rules DIR] [--filter FILE] [--data DIR] [--no-sigmahq] [--json OUT]

Reads the efficacy development split in place (``../shared/corpus/efficacy/dev``; R53SIGMA_CORPUS
names another corpus folder) and never copies it. The pack is driven through its public interface
only: ``r53sigma scan --rules DIR [--filter FILE] -o alerts.jsonl`` on the benign file alone and on
benign + malicious; the corpus's own scorer (``tools/eval.py``, read in place) turns the alerts into
per-rule false positives and per-episode detections, so "detected" means exactly what the scorer
means. This script adds the per-category view, the totals against the targets, the alerting vs
hunting split (rule attribute ``purpose: hunting``) and the comparison runs:

1. the pack without an environment filter;
2. the pack with the filter a user of that environment writes (default ``bench/anycompany_filter.yml``);
3. SigmaHQ's ``category: dns`` rules (rules/, rules-threat-hunting/, rules-emerging-threats/ of
   ``sigmahq/dns_category``; its unsupported/ folder is not valid Sigma 2 and is left out).

Scans run one after another (the machine is shared). Exit status 0 when the runs completed; the
targets are reported, not asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILTER = REPO / "bench" / "anycompany_filter.yml"
SIGMAHQ_FOLDERS = ("rules", "rules-threat-hunting", "rules-emerging-threats")
TARGETS = {"pack_fp_per_million": 300, "alerting_rule_fp_per_million": 50, "detected_any": 0.95, "detected_intended": 0.85}


def corpus_dir() -> Path | None:
    candidates = [os.environ.get("R53SIGMA_CORPUS"), REPO.parent / "shared" / "corpus", "/work/shared/corpus"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "efficacy" / "tools" / "eval.py").is_file():
            return Path(candidate)
    return None


def r53sigma_command() -> list[str]:
    beside = Path(sys.executable).with_name("r53sigma")
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "r53sigma"]


def scan(rule_dirs: list[Path], filters: list[Path], logs: list[Path], out: Path, engine: str) -> None:
    command = [*r53sigma_command(), "scan", "--no-progress", "--engine", engine, "-o", str(out)]
    for rule_dir in rule_dirs:
        command += ["--rules", str(rule_dir)]
    for filter_file in filters:
        command += ["--filter", str(filter_file)]
    done = subprocess.run([*command, *map(str, logs)], capture_output=True, text=True)
    if done.returncode not in (0, 1) or not out.is_file():  # 1: some rule refused, the others ran
        raise SystemExit(f"scan failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    for line in done.stderr.splitlines():
        if line.startswith("rule error"):
            print(f"  {line}", file=sys.stderr)


def hunting_rule_ids(rule_dirs: list[Path]) -> set[str]:
    """Ids of rules marked ``purpose: hunting`` (packaged as hunting queries, not scheduled as alerts)."""
    ids = set()
    for rule_dir in rule_dirs:
        for path in sorted(rule_dir.rglob("*.yml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict) and doc.get("purpose") == "hunting" and "id" in doc:
                    ids.add(str(doc["id"]))
    return ids


def correlation_conditions(rule_dirs: list[Path]) -> dict[str, str]:
    """Rule id -> the correlation's condition in one line (type, threshold, timespan, group-by)."""
    conditions = {}
    for rule_dir in rule_dirs:
        for path in sorted(rule_dir.rglob("*.yml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict) and isinstance(doc.get("correlation"), dict) and "id" in doc:
                    conditions[str(doc["id"])] = condition_text(doc["correlation"])
    return conditions


def condition_text(correlation: dict) -> str:
    """``value_count(query_name) gt 3 in 30m by srcaddr``; ``temporal_ordered in 1h by vpc``."""
    kind, condition = correlation.get("type", "?"), dict(correlation.get("condition") or {})
    field = condition.pop("field", None)
    threshold = " ".join(f"{op} {value}" for op, value in condition.items())
    counted = f"{kind}({field})" if field else kind
    return " ".join(part for part in (counted, threshold, f"in {correlation.get('timespan')}",
                                      f"by {', '.join(correlation.get('group-by') or [])}") if part)


def score(name: str, rule_dirs: list[Path], eval_rules: Path, filters: list[Path], data: Path, tools: Path,
          engine: str, workdir: Path) -> dict:
    benign, mixed = workdir / f"{name}.benign.jsonl", workdir / f"{name}.mixed.jsonl"
    scan(rule_dirs, filters, [data / "benign.jsonl.gz"], benign, engine)
    scan(rule_dirs, filters, [data / "benign.jsonl.gz", data / "malicious.jsonl.gz"], mixed, engine)
    out = workdir / name
    done = subprocess.run(
        [sys.executable, str(tools / "eval.py"), "--data", str(data), "--rules", str(eval_rules),
         "--benign-alerts", str(benign), "--mixed-alerts", str(mixed), "--name", name, "--out", str(out)],
        capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"scorer failed: {done.stderr[-3000:]}")
    result = json.loads(out.with_suffix(".json").read_text())
    result["hunting"] = sorted(hunting_rule_ids(rule_dirs))
    result["filters"] = [str(f) for f in filters]
    result["correlation_conditions"] = correlation_conditions(rule_dirs)
    result["attack_only_alerts"] = attack_only_alerts(benign, mixed)
    return result


def attack_only_alerts(benign: Path, mixed: Path) -> dict[str, int]:
    """Correlation id -> alerts of the benign + malicious scan that the benign scan lacks (same group).

    The scorer credits a correlation only when its group is the episode's source; correlations
    grouped otherwise (per registered domain, VPC, hosted zone) are never credited, so this is
    what shows whether they fire on the attacks at all.
    """
    def alerts(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def key(alert: dict) -> tuple[str, str]:
        return alert.get("rule_id", ""), json.dumps(alert.get("group"), sort_keys=True)

    seen = {key(a) for a in alerts(benign) if a.get("correlation")}
    counts: Counter = Counter()
    for alert in alerts(mixed):
        if alert.get("correlation") and key(alert) not in seen:
            counts[alert.get("rule_id", "")] += 1
    return dict(counts)


def totals(result: dict, data: Path) -> dict:
    per_million = 1e6 / result["benign_queries"]
    hunting = set(result["hunting"])
    alerting = [r for r in result["rules"] if r["rule_id"] not in hunting]
    episodes = [json.loads(line) for line in (data / "episodes.jsonl").read_text().splitlines() if line.strip()]
    undetected = {e["id"] for e in result["undetected_episodes"]}
    fams = result["families"]
    worst = max(alerting, key=lambda r: r["benign_alerts"], default=None)
    return {
        "pack_fp_per_million": round(result["benign_alerts"] * per_million, 1),
        "alerting_fp_per_million": round(sum(r["benign_alerts"] for r in alerting) * per_million, 1),
        "worst_alerting_rule": (worst["title"], worst["fp_per_million"]) if worst else None,
        "episodes": len(episodes),
        "detected_any": len(episodes) - len(undetected),
        "detected_intended": sum(f["detected_intended"] for f in fams),
        # families as the scorer groups them: per family for DGA, tunnels, Cobalt Strike and OAST, else per category
        "families": len(fams),
        "families_missed": [f"{f['category']}/{f['family']}" for f in fams if not f["detected_any"]],
    }


def by_category(result: dict) -> list[tuple[str, int, int, int]]:
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for f in result["families"]:
        row = rows[f["category"]]
        row[0] += f["episodes"]; row[1] += f["detected_intended"]; row[2] += f["detected_any"]
    return [(category, *row) for category, row in rows.items()]


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def report(result: dict, data: Path, show_rules: bool = True) -> dict:
    t = totals(result, data)
    hunting = set(result["hunting"])
    print(f"\n## {result['name']}: {result['benign_queries']} benign queries, {result['malicious_queries']} "
          f"malicious queries in {result['episodes']} episodes" + (f"; filter {', '.join(Path(f).name for f in result['filters'])}" if result["filters"] else ""))
    if show_rules:
        print("\n| rule | purpose | benign alerts | FP/M | top benign offenders | recall on its intended episodes | catches |")
        print("|---|---|---|---|---|---|---|")
        for r in sorted(result["rules"], key=lambda r: (-r["benign_alerts"], r["title"])):
            if not r["benign_alerts"] and not r["catches"] and not r["expected_episodes"]:
                continue
            recall = pct(r["expected_caught"], r["expected_episodes"]) if r["expected_episodes"] else "n/a"
            catches = ", ".join(f"{k} {v}" for k, v in sorted(r["catches"].items())) or "-"
            print(f"| {r['title']}{' (corr.)' if r['correlation'] else ''} | {'hunting' if r['rule_id'] in hunting else 'alert'} "
                  f"| {r['benign_alerts']} | {r['fp_per_million']} | {', '.join(r['top_fp'][:3]).replace('|', '/') or '-'} "
                  f"| {recall} | {catches} |")
    print("\n| category | episodes | detected by the intended rule | detected by any rule |")
    print("|---|---|---|---|")
    for category, episodes, intended, anyrule in by_category(result):
        print(f"| {category} | {episodes} | {pct(intended, episodes)} | {pct(anyrule, episodes)} |")
    conditions = result.get("correlation_conditions", {})
    if show_rules and conditions:
        # every correlation of the pack, also those with no benign alert and no intended episode (issue #13)
        print("\n| correlation | purpose | condition | benign alerts (groups) | FP/M | recall on its intended episodes | catches "
              "| alerts only with the attacks (groups absent from the benign scan) |")
        print("|---|---|---|---|---|---|---|---|")
        attack_only = result.get("attack_only_alerts", {})
        scored = {r["rule_id"]: r for r in result["rules"]}
        for rule_id, condition in sorted(conditions.items(), key=lambda item: scored.get(item[0], {}).get("title", item[0])):
            r = scored.get(rule_id)
            if r is None:
                print(f"| {rule_id} | - | {condition} | not scored | - | - | - | {attack_only.get(rule_id, 0)} |")
                continue
            recall = pct(r["expected_caught"], r["expected_episodes"]) if r["expected_episodes"] else "n/a"
            catches = ", ".join(f"{k} {v}" for k, v in sorted(r["catches"].items())) or "-"
            print(f"| {r['title']} | {'hunting' if rule_id in hunting else 'alert'} | {condition} | {r['benign_alerts']} "
                  f"({r.get('benign_groups', '-')}) | {r['fp_per_million']} | {recall} | {catches} | {attack_only.get(rule_id, 0)} |")
    if show_rules:
        print("\n| family | episodes | intended | any | missed |")
        print("|---|---|---|---|---|")
        for f in result["families"]:
            if f["category"] in ("dga", "dns_tunnel", "cobaltstrike", "oast") or f["detected_any"] < f["episodes"]:
                print(f"| {f['category']}/{f['family']} | {f['episodes']} | {f['detected_intended']} | {f['detected_any']} "
                      f"| {', '.join(f'{k} {v}' for k, v in f['missed'].items()) or '-'} |")
    worst = t["worst_alerting_rule"]
    print(f"\nTotals: pack {t['pack_fp_per_million']} FP/M (target <= {TARGETS['pack_fp_per_million']}); alerting rules "
          f"{t['alerting_fp_per_million']} FP/M, worst alerting rule {worst[0] if worst else '-'} {worst[1] if worst else 0} FP/M "
          f"(target <= {TARGETS['alerting_rule_fp_per_million']}); episodes detected by any rule {pct(t['detected_any'], t['episodes'])} "
          f"(target >= 95%), by the intended rule {pct(t['detected_intended'], t['episodes'])} (target >= 85%); "
          f"families never detected: {', '.join(t['families_missed']) or 'none'} of {t['families']}")
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=Path, default=REPO / "sigma_rules", help="rules folder to score (default: the pack)")
    parser.add_argument("--filter", type=Path, action="append", default=None,
                        help=f"environment filter file(s) for the filtered run (default: {DEFAULT_FILTER.relative_to(REPO)})")
    parser.add_argument("--data", type=Path, default=None, help="a built split (default: <corpus>/efficacy/dev)")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "reference"])
    parser.add_argument("--no-sigmahq", action="store_true", help="skip the SigmaHQ comparison run")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's scores to this file")
    args = parser.parse_args()
    corpus = corpus_dir()
    if corpus is None:
        print("skipped: the efficacy corpus is absent (set R53SIGMA_CORPUS to the folder holding efficacy/)", file=sys.stderr)
        return 0
    data = (args.data or corpus / "efficacy" / "dev").resolve()
    tools = corpus / "efficacy" / "tools"
    filters = [f.resolve() for f in (args.filter or [DEFAULT_FILTER])]
    results, summary = {}, {}
    with tempfile.TemporaryDirectory(prefix="r53sigma-efficacy-") as tmp:
        work = Path(tmp)
        runs = [("pack, no filter", [args.rules], args.rules, []), ("pack, environment filter", [args.rules], args.rules, filters)]
        hq = corpus / "sigmahq" / "dns_category"
        if not args.no_sigmahq:
            if hq.is_dir():
                runs.append(("SigmaHQ category: dns", [hq / f for f in SIGMAHQ_FOLDERS if (hq / f).is_dir()], hq, []))
            else:
                print(f"SigmaHQ comparison skipped: {hq} absent", file=sys.stderr)
        for index, (name, rule_dirs, eval_rules, run_filters) in enumerate(runs):
            results[name] = score(f"run{index}", rule_dirs, eval_rules, run_filters, data, tools, args.engine, work)
            results[name]["name"] = name
            summary[name] = report(results[name], data)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "totals": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
