"""The field/value view Splunk search has of one raw record with the pack's add-on installed.

`event_from_raw` gives what `KV_MODE = json` (or the public hosted-zone `REPORT` regex) extracts,
plus the add-on's aliases and evals, its CIM tags (`tag`), `_time` (Unix seconds), `sourcetype` and `_raw`. Multivalue
fields (from JSON arrays) are lists; every value is a string, as in Splunk. Tests check it against
an interpretation of the rendered props.conf / transforms.conf.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from r53sigma import catalogue

from . import addon


def detect_source(raw_record: Any) -> str:
    if isinstance(raw_record, str):
        text = raw_record.strip()
        if not text.startswith("{"):
            return "public_zone"
        raw_record = json.loads(text)
    if isinstance(raw_record, dict) and ("eventSource" in raw_record or "eventName" in raw_record):
        return "cloudtrail"
    return "resolver"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def json_fields(value, prefix: str = "", out: dict | None = None, in_array: bool = False) -> dict[str, Any]:
    """Splunk's JSON extraction: dotted names, `{}` for arrays, lists for multivalue."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            json_fields(item, f"{prefix}.{key}" if prefix else key, out, in_array)
    elif isinstance(value, list):
        for item in value:
            json_fields(item, f"{prefix}{{}}", out, True)
    elif value is not None:
        if in_array:
            out.setdefault(prefix, []).append(_text(value))
        else:
            out[prefix] = _text(value)
    return out


def _epoch(text: str) -> float | None:
    try:
        stamp = datetime.strptime(text[:19], addon.TIME_FORMAT)
    except (TypeError, ValueError):
        return None
    return stamp.replace(tzinfo=timezone.utc).timestamp()


def _strip_dot(value):
    if isinstance(value, list):
        return [re.sub(r"\.$", "", v) for v in value]
    return re.sub(r"\.$", "", value)


def event_from_raw(raw_record: Any, source: str | None = None) -> dict[str, Any]:
    source = source or detect_source(raw_record)
    log_source = catalogue.load()[source]
    text = raw_record if isinstance(raw_record, str) else json.dumps(raw_record)
    event: dict[str, Any] = {"_raw": text, "sourcetype": log_source.targets[addon.TARGET]["sourcetype"]}
    timestamp = None
    if log_source.format == "json":
        record = json.loads(text) if isinstance(raw_record, str) else raw_record
        event.update(json_fields(record))
        timestamp = record.get(log_source.timestamp) if isinstance(record, dict) else None
        if source in addon.ADDON_SOURCES:
            for e in addon.json_extractions(log_source):
                if e.source in event:
                    value = event[e.source]
                    event[e.name] = _strip_dot(value) if e.kind == "strip_dot" else value
    else:
        line = text.strip()
        columns = line.split(" ")
        if len(columns) >= len(log_source.columns):
            for column, value in zip(log_source.columns, columns):
                f = log_source.fields[column]
                name = addon.splunk_name(f)
                if name == addon.TIME:
                    timestamp = value
                elif value != "-":
                    event[name] = _strip_dot(value) if f.strip_trailing_dot else value
    if source in addon.ADDON_SOURCES:
        for f in log_source.derived.values():  # the add-on's len() evals
            if addon.TARGET in f.targets and f.derived.by == "name_length":
                value = event.get(addon.json_name(log_source.fields[f.derived.source_field]))
                if isinstance(value, str):
                    event[addon.splunk_name(f)] = str(len(_strip_dot(value)))
        event["vendor_product"] = addon.VENDOR_PRODUCT[source]
        event["tag"] = list(addon.CIM_TAGS)  # the add-on's eventtype for the sourcetype carries these tags
    if timestamp is not None and _epoch(timestamp) is not None:
        event["_time"] = _epoch(timestamp)
    return event
