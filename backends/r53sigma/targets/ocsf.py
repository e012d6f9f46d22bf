"""OCSF names of the catalogued fields (Security Lake, CloudWatch `parseToOCSF`), as a mapping table.

Resolver and public hosted-zone logs are OCSF DNS Activity (class 4003); CloudTrail records are API
Activity (class 6003). A JSON file per log source (raw name -> OCSF attribute path) and a table.
"""
from __future__ import annotations

from typing import Any

from r53sigma import catalogue

TARGET = "ocsf"
OCSF_CLASS = {
    "resolver": "DNS Activity (4003)",
    "public_zone": "DNS Activity (4003)",
    "cloudtrail": "API Activity (6003)",
}


def field_mapping(source: str) -> dict[str, str]:
    """Raw field name -> OCSF attribute path (array elements keep OCSF's `answers[].x` spelling)."""
    log_source = catalogue.load()[source]
    mapping = {}
    for f in log_source.fields.values():
        name = f.target(TARGET).name
        if f.array and "." in name:
            array, leaf = name.rsplit(".", 1)
            name = f"{array}[].{leaf}"
        mapping[f.name] = name
    return mapping


def table() -> str:
    lines = []
    for log_source in catalogue.log_sources():
        lines += [
            f"## {log_source.title}: {OCSF_CLASS[log_source.source]}",
            "",
            "| raw field | OCSF attribute | type |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{raw}` | `{ocsf}` | {log_source.fields[raw].type} |"
            for raw, ocsf in field_mapping(log_source.source).items()
        ]
        lines.append("")
    return "\n".join(lines)


def render() -> dict[str, Any]:
    files: dict[str, Any] = {
        f"ocsf/{ls.source}.json": {"class": OCSF_CLASS[ls.source], "fields": field_mapping(ls.source)}
        for ls in catalogue.log_sources()
    }
    files["ocsf/README.md"] = (
        "# OCSF mapping of the Route 53 fields\n\n"
        "Rendered by `r53sigma mappings` from mappings/catalogue/*.yml: do not edit by hand.\n"
        "For Amazon Security Lake and CloudWatch Logs `parseToOCSF` (OCSF 1.1). The pack's rules use the raw\n"
        "names; this table tells a Security Lake user where each one lives.\n\n" + table()
    )
    return files
