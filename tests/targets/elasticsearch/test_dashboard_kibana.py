"""dist/elastic/dashboard.ndjson: saved-object structure, Lens columns that the ES|QL queries really
return, and the queries' answers on documents as the pipeline indexes them (ES|QL model)."""
from __future__ import annotations

import collections
import json

from r53sigma import catalogue
from r53sigma.targets.elasticsearch import dashboard, documents, esql_model, ingestion
from test_package_support import bundled_build, text


def objects() -> list[dict]:
    return [json.loads(line) for line in text(bundled_build(), dashboard.DASHBOARD_FILE).splitlines()]


def mapping(source: str) -> dict[str, str]:
    return {name: m["type"] for name, m in ingestion.field_mappings(catalogue.load()[source]).items()}


def resolver_docs(records: list[dict]) -> list[dict]:
    base = {"version": "1.100000", "account_id": "123456789012", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": "2024-05-01T10:00:00Z", "query_class": "IN", "srcaddr": "10.0.0.1", "srcport": "5353",
            "transport": "UDP", "srcids": {"instance": "i-1"}}
    return [documents.indexed_fields(documents.document_from_raw(json.dumps({**base, **r}), "resolver"), "resolver") for r in records]


def test_saved_objects_are_lens_panels_of_one_dashboard_with_resolvable_references():
    found = objects()
    (board,) = [o for o in found if o["type"] == "dashboard"]
    lenses = {o["id"]: o for o in found if o["type"] == "lens"}
    assert len(lenses) == len(found) - 1 and all(set(o) == {"type", "id", "attributes", "references"} for o in found)
    grid = json.loads(board["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in board["references"]}
    assert len(grid) == len(lenses)
    cells = set()
    for panel in grid:
        ref = refs[panel["panelRefName"]]
        assert ref["type"] == "lens" and ref["id"] in lenses
        g = panel["gridData"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 48  # Kibana's dashboard grid is 48 columns wide
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area
        cells |= area


def test_each_lens_visualizes_only_columns_its_query_returns():
    for lens in (o for o in objects() if o["type"] == "lens"):
        state = lens["attributes"]["state"]
        ((layer_id, layer),) = state["datasourceStates"]["textBased"]["layers"].items()
        assert layer["query"] == state["query"]
        columns = [c["columnId"] for c in layer["columns"]]
        visualization = state["visualization"]
        used = ([c["columnId"] for c in visualization["columns"]] if "columns" in visualization
                else [visualization["layers"][0]["xAccessor"], *visualization["layers"][0]["accessors"]])
        assert set(used) <= set(columns) and (visualization.get("layerId") or visualization["layers"][0]["layerId"]) == layer_id
        query = state["query"]["esql"]
        if query.startswith(f"FROM {dashboard.ALERTS_INDEX}"):
            # the model's tokenizer reads no leading dot in an index name; ES|QL's lexer does
            # (elastic/elasticsearch EsqlBaseLexer.g4, UNQUOTED_SOURCE), so only the rest is checked
            query = query.replace(dashboard.ALERTS_INDEX, "alerts", 1)
            alerts = [{"kibana.alert.rule.tags": ["r53sigma", "x"], "kibana.alert.rule.name": "A"}]
            rows = esql_model.run(query, alerts)
        else:
            source = "public_zone" if "public" in lens["attributes"]["title"] else "resolver"
            rows = esql_model.run(query, resolver_docs([{"query_name": "a.example.", "query_type": "A", "rcode": "NOERROR"}])
                                  if source == "resolver" else [], mapping(source))
        for row in rows:
            assert set(columns) <= set(row), (lens["attributes"]["title"], row)


def panel(title_part: str) -> dict:
    return next(p for p in dashboard.panels() if title_part in p["title"] and "Resolver" in p["title"])


def test_top_names_and_error_rates_are_what_the_documents_hold():
    records = ([{"query_name": "a.example.", "query_type": "A", "rcode": "NXDOMAIN"}] * 3
               + [{"query_name": "b.example.", "query_type": "TXT", "rcode": "SERVFAIL"}]
               + [{"query_name": "c.example.", "query_type": "A", "rcode": "NOERROR"}] * 4)
    docs = resolver_docs(records)
    names = {r["dns.question.name"]: r["queries"] for r in esql_model.run(panel("top queried")["esql"], docs, mapping("resolver"))}
    assert names == dict(collections.Counter(r["query_name"].rstrip(".") for r in records))
    (rates,) = esql_model.run(panel("NXDOMAIN")["esql"], docs, mapping("resolver"))
    assert (rates["nxdomain_rate"], rates["servfail_rate"]) == (3 / 8, 1 / 8)
    types = {r["dns.question.type"]: r["queries"] for r in esql_model.run(panel("by type")["esql"], docs, mapping("resolver"))}
    assert types == {"A": 7, "TXT": 1}


def test_firewall_panel_counts_only_blocked_queries():
    records = [{"query_name": "bad.example.", "query_type": "A", "rcode": "NOERROR",
                "firewall_rule_action": "BLOCK", "firewall_rule_group_id": "rslvr-frg-1", "firewall_domain_list_id": "rslvr-fdl-1"},
               {"query_name": "seen.example.", "query_type": "A", "rcode": "NOERROR",
                "firewall_rule_action": "ALERT", "firewall_rule_group_id": "rslvr-frg-1", "firewall_domain_list_id": "rslvr-fdl-1"}]
    (blocks,) = [p for p in dashboard.panels() if "Firewall" in p["title"]]
    rows = esql_model.run(blocks["esql"], resolver_docs(records), mapping("resolver"))
    assert rows == [{"dns.question.name": "bad.example", "blocks": 1}]


def test_panel_fields_come_from_the_catalogue_roles():
    resolver = catalogue.load()["resolver"]
    for role in ("question_name", "question_type", "response_code", "firewall_action"):
        name = resolver.with_role(role).target("elasticsearch").name
        assert any(name in p["esql"] for p in dashboard.panels() if "Resolver" in p["title"] or "Firewall" in p["title"])
