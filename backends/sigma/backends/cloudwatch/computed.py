"""Fields a Logs Insights query computes itself: the catalogue's derived fields, and the values of
JSON array members a correlation groups or counts by.

A computed field is a `fields <expression> as <name>` ahead of the commands that read it (AWS,
"fields", https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Fields.html: "You
can use the fields command with the keyword as to create extracted fields that use fields and
functions in your log events ... the extracted field can be used in the rest of your query").
"""
from __future__ import annotations

import re
from typing import Callable

from sigma.rule import SigmaDetectionItem

from . import patterns
from .support import unsupported


def derived_expression(name: str, derived: dict, quote: Callable[[str], str]) -> str:
    """The Logs Insights expression of one derived field (the pipeline's `derived` fact)."""
    source = quote(derived["from"])
    if derived["by"] == "name_length":
        # strlen counts Unicode code points (AWS, "String functions"), as the reference engine's len()
        # does; the engine counts the name without ONE trailing dot, dropped from a value longer than
        # one character (the source field's strip_trailing_dot), which `(?s).\.\z` finds
        if derived.get("strip_trailing_dot"):
            return f"strlen({source}) - if({source} =~ /(?s).\\.\\z/, 1, 0)"
        return f"strlen({source})"
    raise unsupported(f"the derived field '{name}' ({derived['by']}) has no Logs Insights expression")


def detection_fields(rule) -> set[str]:
    """The field names a (processed) rule's detections test."""
    def walk(node) -> set[str]:
        if isinstance(node, SigmaDetectionItem):
            return {node.field} if node.field else set()
        return set().union(set(), *(walk(item) for item in getattr(node, "detection_items", [])))
    return set().union(set(), *(walk(d) for d in rule.detection.detections.values()))


def with_derived(fields_line: str, names, facts: dict, quote: Callable[[str], str]) -> str:
    """The `fields` line plus `<expression> as <name>` for each derived field among `names` it lacks."""
    for name in sorted(n for n in set(names) if n and facts.get(n, {}).get("derived")):
        item = f"{derived_expression(name, facts[name]['derived'], quote)} as {quote(name)}"
        if item not in fields_line:
            fields_line += ", " + item
    return fields_line


def unnest_array_members(rule, correlation_type: str, group_fields: list[str], value_field: str | None, facts: dict,
                         holds_at_zero: bool) -> tuple[list[str], dict]:
    """Group-by or value_count fields under a JSON array: Logs Insights flattens the array by index
    (`answers.0.Rdata`), so `answers.Rdata` names no field. The documented `unnest` (one record per
    element of the LIST `jsonParse` makes) gives each element's value; an event then appears once
    per element, which `count_distinct` and the temporal `> 0` markers do not notice, and which is
    refused where it would count (`event_count`). Returns the commands and each field's new name."""
    members = list(dict.fromkeys(f for f in group_fields + [value_field] if f and facts.get(f, {}).get("array")))
    if not members:
        return [], {}
    reason = None
    if len(members) > 1:
        reason = f"several array members ({', '.join(members)}) in one correlation: unnest ties them to one element, the engine pairs every value"
    elif facts[members[0]].get("element_depth", 0):
        reason = f"'{members[0]}' lies in nested JSON arrays (one unnest reaches one level)"
    elif correlation_type == "event_count":
        reason = f"event_count grouped by the array member '{members[0]}': unnest repeats an event per element, and Logs Insights documents no per-event key to count it once"
    elif correlation_type == "value_count" and members[0] == value_field and holds_at_zero:
        reason = f"value_count of the array member '{value_field}' with a condition that holds for 0 values: events without elements leave no record after unnest"
    if reason:
        raise unsupported(f"{reason} (rule '{rule.title}')", rule)
    field = members[0]
    fact = facts[field]
    element = fact["member"]
    value = patterns.one_trailing_dot_dropped(f"r53_element.{element}") if fact.get("strip_trailing_dot") else f"r53_element.{element}"
    name = re.sub(r"[^A-Za-z0-9_]", "_", field)
    commands = [
        "| fields jsonParse(@message) as r53_record",
        f"| unnest r53_record.{fact['array']} into r53_element",
        f"| fields {value} as {name}",
    ]
    return commands, {field: name}
