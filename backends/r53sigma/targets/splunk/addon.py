"""A Splunk technology add-on for Route 53 logs, rendered from the field catalogue.

`TA-r53sigma-route53/default/`: props.conf, transforms.conf, eventtypes.conf, tags.conf, app.conf.
Resolver records (one JSON object per line) are extracted with `KV_MODE = json`: nested names are
dotted, arrays become multivalue `answers{}.Rdata`. Fields whose Splunk name in the catalogue
differs get a `FIELDALIAS` (same value) or, when the catalogue strips a trailing dot, an `EVAL`
(`mvmap` over arrays so `answer` holds every answer). Public hosted-zone lines are extracted by a
`REPORT` regex straight into the catalogue's Splunk names. CloudTrail (`aws:cloudtrail`) is the
Splunk Add-on for AWS's sourcetype: nothing to add, rules use its raw names.
"""
from __future__ import annotations

from dataclasses import dataclass

from r53sigma import catalogue
from r53sigma.catalogue import Field, LogSource

TARGET = "splunk"
APP = "TA-r53sigma-route53"
TIME = "_time"
ADDON_SOURCES = ("resolver", "public_zone")
VENDOR_PRODUCT = {ls.source: ls.targets["splunk"]["vendor_product"]
                  for ls in catalogue.log_sources() if "vendor_product" in ls.targets["splunk"]}
CIM_TAGS = ("network", "resolution", "dns")  # CIM Network_Resolution
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # fractional seconds, when present, follow and are ignored
TRAILING_DOT = r'"\.$"'
HEADER = "# Rendered by `r53sigma mappings` from mappings/catalogue/*.yml: do not edit by hand.\n"


@dataclass(frozen=True)
class Extraction:
    """How one Splunk field comes to be: `alias` / `strip_dot` of `source`, or `regex` (public zone)."""

    name: str
    kind: str
    source: str | None = None
    multivalue: bool = False


def splunk_name(field: Field) -> str:
    return field.target(TARGET).name


def json_name(field: Field) -> str:
    """The name KV_MODE=json gives a raw field: dotted, `{}` after an array."""
    if field.array:
        return f"{field.array}{{}}{field.name[len(field.array):]}"
    return field.name


def quoted(name: str) -> str:
    return f"'{name}'" if not name.replace("_", "a").isalnum() else name


def json_extractions(log_source: LogSource) -> list[Extraction]:
    found = []
    for f in log_source.fields.values():
        name, source = splunk_name(f), json_name(f)
        if name == TIME or name == source:
            continue
        kind = "strip_dot" if f.strip_trailing_dot else "alias"
        found.append(Extraction(name, kind, source, multivalue=bool(f.array)))
    return found


def eval_expression(extraction: Extraction) -> str:
    source = quoted(extraction.source)
    if extraction.multivalue:
        return f"mvmap({source}, replace({source}, {TRAILING_DOT}, \"\"))"
    return f"replace({source}, {TRAILING_DOT}, \"\")"


def derived_evals(log_source: LogSource) -> list[tuple[str, str]]:
    """Derived fields an eval computes: `len()` of the source without its dot. Calculated fields are
    evaluated independently of each other, so the expression reads the extracted field, not its EVAL."""
    evals = []
    for f in log_source.derived.values():
        if TARGET in f.targets and f.derived.by == "name_length":
            source = quoted(json_name(log_source.fields[f.derived.source_field]))
            evals.append((splunk_name(f), f"len(replace({source}, {TRAILING_DOT}, \"\"))"))
    return evals


def column_regex(log_source: LogSource) -> str:
    """PCRE over a public hosted-zone line capturing each column under its Splunk name."""
    parts = []
    for column in log_source.columns:
        f = log_source.fields[column]
        name = splunk_name(f)
        if name == TIME:
            parts.append(r"\S+")
        elif f.strip_trailing_dot:
            parts.append(rf"(?:-|(?<{name}>\S+?)\.?)")
        else:
            parts.append(rf"(?:-|(?<{name}>\S+))")
    return "^" + " ".join(parts) + r"(?: .*)?$"


