"""The examples each sub-command's `--help` ends with (kept in one place, in step with the README)."""
from __future__ import annotations

import argparse

EXAMPLES = {
    "convert": """\
  r53sigma convert                                  # every bundled rule for every target
  r53sigma convert -t splunk my_rules/ -o out/      # one file per rule under out/splunk/
  r53sigma convert -t elasticsearch --format json my_rule.yml""",
    "deploy": """\
  r53sigma package && r53sigma deploy elastic --dry-run --url https://es:9200 --kibana-url https://kibana:5601
  R53SIGMA_SPLUNK_TOKEN=... r53sigma deploy splunk --url https://splunk:8089
  r53sigma deploy cloudwatch --region us-east-1 --format json   # plan and result as JSON for CI""",
    "lists": """\
  r53sigma lists                                    # every name list with its rule, size, source and date
  r53sigma lists check                              # exit 1 when a rule and its list disagree
  r53sigma lists refresh mining_pools --from my_feed.txt --source "my feed" """,
    "mappings": """\
  r53sigma mappings                                 # render ./mappings/ (from the repository root: its own)
  r53sigma mappings --check                         # exit 1 if ./mappings/ is stale""",
    "package": """\
  r53sigma package                                  # every artifact into ./dist/
  r53sigma package my_rules/ --out build/pack       # your rules, your folder (new, empty or an earlier build)
  r53sigma package --check                          # exit 1 if ./dist/ is stale""",
    "scan": """\
  r53sigma scan                                     # the bundled samples with the bundled rules
  r53sigma scan --rules my_rules/ AWSLogs/ -o alerts.jsonl
  gzip -dc big.jsonl.gz | r53sigma scan -           # stdin, plain or gzip
  r53sigma scan AWSLogs/ --baseline seen.csv --baseline-update   # first-seen rules: history read, then kept""",
    "test": """\
  r53sigma test                                     # every rule's cases
  r53sigma test sigma_rules/resolver/rare_dns_response_code.yml   # one rule's cases only
  r53sigma test --format json > results.json""",
    "verify": """\
  r53sigma verify                                   # every rule x every target against the reference engine
  r53sigma verify -t splunk sigma_rules/resolver/rare_dns_response_code.yml
  r53sigma verify --format json > matrix.json""",
}


class HelpFormatter(argparse.HelpFormatter):
    """Wraps the description as usual, but prints the examples exactly as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:\n"):
            return text
        return super()._fill_text(text, width, indent)


def add_examples(subparsers: argparse._SubParsersAction) -> None:
    for name, parser in subparsers.choices.items():
        if name in EXAMPLES:
            parser.epilog = "examples:\n" + EXAMPLES[name]
            parser.formatter_class = HelpFormatter
