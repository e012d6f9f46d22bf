"""The Route 53 overview dashboard: a Dashboard Studio view whose definition passes the schema, whose
references resolve, and whose searches name only catalogued Splunk fields and sourcetypes."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree

import jsonschema

from r53sigma import catalogue
from r53sigma.targets.splunk import app, dashboard
from support import REPO
from test_package_splunk import APP_DIR
from test_package_support import bundled_build, text

SCHEMA = REPO / "backends" / "r53sigma" / "schemas" / "splunk_dashboard_studio.json"
VIEW = f"{APP_DIR}/default/data/ui/views/{dashboard.VIEW}.xml"


def definition() -> dict:
    root = ElementTree.fromstring(text(bundled_build(), VIEW))
    assert root.tag == "dashboard" and root.get("version") == "2"  # version 2: Dashboard Studio
    return json.loads(root.find("definition").text)


def test_definition_is_valid_against_the_dashboard_studio_schema():
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(definition())


def test_schema_rejects_an_unknown_visualization_and_a_search_without_query():
    schema = json.loads(SCHEMA.read_text())
    broken = definition()
    broken["visualizations"]["viz_volume"]["type"] = "splunk.sparkles"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))
    broken = definition()
    del broken["dataSources"]["ds_volume"]["options"]["query"]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_every_reference_resolves():
    document = definition()
    placed = {block["item"] for block in document["layout"]["structure"]}
    assert placed == set(document["visualizations"])
    for viz in document["visualizations"].values():
        assert viz["dataSources"]["primary"] in document["dataSources"]
    tokens = {i["options"]["token"] for i in document["inputs"].values()}
    used = set(re.findall(r"\$([A-Za-z_]+)\.(?:earliest|latest)\$", json.dumps(document)))
    assert used == tokens and set(document["layout"]["globalInputs"]) == set(document["inputs"])


def test_panels_cover_volume_types_domains_rcodes_blocks_and_alerts():
    titles = " ".join(v["title"] for v in definition()["visualizations"].values())
    for words in ("volume", "type", "domains", "NXDOMAIN", "SERVFAIL", "Firewall blocks", "alerts by rule"):
        assert words in titles, words


def test_searches_name_only_catalogued_sourcetypes_and_fields():
    resolver, public = catalogue.load()["resolver"], catalogue.load()["public_zone"]
    queries = {k: d["options"]["query"] for k, d in definition()["dataSources"].items()}
    for source in (resolver, public):
        assert f'sourcetype="{source.targets["splunk"]["sourcetype"]}"' in queries["ds_volume"]
        for role in ("question_name", "question_type", "response_code"):
            assert source.with_role(role).target("splunk").name in queries["ds_volume"]
    assert f'{resolver.with_role("firewall_action").target("splunk").name}="BLOCK"' in queries["ds_blocks"]
    assert f'ss_app="{app.APP}"' in queries["ds_alerts"]


def test_the_dashboard_is_the_apps_default_view():
    nav = ElementTree.fromstring(text(bundled_build(), f"{APP_DIR}/default/data/ui/nav/default.xml"))
    assert [v.get("name") for v in nav.iter("view") if v.get("default") == "true"] == [dashboard.VIEW]


def sample_events():
    from r53sigma.targets.splunk import events

    samples = REPO / "backends" / "r53sigma" / "samples"
    resolver = [json.loads(line) for line in (samples / "resolver_query_logs.jsonl").read_text().splitlines() if line.strip()]
    public = [line.split(" ") for line in (samples / "public_hosted_zone_query_logs.log").read_text().splitlines() if line.strip()]
    rows = [events.event_from_raw(r, "resolver") for r in resolver]
    rows += [events.event_from_raw(" ".join(p), "public_zone") for p in public]
    return resolver, public, rows


def up_to_stats(query: str) -> str:
    """The part of a panel's search the SPL model runs: everything through `| stats` (the model has no sort/head)."""
    lines = query.split("\n")
    return "\n".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("| stats")) + 1])


def test_panel_searches_count_what_the_raw_logs_hold_on_the_spl_model():
    from collections import Counter

    from r53sigma.targets.splunk import spl_model

    resolver, public, rows = sample_events()
    columns = catalogue.load()["public_zone"].columns
    queries = {k: d["options"]["query"] for k, d in definition()["dataSources"].items()}
    by_type = {(r["log_source"], r["query_type"]): r["count"] for r in spl_model.run(up_to_stats(queries["ds_types"]), rows)}
    expected = Counter(("resolver", r["query_type"]) for r in resolver)
    expected += Counter(("public_zone", p[columns.index("queryType")]) for p in public)
    assert by_type == dict(expected)
    domains = {r["query_name"]: r["count"] for r in spl_model.run(up_to_stats(queries["ds_domains"]), rows)}
    names = Counter(r["query_name"].rstrip(".") for r in resolver) + Counter(p[columns.index("queryName")].rstrip(".") for p in public)
    assert domains == dict(names)
    blocks = {(r["query"], r["src"]): r["count"] for r in spl_model.run(up_to_stats(queries["ds_blocks"]), rows)}
    blocked = Counter((r["query_name"].rstrip("."), r["srcaddr"]) for r in resolver if r.get("firewall_rule_action") == "BLOCK")
    assert blocks == dict(blocked) and blocked
