"""`r53sigma scan`: run Sigma rules over Route 53 log files (DuckDB engine where installed, else the reference engine;
a warm scan of a small input runs the reference engine on its compiled run's match plans, which starts sooner).

Alerts go out as JSON lines (stdout, or ``--output FILE`` written atomically); a summary table,
the malformed lines and truncated gzip members (with file and line) go to stderr. With no LOGS the
bundled sample logs are scanned with the bundled rules.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TextIO

from r53sigma import envfilter, signals
from r53sigma.progress import ScanProgress
from r53sigma.scan import baseline
from r53sigma.scan.records import Event, ReadError, dump_json, read_paths

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
MAX_PROBLEMS_SHOWN = 20
# Below this much text a warm scan starts sooner on the reference engine than DuckDB plans its pass
# (bench/scan.py (f), (g)); a gzip file counts as its trailer's size or GZIP_RATIO times its own, the larger
# (Resolver logs compress about 14x).
SMALL_INPUT_BYTES = 512 * 1024
GZIP_RATIO = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="run rules over log files and print alerts as JSON lines",
        description="Run Sigma rules over Route 53 Resolver, public hosted-zone and CloudTrail logs "
        "(files, folders, .gz, S3 AWSLogs/ trees, or - for stdin). With no LOGS, scans the bundled "
        "sample logs with the bundled rules.",
    )
    parser.add_argument("logs", nargs="*", metavar="LOGS", help="log files or folders, or - for stdin (default: bundled samples)")
    parser.add_argument("--rules", action="append", type=Path, default=None, metavar="PATH",
                        help="a rule file or folder; repeat for more (default: the bundled rules)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="write the alerts to FILE (atomically) instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress indicator on a terminal")
    parser.add_argument("--engine", choices=["duckdb", "reference"], default=None,
                        help="duckdb (default where the duckdb package is installed): one columnar pass; "
                        "reference: the reference engine. By default a warm scan (its rules compiled before) of "
                        f"inputs under {SMALL_INPUT_BYTES // 1024} KiB runs the reference engine on the compiled "
                        "rules, which starts sooner; the alerts are the same")
    envfilter.add_argument(parser)
    parser.add_argument("--memory-limit", default=None, metavar="SIZE",
                        help="DuckDB engine: memory to use before spilling to a temporary folder (e.g. 512MB)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                        help="first-seen rules: the values already seen (CSV, described in the README); "
                        "a missing FILE is an empty history. Without it, first-seen rules are skipped")
    parser.add_argument("--baseline-update", action="store_true",
                        help="after a complete scan, write FILE with the values this scan saw added "
                        "(only a file r53sigma wrote, or a new one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    if args.output is not None and args.output.is_dir():
        print(f"scan: --output {args.output} is a folder; give a file name", file=sys.stderr)
        return 2
    if args.baseline_update and args.baseline is None:
        print("scan: --baseline-update needs --baseline FILE", file=sys.stderr)
        return 2
    try:
        history = baseline.read(args.baseline) if args.baseline is not None else None
        if args.baseline_update:
            baseline.check_writable(args.baseline)  # told before the scan, not after it
    except baseline.BaselineError as error:
        print(f"scan: --baseline {error}", file=sys.stderr)
        return 2
    engine_name = args.engine or ("duckdb" if _duckdb_installed() else "reference")
    # The DuckDB engine's compiled run of these exact inputs, from the plan cache: no rule parsed, no pySigma
    # imported (r53sigma.scan.compiledrun); a scan with --baseline has its own (it runs the first-seen rules).
    key = _run_key(args, history is not None) if engine_name == "duckdb" else None
    compiled = _load_compiled(key)
    logs = args.logs or [str(SAMPLES_DIR)]
    if compiled is not None:
        _tell_all(compiled.messages)
        status = compiled.status
        if args.engine is None and args.memory_limit is None and compiled.matchable() and _small_input(logs):
            from r53sigma.scan.reference import Engine

            engine_name, engine = "reference", Engine(compiled.rules)  # the stand-ins' match plans: no pySigma
        else:
            engine = _duck_engine(args, compiled.rules, reference=_lazy_reference(compiled, args))
            if engine is None:
                return 2
        _tell_all(compiled.choices)
        chosen = compiled.chosen
    else:
        from r53sigma import rules as rules_mod

        try:
            loaded = rules_mod.load(args.rules or None, filters=args.filters)
        except envfilter.FilterError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        messages = [f"rule error: {error}" for error in loaded.errors]
        _tell_all(messages)
        status = 1 if loaded.errors else status
        if engine_name == "duckdb":
            from r53sigma.scan.plancache import PlanCache

            engine = _duck_engine(args, loaded.collection, plan_cache=PlanCache())
            if engine is None:
                return 2
        else:
            from r53sigma.scan.reference import Engine

            engine = Engine(loaded.collection)
        chosen, choices, failed = _choose(loaded, engine, history)
        status = 1 if failed else status
        if key is not None:
            from r53sigma.scan import compiledrun

            compiledrun.save(key, compiledrun.build(loaded, chosen, engine, messages, choices, status))
    if not chosen:
        print("no rules to run", file=sys.stderr)
        return 2
    problems: list[ReadError] = []

    def on_error(error: ReadError) -> None:
        if error.line is None:  # a path that cannot be read at all
            nonlocal status
            status = 1
        problems.append(error)

    progress = ScanProgress(not args.no_progress and sys.stderr.isatty(), logs)
    seen = history  # the updated baseline: the history itself, or the DuckDB engine's rows
    if engine_name == "duckdb":
        # first-seen rules decided in SQL (r53sigma.scan.duckfirstseen), as first_seen_alerts decides them
        from r53sigma.scan import duckfirstseen

        decider = duckfirstseen.FirstSeen(history) if history is not None else None
        alerts = engine.scan_paths(logs, chosen, on_error, on_file=progress.file_done, first_seen=decider)
        seen = decider.rows() if decider is not None else None
    else:
        alerts = engine.scan(progress.wrap(read_paths(logs, on_error)), chosen)
        if history is not None:
            alerts = baseline.first_seen_alerts(alerts, history)
    counts: Counter[str] = Counter()
    stopped = None
    output = _output(args.output)
    try:
        try:
            output.open()  # an unwritable place is told before the scan, not after it
        except OSError as error:
            print(f"scan: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
            return 2
        with output as out:
            for alert in alerts:
                counts[alert.rule_id] += 1
                progress.alert()
                out.write(dump_json(alert.to_json()) + "\n")
            if progress.events == 0:
                raise _NothingScanned  # --output keeps what it held: no empty result over it
    except _NothingScanned:
        pass
    except (KeyboardInterrupt, signals.Terminated, Exception) as error:
        if not signals.is_stop(error):
            raise
        stopped = error
    finally:
        progress.done()
        output.discard()
    _summary(chosen, counts, progress.events, progress.files, problems, sys.stderr)
    if args.baseline_update and stopped is None and progress.events:
        try:
            baseline.write(args.baseline, seen)
        except (baseline.BaselineError, OSError) as error:
            print(f"scan: --baseline {args.baseline} not written: {error}", file=sys.stderr)
            status = 1
    if stopped is not None:
        what = "terminated" if isinstance(stopped, signals.Terminated) or signals.received() == 15 else "interrupted"
        kept = f"; {args.output} not written" if args.output else ""
        print(f"{what}: the counts above are for the part scanned{kept}", file=sys.stderr)
        return signals.exit_code()
    if progress.events == 0:
        if problems:
            print("scan: every line or file was skipped (reasons above): nothing was scanned", file=sys.stderr)
        else:
            print(f"scan: no log events found in {', '.join(logs)}", file=sys.stderr)
        return 1
    return status


def _tell_all(messages: list[str]) -> None:
    for message in messages:
        print(message, file=sys.stderr)


def _choose(loaded, engine, history) -> tuple[list, list[str], bool]:
    """The rules to run, the messages of the ones left out (printed as they are decided), and whether a
    rule failed its engine's check."""
    from r53sigma import first_seen, ioc
    from r53sigma import rules as rules_mod
    from r53sigma.scan.results import EngineError

    chosen, choices, failed = [], [], False

    def tell(message: str) -> None:
        choices.append(message)
        print(message, file=sys.stderr)

    for rule in loaded.top_level():
        if rules_mod.needs_ioc_list(rule):  # a user's feed, not configured: nothing to match, not an error
            tell(f"rule skipped: {rule.title}: no list for %ioc_domains% (set {ioc.ENV_FILE})")
            continue
        if history is None and first_seen.of(rule) is not None:
            tell(f"rule skipped: {rule.title}: a first-seen rule needs the values already seen "
                 "(--baseline FILE; a new FILE with --baseline-update starts one)")
            continue
        try:
            engine.check(rule)
            chosen.append(rule)
        except EngineError as error:
            tell(f"rule error: {error}")
            failed = True
    return chosen, choices, failed


