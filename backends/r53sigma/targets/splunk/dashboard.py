"""The app's Route 53 overview: a Dashboard Studio dashboard (`<dashboard version="2">` holding the JSON
definition) built from the catalogue: sourcetypes and the Splunk names of each DNS role.

Panels: query volume by log source, queries by source and type, top domains, NXDOMAIN and SERVFAIL
rates, DNS Firewall blocks, and the pack's alerts by rule (the `_audit` index's `alert_fired`
events of this app's searches, with their labels). The definition's shape follows Splunk's Dashboard
Studio source reference (title, dataSources, visualizations, inputs, layout, defaults); tests check it
against schemas/splunk_dashboard_studio.json.
"""
from __future__ import annotations

import json
from xml.sax.saxutils import escape

from r53sigma import catalogue

TARGET = "splunk"
VIEW = "r53sigma_route53_overview"
TITLE = "Route 53 overview"
DNS_SOURCES = ("resolver", "public_zone")  # the DNS query logs (CloudTrail has no queries)
TIME_TOKEN = "global_time"


def _role(source: catalogue.LogSource, role: str) -> str | None:
    found = source.with_role(role)
    return found.target(TARGET).name if found else None


def _quoted(name: str) -> str:
    """A field name as SPL's eval and stats read it: single quotes when it has dots or braces."""
    return name if name.replace("_", "").isalnum() else "'" + name.replace("'", "") + "'"


def dns_base() -> str:
    """Every DNS query log, with `log_source`, `query_name`, `query_type` and `response_code` named
    the same whichever source a record came from."""
    sources = [catalogue.load()[name] for name in DNS_SOURCES]
    sourcetypes = " OR ".join(f'sourcetype="{s.targets[TARGET]["sourcetype"]}"' for s in sources)

    def unify(role: str) -> str:
        cases = ", ".join(
            f'sourcetype="{s.targets[TARGET]["sourcetype"]}", {_quoted(_role(s, role))}' for s in sources if _role(s, role)
        )
        return f"case({cases})"

    log_source = ", ".join(f'sourcetype="{s.targets[TARGET]["sourcetype"]}", "{s.source}"' for s in sources)
    return (f"({sourcetypes})\n| eval log_source=case({log_source}), query_name={unify('question_name')}, "
            f"query_type={unify('question_type')}, response_code=upper({unify('response_code')})")


def data_sources(app: str) -> dict:
    resolver = catalogue.load()["resolver"]
    firewall = _role(resolver, "firewall_action")
    base = dns_base()
    queries = {
        "ds_volume": ("Query volume by log source", f"{base}\n| timechart count by log_source"),
        "ds_types": ("Queries by log source and type", f"{base}\n| stats count by log_source, query_type\n| sort - count"),
        "ds_domains": ("Top queried domains", f"{base}\n| stats count by query_name\n| sort - count\n| head 20"),
        "ds_rcodes": ("NXDOMAIN and SERVFAIL rates", (
            f"{base}\n| timechart count as total, count(eval(response_code=\"NXDOMAIN\")) as nxdomain, "
            "count(eval(response_code=\"SERVFAIL\")) as servfail\n"
            "| eval \"NXDOMAIN %\"=round(100*nxdomain/total, 2), \"SERVFAIL %\"=round(100*servfail/total, 2)\n"
            "| fields _time, \"NXDOMAIN %\", \"SERVFAIL %\""
        )),
        "ds_blocks": ("DNS Firewall blocks", (
            f'sourcetype="{resolver.targets[TARGET]["sourcetype"]}" {_quoted(firewall)}="BLOCK"\n'
            f"| stats count by {_quoted(_role(resolver, 'question_name'))}, {_quoted(_role(resolver, 'source_ip'))}\n"
            "| sort - count\n| head 20"
        )),
        "ds_alerts": ("Alerts by rule", (
            f'index=_audit action=alert_fired ss_app="{app}"\n| stats count as alerts, latest(_time) as last_alert by ss_name\n'
            f"| join type=left ss_name [| rest splunk_server=local /servicesNS/-/{app}/saved/searches "
            "| rename title as ss_name, \"action.correlationsearch.label\" as rule | fields ss_name, rule]\n"
            "| eval rule=coalesce(rule, ss_name), last_alert=strftime(last_alert, \"%F %T\")\n"
            "| table rule, alerts, last_alert\n| sort - alerts"
        )),
    }
    return {key: {"type": "ds.search", "name": name, "options": {"query": query}} for key, (name, query) in queries.items()}


VISUALIZATIONS = {  # id: (type, data source, title, layout x, y, w, h)
    "viz_volume": ("splunk.line", "ds_volume", "Query volume by log source", 0, 0, 720, 300),
    "viz_types": ("splunk.table", "ds_types", "Queries by log source and type", 720, 0, 720, 300),
    "viz_domains": ("splunk.table", "ds_domains", "Top queried domains", 0, 300, 720, 360),
    "viz_rcodes": ("splunk.line", "ds_rcodes", "NXDOMAIN and SERVFAIL rates (% of queries)", 720, 300, 720, 360),
    "viz_blocks": ("splunk.table", "ds_blocks", "DNS Firewall blocks (Resolver)", 0, 660, 720, 360),
    "viz_alerts": ("splunk.table", "ds_alerts", "r53sigma alerts by rule", 720, 660, 720, 360),
}


def definition(app: str) -> dict:
    return {
        "title": TITLE,
        "description": "Route 53 Resolver and public hosted-zone query logs, DNS Firewall blocks and the r53sigma alerts.",
        "inputs": {
            "input_time": {"type": "input.timerange", "title": "Time range",
                           "options": {"token": TIME_TOKEN, "defaultValue": "-24h@h,now"}},
        },
        "defaults": {"dataSources": {"ds.search": {"options": {"queryParameters": {
            "earliest": f"${TIME_TOKEN}.earliest$", "latest": f"${TIME_TOKEN}.latest$"}}}}},
        "dataSources": data_sources(app),
        "visualizations": {
            key: {"type": kind, "title": title, "dataSources": {"primary": source}}
            for key, (kind, source, title, *_layout) in VISUALIZATIONS.items()
        },
        "layout": {
            "type": "absolute",
            "options": {"width": 1440, "height": 1020},
            "globalInputs": ["input_time"],
            "structure": [
                {"item": key, "type": "block", "position": {"x": x, "y": y, "w": w, "h": h}}
                for key, (_kind, _source, _title, x, y, w, h) in VISUALIZATIONS.items()
            ],
        },
    }


def view_xml(app: str) -> str:
    body = json.dumps(definition(app), indent=2, sort_keys=True)
    assert "]]>" not in body  # would end the CDATA section
    return (
        '<dashboard version="2" theme="light">\n'
        f"  <label>{escape(TITLE)}</label>\n"
        f"  <description>{escape(definition(app)['description'])}</description>\n"
        f"  <definition><![CDATA[\n{body}\n]]></definition>\n"
        "</dashboard>\n"
    )
