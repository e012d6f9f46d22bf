"""`r53sigma package [--out dist] [--allow-partial] [--check]`: build every deployable artifact into dist/.

Deterministic and offline: the same rules give the same bytes. A rule that fails to convert for a
target is reported and left out of that target's package; the build then writes nothing and exits
1, unless --allow-partial is given. The output folder must be new, empty, or hold the MANIFEST.json
of an earlier build (else --force): files that manifest does not list are never deleted. `--check` writes nothing and exits 1 if the folder differs from
a fresh build (stale, missing or extra files).

Packaging the bundled rules (no PATH, no --filter) also keeps the repository files the targets
version their content with (sigma_rules/kibana.version.lock.json: a Kibana rule whose content
changed gets its version bumped there); `--check` fails when such a file is stale.
"""
from __future__ import annotations

import sys
from pathlib import Path

from r53sigma import envfilter, owned_folder, package
from r53sigma.deploy.dist import DEFAULT_DIST as DEFAULT_OUT  # one default: what deploy reads


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def run(args) -> int:
    out = Path(args.out) if args.out else DEFAULT_OUT
    try:
        build = package.build([Path(p) for p in args.paths] or None, args.filters)
    except envfilter.FilterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (package.PackageError, ValueError) as error:
        print(f"package: {error}", file=sys.stderr)
        return 2
    for problem in build.problems:
        print(problem, file=sys.stderr)
    if build.rule_count == 0:
        print(f"package: no rule to package in {', '.join(args.paths) or 'the bundled rules'}: nothing written", file=sys.stderr)
        return 1
    if build.problems and not args.allow_partial:
        print(f"{len(build.problems)} problem(s): nothing written (--allow-partial packages the rest)", file=sys.stderr)
        return 1
    # the version lock beside the bundled rules is kept only in a checkout: an installed pack is never modified
    keeps_repo_files = not args.paths and not args.filters and (package.rule_loading.REPO_ROOT / "sigma_rules").is_dir()
    stale_repo = [p for p, data in build.repo_files.items() if keeps_repo_files and _read(package.rule_loading.REPO_ROOT / p) != data]
    if args.check:
        differences = package.differences(out, build.files) + [f"stale: {p} (run `r53sigma package`)" for p in stale_repo]
        for line in differences:
            print(line, file=sys.stderr)
        if differences:
            print(f"{out} is out of date: run `r53sigma package --out {args.out or 'dist'}`", file=sys.stderr)
        return 1 if differences else 0
    try:
        removed = package.write(out, build.files, force=args.force)
    except owned_folder.FolderError as error:
        print(f"package: {error}", file=sys.stderr)
        return 2
    if removed:
        print(f"removed {len(removed)} file(s) of the previous build no longer built", file=sys.stderr)
    for path in stale_repo:
        (package.rule_loading.REPO_ROOT / path).write_bytes(build.repo_files[path])
        print(f"updated {path}")
    print(f"wrote {len(build.files)} files to {out}" + (f" ({len(build.problems)} problem(s) left out)" if build.problems else ""))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "package",
        help="build dist/: Kibana rules, Splunk app, CloudFormation, query exports, ATT&CK layer",
        description=__doc__,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders (default: the bundled sigma_rules/)")
    parser.add_argument("--out", "-o", help="output folder (default: ./dist); it must be empty, new, or hold the "
                        "MANIFEST.json of an earlier build")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that is not ours (our files are added or overwritten; no file is deleted "
                        "that our MANIFEST.json does not list)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="write the packages even if some rules fail for some targets (they are left out)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the output folder is stale")
    envfilter.add_argument(parser)
    parser.set_defaults(func=run)
