"""When a packaged rule runs and how far back it looks: one target-neutral derivation for every target.

A run at time ``t`` searches ``[t - lookback, t]`` on the event's own time. An event that happened at
``e`` arrives (becomes searchable) by ``e + delay``, where ``delay`` is the latest delivery the
catalogue documents for the rule's log source (``delivery`` in mappings/catalogue/<source>.yml). A
correlation needs every event of a burst, up to ``span`` (its timespan) apart, in one run. With runs
every ``interval`` minutes, the first run at or after a burst's last arrival is less than
``interval`` later, so

    lookback = interval + delay + span

puts the whole burst inside that run's window: no event delivered within the documented delay is
missed. Runs then overlap, so a target must also drop the repeats: Splunk bounds single-event searches
by index time and throttles correlations by group (targets/splunk/app.py); the other targets do it
their own way on top of the same numbers.

A rule may set its own ``schedule: {interval: 10m, lookback: 1h}`` (custom attribute); a look-back
shorter than the formula is refused, since it would miss late events.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationRule

from r53sigma.catalogue import LogSource

DEFAULT_INTERVAL = 5  # minutes between runs of a single-event rule (Kibana's default)
ATTRIBUTE = "schedule"  # rule custom attribute: {interval: 10m, lookback: 20m}
DURATION = re.compile(r"^([1-9][0-9]*)([mh])$")


class ScheduleError(ValueError):
    """A rule asks for a schedule that cannot be honoured."""


@dataclass(frozen=True)
class Schedule:
    """Minutes: how often a rule runs, how far back each run looks, and what the look-back covers."""

    interval: int
    lookback: int  # >= interval + delay + span
    delay: int = 0  # the log source's latest documented delivery
    span: int = 0  # the correlation's timespan (0 for a single-event rule)


def span_minutes(rule) -> int:
    """A correlation's timespan in whole minutes (rounded up); 0 for a single-event rule."""
    if isinstance(rule, SigmaCorrelationRule) and rule.timespan:
        return max(1, -(-rule.timespan.seconds // 60))
    return 0


def required_lookback(interval: int, delay: int, span: int) -> int:
    return interval + delay + span


def runs_on_cron(interval: int) -> bool:
    """Whether a cron expression can run every ``interval`` minutes (a divisor of an hour or of a day)."""
    if interval < 60:
        return 60 % interval == 0
    return interval % 60 == 0 and 24 % (interval // 60) == 0


def derive(rule, source: LogSource, via: tuple[str, ...] | None = None) -> Schedule:
    """The schedule of ``rule`` over ``source``; ``via`` narrows the deliveries a target reads
    (CloudWatch reads only ``("cloudwatch_logs",)``), by default the latest of all is planned for."""
    delay = source.delay_minutes(via)
    span = span_minutes(rule)
    interval = max(DEFAULT_INTERVAL, span)
    given = (rule.custom_attributes or {}).get(ATTRIBUTE)
    lookback = None
    if given is not None:
        if not isinstance(given, dict) or not set(given) <= {"interval", "lookback"}:
            raise ScheduleError(f"rule {rule.title!r}: schedule must be a mapping of interval and lookback")
        if "interval" in given:
            interval = _minutes(given["interval"], f"rule {rule.title!r}: schedule interval")
        if "lookback" in given:
            lookback = _minutes(given["lookback"], f"rule {rule.title!r}: schedule lookback")
    if not runs_on_cron(interval):
        raise ScheduleError(f"rule {rule.title!r}: schedule interval {interval}m divides neither 60 minutes nor 24 hours")
    needed = required_lookback(interval, delay, span)
    if lookback is None:
        lookback = needed
    elif lookback < needed:
        raise ScheduleError(
            f"rule {rule.title!r}: schedule lookback {lookback}m is shorter than interval {interval}m + "
            f"{source.source} delivery delay {delay}m + timespan {span}m = {needed}m: late events would be missed"
        )
    return Schedule(interval, lookback, delay, span)


def _minutes(text, what: str) -> int:
    match = DURATION.match(str(text).strip())
    if not match:
        raise ScheduleError(f"{what} {text!r}: expected minutes or hours such as 5m or 1h")
    number, unit = int(match.group(1)), match.group(2)
    return number * (60 if unit == "h" else 1)
