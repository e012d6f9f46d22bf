"""The plan cache: compiled SQL reused only for the same content, and alerts unchanged by it."""
from __future__ import annotations

import json

from r53sigma import rules as rules_mod
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.plancache import PlanCache
from r53sigma.scan.records import read_paths
from r53sigma.scan.reference import Engine

RULE = """title: nx
id: 0f1d2c3b-0000-4000-8000-00000000c001
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
"""


def log(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"query_timestamp": "2024-05-01T10:00:00Z", "query_name": "a.", "query_type": "A",
                                        "rcode": code, "srcaddr": "10.0.0.5", "answers": []}) + "\n" for code in ("NXDOMAIN", "SERVFAIL")))
    return path


def alerts(rule_file, cache_path, logs):
    loaded = rules_mod.load([rule_file])
    cache = PlanCache(cache_path)
    engine = DuckEngine(loaded.collection, plan_cache=cache)
    found = [a.to_json() for a in engine.scan_paths([logs], list(loaded.top_level()))]
    return found, cache, loaded


def test_a_warm_cache_gives_the_same_alerts_and_an_edited_rule_is_compiled_again(tmp_path):
    rule_file, cache_path, logs = tmp_path / "nx.yml", tmp_path / "cache" / "plans.json", log(tmp_path)
    rule_file.write_text(RULE)
    cold, cache, loaded = alerts(rule_file, cache_path, logs)
    assert len(cache.entries) == 1 and cache_path.exists()
    warm, cache, _ = alerts(rule_file, cache_path, logs)
    assert warm == cold == [a.to_json() for a in Engine(loaded.collection).scan(read_paths([logs]))] and not cache.added
    rule_file.write_text(RULE.replace("NXDOMAIN", "SERVFAIL"))
    edited, cache, _ = alerts(rule_file, cache_path, logs)
    assert len(cache.entries) == 2 and [a["origin"].rsplit(":", 1)[1] for a in edited] == ["2"]


def test_a_broken_cache_file_only_means_compiling_again(tmp_path):
    rule_file, cache_path, logs = tmp_path / "nx.yml", tmp_path / "plans.json", log(tmp_path)
    rule_file.write_text(RULE)
    cache_path.write_text("{not json")
    found, cache, _ = alerts(rule_file, cache_path, logs)
    assert len(found) == 1 and len(json.loads(cache_path.read_text())) == 1


# ---------------------------------------------------------------- the compiled run of `r53sigma scan`

import os
import subprocess
import sys

import pytest

from r53sigma.cli import main

NX_BURST = """title: nx burst
id: 0f1d2c3b-0000-4000-8000-00000000c002
correlation:
  type: event_count
  rules: [0f1d2c3b-0000-4000-8000-00000000c001]
  group-by: [srcaddr]
  timespan: 5m
  condition: {gte: 2}
"""
LOOKAHEAD = """title: lookahead
id: 0f1d2c3b-0000-4000-8000-00000000c003
logsource: {product: aws, service: route53resolver}
detection:
  sel: {query_name|re: 'b(?=ad)'}
  condition: sel
"""
LISTED = """title: listed
id: 0f1d2c3b-0000-4000-8000-00000000c004
logsource: {product: aws, service: route53resolver}
detection:
  sel:
    query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
  condition: sel
"""
FILTER = """title: own resolver
id: 0f1d2c3b-0000-4000-8000-00000000c0f1
logsource: {product: aws, service: route53resolver}
filter:
  rules: [0f1d2c3b-0000-4000-8000-00000000c001]
  own: {srcaddr: ADDRESS}
  condition: not own
"""


def resolver_log(tmp_path, rows):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"query_timestamp": f"2024-05-01T10:00:0{i}Z", "query_name": name, "query_type": "A",
                                        "rcode": code, "srcaddr": address, "answers": []}) + "\n"
                            for i, (name, code, address) in enumerate(rows)))
    return path


