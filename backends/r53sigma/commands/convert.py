"""r53sigma convert: rules -> Elasticsearch (Lucene, ES|QL), Splunk SPL, CloudWatch Logs Insights."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r53sigma import conversion, envfilter, owned_folder
from r53sigma.targets import registry


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert Sigma rules to target queries",
        description="Convert rules and folders of rules (default: the bundled sigma_rules/). "
        "Correlation rules become ES|QL on Elasticsearch.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="rule files or folders")
    parser.add_argument(
        "--target", "-t", default="all", choices=[*registry.names(), "all"],
        help="target to convert for (default: all = the SIEM targets: "
        + ", ".join(conversion.siem_targets()) + "; others by name)",
    )
    parser.add_argument("--format", "-f", default="text", choices=["text", "json"], help="text (default) or json export")
    parser.add_argument(
        "--output", "-o", type=Path, metavar="DIR",
        help="write one file per rule and target (<DIR>/<target>/<rule file stem><suffix>) instead of printing; "
        "DIR must be new, empty or hold the MANIFEST.json of an earlier convert",
    )
    envfilter.add_argument(parser)
    parser.add_argument("--force", action="store_true",
                        help="with -o: write into a folder that is not ours (no file is deleted that our MANIFEST.json does not list)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = list(conversion.siem_targets()) if args.target == "all" else [args.target]
    try:
        conversions, broken = conversion.convert_paths(args.paths or None, targets, filters=args.filters)
    except envfilter.FilterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for error in broken:
        print(f"error: {error}", file=sys.stderr)
    failed = [c for c in conversions if c.failed]
    for c in failed:
        print(f"error: {c.path}: {c.title}: {c.target}: {_unlocated(c.error, c.path)}", file=sys.stderr)
    not_expressible = [c for c in conversions if c.not_expressible]
    for c in not_expressible:
        print(f"not expressible: {c.path}: {c.title}: {c.target}: {_unlocated(c.error, c.path)}", file=sys.stderr)
    good = [c for c in conversions if c.ok]
    if not conversions and not broken:
        print(f"convert: no Sigma rule found in {', '.join(map(str, args.paths)) or 'the bundled rules'}", file=sys.stderr)
        return 1

    if args.output:
        try:
            owned_folder.write(args.output, {path: text.encode("utf-8") for path, text in _files(good, args.format).items()},
                               force=args.force)
        except owned_folder.FolderError as error:
            print(f"convert: {error}", file=sys.stderr)
            return 2
    elif args.format == "json":
        json.dump([c.export() for c in good], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(good)

    rule_count = len({c.rule_id for c in conversions})
    print(
        f"converted {len(good)} of {len(conversions)} rule/target pairs ({rule_count} rules, "
        f"{len(targets)} targets); {len(not_expressible)} not expressible in their target, "
        f"{len(broken)} broken rule files, {len(failed)} conversion errors",
        file=sys.stderr,
    )
    # A target's documented limit is reported but is no failure; a broken rule or a backend error is.
    return 1 if broken or failed else 0


def _unlocated(message: str | None, path) -> str:
    """pySigma appends ` in <file>` to its messages; the line already starts with the file."""
    message = " ".join(str(message or "").split())
    suffix = f" in {path}"
    return message[: -len(suffix)] if path and message.endswith(suffix) else message


def _print_text(good: list[conversion.Conversion]) -> None:
    by_rule: dict[str, list[conversion.Conversion]] = {}
    for c in good:
        by_rule.setdefault(c.rule_id, []).append(c)
    for items in by_rule.values():
        first = items[0]
        print(f"# {first.title}  [{first.rule_id}]  {first.path or ''}")
        for c in items:
            print(f"## {c.target} ({c.language}{', first-seen candidates' if c.first_seen else ''})")
            print(c.query)
            if c.first_seen:
                print(f"## {c.target} (first-seen form)")
                print(json.dumps(c.first_seen, indent=2))
        print()


def _files(good: list[conversion.Conversion], fmt: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for c in good:
        stem = c.path.stem if c.path else c.rule_id
        suffix = ".json" if fmt == "json" else c.suffix
        name = f"{c.target}/{stem}{suffix}"
        if name in files:  # a file holding several standalone rules: one output file each
            name = f"{c.target}/{stem}-{c.rule_id}{suffix}"
        files[name] = json.dumps(c.export(), indent=2) + "\n" if fmt == "json" else c.query + "\n"
        if c.first_seen and fmt != "json":  # the native form beside the candidate query
            files[name.removesuffix(suffix) + ".first_seen.json"] = json.dumps(c.first_seen, indent=2) + "\n"
    return files
