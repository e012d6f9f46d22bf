"""Benchmark `r53sigma scan`: DuckDB engine vs DuckDB's own read limit vs the reference engine.

    python bench/scan.py [--events 1000000] [--workdir DIR] [--keep]

1. Generates a synthetic Resolver query log (one gzip file, JSON lines as AWS writes them): background
   traffic from a few hundred instances over one day (public names answering public addresses, a few
   per cent EC2 internal names answering VPC addresses, 1% NXDOMAIN), plus the positive test cases of every Resolver
   rule (sigma_rules/<source>/<stem>.cases.yaml) injected at random positions (their own timestamps, on another day, so windows
   and groups are theirs).
2. Measures, each in its own process (wall time, peak RSS from wait4):
   (a) DuckDB reading and counting the file with the catalogue's explicit schema (the practical limit);
   (b) ``r53sigma scan --engine duckdb`` with the whole pack;
   (c) ``r53sigma scan --engine reference`` on the first tenth of the file;
   (d) ``r53sigma scan --engine duckdb`` with the single-event Resolver rule files only, and
   (e) the peer pysigma-backend-duckdb (bench/peer_duckdb.py; skipped with the reason when it is not
       installed: ``pip install --no-deps pysigma-backend-duckdb==0.1.4``) on the same files: its time
       and, per rule, whether it matched exactly the lines (d) alerted on;
   (b') with ``--memory-limit SIZE``: (b) again under that DuckDB memory limit (peak memory; it must
       complete). ``--events 10000000 --memory-limit 512MB --no-reference --no-peer`` is the 10M mode.
   (f) start-up: a warm scan of the log's first line, median of 7 runs, with the default engine (the
       target), DuckDB and the reference engine; (g) a warm scan just under the small-input bound.
3. Reports events/s, b/a and b/c, peak memory, and checks that (b) found every injected attack:
   for a plain rule an alert on one of its injected lines, for a correlation an alert whose sample
   lines are injected ones (the background is on another day, so only injected events fire there).
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import ipaddress
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "backends"))

from r53sigma import catalogue, rules as rules_mod  # noqa: E402
from r53sigma.testcases import case_files, default_cases_dir  # noqa: E402
from sigma.correlations import SigmaCorrelationRule  # noqa: E402

BENIGN = ["amazonaws.com", "example.com", "ubuntu.com", "github.com", "microsoft.com", "cloudfront.net", "google.com"]
INTERNAL_SHARE = 0.03  # EC2 internal host names answering VPC addresses (the private-answer rule excludes them)


def public_ipv4(rng: random.Random) -> str:
    """A globally routable address: public names in the background answer public addresses (a private
    answer for a public name is what a rule looks for, so it is rare in real traffic, not 1 in 100)."""
    while True:
        address = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ipaddress.ip_address(address).is_global:
            return address


TARGETS = {"a": ("A", public_ipv4),
           "aaaa": ("AAAA", lambda r: f"2600:1f18:{r.randrange(65536):x}::{r.randrange(65536):x}")}


def background(rng: random.Random, i: int, day_start: float) -> dict:
    kind = "aaaa" if rng.random() < 0.25 else "a"
    qtype, address = TARGETS[kind]
    host = rng.randrange(400)
    nx = rng.random() < 0.01
    t = day_start + i * 86400 / BACKGROUND_TOTAL[0]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"
    name = f"svc{rng.randrange(2000)}.{rng.choice(BENIGN)}."
    if kind == "a" and rng.random() < INTERNAL_SHARE:
        peer = rng.randrange(400)
        name = f"ip-10-0-{peer // 250}-{peer % 250 + 2}.ec2.internal."
        address = lambda r, peer=peer: f"10.0.{peer // 250}.{peer % 250 + 2}"  # noqa: E731
    return {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-0bench",
        "query_timestamp": stamp, "query_name": name,
        "query_type": qtype, "query_class": "IN", "rcode": "NXDOMAIN" if nx else "NOERROR",
        "answers": [] if nx else [{"Rdata": address(rng), "Type": qtype, "Class": "IN"}],
        "srcaddr": f"10.0.{host // 250}.{host % 250 + 2}", "srcport": str(rng.randrange(1024, 65535)),
        "transport": "UDP", "srcids": {"instance": f"i-0bench{host:011x}"},
    }


BACKGROUND_TOTAL = [1]


def resolver_attacks() -> dict[str, tuple[str, bool, list[list[dict]]]]:
    """rule id -> (title, is correlation, positive cases' Resolver events) for every Resolver rule with cases."""
    loaded = rules_mod.load(None)
    attacks: dict[str, tuple[str, bool, list[list[dict]]]] = {}
    for path in case_files(default_cases_dir()):
        doc = yaml.safe_load(path.read_text())
        rule = loaded.find(str(doc["rule"]))
        if rule is None:
            continue
        base = rule.rules[0].rule if isinstance(rule, SigmaCorrelationRule) else rule
        ls = base.logsource
        found = catalogue.for_logsource(ls.category, ls.product, ls.service)
        if found is None or found[0].source != "resolver":
            continue
        cases = [c["events"] for c in doc["cases"] if c["alerts"] > 0 and all(isinstance(e, dict) for e in c["events"])]
        if cases:
            attacks[str(rule.id)] = (rule.title, isinstance(rule, SigmaCorrelationRule), cases[:1])
    return attacks


def generate(path: Path, total: int, seed: int = 7) -> dict[str, tuple[str, bool, set[int]]]:
    """Write the log; return rule id -> (title, correlation?, injected line numbers)."""
    rng = random.Random(seed)
    attacks = resolver_attacks()
    injected_events = [(rule_id, e) for rule_id, (_, _, cases) in attacks.items() for case in cases for e in case]
    BACKGROUND_TOTAL[0] = max(1, total - len(injected_events))
    positions = sorted(rng.sample(range(total), min(len(injected_events), total)))
    # keep each case's events in their order: hand them out in order at sorted positions
    slots = dict(zip(positions, injected_events))
    lines: dict[str, set[int]] = {rule_id: set() for rule_id in attacks}
    day_start = 1714608000.0  # 2024-05-02T00:00:00Z: a day the cases' own timestamps are not on
    background_index = 0
    with gzip.open(path, "wt", compresslevel=6, encoding="utf-8") as out:
        for number in range(1, total + 1):
            if number - 1 in slots:
                rule_id, event = slots[number - 1]
                lines[rule_id].add(number)
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
            else:
                out.write(json.dumps(background(rng, background_index, day_start), separators=(",", ":")) + "\n")
                background_index += 1
    return {rule_id: (title, corr, lines[rule_id]) for rule_id, (title, corr, _) in attacks.items()}


def sample(source: Path, target: Path, lines: int) -> None:
    with gzip.open(source, "rt", encoding="utf-8") as src, gzip.open(target, "wt", compresslevel=6, encoding="utf-8") as out:
        for number, line in enumerate(src):
            if number >= lines:
                break
            out.write(line)


def measure(argv: list[str], **kwargs) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
    rss = usage.ru_maxrss * 1024 if usage else 0
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err}")
    return seconds, rss, out + err