def _run_key(args: argparse.Namespace, with_history: bool) -> str | None:
    from r53sigma.scan import compiledrun

    return compiledrun.run_key(args.rules, args.filters, compiledrun.duckdb_version(), with_history)


def _small_input(logs: list[str]) -> bool:
    """Whether the logs are regular files and folders holding less than SMALL_INPUT_BYTES of text (stdin and
    pipes are never small: their size is not known before they are read)."""
    from r53sigma.scan.records import log_files, stored_size

    total = 0
    for log in logs:
        if log == "-":
            return False
        path = Path(log)
        if not path.exists():
            continue  # reported by the scan
        for file in log_files(path):
            if not file.is_file():
                return False  # a pipe or a device (process substitution): read once, by the scan alone
            try:
                size = stored_size(file)
            except OSError:
                continue  # reported by the scan
            # a gzip trailer states the last member only: a multi-member file is also judged by its compressed size
            total += max(size.text, size.disk * GZIP_RATIO) if size.gzipped else size.disk
            if total >= SMALL_INPUT_BYTES:
                return False
    return True


def _load_compiled(key: str | None):
    if key is None:
        return None
    from r53sigma.scan import compiledrun

    return compiledrun.load(key)


def _duck_engine(args: argparse.Namespace, rules, **options):
    """The DuckDB engine, or None after saying why the memory limit is refused."""
    from r53sigma.scan.duckdb_engine import DuckEngine

    try:
        return DuckEngine(rules, memory_limit=args.memory_limit, **options)
    except ValueError as error:
        print(f"scan: --memory-limit: {error}", file=sys.stderr)
        return None