def scan_in_subprocess(cache, rules, logs, extra_env=None, options=(), modules=("sigma", "yaml")):
    """`r53sigma scan` in a fresh interpreter: (stdout, stderr, the modules of ``modules`` it imported)."""
    code = ("import sys, json\nfrom r53sigma.cli import main\nstatus = main(sys.argv[1:])\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {tuple(modules)!r})), file=sys.stderr)\n"
            "sys.exit(status)")
    env = {**os.environ, "R53SIGMA_CACHE_DIR": str(cache), **(extra_env or {})}
    done = subprocess.run([sys.executable, "-c", code, "scan", "--no-progress", *options, "--rules", str(rules), str(logs)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    *stderr, modules = done.stderr.splitlines()
    return done.stdout, stderr, json.loads(modules)


def scan_here(capsys, monkeypatch, cache, *args):
    monkeypatch.setenv("R53SIGMA_CACHE_DIR", str(cache))
    status = main(["scan", "--no-progress", *map(str, args)])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("options", [(), ("--engine", "duckdb")], ids=["small-input-default", "duckdb"])
def test_a_warm_scan_imports_no_pysigma_nor_yaml_and_prints_what_the_cold_scan_printed(tmp_path, options):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nx.yml").write_text(RULE)
    (rules / "burst.yml").write_text(NX_BURST)  # hides nx: its alerts are the burst's
    (rules / "noerror.yml").write_text(RULE.replace("nx", "noerror").replace("NXDOMAIN", "NOERROR").replace("c001", "c005"))
    (rules / "listed.yml").write_text(LISTED)  # no list given: skipped, with its message
    logs = resolver_log(tmp_path, [("a.example.", "NXDOMAIN", "10.0.0.5"), ("b.example.", "NXDOMAIN", "10.0.0.5"),
                                   ("c.example.", "NOERROR", "10.0.0.6")])
    cache = tmp_path / "cache"
    cold_out, cold_err, cold_modules = scan_in_subprocess(cache, rules, logs, options=options)
    assert {"sigma.rule", "yaml"} <= set(cold_modules) and list((cache / "runs").glob("*.json"))
    warm_out, warm_err, warm_modules = scan_in_subprocess(cache, rules, logs, options=options)
    assert warm_modules == []
    assert (warm_out, warm_err) == (cold_out, cold_err)
    alerts = [json.loads(line) for line in warm_out.splitlines()]
    assert [a["title"] for a in alerts] == ["noerror", "nx burst"] and alerts[1]["correlation"] == "event_count"
    assert alerts[1]["group"] == {"srcaddr": "10.0.0.5"} and alerts[1]["value"] == 2
    assert any(line.startswith("rule skipped: listed: no list for %ioc_domains%") for line in warm_err)


def test_a_row_sql_leaves_unknown_loads_the_rules_and_is_decided_as_cold(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "lookahead.yml").write_text(LOOKAHEAD)  # RE2 has no look-ahead: the reference engine decides
    logs = resolver_log(tmp_path, [("bad.example.", "NOERROR", "10.0.0.5"), ("bat.example.", "NOERROR", "10.0.0.5")])
    cache = tmp_path / "cache"
    cold = scan_in_subprocess(cache, rules, logs, options=("--engine", "duckdb"))
    warm = scan_in_subprocess(cache, rules, logs, options=("--engine", "duckdb"))
    assert warm[:2] == cold[:2] and "sigma.rule" in warm[2]  # loaded lazily, for the unknown row
    assert [json.loads(line)["event"]["query_name"] for line in warm[0].splitlines()] == ["bad.example."]


def test_an_edited_rule_file_is_run_with_its_new_meaning(tmp_path, capsys, monkeypatch):
    rule_file, cache = tmp_path / "nx.yml", tmp_path / "cache"
    rule_file.write_text(RULE)
    logs = resolver_log(tmp_path, [("a.", "NXDOMAIN", "10.0.0.5"), ("b.", "SERVFAIL", "10.0.0.5")])
    for _ in range(2):  # cold, then warm
        _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
        assert [a["event"]["rcode"] for a in alerts] == ["NXDOMAIN"]
    rule_file.write_text(RULE.replace("NXDOMAIN", "SERVFAIL"))
    _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
    assert [a["event"]["rcode"] for a in alerts] == ["SERVFAIL"]


def test_an_edited_filter_file_is_run_with_its_new_meaning(tmp_path, capsys, monkeypatch):
    rule_file, filter_file, cache = tmp_path / "nx.yml", tmp_path / "own.yml", tmp_path / "cache"
    rule_file.write_text(RULE)
    filter_file.write_text(FILTER.replace("ADDRESS", "10.0.0.5"))
    logs = resolver_log(tmp_path, [("a.", "NXDOMAIN", "10.0.0.5"), ("b.", "NXDOMAIN", "10.0.0.6")])
    for _ in range(2):
        _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, "--filter", filter_file, logs)
        assert [a["event"]["srcaddr"] for a in alerts] == ["10.0.0.6"]
    filter_file.write_text(FILTER.replace("ADDRESS", "10.0.0.6"))
    _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, "--filter", filter_file, logs)
    assert [a["event"]["srcaddr"] for a in alerts] == ["10.0.0.5"]


