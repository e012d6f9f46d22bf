"""Output formats, correlations, and whole rule sets (the pack's rules and the SigmaHQ DNS corpus)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cw_support import convert, rule_yaml  # noqa: E402

from r53sigma.targets.cloudwatch import insights_model  # noqa: E402
from sigma.backends.cloudwatch import CloudWatchLogsInsightsBackend  # noqa: E402
from sigma.pipelines.route53 import pipelines  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / ".." / "shared" / "corpus" / "sigmahq" / "dns_category" / "rules"
RULE = rule_yaml("  sel:\n    rcode: NXDOMAIN\n  condition: sel", title="NXDOMAIN seen")
PUBLIC_RULE = rule_yaml("  sel:\n    queryType: ANY\n  condition: sel", "logsource: {product: aws, service: route53}", title="ANY query")


def test_query_definition_uses_catalogue_log_group_by_default():
    (definition,) = json.loads(convert(RULE, "query_definition"))
    assert definition["name"] == "r53sigma/NXDOMAIN seen"
    assert definition["logGroupNames"] == ["/aws/route53/resolver-query-logs"]
    assert definition["queryString"] == convert(RULE)


def test_log_group_backend_option_overrides_the_default():
    (definition,) = json.loads(convert(RULE, "query_definition", log_group_resolver="/my/a,/my/b"))
    assert definition["logGroupNames"] == ["/my/a", "/my/b"]


def test_cloudformation_template_passes_cfn_lint(tmp_path):
    backend = CloudWatchLogsInsightsBackend(pipelines["route53_cloudwatch"]())
    template = backend.convert(SigmaCollection.from_yaml(RULE + "---\n" + PUBLIC_RULE.replace("1111", "2222")), "cloudformation")
    document = json.loads(template)
    assert {r["Type"] for r in document["Resources"].values()} == {"AWS::Logs::QueryDefinition"}
    path = tmp_path / "queries.json"
    path.write_text(template)
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


CORRELATION = """
title: NXDOMAIN burst
id: 11111111-2222-4333-8444-000000000001
name: nx
logsource: {product: aws, service: route53resolver}
detection:
  sel:
    rcode: NXDOMAIN
  condition: sel
---
title: Burst of NXDOMAIN from one source
id: 11111111-2222-4333-8444-000000000002
correlation:
  type: %s
  rules: [nx]
  group-by: [srcaddr]
  timespan: 5m
  condition: {gte: 3%s}
"""


def _resolver_events(names_by_time):
    from cw_support import resolver
    return [insights_model.event(resolver(name, rcode="NXDOMAIN"), t) for t, name in names_by_time]


def test_event_count_correlation_is_stats_by_bin_then_filter():
    query = convert(CORRELATION % ("event_count", ""))
    assert query.splitlines()[1:] == [
        '| filter rcode = "NXDOMAIN"',
        "| stats count(*) as event_count by bin(5m), srcaddr",
        "| filter event_count >= 3",
        "| sort event_count desc",
    ]
    # tumbling windows aligned to the epoch: 3 events in [0, 300), 2 in [300, 600)
    rows = insights_model.run(query, _resolver_events([(10, "a."), (20, "b."), (299, "c."), (300, "d."), (310, "e.")]))
    assert rows == [{"bin(5m)": 0, "srcaddr": "10.0.0.5", "event_count": 3}] or rows == [{"group0": 0, "srcaddr": "10.0.0.5", "event_count": 3}]


def test_value_count_correlation_counts_distinct_values():
    query = convert(CORRELATION % ("value_count", ", field: query_name"))
    assert "| stats count_distinct(query_name) as value_count by bin(5m), srcaddr" in query
    rows = insights_model.run(query, _resolver_events([(1, "a."), (2, "a."), (3, "b."), (4, "c.")]))
    assert [r["value_count"] for r in rows] == [3]


TEMPORAL = """
title: TXT query
id: 11111111-2222-4333-8444-000000000003
name: txt
logsource: {product: aws, service: route53resolver}
detection:
  sel:
    query_type: TXT
  condition: sel
---
title: NXDOMAIN
id: 11111111-2222-4333-8444-000000000004
name: nx
logsource: {product: aws, service: route53resolver}
detection:
  sel:
    rcode: NXDOMAIN
  condition: sel
---
title: TXT and NXDOMAIN from one source within 1h
id: 11111111-2222-4333-8444-000000000005
correlation:
  type: temporal
  rules: [txt, nx]
  group-by: [srcaddr]
  timespan: 1h
"""


def test_temporal_correlation_needs_every_rule_in_the_window():
    from cw_support import resolver
    query = convert(TEMPORAL)
    assert query.splitlines()[2:] == [
        '| fields if(query_type = "TXT", 1, 0) as rule_0, if(rcode = "NXDOMAIN", 1, 0) as rule_1',
        "| stats sum(rule_0) as rule_0_events, sum(rule_1) as rule_1_events by bin(1h), srcaddr",
        "| filter rule_0_events > 0 and rule_1_events > 0",
    ]
    both = [insights_model.event(resolver(query_type="TXT"), 10), insights_model.event(resolver(rcode="NXDOMAIN"), 20)]
    apart = [insights_model.event(resolver(query_type="TXT"), 10), insights_model.event(resolver(rcode="NXDOMAIN"), 3700)]
    assert len(insights_model.run(query, both)) == 1
    assert insights_model.run(query, apart) == []


def _convert_all(paths, refused_ok: bool = False):
    if refused_ok:  # file by file: the pack's documented refusals (temporal_ordered, cross-source aliases, no list)
        queries = []
        for path in sorted(p for root in paths for p in Path(root).rglob("*.yml")):
            try:
                queries += _convert_all([path])
            except SigmaFeatureNotSupportedByBackendError:
                continue
        return queries
    backend = CloudWatchLogsInsightsBackend(pipelines["route53_cloudwatch"]())
    collection = SigmaCollection.load_ruleset([str(p) for p in paths])
    queries = backend.convert(collection)
    for query in queries:
        insights_model.Query.parse(query)  # every query is in the modelled, unambiguous subset
        assert len(query) <= 10_000
    return queries


def test_pack_rules_convert_and_parse():
    rules = REPO / "sigma_rules"
    if not rules.is_dir():
        pytest.skip("sigma_rules/ not present yet")
    assert _convert_all([rules], refused_ok=True)


def test_sigmahq_dns_corpus_converts_and_parses():
    if not CORPUS.is_dir():
        pytest.skip(f"../shared corpus absent: {CORPUS}")
    assert _convert_all([CORPUS])
