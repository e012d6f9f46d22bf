"""What every deploy target shares: errors, bounded retries, the plan, applying it, reporting.

A target turns its client library's exceptions into the four errors below (`classify`), builds a
list of `Action`s from the state it read, and hands them to `apply`. Auth failures and an
unreachable host stop the run (nothing after them can succeed); a rejected object costs that one
object; rate limits and transient server errors are retried with capped exponential backoff.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TextIO

CREATE, UPDATE, UNCHANGED, DELETE = "create", "update", "unchanged", "delete"
CHANGES = (CREATE, UPDATE, DELETE)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class DeployError(Exception):
    """A failure with a message meant for the person running the deploy."""

    fatal = False  # True: stop the run, later actions cannot succeed either


class Unreachable(DeployError):
    fatal = True


class AuthFailed(DeployError):
    fatal = True


class Rejected(DeployError):
    """The service refused this one object (bad request, conflict, validation)."""


class Transient(DeployError):
    """Rate limited or temporarily unavailable: worth another try."""


@dataclass
class Retry:
    """Capped exponential backoff; `sleep` is injectable so tests run at full speed."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)

    def call(self, what: str, function: Callable, classify: Callable[[BaseException], DeployError | None]):
        """Run ``function``; on a `Transient` error wait and try again, at most ``attempts`` times."""
        said = None
        for attempt in range(1, self.attempts + 1):
            try:
                return function()
            except Exception as raw:
                error = raw if isinstance(raw, DeployError) else classify(raw)
                if error is None:
                    raise
                if not isinstance(error, Transient) or attempt == self.attempts:
                    if isinstance(error, Transient):
                        error = Transient(f"{error} (gave up after {attempt} attempts)")
                    raise error from (raw if error is not raw else None)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                reason = "the same error again" if str(error) == said else str(error)  # a long body is shown once
                said = str(error)
                self.log(f"{what}: {reason}; retrying in {delay:g}s (attempt {attempt + 1} of {self.attempts})")
                self.sleep(delay)
        raise AssertionError("unreachable")


def readable(detail: str, limit: int = 300) -> str:
    """A service's error body as one short line: an HTML page (a proxy's, a load balancer's) by its title."""
    text = str(detail or "").strip()
    if re.match(r"(?is)\s*(<!doctype html|<html|<head|<body)", text):
        title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
        return "an HTML page" + (f" titled {' '.join(title.group(1).split())[:120]!r}" if title else "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def http_error(status: int | None, where: str, detail: str = "") -> DeployError:
    """The error an HTTP status means for a deploy, with the service's own words when it gave some."""
    detail = f": {readable(detail)}" if detail else ""
    if status in (401, 403):
        what = "authentication failed" if status == 401 else "permission denied"
        return AuthFailed(f"{where}: {what} (HTTP {status}){detail}; check the credentials and the privileges the README lists")
    if status in RETRY_STATUSES:
        return Transient(f"{where}: HTTP {status}{detail}")
    return Rejected(f"{where}: HTTP {status}{detail}")


@dataclass
class Action:
    """One object to create, update, delete or leave alone, and how to apply it."""

    kind: str
    name: str
    change: str
    note: str = ""
    run: Callable[[], object] | None = field(default=None, repr=False, compare=False)


@dataclass
class Outcome:
    applied: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    skipped: list[Action] = field(default_factory=list)  # not attempted after a fatal error

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def changes(plan: Iterable[Action]) -> list[Action]:
    return [a for a in plan if a.change in CHANGES]


def print_plan(target: str, plan: list[Action], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    rows = [("CHANGE", "KIND", "NAME", "NOTE")] + [(a.change, a.kind, a.name, a.note) for a in plan]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"Plan for {target}:", file=out)
    for row in rows:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + ("  " + row[3] if row[3] else "")
        print("  " + line.rstrip(), file=out)
    counts = {change: sum(1 for a in plan if a.change == change) for change in (CREATE, UPDATE, DELETE, UNCHANGED)}
    print("  " + ", ".join(f"{n} to {c}" if c != UNCHANGED else f"{n} unchanged" for c, n in counts.items()), file=out)


def apply(plan: list[Action], retry: Retry, classify: Callable[[BaseException], DeployError | None]) -> Outcome:
    """Apply each change in order; a fatal error leaves the rest not attempted."""
    outcome = Outcome()
    pending = changes(plan)
    for index, action in enumerate(pending):
        try:
            retry.call(f"{action.change} {action.kind} {action.name}", action.run, classify)
        except DeployError as error:
            outcome.failed.append((action, str(error)))
            if error.fatal:
                outcome.skipped = pending[index + 1:]
                break
        else:
            outcome.applied.append(action)
    return outcome


def print_outcome(target: str, outcome: Outcome, out: TextIO | None = None, err: TextIO | None = None) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    for action in outcome.applied:
        print(f"applied: {action.change} {action.kind} {action.name}", file=out)
    for action, message in outcome.failed:
        print(f"FAILED: {action.change} {action.kind} {action.name}: {message}", file=err)
    for action in outcome.skipped:
        print(f"not attempted: {action.change} {action.kind} {action.name}", file=err)
    total = len(outcome.applied) + len(outcome.failed) + len(outcome.skipped)
    summary = f"{target}: {len(outcome.applied)} of {total} changes applied"
    if not outcome.ok:
        summary += f", {len(outcome.failed)} failed, {len(outcome.skipped)} not attempted"
    print(summary, file=err if not outcome.ok else out)


def subset_equal(desired, current) -> bool:
    """True when everything ``desired`` says is what ``current`` holds (servers add defaults, never drop ours)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(subset_equal(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(current, list) and len(desired) == len(current) and all(
            subset_equal(d, c) for d, c in zip(desired, current)
        )
    return desired == current
