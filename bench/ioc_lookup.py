"""Benchmark: the threat-feed rule's target-native lookup forms with a large list, side by side.

    python bench/ioc_lookup.py --domains 100000 --events 100000

- Athena: the join-table query (``r53sigma.targets.athena.backend.ioc_join_query``) against the same
  rule with the list inlined (what Athena got before: ``IN (...)`` plus one ``LIKE`` per domain), both
  transpiled by sqlglot and run on DuckDB over the same generated records (a stand-in for Trino:
  the ratio, not the seconds, is the point); the inline form is run on the first ``--inline-events``
  events and scaled linearly (its LIKE chain costs the same per event), as on the whole input it
  would take hours;
- Splunk: the lookup search on the SPL model with the list as the lookup table (the model's speed,
  not Splunk's: it shows the search's cost is per event, not per list entry);
- Elasticsearch: the enrich lookup's Python copy (documents.py, one probe per label of each name in
  the enrich index built once, as ``_execute`` builds it) over the events, then the Lucene query on
  the enriched field run by real Lucene on the first ``--lucene-events`` enriched documents, beside
  the size of the query the list would have inlined (Elasticsearch's own lookup cost, a terms query
  on the enrich index per document, is not measured here: no cluster).

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
    parser.add_argument("--lucene-events", type=int, default=5000, help="enriched documents real Lucene searches")
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
    ok = elasticsearch(args, listed, names, hits) and ok
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


def elasticsearch(args, listed: list[str], names: list[str], hits: list[int]) -> bool:
    import json

    from r53sigma.targets.elasticsearch import document_from_raw, ioc_enrich
    from r53sigma.targets.elasticsearch.lucene_engine import LuceneEngine, LuceneUnavailable
    from r53sigma.targets.elasticsearch.verify import lucene_document

    started = time.perf_counter()
    index = ioc_enrich.enrich_index(ioc.Entry(d) for d in listed)
    build_s = time.perf_counter() - started
    raws = [json.dumps({"query_timestamp": "2024-05-01T10:00:00Z", "query_name": n, "query_type": "A", "rcode": "NOERROR",
                        "answers": [], "srcaddr": "10.0.0.1", "srcids": {}}) for n in names]
    for r in raws[:200]:  # warm-up: catalogue and Public Suffix List loading are not the lookup's cost
        document_from_raw(r, "resolver", index)
    started = time.perf_counter()
    [document_from_raw(r, "resolver") for r in raws]
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    enriched = [document_from_raw(r, "resolver", index) for r in raws]
    enrich_s = time.perf_counter() - started
    listed_docs = sorted(i for i, d in enumerate(enriched) if "r53sigma" in d)
    print(f"elasticsearch enrich lookup (Python copy): {enrich_s:.2f} s for {len(raws)} documents vs {plain_s:.2f} s without "
          f"the lookup (ratio {enrich_s / plain_s:.2f}x; enrich index of {len(index)} built in {build_s:.2f} s); "
          f"{len(listed_docs)} enriched", flush=True)
    ok = listed_docs == sorted(hits)
    inline_chars = sum(len(d) * 2 + 12 for d in listed)  # "d OR *.d OR " per domain
    print(f"elasticsearch inlined list would be ~{inline_chars} characters of Lucene ({2 * len(listed)} clauses); "
          f"the enrich form is {len(ioc_enrich.lucene('dns.question.name.caseless:*'))}", flush=True)
    try:
        engine = LuceneEngine()
    except LuceneUnavailable as error:
        print(f"lucene skipped: {error}")
        return ok
    sample = max(1, min(args.lucene_events, len(raws)))
    documents = [lucene_document(raws[i], "resolver", index) for i in range(sample)]
    query = ioc_enrich.lucene("dns.question.name.caseless:*")
    started = time.perf_counter()
    answer = engine.search(documents, {"q": query})["q"]
    lucene_s = time.perf_counter() - started
    expected = [i for i in hits if i < sample]
    print(f"elasticsearch Lucene on the enriched field (real Lucene, first {sample} documents): {lucene_s:.2f} s, "
          f"{len(answer)} hits (expected {len(expected)})", flush=True)
    return ok and sorted(answer) == sorted(expected)


if __name__ == "__main__":
    raise SystemExit(main())
