"""First-seen rules in each target, from the one `first_seen` definition: Kibana new_terms, the Splunk
KV store baseline (run on the SPL model against the local engines' first-seen alerts), refusals."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from r53sigma import conversion, package
from r53sigma import rules as rules_mod
from r53sigma.scan import baseline
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record
from r53sigma.targets.elasticsearch import kibana
from r53sigma.targets.splunk import app, events, spl_lookup_model
from support import REPO

RULES = REPO / "sigma_rules" / "resolver"
NAME_RULE = RULES / "first_seen_dns_query_name_in_account.yml"  # account_id + query_name: every SIEM target can read both
DOMAIN_RULE = RULES / "first_seen_registered_domain_queried_in_account.yml"
DAY = 86400


def record(seconds: float, name: str, account: str = "111122223333", rcode: str = "NOERROR") -> dict:
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "1.100000", "account_id": account, "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": stamp, "query_name": name, "query_type": "A", "query_class": "IN", "rcode": rcode,
            "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701", "transport": "UDP", "srcids": {"instance": "i-0abc"}}


@pytest.fixture(scope="module")
def build():
    return package.build([NAME_RULE, DOMAIN_RULE])


def test_kibana_gets_new_terms_rules_over_the_lucene_candidates_valid_for_both_stacks(build):
    lines = [json.loads(line) for line in build.files[kibana.RULES_FILE].decode().splitlines()]
    by_name = {d["name"]: d for d in lines}
    domain = by_name["First-Seen Registered Domain Queried In Account"]
    assert (domain["type"], domain["language"]) == ("new_terms", "lucene")
    assert domain["new_terms_fields"] == ["cloud.account.id", "dns.question.registered_domain"]
    assert domain["history_window_start"] == "now-14d" and domain["index"]
    lucene = {c.rule_id: c.query for c in conversion.convert_paths([DOMAIN_RULE], ["elasticsearch"])[0]}
    assert domain["query"] == lucene[domain["rule_id"]]  # the candidates, as verify checks them on real Lucene
    for document in lines:
        kibana.validate(document)


@pytest.mark.parametrize("change", [
    {"new_terms_fields": ["a", "b", "c", "d"]}, {"new_terms_fields": []}, {"history_window_start": "14d"},
    {"type": "query"},  # new terms settings on another rule type
])
def test_the_stack_schemas_refuse_new_terms_settings_kibana_would_reject(build, change):
    document = json.loads(build.files[kibana.RULES_FILE].decode().splitlines()[0])
    document.update(change)
    with pytest.raises(ValueError):
        kibana.validate(document)


def test_history_not_longer_than_the_lookback_is_refused(tmp_path):
    text = NAME_RULE.read_text().replace("history: 14d", "history: 10m")
    (tmp_path / "short.yml").write_text(text)
    result = package.build([tmp_path / "short.yml"])
    assert any("first_seen.history (10m) must be longer than the rule's look-back" in p for p in result.problems)


def splunk_searches(build) -> tuple[str, str, spl_lookup_model.Store]:
    conf = build.files[f"splunk/{app.APP}/default/savedsearches.conf"].decode()
    stanzas = {}
    for block in re.split(r"\n(?=\[)", conf):
        head = re.match(r"\[([^\]]+)\]", block.strip())
        search = re.search(r"^search = (.*?)(?=\n\S+ = |\Z)", block, re.MULTILINE | re.DOTALL)
        if head and search:
            stanzas[head.group(1)] = re.sub(r" \\\n", "\n", search.group(1).strip())
    rule_id = rules_mod.load([NAME_RULE]).top_level()[0].id
    store = spl_lookup_model.Store()
    spl_lookup_model.define_from_transforms(store, build.files[f"splunk/{app.APP}/default/transforms.conf"].decode())
    return stanzas[f"r53sigma-{rule_id}"], stanzas[f"r53sigma-{rule_id}-baseline"], store


def engine_first_seen(records) -> set[tuple]:
    loaded = rules_mod.load([NAME_RULE])
    (rule,) = loaded.top_level()
    parsed = [parse_record(r, file="t", line=n) for n, r in enumerate(records, 1)]
    alerts = baseline.first_seen_alerts(Engine(loaded.collection).scan(parsed), baseline.Baseline())
    return {(a.event.record["account_id"], a.event.record["query_name"], a.event.time) for a in alerts}


START = 1_764_547_200  # 2025-12-01T00:00:00Z
RECORDS = [
    record(START + 60, "a.example.net."), record(START + 120, "a.example.net."),  # one value, twice in a run
    record(START + 3 * 60, "a.example.net.", account="444455556666"),  # another account
    record(START + DAY, "a.example.net."),  # seen within the history: not new
    record(START + 20 * DAY, "a.example.net."),  # absent for more than 14 days: new again
    record(START + 20 * DAY + 30, "b.example.net.", rcode="NXDOMAIN"),  # no candidate
    record(START + 20 * DAY + 600, "b.example.net."),
]


@pytest.mark.parametrize("baseline_first", [True, False])
def test_splunk_baseline_and_detection_searches_alert_where_the_engines_do(build, baseline_first):
    detection, keeper, store = splunk_searches(build)
    splunk_events = [events.event_from_raw(r) for r in RECORDS]
    found = set()
    run_times = sorted({(int(e["_time"]) // 300 + 1) * 300 for e in splunk_events})
    for now in run_times:  # every 5 minutes with events, each run over the look-back (20 minutes: overlapping)
        window = [e for e in splunk_events if now - 1200 < e["_time"] <= now]
        order = [keeper, detection] if baseline_first else [detection, keeper]
        for search in order:
            rows = spl_lookup_model.run(search, window, store, now)
            if search is detection:
                found |= {(r["account_id"], r["query"], float(r["first_time"])) for r in rows}
    assert found == engine_first_seen(RECORDS)
    assert len(found) == 4


def test_the_splunk_app_ships_the_collection_and_lookup_definition(build):
    files = build.files
    collections = files[f"splunk/{app.APP}/default/collections.conf"].decode()
    transforms = files[f"splunk/{app.APP}/default/transforms.conf"].decode()
    rule_id = str(rules_mod.load([NAME_RULE]).top_level()[0].id).replace("-", "_")
    assert f"[r53sigma_first_seen_{rule_id}]" in collections and "field.first_seen = number" in collections
    assert f"collection = r53sigma_first_seen_{rule_id}" in transforms  # the add-on's own stanzas stay before it
    assert transforms.index("[r53sigma_first_seen_") > transforms.index("REGEX")


@pytest.mark.parametrize("target", ["cloudwatch", "cloudwatch_metric_filter", "athena"])
def test_targets_without_state_refuse_first_seen_rules_with_the_reason(target):
    (conv,) = conversion.convert_paths([NAME_RULE], [target])[0]
    assert conv.not_expressible and not conv.first_seen  # refused: no native form either
    assert f"{target} cannot state a first-seen rule" in conv.error


def test_splunk_refuses_the_registered_domain_rule_for_its_public_suffix_list_reason():
    (conv,) = conversion.convert_paths([DOMAIN_RULE], ["splunk"])[0]
    assert conv.not_expressible and "Public Suffix List" in conv.error


def test_convert_writes_the_native_form_beside_the_candidate_query(tmp_path, capsys):
    from r53sigma.cli import main

    assert main(["convert", "-t", "elasticsearch", str(DOMAIN_RULE), "-o", str(tmp_path / "out")]) == 0
    stem = DOMAIN_RULE.stem
    assert (tmp_path / "out" / "elasticsearch" / f"{stem}.lucene").read_text().startswith("dns.response_code:NOERROR")
    form = json.loads((tmp_path / "out" / "elasticsearch" / f"{stem}.first_seen.json").read_text())
    assert form == {"type": "new_terms", "new_terms_fields": ["cloud.account.id", "dns.question.registered_domain"],
                    "history_window_start": "now-14d"}


@pytest.mark.parametrize("query", ["search x | tstats count from datamodel=Network_Resolution",
                                   "search x | lookup t f AS g OUTPUT x", "search x | lookup t f OUTPUT a, b"])
def test_the_kv_store_model_refuses_what_it_does_not_read_as_splunk_does(query):
    from r53sigma.targets.querymodel import QuerySyntaxError
    with pytest.raises(QuerySyntaxError, match="generating command|not modelled"):
        spl_lookup_model.run(query, [], spl_lookup_model.Store(), 0.0)
