"""Output formats, correlations, and whole rule sets (the pack's rules and the SigmaHQ DNS corpus)."""
from __future__ import annotations

from sigma.backends.cloudwatch.cloudwatch import WINDOW_NOTE

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

REPO = Path(__file__).resolve().parents[3]
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
        f"# r53sigma: {WINDOW_NOTE}",  # the warning the Sigma spec asks of a backend bound to fixed windows
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
        f"# r53sigma: {WINDOW_NOTE}",
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


# ------------------------------------------------------------------ rules given together are one collection

SPLIT_CORRELATION = {
    "a_correlation.yml": """title: Burst of NXDOMAIN
id: 11111111-2222-4333-8444-00000000000a
correlation: {type: event_count, rules: [nx_split], group-by: [srcaddr], timespan: 5m, condition: {gte: 2}}
""",
    "m_unrelated.yml": """title: TXT
id: 11111111-2222-4333-8444-00000000000b
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: TXT}, condition: sel}
""",
    "z_base.yml": """title: NXDOMAIN
id: 11111111-2222-4333-8444-00000000000c
name: nx_split
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
""",
}


def test_correlation_in_another_file_converts_whatever_the_order(tmp_path):
    """pySigma's partial-order sort leaves [correlation, unrelated, base] as it is: the base rule must
    still be converted first (stock `sigma convert FOLDER` failed with "Conversion state not available")."""
    from cw_support import alerts_agree, resolver
    for name, text in SPLIT_CORRELATION.items():
        (tmp_path / name).write_text(text)
    collection = SigmaCollection.load_ruleset([str(tmp_path / n) for n in sorted(SPLIT_CORRELATION)])
    queries = CloudWatchLogsInsightsBackend(pipelines["route53_cloudwatch"]()).convert(collection)
    (correlation,) = [q for q in queries if "stats" in q]
    raws = [resolver(rcode="NXDOMAIN", query_timestamp=f"2024-05-01T10:00:0{n}Z") for n in range(3)]
    raws.append(resolver(rcode="NXDOMAIN", srcaddr="10.9.9.9"))
    fired = alerts_agree("\n---\n".join(SPLIT_CORRELATION[n] for n in ("z_base.yml", "a_correlation.yml")), raws, correlation)
    assert len(fired) == 1
    cli = subprocess.run([str(Path(sys.executable).parent / "sigma"), "convert", "-t", "cloudwatch", "-p", "route53_cloudwatch", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert correlation in cli.stdout


def test_skip_unsupported_skips_a_refused_correlation_and_converts_the_rest(tmp_path):
    """`sigma convert -s`: a refusal is pySigma's SigmaFeatureNotSupportedByBackendError, collected for
    correlations too (pySigma only collects errors of plain rules), so the other rules still convert."""
    (tmp_path / "rules.yml").write_text("""title: NXDOMAIN
id: 11111111-2222-4333-8444-00000000000d
name: nx_skip
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: Median of ports
id: 11111111-2222-4333-8444-00000000000e
correlation: {type: value_median, rules: [nx_skip], group-by: [srcaddr], timespan: 5m, condition: {gte: 2, field: srcport}}
---
title: Answer regex
id: 11111111-2222-4333-8444-00000000000f
logsource: {product: aws, service: route53resolver}
detection: {sel: {answers.Rdata|re: '^10\\.'}, condition: sel}
---
title: TXT
id: 11111111-2222-4333-8444-000000000012
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: TXT}, condition: sel}
""")
    cli = subprocess.run([str(Path(sys.executable).parent / "sigma"), "convert", "-s", "-t", "cloudwatch", "-p", "route53_cloudwatch", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert 'query_type = "TXT"' in cli.stdout and "value_median" not in cli.stdout
    ignored = cli.stderr.split("Ignored errors:")[1].strip().splitlines()
    assert len(ignored) == 2 and all("CloudWatch Logs Insights:" in line and "SigmaRule(" not in line for line in ignored)


def test_refusals_are_feature_not_supported():
    from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
    rule = """title: NXDOMAIN
id: 11111111-2222-4333-8444-000000000010
name: nx_sum
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: Percentile of ports
id: 11111111-2222-4333-8444-000000000011
correlation: {type: value_percentile, rules: [nx_sum], group-by: [srcaddr], timespan: 5m, condition: {gte: 2, field: srcport, percentile: 90}}
"""
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="value_percentile"):
        convert(rule)


def test_without_a_pipeline_route53_log_sources_get_the_route53_pipeline(tmp_path):
    """`sigma convert -t cloudwatch` without `-p`: a Resolver rule still matches the raw records (trailing
    dot, raw names); a rule of another log source is left as it is."""
    from cw_support import engine_says, model_says, resolver
    rule = rule_yaml("  sel:\n    query_name|endswith: '.Evil.com'\n  condition: sel", "logsource: {product: aws, service: route53resolver}")
    path = tmp_path / "rule.yml"
    path.write_text(rule)
    cli = subprocess.run([str(Path(sys.executable).parent / "sigma"), "convert", "-t", "cloudwatch", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    query = cli.stdout.strip()
    for raw in (resolver("a.evil.com."), resolver("a.evil.com.x.")):
        assert model_says(query, raw) == engine_says(rule, raw)
    assert model_says(query, resolver("a.evil.com."))
    other = rule_yaml("  sel:\n    Image: x\n  condition: sel", "logsource: {product: windows, category: process_creation}")
    assert "Image =~" in CloudWatchLogsInsightsBackend().convert(SigmaCollection.from_yaml(other))[0]


# ------------------------------------------------------------------ correlations on an array member (answers.Rdata)

ANSWERED = """title: Answered
id: 11111111-2222-4333-8444-000000000020
name: answered
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NOERROR}, condition: sel}
---
title: Correlation on answers
id: 11111111-2222-4333-8444-000000000021
correlation: %s
"""


def _answered(src, rdatas, second=0, name="www.example.com."):
    from cw_support import answer, resolver
    return resolver(name, [answer(r, "CNAME" if r.endswith(".") else "A") for r in rdatas], srcaddr=src, query_timestamp=f"2024-05-01T10:00:{second:02d}Z")


def test_value_count_of_an_array_member_unnests_the_answers():
    from cw_support import alerts_agree
    rule = ANSWERED % "{type: value_count, rules: [answered], group-by: [srcaddr], timespan: 5m, condition: {gte: 3, field: answers.Rdata}}"
    raws = [_answered("10.0.0.1", ["1.1.1.1", "1.1.1.1", "a.example."]), _answered("10.0.0.1", ["a.example", "2.2.2.2"]),
            _answered("10.0.0.2", ["1.1.1.1", "1.1.1.1"]), _answered("10.0.0.2", []), _answered("10.0.0.2", ["1.1.1.1"])]
    query = convert(rule)
    assert "| unnest r53_record.answers into r53_element" in query and "count_distinct(answers_Rdata)" in query
    assert alerts_agree(rule, raws, query) == [(1714557600, ("10.0.0.1",))]


def test_group_by_an_array_member_in_value_count_and_temporal():
    from cw_support import alerts_agree
    value_count = ANSWERED % "{type: value_count, rules: [answered], group-by: [answers.Rdata], timespan: 5m, condition: {gte: 2, field: srcaddr}}"
    raws = [_answered("10.0.0.1", ["1.1.1.1", "1.1.1.1"]), _answered("10.0.0.2", ["1.1.1.1", "2.2.2.2"]), _answered("10.0.0.3", []),
            _answered("10.0.0.3", ["2.2.2.2."], second=5)]
    assert alerts_agree(value_count, raws) == [(1714557600, ("1.1.1.1",)), (1714557600, ("2.2.2.2",))]
    temporal = """title: TXT
id: 11111111-2222-4333-8444-000000000022
name: cname_answer
logsource: {product: aws, service: route53resolver}
detection: {sel: {answers.Type: CNAME}, condition: sel}
---
""" + ANSWERED % "{type: temporal, rules: [answered, cname_answer], group-by: [answers.Rdata], timespan: 5m}"
    raws = [_answered("10.0.0.1", ["x.example.", "x.example."]), _answered("10.0.0.2", ["1.1.1.1"]), _answered("10.0.0.2", ["y.example."], second=9)]
    assert len(alerts_agree(temporal, raws)) == 2


@pytest.mark.parametrize("correlation, reason", [
    ("{type: event_count, rules: [answered], group-by: [answers.Rdata], timespan: 5m, condition: {gte: 2}}", "event_count grouped by the array member"),
    ("{type: value_count, rules: [answered], group-by: [answers.Type], timespan: 5m, condition: {gte: 2, field: answers.Rdata}}", "several array members"),
    ("{type: value_count, rules: [answered], group-by: [srcaddr], timespan: 5m, condition: {lt: 2, field: answers.Rdata}}", "holds for 0 values"),
])
def test_array_member_correlations_refused_with_a_reason(correlation, reason):
    from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=reason) as error:
        convert(ANSWERED % correlation)
    assert "\n" not in str(error.value)


def test_public_zone_correlation_leaves_out_dash_groups():
    from cw_support import alerts_agree, public_line
    rule = """title: Any query
id: 11111111-2222-4333-8444-000000000023
name: public_any
logsource: {product: aws, service: route53}
detection: {sel: {queryType: A}, condition: sel}
---
title: Subnets per resolver
id: 11111111-2222-4333-8444-000000000024
correlation: {type: event_count, rules: [public_any], group-by: [ednsClientSubnet], timespan: 5m, condition: {gte: 2}}
"""
    raws = [public_line(subnet="-"), public_line(subnet="-"), public_line(subnet="192.0.2.0/24"), public_line(subnet="192.0.2.0/24")]
    assert alerts_agree(rule, raws) == [(1513152900, ("192.0.2.0/24",))]


def test_skip_unsupported_skips_an_unresolved_placeholder(tmp_path):
    (tmp_path / "rules.yml").write_text("""title: Expand
id: 11111111-2222-4333-8444-000000000030
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_name|expand: '%domains%'}, condition: sel}
---
title: TXT
id: 11111111-2222-4333-8444-000000000031
logsource: {product: aws, service: route53resolver}
detection: {sel: {query_type: TXT}, condition: sel}
""")
    cli = subprocess.run([str(Path(sys.executable).parent / "sigma"), "convert", "-s", "-t", "cloudwatch", "-p", "route53_cloudwatch", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert 'query_type = "TXT"' in cli.stdout and "%domains% (|expand)" in cli.stderr
