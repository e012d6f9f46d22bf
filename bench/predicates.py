"""Per-rule cost of the DuckDB engine's single-event predicates, over one materialised typed read.

    python bench/predicates.py LOG.gz [--ioc-domains FILE] [--repeat 3] [--top 15]

The Resolver file is read once with the engine's own typed read (``r53sigma.scan.duckread``) into a
temporary table holding every field column; then each rule's predicate is evaluated alone over it
(``sum(predicate::INT)``), and all of them together in one projection, and the bare projection
(no predicate). Reported: seconds per rule minus the bare projection (best of ``--repeat``), the share
of the sum, and all-together against the bare read. Noisy on a shared machine: compare runs made side
by side (a baseline checkout with ``PYTHONPATH``), never absolute figures across runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))

from sigma.rule import SigmaRule  # noqa: E402

from r53sigma import rules as rules_mod  # noqa: E402
from r53sigma.scan.duckdb_engine import DuckEngine  # noqa: E402
from r53sigma.scan.duckread import typed_read  # noqa: E402
from r53sigma.scan.values import log_source_of  # noqa: E402


def best(con, sql: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--ioc-domains", type=Path, help="a domain list for the threat-intel rule (else it is left out)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    if args.ioc_domains:
        os.environ["R53SIGMA_IOC_DOMAINS"] = str(args.ioc_domains)
    loaded = rules_mod.load(None)
    engine = DuckEngine(loaded)
    con = engine.con
    con.execute("SET enable_progress_bar = false")
    rules, sqls = [], []
    for rule in engine.rules:
        if isinstance(rule, SigmaRule) and log_source_of(rule)[0].source == "resolver":
            try:
                sqls.append(engine.predicate(rule))
            except Exception as error:  # noqa: BLE001 - e.g. the IOC rule without a list
                print(f"skipped {rule.title}: {str(error).splitlines()[0][:100]}")
                continue
            rules.append(rule)
    typed = typed_read()
    used = {f.name for f in typed.source.fields.values()}
    start = time.perf_counter()
    sql = f"CREATE TEMP TABLE tv AS {typed.select(str(args.log), used)}"
    con.execute(getattr(engine, "prepare", lambda s: s)(sql))  # the split function, where the engine registers it
    rows = con.execute("SELECT count(*) FROM tv").fetchone()[0]
    print(f"read {rows} rows in {time.perf_counter() - start:.2f}s")
    view = _view(engine, sqls)
    bare = best(con, f"SELECT count(*) FROM ({view} SELECT 1 AS x FROM n)", args.repeat)
    costs = []
    for rule, sql in zip(rules, sqls):
        seconds = best(con, f"{view} SELECT sum(({sql})::INT) FROM n", args.repeat)
        costs.append((seconds - bare, rule.title))
    together = best(con, f"{view} SELECT {', '.join(f'sum(({s})::INT)' for s in sqls)} FROM n", args.repeat)
    total = sum(c for c, _ in costs)
    print(f"bare projection {bare:.3f}s; all {len(sqls)} predicates in one projection {together:.3f}s "
          f"({together - bare:.3f}s over bare); sum of single-rule costs {total:.3f}s")
    for seconds, title in sorted(costs, reverse=True)[:args.top]:
        print(f"{seconds:8.3f}s {100 * seconds / total if total else 0:5.1f}%  {title}")
    return 0


def _view(engine: DuckEngine, sqls: list[str]) -> str:
    """``WITH n AS (...)``: the table with the per-row columns the predicates share (if the engine has them)."""
    try:
        from r53sigma.scan.rowcolumns import wrap
    except ImportError:  # a baseline checkout without it
        return "WITH n AS (SELECT * FROM tv)"
    return f"WITH n AS (SELECT * FROM {wrap('tv', ' '.join(sqls))})"


if __name__ == "__main__":
    sys.exit(main())
