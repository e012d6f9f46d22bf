"""The `r53sigma` command line: every module in r53sigma.commands is a sub-command."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

from r53sigma import __version__, commands, help_examples, signals


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the named sub-command's module is imported (start-up time)."""
    parser = argparse.ArgumentParser(
        prog="r53sigma",
        description="Sigma detections for Amazon Route 53 logs: convert, test, scan, verify, package, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"r53sigma {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    named = next((a for a in argv or [] if not a.startswith("-")), None)
    for name in [named] if named in names else names:
        importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
    help_examples.add_examples(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
