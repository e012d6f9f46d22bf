"""The README's table of correlation thresholds lists every correlation of the pack, as its file states it.

The table (README, "Correlation thresholds, per rule") gives each correlation's condition, the reason for
its value and what the efficacy benchmark measured; these tests keep it from going stale when a
threshold, window or group-by changes or a correlation is added or removed.
"""
from __future__ import annotations

import re

import yaml

from r53sigma import rules
from support import REPO

SECTION = "### Correlation thresholds, per rule"


def correlation_documents() -> list[dict]:
    docs = []
    for path in rules.discover([REPO / "sigma_rules"]):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and isinstance(doc.get("correlation"), dict):
                docs.append(doc)
    return docs


def condition_as_written(correlation: dict) -> str:
    """The rule file's condition in the table's words: ``value_count(query_name) gt 3 in 30m by srcaddr``."""
    condition = dict(correlation.get("condition") or {})
    field = condition.pop("field", None)
    counted = f"{correlation['type']}({field})" if field else correlation["type"]
    threshold = " ".join(f"{op} {value}" for op, value in condition.items())
    parts = [counted, threshold, f"in {correlation['timespan']}", f"by {', '.join(correlation['group-by'])}"]
    return " ".join(part for part in parts if part)


def table_rows() -> dict[str, str]:
    """Title -> condition cell (without backticks) of the README table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(SECTION)}\n(.*?)(?=^#|\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, f"README has no section {SECTION!r}"
    rows: dict[str, str] = {}
    for line in found.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 4 or cells[0] in ("correlation", "") or set(cells[0]) <= {"-"}:
            continue
        assert cells[0] not in rows, f"README table lists {cells[0]!r} twice"
        rows[cells[0]] = cells[1].strip("`")
    return rows


def test_table_lists_every_correlation_of_the_pack_and_no_other():
    titles = sorted(doc["title"] for doc in correlation_documents())
    assert titles, "the pack has no correlation rules"
    assert sorted(table_rows()) == titles


def test_table_condition_matches_each_rule_file():
    rows = table_rows()
    wrong = {doc["title"]: (rows.get(doc["title"]), condition_as_written(doc["correlation"]))
             for doc in correlation_documents() if rows.get(doc["title"]) != condition_as_written(doc["correlation"])}
    assert wrong == {}, "README cell vs rule file"


def test_condition_wording_reads_threshold_window_and_group():
    assert condition_as_written({"type": "value_count", "rules": ["a"], "group-by": ["srcaddr"], "timespan": "30m",
                                 "condition": {"field": "query_name", "gt": 3}}) == "value_count(query_name) gt 3 in 30m by srcaddr"
    assert condition_as_written({"type": "temporal_ordered", "rules": ["a", "b"], "group-by": ["vpc"],
                                 "timespan": "1h"}) == "temporal_ordered in 1h by vpc"
