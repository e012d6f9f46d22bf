"""The `r53sigma` command line: every module in r53sigma.commands is a sub-command."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

from r53sigma import __version__, commands, help_examples, signals


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r53sigma",
        description="Sigma detections for Amazon Route 53 logs: convert, test, scan, verify, package, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"r53sigma {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    help_examples.add_examples(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signals.install()
    try:
        return args.func(args)
    except BrokenPipeError:  # `r53sigma ... | head` is fine
        return 0
    except (KeyboardInterrupt, signals.Terminated, Exception) as error:
        if not signals.is_stop(error):
            raise
        print("terminated" if signals.received() == signal.SIGTERM else "interrupted", file=sys.stderr)
        return signals.exit_code()
    finally:
        signals.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
