"""Small helpers the tests share: convert an inline rule with a pack pipeline."""
from __future__ import annotations

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