def test_an_edited_domain_list_is_run_with_its_new_meaning(tmp_path, capsys, monkeypatch):
    rule_file, listed, cache = tmp_path / "listed.yml", tmp_path / "ioc.txt", tmp_path / "cache"
    rule_file.write_text(LISTED)
    logs = resolver_log(tmp_path, [("x.evil.example.", "NOERROR", "10.0.0.5"), ("bad.example.", "NOERROR", "10.0.0.5")])
    _, alerts, err = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
    assert alerts == [] and "no list for %ioc_domains%" in err
    monkeypatch.setenv("R53SIGMA_IOC_DOMAINS", str(listed))
    listed.write_text("evil.example\n")
    for _ in range(2):
        _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
        assert [a["event"]["query_name"] for a in alerts] == ["x.evil.example."]
    listed.write_text("bad.example\n")
    _, alerts, _ = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
    assert [a["event"]["query_name"] for a in alerts] == ["bad.example."]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 3, "key": "another", "rules": []}), "[]"])
def test_a_corrupt_or_foreign_compiled_run_is_ignored_and_replaced(tmp_path, capsys, monkeypatch, content):
    rule_file, cache = tmp_path / "nx.yml", tmp_path / "cache"
    rule_file.write_text(RULE)
    logs = resolver_log(tmp_path, [("a.", "NXDOMAIN", "10.0.0.5"), ("b.", "SERVFAIL", "10.0.0.5")])
    _, cold, cold_err = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
    [entry] = (cache / "runs").glob("*.json")
    entry.write_text(content)
    _, again, again_err = scan_here(capsys, monkeypatch, cache, "--rules", rule_file, logs)
    assert (again, again_err) == (cold, cold_err) and json.loads(entry.read_text())["key"] == entry.stem
    # nothing but the cache's own files (no temporary file left), in the cache folder
    written = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
    assert f"runs/{entry.name}" in written and written <= {"catalogue-validated", "plans.json", f"runs/{entry.name}"}


# ---------------------------------------------------------------- a warm scan of small inputs: the reference engine


