"""`r53sigma test`: run the rule test cases (<stem>.cases.yaml beside each rule) against the rules (sigma_rules/)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r53sigma import testcases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the rule test cases with the reference engine",
        description="Run every test case against its rule. Exits 1 on a failing case, a rule file "
        "without a case, a case naming an unknown rule, or a broken rule file.",
    )
    parser.add_argument("--cases", type=Path, default=None, metavar="DIR",
                        help="folder of test case files (default: the <stem>.cases.yaml beside each bundled rule)")
    parser.add_argument("rules", nargs="*", type=Path, metavar="RULE_PATH",
                        help="rule files or folders (default: sigma_rules/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the alerts of passing cases too")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="json: results and problems as one JSON document on stdout, for CI")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = testcases.run(args.cases, args.rules or None)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if args.format == "json":
        print(json.dumps(testcases.report_json(report), indent=2))
    else:
        print(testcases.format_report(report, verbose=args.verbose, with_problems=False))
    if not report.results and report.ok:
        print("test: no test case ran", file=sys.stderr)
        return 1
    return 0 if report.ok else 1
