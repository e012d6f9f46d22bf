"""Name lists as data files: the rules agree with them, and `r53sigma lists refresh` rewrites both."""
from __future__ import annotations

import shutil

import pytest

from r53sigma import lists, rules as rules_mod
from r53sigma.cli import main
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record
from support import REPO

RULES_DIR = REPO / "sigma_rules"


def test_every_list_has_source_date_and_matches_its_rule():
    found = lists.all_lists()
    assert {nl.name for nl in found} >= {"mining_pools", "doh_resolvers", "tor2web_gateways"}
    for name_list in found:
        assert name_list.source.strip() and len(name_list.retrieved) == 10 and name_list.values
    assert lists.check(RULES_DIR) == []


@pytest.fixture
def copy(tmp_path):
    """The mining rule and its list, copied: refresh edits the copies."""
    rules_dir, lists_dir = tmp_path / "rules", tmp_path / "lists"
    rules_dir.mkdir(), lists_dir.mkdir()
    shutil.copy(RULES_DIR / "resolver" / "crypto_mining_pool_domain_queried.yml", rules_dir)
    shutil.copy(lists.LISTS_DIR / "mining_pools.yml", lists_dir)
    return rules_dir, lists_dir


def alerts(rules_dir, name: str) -> int:
    loaded = rules_mod.load([rules_dir])
    event = parse_record({"query_name": name + ".", "query_type": "A", "rcode": "NOERROR", "answers": [],
                   "query_timestamp": "2024-05-01T10:00:00Z", "srcaddr": "10.0.0.9", "version": "1.100000"})
    return len(list(Engine(loaded.collection).scan([event], loaded.top_level())))


def test_refresh_replaces_the_rule_values_and_the_rule_means_the_new_list(copy, tmp_path):
    rules_dir, lists_dir = copy
    user_file = tmp_path / "pools.txt"
    user_file.write_text("# my pools\nnewpool-example.net\n0.0.0.0 Other-Coins.example.\n*.third-example.org\nnewpool-example.net\n\n")
    assert alerts(rules_dir, "eu.newpool-example.net") == 1  # the endpoint shape already
    assert alerts(rules_dir, "other-coins.example") == 0 and alerts(rules_dir, "eu1.ethermine.org") == 1
    name_list, rule = lists.refresh("mining_pools", user_file, "my feed", "2026-12-01", rules_dir, lists_dir)
    assert name_list.values == ["newpool-example.net", "other-coins.example", "third-example.org"]
    assert lists.load(lists_dir / "mining_pools.yml").source == "my feed"
    assert lists.check(rules_dir, lists_dir) == []
    assert alerts(rules_dir, "other-coins.example") == 1 and alerts(rules_dir, "a.third-example.org") == 1
    assert alerts(rules_dir, "eu1.ethermine.org") == 0  # the old list is gone
    assert "# Miners' built-in donation endpoints" in rule.read_text()  # the rest of the rule is untouched


def test_refresh_with_a_bad_file_writes_nothing(copy, tmp_path, capsys):
    rules_dir, lists_dir = copy
    before = (rules_dir / "crypto_mining_pool_domain_queried.yml").read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text("good-example.net\nnot a name at all\n")
    assert main(["lists", "refresh", "mining_pools", "--from", str(bad), "--source", "x", "--rules", str(rules_dir)]) == 2
    assert "bad.txt: line(s) 2 are not DNS names" in capsys.readouterr().err
    assert (rules_dir / "crypto_mining_pool_domain_queried.yml").read_text() == before


def test_check_reports_a_rule_edited_by_hand(copy):
    rules_dir, lists_dir = copy
    path = rules_dir / "crypto_mining_pool_domain_queried.yml"
    path.write_text(path.read_text().replace("            - '.xmrpool.net'\n", ""))
    problems = lists.check(rules_dir, lists_dir)
    assert len(problems) == 1 and "selection_subdomain" in problems[0] and ".xmrpool.net" in problems[0]