def _child_rss() -> str:
    """Run a command and print its peak RSS (ru_maxrss of the waited child), for processes Popen reaps itself."""
    return (
        "import os,resource,subprocess,sys\n"
        "p=subprocess.run(sys.argv[1:])\n"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print('PEAK_RSS', u.ru_maxrss*1024, 'CPU', u.ru_utime+u.ru_stime, file=sys.stderr)\n"
        "sys.exit(p.returncode)\n"
    )


CPU: dict[str, float] = {}  # run label -> CPU seconds (user + system) of its process: less swayed by other jobs than wall time


def timed(argv: list[str], label: str | None = None) -> tuple[float, int, str]:
    seconds, _, output = measure([sys.executable, "-c", _child_rss(), *argv])
    fields = next(l for l in output.splitlines() if l.startswith("PEAK_RSS")).split()
    if label:
        CPU[label] = float(fields[3])
    return seconds, int(fields[1]), output


def duckdb_count_sql(path: Path) -> str:
    """The catalogue's Resolver fields as an explicit read_json schema (no inference)."""
    resolver = catalogue.load()["resolver"]
    columns: dict[str, str] = {}
    structs: dict[str, list[str]] = {}
    for name, field in resolver.fields.items():
        top, *rest = name.split(".")
        if rest:
            structs.setdefault(top, []).append(f'"{rest[0]}" VARCHAR')
        else:
            columns[top] = "VARCHAR"
    for top, members in structs.items():
        kind = f"STRUCT({', '.join(members)})"
        columns[top] = kind + "[]" if resolver.fields[f"{top}.{members[0].split(chr(34))[1]}"].array else kind
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    return f"SELECT count(*) FROM read_json('{path}', format='newline_delimited', columns={spec})"


