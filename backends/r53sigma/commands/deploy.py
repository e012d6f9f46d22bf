"""`r53sigma deploy {elastic|splunk|cloudwatch}`: plan, then apply, what `r53sigma package` built.

Exit status: 0 when the plan is applied (or, with --dry-run, computed), 1 when anything failed
(the report says what was and was not applied), 2 for bad settings or a missing/broken dist/.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r53sigma.deploy import common
from r53sigma.deploy.common import DeployError, Retry
from r53sigma.deploy.dist import DEFAULT_DIST, DistError, RuleNames, Selection
from r53sigma.deploy.settings import SettingsError, parse_pairs, resolve
from r53sigma.targets import registry



def _deployer(name: str):
    """(deploy module, its target class name), imported only now: the deploy clients load with it."""
    return registry.deployable()[name].deployer()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="plan and apply the packaged pack (dist/) to Elasticsearch/Kibana, Splunk or CloudWatch Logs",
        description="Read the live state, print a plan (create/update/unchanged/delete), then apply it. "
        "Settings come from flags, R53SIGMA_<TARGET>_<KEY> / R53SIGMA_<KEY> environment variables, or the "
        "[<target>] table of a TOML config file (~/.config/r53sigma/deploy.toml). Secrets (passwords, API "
        "keys, tokens) are read from the environment, the config file or --password-stdin, never from flags.",
    )
    parser.add_argument("target", choices=list(registry.deployable()))
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="the packaged pack (default: ./dist, as package writes)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="json: one JSON document on stdout (plan, result, error, exit_code) for CI")
    parser.add_argument("--prune", action="store_true", help="also delete the pack's objects that dist/ no longer has")
    parser.add_argument("--force", action="store_true", help="Splunk: overwrite schedule/enablement changed by users")
    parser.add_argument("--only", action="append", metavar="RULES",
                        help="only these rules (ids or titles, comma-separated; repeatable); skips ingestion objects")
    parser.add_argument("--config", help="TOML settings file (default: $R53SIGMA_CONFIG or ~/.config/r53sigma/deploy.toml)")
    parser.add_argument("--url", help="Elasticsearch URL, or Splunk's management URL (https://host:8089)")
    parser.add_argument("--kibana-url", help="Kibana URL (elastic)")
    parser.add_argument("--space", help="Kibana space (elastic; default space when omitted)")
    parser.add_argument("--app", help="Splunk app namespace (default: the app folder in dist/splunk/)")
    parser.add_argument("--username", help="user name (elastic basic auth, Splunk login); the password comes "
                        "from R53SIGMA_PASSWORD, the config file or --password-stdin")
    parser.add_argument("--password-stdin", action="store_true", help="read the password (or Splunk token / Elastic API key "
                        "with --secret-kind) from the first line of stdin")
    parser.add_argument("--secret-kind", choices=["password", "api_key", "token"], default="password",
                        help="what --password-stdin reads (default: password)")
    parser.add_argument("--ca-certs", help="CA bundle to verify the server certificate with")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (labs only)")
    parser.add_argument("--ioc-domains", metavar="FILE",
                        help="elastic: load this threat feed (one domain a line, CSV with a category column, or a STIX 2.1 "
                             "bundle) into the enrich policy the threat-feed rule reads; again when it changes")
    parser.add_argument("--region", help="AWS region (cloudwatch)")
    parser.add_argument("--profile", help="AWS profile (cloudwatch); credentials follow boto3's usual chain")
    parser.add_argument("--log-group", action="append", metavar="SOURCE=NAME",
                        help="CloudWatch log group for a log source (resolver, public_zone, cloudtrail); repeatable")
    parser.add_argument("--alarm-topic", metavar="ARN",
                        help="CloudWatch: the SNS topic the rule alarms notify (the template's AlarmTopicArn; none: alarms only change state)")
    parser.set_defaults(func=run)


def _flags(args: argparse.Namespace, stdin=sys.stdin) -> dict:
    flags = {key: getattr(args, key, None) for key in
             ("url", "kibana_url", "space", "app", "username", "ca_certs", "insecure", "region", "profile", "alarm_topic",
              "ioc_domains")}
    if args.log_group:
        flags["log_groups"] = {k: v for item in args.log_group for k, v in parse_pairs(item).items()}
    if args.password_stdin:
        flags[args.secret_kind] = stdin.readline().rstrip("\r\n")
    return flags


DEPLOY_EXTRA_MODULES = {"elasticsearch", "elastic_transport", "splunklib", "boto3", "botocore"}


def run(args: argparse.Namespace, targets: dict | None = None, retry: Retry | None = None) -> int:
    """``targets`` / ``retry`` are for tests: prebuilt clients and an instant sleep."""
    try:
        return _run(args, targets, retry)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in DEPLOY_EXTRA_MODULES:
            raise
        print(f"error: deploy {args.target} needs the deploy extra (missing module {error.name}): "
              "pip install 'r53sigma[deploy]'", file=sys.stderr)
        return 2


def _warn_plain_http(settings) -> None:
    """Credentials over http:// cross the network readable by anyone on the path: say so (labs may mean it)."""
    if not any(settings.get(key) for key in ("password", "api_key", "token")):
        return
    for key in ("url", "kibana_url"):
        value = str(settings.get(key) or "")
        if value.lower().startswith("http://"):
            print(f"warning: {settings.sources.get(key, key)} is {value}: plain http, so the credentials cross the "
                  "network unencrypted; use https://", file=sys.stderr)


