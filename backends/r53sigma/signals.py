"""SIGINT and SIGTERM as exceptions in the main thread, so that every `with` and `finally` cleans up
(temporary files) and a command can print what it did before it stopped.

A library may wrap the exception our handler raised in its own (DuckDB: "Query interrupted"):
:func:`received` tells a caller that such an error is really the signal.
"""
from __future__ import annotations

import signal
import threading

_received: list[int] = []


class Terminated(BaseException):
    """SIGTERM (Ctrl-C is KeyboardInterrupt as usual)."""


def _on_signal(signum, frame):
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def install() -> dict:
    """Install the handlers (main thread only); returns the previous ones for :func:`restore`."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def received() -> int | None:
    """The first signal received since :func:`install`, if any."""
    return _received[0] if _received else None


def exit_code() -> int:
    return 128 + (received() or signal.SIGINT)


def is_stop(error: BaseException) -> bool:
    """True when ``error`` is (or stands for) Ctrl-C or SIGTERM."""
    return isinstance(error, (KeyboardInterrupt, Terminated)) or received() is not None
