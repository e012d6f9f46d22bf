"""Helpers the package tests share (no tests here): builds of the bundled rules and of inline rules."""
from __future__ import annotations

import functools
import textwrap
import uuid
from pathlib import Path

from r53sigma import conversion, package

TARGETS = list(conversion.siem_targets())


@functools.cache
def bundled_build() -> package.Build:
    """The build of the bundled rules, once per test session."""
    return package.build()


@functools.cache
def bundled_conversions() -> dict[tuple[str, str], conversion.Conversion]:
    """(target, rule id) -> conversion of the bundled rules, straight from r53sigma.conversion."""
    conversions, _ = conversion.convert_paths(None, TARGETS)
    return {(c.target, c.rule_id): c for c in conversions}


def text(build: package.Build, path: str) -> str:
    return build.files[path].decode("utf-8")


def resolver_rule(title: str, detection: str, *, level: str = "low", extra: str = "",
                  tags: tuple[str, ...] = ("attack.command-and-control", "attack.t1071.004"), rule_id: str | None = None) -> str:
    """A complete Resolver rule file around an inline detection block."""
    tag_lines = "".join(f"\n    - {t}" for t in tags)
    return f"""\
title: {title}
id: {rule_id or uuid.uuid5(uuid.NAMESPACE_URL, title)}
status: test
description: Test rule {title}.
author: tests
date: 2024-01-01
references:
    - https://example.org/{title.replace(' ', '-')}
tags:{tag_lines}
logsource:
    product: aws
    service: route53resolver
detection:
{textwrap.indent(textwrap.dedent(detection).strip(), '    ')}
falsepositives:
    - Test traffic.
level: {level}
{textwrap.dedent(extra).strip()}
"""


def write_rules(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, content in files.items():
        (folder / f"{stem}.yml").write_text(content, encoding="utf-8")
    return folder


def build_rules(folder: Path, **files: str) -> package.Build:
    return package.build([write_rules(folder, **files)])


EXAMPLE = resolver_rule(
    "Example Domain Queried",
    """
    selection:
        query_name: evil.example
    condition: selection
    """,
    level="high",
    extra="""
    investigation: |
        1. Find the instance behind srcaddr.
    blind_spots:
        - Cached answers are not logged.
    """,
)
# |re on an array member: the CloudWatch backend refuses it, Elasticsearch and Splunk convert it.
NOT_FOR_CLOUDWATCH = resolver_rule(
    "Answer Matches A Regular Expression",
    """
    selection:
        answers.Rdata|re: '^10\\.'
    condition: selection
    """,
)


def break_cloudwatch_for(monkeypatch, title: str) -> None:
    """Make the CloudWatch conversion of one rule fail as a backend bug would (a real failure)."""
    from sigma.backends.cloudwatch import backends
    from sigma.exceptions import SigmaError

    backend = backends["cloudwatch"]
    original = backend.convert_rule

    def convert_rule(self, rule, *args, **kwargs):
        if rule.title == title:
            raise SigmaError("simulated conversion failure")
        return original(self, rule, *args, **kwargs)

    monkeypatch.setattr(backend, "convert_rule", convert_rule)
