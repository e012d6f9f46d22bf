"""The packaged-rule record: one rule converted for one target, with what every package needs besides
the query (log source, schedule, investigation note).

A low module on purpose: `package` builds these and the targets' package renderers read them, so
neither imports the other (no import cycle).
"""
from __future__ import annotations

from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationRule

from r53sigma import conversion
from r53sigma.schedule import Schedule

__all__ = ["PackagedRule", "Schedule"]


@dataclass
class PackagedRule:
    """One rule converted for one target, with what every package needs besides the query."""

    conversion: conversion.Conversion
    source: str  # catalogue log source: resolver, public_zone, cloudtrail
    schedule: Schedule
    note: str  # Markdown: investigation guide and blind spots

    @property
    def rule(self):
        return self.conversion.rule

    @property
    def is_correlation(self) -> bool:
        return isinstance(self.rule, SigmaCorrelationRule)

    @property
    def is_hunting(self) -> bool:
        """`purpose: hunting`: packaged for analysts to run, never scheduled or enabled as an alert."""
        return str((self.rule.custom_attributes or {}).get("purpose", "alert")) == "hunting"

    @property
    def query(self) -> str:
        return self.conversion.query or ""

