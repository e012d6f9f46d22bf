"""SIGINT and SIGTERM as exceptions in the main thread, so that every `with` and `finally` cleans up
(temporary files) and a command can print what it did before it stopped.

A library may wrap the exception our handler raised in its own (DuckDB: "Query interrupted"):
:func:`received` tells a caller that such an error is really the signal. A thread blocked in C code
(a long DuckDB query) runs no Python handler, so the signal also wakes a watcher thread (through
``signal.set_wakeup_fd``) that calls what :func:`on_stop` registered, e.g. a connection's interrupt.
"""
from __future__ import annotations

import os
import signal
import threading
import weakref

_received: list[int] = []
_stoppers: "weakref.WeakSet | set" = set()
_watcher: dict = {}


class Terminated(BaseException):
    """SIGTERM (Ctrl-C is KeyboardInterrupt as usual)."""


def _on_signal(signum, frame):
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def on_stop(callback) -> None:
    """Call ``callback()`` from the watcher thread when SIGINT/SIGTERM arrives (while installed)."""
    _stoppers.add(callback)


def forget(callback) -> None:
    """No longer call ``callback`` (its owner is gone: a connection is freed with its engine, not kept until
    the next :func:`install`)."""
    _stoppers.discard(callback)


def _watch(read_fd: int) -> None:
    # The read end is this thread's own: closed here, at the end of the pipe (restore() closes the write
    # end). Closed by anyone else, its number could be reused by a file opened after, and a watcher first
    # scheduled late would read that file's bytes away.
    try:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):
                    _received.append(signum)
                    for callback in list(_stoppers):
                        try:
                            callback()
                        except Exception:  # noqa: BLE001 - a stopper that fails must not kill the watcher
                            pass
    finally:
        os.close(read_fd)


def install() -> dict:
    """Install the handlers (main thread only); returns the previous ones for :func:`restore`."""
    _received.clear()
    _stoppers.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous["wakeup"] = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _watcher.update(write=write_fd)
    threading.Thread(target=_watch, args=(read_fd,), daemon=True, name="r53sigma-signals").start()
    return previous


def restore(previous: dict) -> None:
    wakeup = previous.pop("wakeup", None)
    if wakeup is not None:
        signal.set_wakeup_fd(wakeup)
        fd = _watcher.pop("write", None)
        if fd is not None:  # the watcher then reads the end of its pipe and closes the read end itself
            try:
                os.close(fd)
            except OSError:
                pass
    _stoppers.clear()
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
