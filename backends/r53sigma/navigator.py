"""An ATT&CK Navigator layer (format 4.5) of the techniques the pack covers.

A technique's score is the number of rules tagging it that convert for at least one target; its
comment and metadata name those rules and the targets each runs on. Parents of covered
sub-techniques are listed unscored with `showSubtechniques`, so the Navigator opens them.
Technique names and ATT&CK version come from r53sigma.attack (shipped data, nothing downloaded).
"""
from __future__ import annotations

from collections import defaultdict

from r53sigma import __version__, attack

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
DOMAIN = "enterprise-attack"
GRADIENT_COLORS = ["#ffffff", "#66b1ff", "#0a4f9e"]  # white (0) to dark blue (most rules)


def layer(records: list[dict]) -> dict:
    """``records``: queries.json records (title, attack_techniques, queries per target)."""
    rules_by_technique: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for record in records:
        targets = [t for t, q in record["queries"].items() if "query" in q]
        if not targets:
            continue
        for technique in record["attack_techniques"]:
            attack.technique(technique)  # unknown ids fail the build, not the Navigator
            rules_by_technique[technique].append((record["title"], targets))

    entries = []
    for technique_id in sorted(rules_by_technique):
        covering = sorted(rules_by_technique[technique_id])
        entries.append({
            "techniqueID": technique_id,
            "score": len(covering),
            "comment": "; ".join(title for title, _ in covering),
            "enabled": True,
            "metadata": [{"name": title, "value": ", ".join(targets)} for title, targets in covering],
        })
    parents = {attack.technique(t).parent for t in rules_by_technique} - {None}
    entries += [{"techniqueID": p, "enabled": True} for p in sorted(parents - set(rules_by_technique))]
    for entry in entries:
        if entry["techniqueID"] in parents:
            entry["showSubtechniques"] = True
    entries.sort(key=lambda e: e["techniqueID"])

    highest = max((len(v) for v in rules_by_technique.values()), default=1)
    return {
        "name": "r53sigma Route 53 detections",
        "versions": {"attack": attack.version().split(".")[0], "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": DOMAIN,
        "description": f"Techniques covered by r53sigma {__version__} rules for Amazon Route 53 logs; score = number of rules.",
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": entries,
        "gradient": {"colors": GRADIENT_COLORS, "minValue": 0, "maxValue": max(highest, 1)},
        "legendItems": [],
        "metadata": [{"name": "generator", "value": f"r53sigma {__version__} (r53sigma package)"}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }
