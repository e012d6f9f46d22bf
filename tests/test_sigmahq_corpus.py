"""SigmaHQ's own `category: dns` rules convert with the pack's pipelines (read in place from ../shared)."""
import pytest
from sigma.collection import SigmaCollection

from support import BACKENDS, CORPUS, PIPELINES
from sigma.pipelines.route53 import pipelines

DNS_RULES = CORPUS / "sigmahq" / "dns_category" / "rules"
RULE_FILES = sorted(DNS_RULES.rglob("*.yml")) if DNS_RULES.is_dir() else []


@pytest.mark.skipif(not RULE_FILES, reason=f"../shared corpus absent: {DNS_RULES} not found (a user's own clone)")
@pytest.mark.parametrize("backend", ["lucene", "splunk"])
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_sigmahq_dns_rule_converts(path, backend):
    collection = SigmaCollection.from_yaml(path.read_text())
    queries = BACKENDS[backend](pipelines[PIPELINES[backend]]()).convert(collection)
    assert queries and all(queries)


@pytest.mark.skipif(not RULE_FILES, reason=f"../shared corpus absent: {DNS_RULES} not found (a user's own clone)")
def test_corpus_has_the_seven_production_rules():
    assert len(RULE_FILES) == 7
