"""Benchmark: the threat-feed rule's target-native lookup forms with a large list, side by side.

    python bench/ioc_lookup.py --domains 100000 --events 100000

- Athena: the join-table query (``r53sigma.targets.athena.backend.ioc_join_query``) against the same
  rule with the list inlined (what Athena got before: ``IN (...)`` plus one ``LIKE`` per domain), both
  transpiled by sqlglot and run on DuckDB over the same generated records (a stand-in for Trino:
  the ratio, not the seconds, is the point); the inline form is run on the first ``--inline-events``
  events and scaled linearly (its LIKE chain costs the same per event), as on the whole input it
  would take hours;
- Splunk: the lookup search on the SPL model with the list as the lookup table (the model's speed,
  not Splunk's: it shows the search's cost is per event, not per list entry).

Both check they select the same events (the injected listed names and only those).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import duckdb
import sqlglot
from sigma.collection import SigmaCollection

from r53sigma import ioc, rules
from r53sigma.targets.athena import backend as athena

RULE = """
title: listed
id: 6a1d9c3e-0000-4000-8000-0000000000e1
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|expand: ['%ioc_domains%', '*.%ioc_domains%']
    condition: selection
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--inline-events", type=int, default=200, help="events the inline form runs on (then scaled)")
    parser.add_argument("--no-inline", action="store_true", help="skip the inlined list (with 100k domains it needs GBs to build)")
    args = parser.parse_args()
    rng = random.Random(18)
    listed = [f"c2-{rng.randrange(10**9):09d}.example" for _ in range(args.domains)]
    names = [f"www{i % 50}.site{rng.randrange(10**6)}.test." for i in range(args.events)]
    hits = rng.sample(range(args.events), 100)
    for i in hits:
        names[i] = f"x{i}.{listed[i % len(listed)]}."
    con = duckdb.connect()
    con.execute("CREATE TABLE r53_rlogs (query_name VARCHAR, query_timestamp VARCHAR)")
    con.executemany("INSERT INTO r53_rlogs VALUES (?, '2024-05-01T10:00:00Z')", [(n,) for n in names])
    con.execute(f"CREATE TABLE {ioc.LOOKUP} (domain VARCHAR, category VARCHAR)")
    con.executemany(f"INSERT INTO {ioc.LOOKUP} VALUES (?, NULL)", [(d,) for d in listed])

    (rule,) = SigmaCollection.from_yaml(RULE).rules
    join_sql = sqlglot.transpile(f"SELECT count(*) FROM ({athena.ioc_join_query(rule, 'query_name')})", read="trino", write="duckdb")[0]
    started = time.perf_counter()
    (joined,) = con.execute(join_sql).fetchone()
    join_s = time.perf_counter() - started

    from r53sigma.targets.splunk import lookups, spl_model
    spl = lookups.search("search query=*", "query")
    events = [{"query": n.rstrip("."), "_raw": n} for n in names]
    table = {ioc.LOOKUP: spl_model.LookupTable([{"domain": d, "category": ""} for d in listed], case_sensitive=False)}
    started = time.perf_counter()
    found = len(spl_model.run(spl, events, table))
    spl_s = time.perf_counter() - started

    print(f"list {args.domains} domains, {args.events} events, {len(hits)} listed names injected", flush=True)
    print(f"athena join table (DuckDB): {join_s:.2f} s, {joined} rows", flush=True)
    print(f"splunk lookup search (SPL model): {spl_s:.2f} s, {found} results", flush=True)
    ok = joined == len(hits) == found
    if not args.no_inline:
        loaded = rules.load(None, {"ioc_domains": listed})
        inline_rule = next(r for r in loaded.rules if ioc.list_match(r))
        predicate = athena.predicate(inline_rule)
        tenth = max(1, min(args.inline_events, args.events))
        con.execute(f"CREATE TABLE tenth AS SELECT * FROM r53_rlogs LIMIT {tenth}")
        inline_sql = sqlglot.transpile(f"SELECT count(*) FROM tenth WHERE {predicate}", read="trino", write="duckdb")[0]
        started = time.perf_counter()
        (inline_hits,) = con.execute(inline_sql).fetchone()
        inline_s = (time.perf_counter() - started) * args.events / tenth
        (expected_tenth,) = con.execute(join_sql.replace("r53_rlogs", "tenth")).fetchone()
        print(f"athena inline list (DuckDB, scaled from the first {tenth} events): {inline_s:.2f} s, {inline_hits} rows on those "
              f"(join on those: {expected_tenth}); ratio inline/join {inline_s / join_s:.1f}x; inline SQL {len(predicate)} characters")
        ok = ok and inline_hits == expected_tenth
    print("same events selected" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