def report_name(log_source: LogSource) -> str:
    return f"r53sigma_{log_source.source}_fields"


def eventtype(log_source: LogSource) -> str:
    return f"r53sigma_route53_{log_source.source}"


def _stanza(name: str, settings: list[tuple[str, str]]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in settings)


def props_conf(sources: list[LogSource]) -> str:
    stanzas = []
    for ls in sources:
        timestamp = ls.fields[ls.timestamp]
        settings = [("SHOULD_LINEMERGE", "false"), ("LINE_BREAKER", r"([\r\n]+)"), ("TRUNCATE", "100000")]
        if ls.format == "json":
            settings += [
                ("KV_MODE", "json"),
                ("TIME_PREFIX", rf'"{timestamp.name}"\s*:\s*"'),
            ]
        else:
            position = ls.columns.index(ls.timestamp)
            settings += [("KV_MODE", "none"), ("TIME_PREFIX", "^" + r"\S+\s" * position)]
        settings += [("TIME_FORMAT", TIME_FORMAT), ("MAX_TIMESTAMP_LOOKAHEAD", "32"), ("TZ", "UTC")]
        if ls.format == "json":
            for e in json_extractions(ls):
                if e.kind == "alias":
                    settings.append((f"FIELDALIAS-r53sigma_{e.name}", f"{quoted(e.source)} AS {e.name}"))
                else:
                    settings.append((f"EVAL-{e.name}", eval_expression(e)))
        else:
            settings.append(("REPORT-r53sigma_fields", report_name(ls)))
        for name, expression in derived_evals(ls):
            settings.append((f"EVAL-{name}", expression))
        settings.append(("EVAL-vendor_product", f'"{VENDOR_PRODUCT[ls.source]}"'))
        stanzas.append(_stanza(ls.targets[TARGET]["sourcetype"], settings))
    return HEADER + "\n".join(stanzas)


def transforms_conf(sources: list[LogSource]) -> str:
    stanzas = [_stanza(report_name(ls), [("REGEX", column_regex(ls))]) for ls in sources if ls.columns]
    return HEADER + "\n".join(stanzas)


def eventtypes_conf(sources: list[LogSource]) -> str:
    stanzas = [
        _stanza(eventtype(ls), [("search", f'sourcetype="{ls.targets[TARGET]["sourcetype"]}"')]) for ls in sources
    ]
    return HEADER + "\n".join(stanzas)


def tags_conf(sources: list[LogSource]) -> str:
    stanzas = [_stanza(f"eventtype={eventtype(ls)}", [(tag, "enabled") for tag in CIM_TAGS]) for ls in sources]
    return HEADER + "\n".join(stanzas)


def app_conf() -> str:
    from r53sigma import __version__

    return HEADER + "\n".join(
        [
            _stanza("install", [("is_configured", "false")]),
            _stanza("ui", [("is_visible", "false"), ("label", "r53sigma Route 53 add-on")]),
            _stanza("launcher", [("author", "r53sigma"), ("version", __version__),
                                 ("description", "CIM Network_Resolution fields for Route 53 Resolver and public hosted-zone query logs")]),
            _stanza("package", [("id", APP)]),
        ]
    )


def addon_sources() -> list[LogSource]:
    return [catalogue.load()[name] for name in ADDON_SOURCES]


def render() -> dict[str, str]:
    sources = addon_sources()
    base = f"splunk/{APP}/default"
    return {
        f"{base}/app.conf": app_conf(),
        f"{base}/props.conf": props_conf(sources),
        f"{base}/transforms.conf": transforms_conf(sources),
        f"{base}/eventtypes.conf": eventtypes_conf(sources),
        f"{base}/tags.conf": tags_conf(sources),
    }
