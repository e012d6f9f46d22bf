"""Small helpers the tests share: convert an inline rule with a pack pipeline."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.route53 import pipelines

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"

BACKENDS = {"lucene": LuceneBackend, "esql": ESQLBackend, "splunk": SplunkBackend}
PIPELINES = {"lucene": "route53_elasticsearch", "esql": "route53_elasticsearch", "splunk": "route53_splunk"}


def rule(text: str) -> SigmaCollection:
    return SigmaCollection.from_yaml(textwrap.dedent(text))


def convert(text: str, backend: str) -> str:
    queries = BACKENDS[backend](pipelines[PIPELINES[backend]]()).convert(rule(text))
    assert len(queries) == 1, queries
    return str(queries[0])


def resolver_rule(detection: str, extra: str = "") -> str:
    """A Resolver rule around an inline detection block (indented by 4)."""
    return f"""
title: test
id: 6a1d9c3e-0000-4000-8000-000000000001
status: test
logsource: {{product: aws, service: route53resolver}}
detection:
{textwrap.indent(textwrap.dedent(detection).strip(), '    ')}
level: low
{extra}"""


def duckdb_agrees(rules, records: list[dict], folder: Path) -> list[dict]:
    """Both DuckDB paths (parsed events, and DuckDB reading the records as a file in ``folder``) alert as
    the reference engine does; returns the reference engine's alerts (JSON)."""
    from r53sigma.scan.duckdb_engine import DuckEngine
    from r53sigma.scan.records import parse_record, read_paths
    from r53sigma.scan.reference import Engine

    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(records, 1)]
    expected = [a.to_json() for a in Engine(rules).scan(events)]
    assert [a.to_json() for a in DuckEngine(rules).scan(events)] == expected
    log = folder / "q.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    from_file = [a.to_json() for a in Engine(rules).scan(read_paths([log]))]
    engine = DuckEngine(rules)
    assert [a.to_json() for a in engine.scan_paths([log])] == from_file
    assert engine.fast_files == 1
    return expected