def _lazy_reference(compiled, args: argparse.Namespace):
    """The reference engine of a compiled run, loading the pySigma rules as the cold run did when first asked."""
    from r53sigma.scan import compiledrun

    def load():
        from r53sigma import rules as rules_mod

        return rules_mod.load(args.rules or None, filters=args.filters)

    return compiledrun.LazyReference(compiled, load)


class _NothingScanned(Exception):
    pass


class _output:
    """stdout, or a temporary file beside FILE renamed onto it when the scan completes."""

    def __init__(self, path: Path | None):
        self.path = path

    def open(self) -> None:
        """Create the temporary file now, so that an unwritable place is told before the scan."""
        if self.path is None:
            return
        directory = self.path.resolve().parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        self.handle = os.fdopen(fd, "w", encoding="utf-8")

    def __enter__(self) -> TextIO:
        if self.path is None:
            return sys.stdout
        if not hasattr(self, "handle"):
            self.open()
        return self.handle

    def discard(self) -> None:
        """Remove the temporary file if it was not renamed onto FILE (whatever stopped the scan)."""
        if getattr(self, "tmp", None):
            Path(self.tmp).unlink(missing_ok=True)

    def __exit__(self, kind, value, traceback) -> None:
        if self.path is None:
            sys.stdout.flush()
            return
        self.handle.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def _umask() -> int:
    current = os.umask(0o077)
    os.umask(current)
    return current


def _summary(chosen, counts: Counter, events: int, files: set[str], problems: list[ReadError], err: TextIO) -> None:
    rows = [("alerts", "level", "rule")]
    for rule in sorted(chosen, key=lambda r: (-counts[str(r.id or r.name or '')], r.title)):
        count = counts[str(rule.id or rule.name or "")]
        if count:
            rows.append((str(count), getattr(rule.level, "name", "-").lower(), rule.title))
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for row in rows:
            print(f"{row[0].rjust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}", file=err)
    if problems:
        print(f"{len(problems)} line(s) or file(s) skipped:", file=err)
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            print(f"  {problem}", file=err)
        if len(problems) > MAX_PROBLEMS_SHOWN:
            print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=err)
    total = sum(counts.values())
    print(
        f"scanned {events} events from {len(files)} file(s) with {len(chosen)} rules: "
        f"{total} alert(s) from {len([c for c in counts.values() if c])} rule(s), {len(problems)} skipped",
        file=err,
    )


def _duckdb_installed() -> bool:
    return importlib.util.find_spec("duckdb") is not None
