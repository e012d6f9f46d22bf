"""Benchmark the threat-intel rule (``%ioc_domains%``) with 1k, 10k and 100k listed domains.

    python bench/ioc_scale.py [--events 200000] [--sizes 1000,10000,100000] [--reference-events 20000]
                              [--workdir DIR] [--python PY] [--pythonpath DIR]

Writes synthetic domain lists (``d<n>-<random>.<tld>``, two to four labels) and one Resolver log
(background as ``bench/scan.py`` writes it, plus 1 query in 1,000 for a listed domain or a name under
it, and near misses: ``x<listed>`` and ``<listed>.other``), then runs, each in its own process,
``r53sigma scan --rules <the threat-intel rule>`` with ``R53SIGMA_IOC_DOMAINS`` set: the DuckDB engine
on the whole log and the reference engine on its first ``--reference-events`` lines. Reports wall
seconds (start-up and compiling the list included), events/s, and alerts, which must be the injected
queries exactly (near misses never). ``--python``/``--pythonpath``: run another checkout (a baseline
from ``git archive``) with this script's files, side by side.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from scan import BACKGROUND_TOTAL, background  # noqa: E402

RULE = "sigma_rules/resolver/dns_query_to_threat_intelligence_listed_domain.yml"
TLDS = ["com", "net", "org", "info", "xyz", "top", "co.uk", "com.br"]


def domains(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(6, 14)))
        sub = f"{rng.choice(['cdn', 'api', 'mail'])}." if rng.random() < 0.2 else ""
        out.append(f"{sub}d{n}-{label}.{rng.choice(TLDS)}")
    return out


def write_log(path: Path, total: int, listed: list[str], seed: int) -> set[int]:
    """The log; returns the line numbers that must alert."""
    rng = random.Random(seed)
    BACKGROUND_TOTAL[0] = total
    hits: set[int] = set()
    day_start = 1714608000.0
    with gzip.open(path, "wt", compresslevel=6, encoding="utf-8") as out:
        for number in range(1, total + 1):
            event = background(rng, number, day_start)
            roll = rng.random()
            if roll < 0.001:
                domain = rng.choice(listed)
                event["query_name"] = (domain if rng.random() < 0.5 else f"x{rng.randrange(99)}.{domain}").upper() + "."
                hits.add(number)
            elif roll < 0.002:  # near misses: a longer label, or the listed name as a parent of another
                domain = rng.choice(listed)
                event["query_name"] = (f"x{domain}" if rng.random() < 0.5 else f"{domain}.example") + "."
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return hits


def head(source: Path, target: Path, lines: int) -> None:
    with gzip.open(source, "rt", encoding="utf-8") as src, gzip.open(target, "wt", compresslevel=6, encoding="utf-8") as out:
        for number, line in enumerate(src):
            if number >= lines:
                break
            out.write(line)


def run(python: str, env: dict, engine: str, log: Path, output: Path) -> tuple[float, list[int]]:
    start = time.perf_counter()
    subprocess.run([python, "-m", "r53sigma", "scan", "--no-progress", "--engine", engine, "--rules", str(REPO / RULE),
                    "-o", str(output), str(log)], env=env, check=True, cwd=REPO)
    seconds = time.perf_counter() - start
    lines = sorted(int(json.loads(l)["origin"].rsplit(":", 1)[1].split("#")[0]) for l in output.read_text().splitlines())
    return seconds, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reference-events", type=int, default=20_000)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the checkout to measure")
    parser.add_argument("--pythonpath", help="PYTHONPATH for that checkout (its backends/ folder)")
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="r53sigma-ioc-"))
    workdir.mkdir(parents=True, exist_ok=True)
    failed = False
    print(f"{'domains':>8} {'engine':>10} {'events':>8} {'seconds':>8} {'events/s':>10}  alerts")
    for size in (int(s) for s in args.sizes.split(",")):
        listed = domains(size, seed=size)
        feed = workdir / f"ioc-{size}.txt"
        feed.write_text("\n".join(listed) + "\n")
        log = workdir / f"resolver-{size}.log.gz"
        hits = write_log(log, args.events, listed, seed=size + 1)
        env = dict(os.environ, R53SIGMA_IOC_DOMAINS=str(feed))
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath
        runs = [("duckdb", log, args.events, hits)]
        if not args.no_reference:
            sample = workdir / f"resolver-{size}-head.log.gz"
            head(log, sample, args.reference_events)
            runs.append(("reference", sample, args.reference_events, {h for h in hits if h <= args.reference_events}))
        for engine, file, events, wanted in runs:
            seconds, lines = run(args.python, env, engine, file, workdir / f"alerts-{engine}-{size}.jsonl")
            exact = set(lines) == wanted
            failed |= not exact
            print(f"{size:>8} {engine:>10} {events:>8} {seconds:>8.2f} {events / seconds:>10,.0f}  "
                  f"{len(lines)} ({'exactly the injected ones' if exact else f'WRONG: {len(wanted)} injected'})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
