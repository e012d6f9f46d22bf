"""Stock `sigma convert -s -t TARGET -p route53_* sigma_rules/` (sigma-cli, offline, in-process) converts
every expressible rule of the pack and skips the others with a one-line refusal, exit 0.

pySigma 1.5 collects errors (-s) only while converting a rule, not a correlation; the Route 53
pipelines collect a refused correlation too (sigma.pipelines.route53.correlation_limits)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sigma.cli.convert import convert
from sigma.collection import SigmaCollection
from sigma.conversion.base import Backend

RULES = Path(__file__).resolve().parents[2] / "sigma_rules"

# every stock target each Route 53 pipeline is meant for (its allowed_backends)
CELLS = [("esql", "route53_elasticsearch"), ("lucene", "route53_elasticsearch"),
         ("splunk", "route53_splunk"), ("cloudwatch", "route53_cloudwatch")]
# the words a refusal begins with, per target (each pipeline's own)
REFUSAL = {"esql": "not expressible", "lucene": "not expressible", "splunk": "not expressible",
           "cloudwatch": "CloudWatch Logs Insights: "}
PLACEHOLDER = "no list for the placeholder %ioc_domains%"


def _output_rules_per_file() -> dict[str, int]:
    """How many queries each rule file should give: its rules not hidden behind a correlation (generate: false)."""
    files = sorted(RULES.rglob("*.yml"))
    collection = SigmaCollection.load_ruleset([str(f) for f in files])
    collection.resolve_rule_references()
    counts: dict[str, int] = {}
    for rule in collection.rules:
        counts.setdefault(str(rule.source.path), 0)
        counts[str(rule.source.path)] += 1 if rule._output else 0
    return counts


def _run(target: str, pipeline: str):
    result = CliRunner().invoke(convert, ["-s", "-t", target, "-p", pipeline, str(RULES)])
    ignored = result.stderr.split("Ignored errors:", 1)[1].strip().splitlines() if "Ignored errors:" in result.stderr else []
    return result, ignored


@pytest.mark.parametrize("target,pipeline", CELLS)
def test_stock_sigma_convert_skips_only_refused_rules(target, pipeline, monkeypatch):
    monkeypatch.delenv("R53SIGMA_IOC_DOMAINS", raising=False)
    written = []  # the query list the backend hands to its output step (a multi-line query is one item)
    finalize = Backend.finalize
    monkeypatch.setattr(Backend, "finalize", lambda self, queries, fmt: (written.append(list(queries)), finalize(self, queries, fmt))[1])
    result, ignored = _run(target, pipeline)
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    refused_files = set()
    for line in ignored:
        path, _, reason = line.partition(": ")
        assert Path(path).is_file(), line
        assert reason.startswith(REFUSAL[target]) or reason.startswith(PLACEHOLDER), line
        assert "SigmaRule(" not in reason and len(line) < 1000, line  # one line, never a repr of the rule
        refused_files.add(path)
    expected = sum(n for path, n in _output_rules_per_file().items() if path not in refused_files)
    assert len(written) == 1 and len(written[0]) == expected
    assert all(q in result.stdout for q in written[0])
    assert expected > len(refused_files)  # most of the pack converts


@pytest.mark.parametrize("target,pipeline", [("esql", "route53_elasticsearch"), ("splunk", "route53_splunk")])
def test_stock_sigma_convert_names_the_refused_ordered_correlations(target, pipeline):
    result, ignored = _run(target, pipeline)
    ordered = [line for line in ignored if "correlation type temporal_ordered" in line]
    chains = [f for f in RULES.rglob("*.yml") if re.search(r"^\s+type: temporal_ordered", f.read_text(), flags=re.M)]
    assert chains and len(ordered) == len(chains)


def test_stock_lucene_refuses_correlations_by_name():
    result, ignored = _run("lucene", "route53_elasticsearch")
    assert any("correlation rules" in line and "Lucene" in line for line in ignored)
    assert result.exit_code == 0


def test_without_skip_a_refused_correlation_still_fails_the_run():
    result = CliRunner().invoke(convert, ["-t", "esql", "-p", "route53_elasticsearch", str(RULES)])
    assert result.exit_code != 0 and "not expressible" in result.stderr


def test_stock_esql_converts_rules_on_flattened_request_keys():
    """Filters on requestParameters keys (a `flattened` field ES|QL reads only whole) go to the keys'
    keyword companions: the forwarding-rule correlation converts, and no refusal names a flattened field."""
    result, ignored = _run("esql", "route53_elasticsearch")
    assert result.exit_code == 0 and not [line for line in ignored if "flattened" in line]
    assert "r53sigma.cloudtrail.request_parameters.ruleType==\"FORWARD\"" in result.stdout
