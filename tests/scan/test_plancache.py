"""The plan cache: compiled SQL reused only for the same content, and alerts unchanged by it."""
from __future__ import annotations

import json

from r53sigma import rules as rules_mod
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.plancache import PlanCache
from r53sigma.scan.records import read_paths
from r53sigma.scan.reference import Engine

RULE = """title: nx
id: 0f1d2c3b-0000-4000-8000-00000000c001
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
"""


def log(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"query_timestamp": "2024-05-01T10:00:00Z", "query_name": "a.", "query_type": "A",
                                        "rcode": code, "srcaddr": "10.0.0.5", "answers": []}) + "\n" for code in ("NXDOMAIN", "SERVFAIL")))
    return path


def alerts(rule_file, cache_path, logs):
    loaded = rules_mod.load([rule_file])
    cache = PlanCache(cache_path)
    engine = DuckEngine(loaded.collection, plan_cache=cache)
    found = [a.to_json() for a in engine.scan_paths([logs], list(loaded.top_level()))]
    return found, cache, loaded


def test_a_warm_cache_gives_the_same_alerts_and_an_edited_rule_is_compiled_again(tmp_path):
    rule_file, cache_path, logs = tmp_path / "nx.yml", tmp_path / "cache" / "plans.json", log(tmp_path)
    rule_file.write_text(RULE)
    cold, cache, loaded = alerts(rule_file, cache_path, logs)
    assert len(cache.entries) == 1 and cache_path.exists()
    warm, cache, _ = alerts(rule_file, cache_path, logs)
    assert warm == cold == [a.to_json() for a in Engine(loaded.collection).scan(read_paths([logs]))] and not cache.added
    rule_file.write_text(RULE.replace("NXDOMAIN", "SERVFAIL"))
    edited, cache, _ = alerts(rule_file, cache_path, logs)
    assert len(cache.entries) == 2 and [a["origin"].rsplit(":", 1)[1] for a in edited] == ["2"]


def test_a_broken_cache_file_only_means_compiling_again(tmp_path):
    rule_file, cache_path, logs = tmp_path / "nx.yml", tmp_path / "plans.json", log(tmp_path)
    rule_file.write_text(RULE)
    cache_path.write_text("{not json")
    found, cache, _ = alerts(rule_file, cache_path, logs)
    assert len(found) == 1 and len(json.loads(cache_path.read_text())) == 1