def _run(args: argparse.Namespace, targets: dict | None, retry: Retry | None) -> int:
    as_json = getattr(args, "format", "text") == "json"
    report: dict = {"target": args.target, "dry_run": bool(args.dry_run), "ok": False, "error": None,
                    "plan": None, "result": None}

    def failed(code: int, message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        report["error"] = message
        return _emit(report, code, as_json)

    module, target_class = _deployer(args.target)
    try:
        settings = resolve(module.NAME, module.KEYS, _flags(args), args.config)
        selection = Selection(
            [item for group in args.only for item in group.split(",")] if args.only else None,
            RuleNames.load(args.dist),
        )
        target = getattr(module, target_class)(args.dist, settings, selection, prune=args.prune, force=args.force,
                                               **(targets or {}))
    except (SettingsError, DistError) as error:
        return failed(2, str(error))
    _warn_plain_http(settings)
    retry = retry or Retry()
    try:
        plan = target.plan(retry)
    except (SettingsError, DistError) as error:
        return failed(2, str(error))
    except DeployError as error:
        return failed(1, f"could not read the current state, nothing was changed: {error}")
    unmatched = selection.unmatched()
    if unmatched:
        return failed(2, f"--only names no rule in dist/ or in {target.label}: {', '.join(unmatched)}")
    report["plan"] = [_action_json(a) for a in plan]
    if not as_json:
        common.print_plan(target.label, plan)
    if args.dry_run or not common.changes(plan):
        report["ok"] = True
        if not as_json:
            print("dry run: nothing applied" if args.dry_run else "nothing to do")
        return _emit(report, 0, as_json)
    outcome = common.apply(plan, retry, module.classify)
    report["ok"] = outcome.ok
    report["result"] = {
        "applied": [_action_json(a) for a in outcome.applied],
        "failed": [{**_action_json(a), "error": message} for a, message in outcome.failed],
        "not_attempted": [_action_json(a) for a in outcome.skipped],
    }
    if as_json:
        for action, message in outcome.failed:  # the reasons stay readable on stderr as well
            print(f"FAILED: {action.change} {action.kind} {action.name}: {message}", file=sys.stderr)
    else:
        common.print_outcome(target.label, outcome)
    return _emit(report, 0 if outcome.ok else 1, as_json)


def _action_json(action) -> dict:
    return {"change": action.change, "kind": action.kind, "name": action.name, "note": action.note}


def _emit(report: dict, code: int, as_json: bool) -> int:
    if as_json:
        report["exit_code"] = code
        print(json.dumps(report, indent=2))
    return code