def test_a_warm_scan_of_the_samples_runs_the_match_plans_without_pysigma_nor_duckdb_and_alerts_as_duckdb(tmp_path):
    """The pack's every rule on the bundled samples (three log sources): the default engine's warm scan of these
    small files evaluates the compiled run's match plans, read back from its JSON, with the reference engine."""
    code = ("import sys, json\nfrom r53sigma.cli import main\nstatus = main(sys.argv[1:])\n"
            "from r53sigma.scan import registered_domain as psl\n"
            "parsed = 'psl-parsed' if psl._GIVEN_LIST_RULES is None and psl._list.cache_info().currsize else 'psl-given'\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'sigma', 'yaml', 'duckdb'}) + [parsed]), file=sys.stderr)\n"
            "sys.exit(status)")
    env = {**os.environ, "R53SIGMA_CACHE_DIR": str(tmp_path / "cache")}

    def scan(*options):
        done = subprocess.run([sys.executable, "-c", code, "scan", "--no-progress", *options], capture_output=True,
                              text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        *stderr, modules = done.stderr.splitlines()
        return done.stdout, stderr, json.loads(modules)

    duckdb_out, duckdb_err, _ = scan("--engine", "duckdb")  # cold: compiles the run
    warm_out, warm_err, warm_modules = scan()
    assert warm_modules == ["psl-given"]  # nor the Public Suffix List's file parsed: the run keeps its rules
    assert (warm_out, warm_err) == (duckdb_out, duckdb_err) and len(warm_out.splitlines()) > 40


def test_only_small_regular_files_are_small_input(tmp_path, monkeypatch):
    from r53sigma.commands import scan

    monkeypatch.setattr(scan, "SMALL_INPUT_BYTES", 1000)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.jsonl").write_bytes(b"x" * 600)
    assert scan._small_input([str(tmp_path / "logs"), str(tmp_path / "missing.jsonl")])
    (tmp_path / "logs" / "b.jsonl").write_bytes(b"x" * 600)  # the folder holds 1200 bytes
    assert not scan._small_input([str(tmp_path / "logs")])
    import gzip

    gzipped = {"small": gzip.compress(b"a" * 200), "compressible": gzip.compress(b"a" * 5000),  # its trailer: 5000
               "multi-member": gzip.compress(b"a" * 5000) + gzip.compress(b"b"),  # its last trailer: 1
               "incompressible": gzip.compress(os.urandom(60))}
    for name, data in gzipped.items():
        (tmp_path / f"{name}.gz").write_bytes(data)
    assert len(gzipped["small"]) * 20 < 1000 and len(gzipped["multi-member"]) * 20 > 1000
    assert [scan._small_input([str(tmp_path / f"{name}.gz")]) for name in gzipped] == [True, False, False, False]
    assert not scan._small_input(["-"])
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert not scan._small_input([str(pipe)])  # never opened: a pipe is read once, by the scan


@pytest.mark.parametrize("case", ["large-file", "memory-limit", "stdin"])
def test_a_warm_scan_keeps_the_duckdb_engine_for_large_input_stdin_or_a_memory_limit(tmp_path, case):
    from r53sigma.commands.scan import SMALL_INPUT_BYTES

    rules = tmp_path / "nx.yml"
    rules.write_text(RULE)
    rows = [("a.", "NXDOMAIN", "10.0.0.5"), ("b.", "SERVFAIL", "10.0.0.5")]
    logs = resolver_log(tmp_path, rows * (SMALL_INPUT_BYTES // 150 if case == "large-file" else 1))
    options = ("--memory-limit", "256MB") if case == "memory-limit" else ()
    cache = tmp_path / "cache"
    cold = scan_in_subprocess(cache, rules, logs, options=("--engine", "duckdb"), modules=("duckdb",))
    if case == "stdin":
        code = ("import sys, json\nfrom r53sigma.cli import main\nstatus = main(sys.argv[1:])\n"
                "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'duckdb'})), file=sys.stderr)\n")
        done = subprocess.run([sys.executable, "-c", code, "scan", "--no-progress", "--rules", str(rules), "-"],
                              input=logs.read_text(), capture_output=True, text=True, timeout=300,
                              env={**os.environ, "R53SIGMA_CACHE_DIR": str(cache)})
        warm = done.stdout, done.stderr.splitlines()[:-1], json.loads(done.stderr.splitlines()[-1])
    else:
        warm = scan_in_subprocess(cache, rules, logs, options=options, modules=("duckdb",))
    events = [[json.loads(line)["event"] for line in out.splitlines()] for out in (warm[0], cold[0])]
    assert "duckdb" in warm[2] and events[0] == events[1] and events[0]
    assert (logs.stat().st_size >= SMALL_INPUT_BYTES) == (case == "large-file")


FIRST_SEEN = """title: first name
id: 0f1d2c3b-0000-4000-8000-00000000c006
logsource: {product: aws, service: route53resolver}
first_seen: {fields: [query_name], history: 1d}
detection:
  sel: {query_type: A}
  condition: sel
"""


@pytest.mark.parametrize("options", [(), ("--engine", "duckdb")], ids=["small-input-default", "duckdb"])
def test_a_warm_scan_with_a_baseline_runs_its_compiled_first_seen_rules_as_the_cold_scan(tmp_path, options):
    """A scan with --baseline has its own compiled run (it runs the first-seen rules one without skips): warm,
    it imports no pySigma, alerts as the cold scan and writes the same baseline."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "first.yml").write_text(FIRST_SEEN)
    (rules / "nx.yml").write_text(RULE)
    logs = resolver_log(tmp_path, [("a.example.", "NXDOMAIN", "10.0.0.5"), ("b.example.", "NOERROR", "10.0.0.5"),
                                   ("a.example.", "NOERROR", "10.0.0.6")])
    cache = tmp_path / "cache"
    _, plain_err, _ = scan_in_subprocess(cache, rules, logs, options=options)  # no baseline: skipped
    assert any(line.startswith("rule skipped: first name") for line in plain_err)
    runs = []
    for attempt in ("cold", "warm"):
        baseline = tmp_path / f"{attempt}.csv"
        out, err, modules = scan_in_subprocess(cache, rules, logs, options=(*options, "--baseline", str(baseline), "--baseline-update"))
        runs.append((out, err, baseline.read_text(), modules))
    (cold_out, cold_err, cold_baseline, cold_modules), (warm_out, warm_err, warm_baseline, warm_modules) = runs
    assert "sigma.rule" in cold_modules and warm_modules == []
    assert (warm_out, warm_err, warm_baseline) == (cold_out, cold_err, cold_baseline)
    alerts = [json.loads(line) for line in warm_out.splitlines()]
    # line 3 repeats line 1's name within the history: no alert
    assert [(a["title"], a["origin"].rsplit(":", 1)[1]) for a in alerts] == [("nx", "1"), ("first name", "1"), ("first name", "2")]
    assert "a.example" in warm_baseline and "b.example" in warm_baseline
    assert len(list((cache / "runs").glob("*.json"))) == 2  # with and without a baseline
