"""`r53sigma lists [check | refresh NAME --from FILE --source TEXT]`: the rules' name lists as data files."""
from __future__ import annotations

import sys
from pathlib import Path

from r53sigma import lists


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lists", help="show, check or refresh the name lists behind list-based rules",
        description="Without an action: every list with its rule, size, source and date. `check`: exit 1 when a "
        "rule's values differ from its list. `refresh NAME --from FILE --source TEXT`: replace a list with the "
        "names of FILE (one per line; # comments, hosts-file lines, *. wildcards accepted) and rewrite its rule.")
    parser.add_argument("action", nargs="?", choices=["show", "check", "refresh"], default="show")
    parser.add_argument("name", nargs="?", help="list name (refresh)")
    parser.add_argument("--from", dest="source_file", type=Path, metavar="FILE", help="user-supplied list of names (refresh)")
    parser.add_argument("--source", help="where FILE comes from, recorded in the list (refresh)")
    parser.add_argument("--date", help="date FILE was retrieved, YYYY-MM-DD (default: today)")
    parser.add_argument("--rules", type=Path, default=None, metavar="DIR", help="rules folder (default: the bundled sigma_rules/)")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        if args.action == "refresh":
            if not (args.name and args.source_file and args.source):
                print("error: refresh needs NAME, --from FILE and --source TEXT", file=sys.stderr)
                return 2
            name_list, rule = lists.refresh(args.name, args.source_file, args.source, args.date, args.rules)
            print(f"{name_list.name}: {len(name_list.values)} names from {args.source_file}; wrote {name_list.path} and {rule}")
            return 0
        if args.action == "check":
            problems = lists.check(args.rules)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        for name_list in lists.all_lists():
            print(f"{name_list.name}: {len(name_list.values)} names -> {name_list.rule}; retrieved {name_list.retrieved}; source: {name_list.source}")
        return 0
    except lists.ListError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
