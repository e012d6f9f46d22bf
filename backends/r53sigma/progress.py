"""Scan progress on a terminal (rich): events and bytes read, alerts so far. Silent when stderr is no TTY."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator

from r53sigma.scan.records import Event, log_files

UPDATE_EVERY = 2000  # events between two updates of the display (rich redraws on its own clock)


def input_sizes(paths: Iterable[str]) -> dict[str, int]:
    """Bytes of every log file the paths name (stdin unknown)."""
    sizes: dict[str, int] = {}
    for path in paths:
        if str(path) == "-" or not Path(path).exists():
            continue
        for file in log_files(Path(path)):
            try:
                sizes[str(file)] = file.stat().st_size
            except OSError:
                pass
    return sizes


class ScanProgress:
    def __init__(self, enabled: bool, paths: Iterable[str]):
        self.events = 0
        self.alerts = 0
        self.files: set[str] = set()
        self._current: str | None = None
        self._done_bytes = 0
        self._progress = None
        self._started = time.monotonic()
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._sizes = input_sizes(paths)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._task = self._progress.add_task(self._text(), total=sum(self._sizes.values()) or None)
        self._progress.start()

    def _text(self) -> str:
        return f"{self.events:,} events, {self.alerts:,} alerts"

    def _show(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=self._text(), completed=self._done_bytes)

    def _file_finished(self, name: str | None) -> None:
        if name is not None and self._progress is not None:
            self._done_bytes += self._sizes.get(name, 0)

    def wrap(self, events: Iterable[Event]) -> Iterator[Event]:
        """Count the reference engine's events as they stream by."""
        for event in events:
            self.events += 1
            if event.file != self._current:
                self._file_finished(self._current)
                self._current = event.file
                if event.file:
                    self.files.add(event.file)
            if self.events % UPDATE_EVERY == 0:
                self._show()
            yield event
        self._file_finished(self._current)
        self._current = None
        self._show()

    def file_done(self, name: str, events: int) -> None:
        """The DuckDB engine reads whole files: count them as they finish."""
        self.events += events
        if events:
            self.files.add(name)
        self._file_finished(name)
        self._show()

    def alert(self) -> None:
        self.alerts += 1
        if self.alerts % 100 == 0:
            self._show()

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