def single_event_resolver_files() -> list[Path]:
    """The rule files holding only single-event Resolver rules (the rules a peer without correlations can run)."""
    loaded = rules_mod.load(None)
    chosen = []
    for path, rules in loaded.files.items():
        if rules and all(not isinstance(r, SigmaCorrelationRule) for r in rules) and all(
            (found := catalogue.for_logsource(r.logsource.category, r.logsource.product, r.logsource.service))
            and found[0].source == "resolver" for r in rules
        ):
            chosen.append(path)
    return sorted(chosen)


def peer(scan: list[str], log: Path, workdir: Path) -> None:
    """(d) our DuckDB engine and (e) pysigma-backend-duckdb on the same single-event rules, same file."""
    files = single_event_resolver_files()
    ours_file, peer_file = workdir / "alerts-single.jsonl", workdir / "peer.json"
    rule_args = [arg for f in files for arg in ("--rules", str(f))]
    d_seconds, d_rss, _ = timed([*scan, "--engine", "duckdb", *rule_args, "-o", str(ours_file), str(log)], "d")
    print(f"(d) scan --engine duckdb, {len(files)} single-event rule files: {d_seconds:8.2f}s  peak {d_rss / 2**20:7.0f} MiB")
    if importlib.util.find_spec("sigma_backend_duckdb") is None:
        print("(e) pysigma-backend-duckdb: not installed (pip install --no-deps pysigma-backend-duckdb==0.1.4): skipped")
        return
    e_seconds, e_rss, _ = timed([sys.executable, str(REPO / "bench" / "peer_duckdb.py"), str(log), str(peer_file), *map(str, files)], "e")
    theirs = json.loads(peer_file.read_text())
    ours: dict[str, set[int]] = {rule_id: set() for rule_id in theirs}
    for line in ours_file.read_text().splitlines():
        alert = json.loads(line)
        ours.setdefault(alert["rule_id"], set()).add(int(alert["origin"].rsplit(":", 1)[1].split("#")[0]))
    titles = {str(r.id): r.title for r in rules_mod.load(files).top_level()}
    exact = 0
    for rule_id in sorted(theirs, key=lambda r: titles.get(r, r)):
        result = theirs[rule_id]
        if isinstance(result, str):
            verdict = result
        else:
            same = set(result) == ours[rule_id]
            exact += same
            verdict = "exact" if same else f"{len(result)} lines, {len(set(result) - ours[rule_id])} wrong, {len(ours[rule_id] - set(result))} missed"
        print(f"    {titles.get(rule_id, rule_id)[:60]:<60} ours {len(ours[rule_id]):>6}  peer: {verdict}")
    print(f"(e) pysigma-backend-duckdb 0.1.4, same rules: {e_seconds:8.2f}s  peak {e_rss / 2**20:7.0f} MiB  "
          f"exact on {exact}/{len(theirs)} rules;  (e)/(d) = {e_seconds / d_seconds:.2f} (target >= 3), by CPU {CPU['e'] / CPU['d']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the synthetic log (default 1M)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the logs (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (and reuse them in --workdir)")
    parser.add_argument("--memory-limit", default=None, metavar="SIZE", help="also run (b) with this --memory-limit")
    parser.add_argument("--no-reference", action="store_true", help="skip (c), the reference engine")
    parser.add_argument("--no-peer", action="store_true", help="skip (d) and (e), the peer comparison")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="r53sigma-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log, tenth, alerts_file = workdir / "resolver.log.gz", workdir / "resolver-tenth.log.gz", workdir / "alerts.jsonl"

    start = time.perf_counter()
    stamp = workdir / f"injected-{args.events}.json"
    if args.keep and stamp.exists() and log.exists():  # a kept run's file: the generator is deterministic
        injected = {k: (t, c, set(lines)) for k, (t, c, lines) in json.loads(stamp.read_text()).items()}
    else:
        injected = generate(log, args.events)
        stamp.write_text(json.dumps({k: (t, c, sorted(lines)) for k, (t, c, lines) in injected.items()}))
    if not args.no_reference:
        sample(log, tenth, max(1, args.events // 10))
    print(f"generated {args.events} events ({log.stat().st_size / 2**20:.1f} MiB gzip) with attacks for "
          f"{len(injected)} Resolver rules in {time.perf_counter() - start:.1f}s")

    env_python = sys.executable
    scan = [env_python, "-m", "r53sigma", "scan", "--no-progress"]
    count = "import duckdb,sys; c=duckdb.connect(); c.execute('SET enable_progress_bar=false'); print(c.execute(sys.argv[1]).fetchall()[0][0])"
    a_seconds, a_rss, a_out = timed([env_python, "-c", count,
                                     duckdb_count_sql(log)], "a")
    b_seconds, b_rss, _ = timed([*scan, "--engine", "duckdb", "-o", str(alerts_file), str(log)], "b")
    counted = int(next(line for line in a_out.splitlines() if line.strip().isdigit()))
    rates = {"a": counted / a_seconds, "b": args.events / b_seconds}
    print(f"(a) duckdb read_json count : {a_seconds:8.2f}s {rates['a']:>12,.0f} events/s  peak {a_rss / 2**20:7.0f} MiB")
    print(f"(b) scan --engine duckdb    : {b_seconds:8.2f}s {rates['b']:>12,.0f} events/s  peak {b_rss / 2**20:7.0f} MiB")
    if args.memory_limit:
        l_seconds, l_rss, _ = timed([*scan, "--engine", "duckdb", "--memory-limit", args.memory_limit,
                                     "-o", str(workdir / "alerts-limited.jsonl"), str(log)])
        same = (workdir / "alerts-limited.jsonl").read_text() == alerts_file.read_text()
        print(f"(b') same, --memory-limit {args.memory_limit}: {l_seconds:8.2f}s {args.events / l_seconds:>12,.0f} events/s  "
              f"peak {l_rss / 2**20:7.0f} MiB  alerts {'identical to (b)' if same else 'DIFFERENT from (b)'}")
    if not args.no_reference:
        c_seconds, c_rss, _ = timed([*scan, "--engine", "reference", "-o", str(workdir / "alerts-ref.jsonl"), str(tenth)], "c")
        rates["c"] = max(1, args.events // 10) / c_seconds
        print(f"(c) scan --engine reference : {c_seconds:8.2f}s {rates['c']:>12,.0f} events/s  peak {c_rss / 2**20:7.0f} MiB (1/10 sample)")
    print(f"b/a = {rates['b'] / rates['a']:.2f} (target >= 0.5)" + (f"   b/c = {rates['b'] / rates['c']:.1f} (target >= 50)" if "c" in rates else ""))
    print("CPU seconds (user + system): " + ", ".join(f"({k}) {v:.2f}" for k, v in CPU.items())
          + f";  by CPU: b/a = {CPU['a'] / CPU['b']:.2f}" + (f", b/c = {CPU['c'] * 10 / CPU['b']:.1f}" if "c" in CPU else ""))
    if not args.no_peer:
        peer(scan, log, workdir)
    startup(scan, log, workdir)

    alerts = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    missed = []
    # correlation samples may show another injected case's events (same source and window): any injected line counts
    every_injected = set().union(*(lines for _, _, lines in injected.values()))
    for rule_id, (title, correlation, lines) in injected.items():
        def line_of(origin: str) -> int:
            return int(origin.rsplit(":", 1)[1].split("#")[0])

        hit = any(
            a["rule_id"] == rule_id and (
                any(line_of(o) in every_injected for o in a.get("sample_origins", [])) if correlation else line_of(a["origin"]) in lines
            )
            for a in alerts
        )
        if not hit:
            missed.append(title)
    print(f"injected attacks found: {len(injected) - len(missed)}/{len(injected)}" + (f"; missed: {missed}" if missed else ""))
    if not args.keep and args.workdir is None:
        for file in workdir.iterdir():
            file.unlink()
        workdir.rmdir()
    return 1 if missed else 0


def startup(scan: list[str], log: Path, workdir: Path, runs: int = 7) -> None:
    """(f) A warm one-line scan (the first line of the log; plans cached and .pyc written by the runs
    before): the median wall and CPU time of ``runs`` runs with the default engine (a warm small input: the
    reference engine on the compiled run's match plans), with DuckDB and with the reference engine (cold:
    it always loads the rules with pySigma). (g) The same with the log's first lines just under the
    small-input bound, default against DuckDB: the bound is where the default's choice still wins."""
    from r53sigma.commands.scan import SMALL_INPUT_BYTES

    one, under = workdir / "one-line.jsonl", workdir / "under-bound.jsonl"
    with gzip.open(log, "rt") as lines, under.open("w") as out:
        first = next(lines)
        one.write_text(first)
        size = 0
        for line in [first, *lines]:
            size += len(line.encode())
            if size >= SMALL_INPUT_BYTES:
                break
            out.write(line)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # an installed package has its .pyc

    def median(engine: str | None, path: Path) -> tuple[float, float]:
        walls, cpus = [], []
        chosen = ["--engine", engine] if engine else []
        for _ in range(runs + 1):  # the first run writes what is cached
            seconds, _, output = measure([sys.executable, "-c", _child_rss(), *scan, *chosen, str(path)], env=env)
            walls.append(seconds)
            cpus.append(float(next(l for l in output.splitlines() if l.startswith("PEAK_RSS")).split()[3]))
        walls, cpus = sorted(walls[1:]), sorted(cpus[1:])
        return walls[runs // 2], cpus[runs // 2]

    for engine in (None, "duckdb", "reference"):
        wall, cpu = median(engine, one)
        print(f"(f) warm one-line scan, {'default engine' if engine is None else '--engine ' + engine}: median {wall:.3f}s wall, "
              f"{cpu:.3f}s CPU of {runs} runs" + (" (target <= 0.3 s)" if engine is None else ""))
    lines = len(under.read_text().splitlines())
    for engine in (None, "duckdb"):
        wall, cpu = median(engine, under)
        print(f"(g) warm scan of {lines} lines ({under.stat().st_size / 1024:.0f} KiB, under the {SMALL_INPUT_BYTES // 1024} KiB bound), "
              f"{'default engine' if engine is None else '--engine ' + engine}: median {wall:.3f}s wall, {cpu:.3f}s CPU of {runs} runs")


if __name__ == "__main__":
    sys.exit(main())
