"""The `r53sigma` command line: every module in r53sigma.commands is a sub-command."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading

from r53sigma import __version__, commands


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
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `with` and `finally` cleans up (temporary files)."""


_signalled: list[int] = []


def _on_signal(signum, frame):
    _signalled.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _signalled.clear()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main_thread else {}
    try:
        return args.func(args)
    except BrokenPipeError:  # `r53sigma ... | head` is fine
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        if not _signalled:
            raise
        # a library may wrap the exception our handler raised (DuckDB: "Query interrupted")
        print("terminated" if _signalled[0] == signal.SIGTERM else "interrupted", file=sys.stderr)
        return 128 + _signalled[0]
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
