"""dist/elastic/dashboard.ndjson: a Kibana "Route 53 overview" dashboard as saved objects
(`POST /api/saved_objects/_import`), every panel a Lens chart over an ES|QL query built from the catalogue.

Panels: query volume by type per log source, top queried names, NXDOMAIN and SERVFAIL rates over time,
DNS Firewall blocks, and r53sigma alerts by rule (from `.alerts-security.alerts-*`). Each Lens object
uses the ES|QL ("textBased") data source: its layer names the query and the columns the query returns,
and its visualization refers only to those columns (tests run each query on the ES|QL model to check).
Field names come from the catalogue's roles; a log source without a role gets no panel for it.
"""
from __future__ import annotations

import json
import uuid

from r53sigma import catalogue
from r53sigma.targets.elasticsearch import kibana

DASHBOARD_FILE = "elastic/dashboard.ndjson"
NAMESPACE = uuid.UUID("5b0c4bde-4c1b-4c6e-9a3e-53a1d0b5e3a1")  # stable saved-object ids
DASHBOARD_TITLE = "r53sigma: Route 53 overview"
ALERTS_INDEX = ".alerts-security.alerts-*"
DNS_SOURCES = ("resolver", "public_zone")
TOP = 20


def _id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def _field(source: str, role: str) -> str | None:
    f = catalogue.load()[source].with_role(role)
    return f.target(kibana.TARGET).name if f else None


def _from(source: str) -> str:
    return "FROM " + ", ".join(kibana.index_patterns(source))


def panels() -> list[dict]:
    """(title, ES|QL, visualization type, x column, y columns, split column)."""
    found = []
    for source in DNS_SOURCES:
        title = catalogue.load()[source].title
        qtype, qname, rcode = (_field(source, r) for r in ("question_type", "question_name", "response_code"))
        if qtype:
            found.append({
                "title": f"{title}: queries by type",
                "esql": f"{_from(source)} | STATS queries = COUNT(*) BY {qtype} | SORT queries DESC | LIMIT {TOP}",
                "chart": "lnsXY", "x": qtype, "y": ["queries"],
            })
        if qname:
            found.append({
                "title": f"{title}: top queried names",
                "esql": f"{_from(source)} | STATS queries = COUNT(*) BY {qname} | SORT queries DESC | LIMIT {TOP}",
                "chart": "lnsDatatable", "x": qname, "y": ["queries"],
            })
        if rcode:
            found.append({
                "title": f"{title}: NXDOMAIN and SERVFAIL rates",
                "esql": (
                    f"{_from(source)} | EVAL nxdomain = CASE({rcode} == \"NXDOMAIN\", 1, 0), "
                    f"servfail = CASE({rcode} == \"SERVFAIL\", 1, 0), hour = DATE_TRUNC(1 hour, @timestamp) "
                    "| STATS nxdomain_rate = AVG(nxdomain), servfail_rate = AVG(servfail) BY hour | SORT hour"
                ),
                "chart": "lnsXY", "x": "hour", "y": ["nxdomain_rate", "servfail_rate"],
            })
    action, qname = _field("resolver", "firewall_action"), _field("resolver", "question_name")
    if action and qname:
        found.append({
            "title": "DNS Firewall blocks: top blocked names",
            "esql": f"{_from('resolver')} | WHERE {action} == \"BLOCK\" | STATS blocks = COUNT(*) BY {qname} | SORT blocks DESC | LIMIT {TOP}",
            "chart": "lnsDatatable", "x": qname, "y": ["blocks"],
        })
    found.append({
        "title": "r53sigma alerts by rule",
        "esql": (
            f"FROM {ALERTS_INDEX} | WHERE kibana.alert.rule.tags == \"{kibana.PACK_TAGS[0]}\" "
            "| STATS alerts = COUNT(*) BY kibana.alert.rule.name | SORT alerts DESC"
        ),
        "chart": "lnsXY", "x": "kibana.alert.rule.name", "y": ["alerts"],
    })
    return found


def _visualization(panel: dict, layer: str) -> dict:
    if panel["chart"] == "lnsDatatable":
        return {"layerId": layer, "layerType": "data", "columns": [{"columnId": c} for c in [panel["x"], *panel["y"]]]}
    return {
        "preferredSeriesType": "bar_stacked" if panel["x"] != "hour" else "line",
        "legend": {"isVisible": True, "position": "right"},
        "layers": [{
            "layerId": layer, "layerType": "data", "seriesType": "bar_stacked" if panel["x"] != "hour" else "line",
            "xAccessor": panel["x"], "accessors": list(panel["y"]),
        }],
    }


def lens_object(panel: dict) -> dict:
    layer = _id(panel["title"] + "/layer")
    columns = [{"columnId": c, "fieldName": c} for c in [panel["x"], *panel["y"]]]
    return {
        "type": "lens",
        "id": _id(panel["title"]),
        "attributes": {
            "title": panel["title"],
            "visualizationType": panel["chart"],
            "state": {
                "datasourceStates": {"textBased": {"layers": {layer: {"query": {"esql": panel["esql"]}, "columns": columns}}}},
                "visualization": _visualization(panel, layer),
                "query": {"esql": panel["esql"]},
                "filters": [],
                "adHocDataViews": {},
            },
        },
        "references": [],
    }


def dashboard_object(lenses: list[dict]) -> dict:
    grid = []
    for i, lens in enumerate(lenses):
        grid.append({
            "panelIndex": str(i), "type": "lens", "panelRefName": f"panel_{i}", "embeddableConfig": {},
            "gridData": {"x": (i % 2) * 24, "y": (i // 2) * 15, "w": 24, "h": 15, "i": str(i)},
        })
    return {
        "type": "dashboard",
        "id": _id("dashboard"),
        "attributes": {
            "title": DASHBOARD_TITLE,
            "description": "Route 53 Resolver and public hosted-zone queries, DNS Firewall blocks and r53sigma alerts (generated by r53sigma package).",
            "panelsJSON": json.dumps(grid, separators=(",", ":")),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})},
        },
        "references": [{"name": f"panel_{i}", "type": "lens", "id": lens["id"]} for i, lens in enumerate(lenses)],
    }


def ndjson() -> str:
    lenses = [lens_object(p) for p in panels()]
    objects = lenses + [dashboard_object(lenses)]
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n" for o in objects)
