"""`r53sigma verify`: every rule's converted queries, on every target, against the reference engine."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r53sigma import conversion, verify
from r53sigma.targets import registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check that each target's query selects what the rule means, on the test cases",
        description="For every rule and test case, convert the rule for each target (Elasticsearch "
        "Lucene / ES|QL, Splunk, CloudWatch Logs Insights), run the query on that target's view of the "
        "case's events (real Lucene; models of ES|QL, SPL and Logs Insights) and compare with the "
        "reference engine. Prints a rule x target matrix; exits 1 on any disagreement.",
    )
    parser.add_argument("--cases", type=Path, default=None, metavar="DIR",
                        help="folder of test case files (default: the <stem>.cases.yaml beside each bundled rule)")
    parser.add_argument("rules", nargs="*", type=Path, metavar="RULE_PATH",
                        help="rule files or folders (default: sigma_rules/)")
    parser.add_argument("-t", "--target", action="append", choices=list(registry.names()), default=None,
                        help="only this target (repeatable; default: the SIEM targets; cloudwatch_metric_filter by name)")
    parser.add_argument("--queries", action="store_true", help="show the query of every annotated cell")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="json: the matrix as one JSON document on stdout (cells, counts, problems) for CI")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = verify.run(args.cases, args.rules or None, tuple(args.target) if args.target else None)
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(verify.report_json(report), indent=2))
    else:
        print(verify.format_report(report, show_queries=args.queries, with_problems=False))
    if not report.cells and report.ok:
        print("verify: no rule with a test case: nothing was verified", file=sys.stderr)
        return 1
    return 0 if report.ok else 1
