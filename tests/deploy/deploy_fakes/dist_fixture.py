"""A small dist/ of the shape `r53sigma package` writes (the dist layout contract), from inline rules.

Queries come from r53sigma.conversion and the ingestion objects from the mappings renderers, so the
deploy tests push real pack content; only the packaging around them is done here, by hand.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from r53sigma import catalogue, conversion, package
from r53sigma.targets.splunk import app as splunk_app
from r53sigma.targets.splunk import first_seen as splunk_first_seen
from r53sigma.targets.splunk import lookups as splunk_lookups
from r53sigma.targets.cloudwatch import ingestion as cloudwatch_ingestion
from r53sigma.targets.elasticsearch import ingestion as elastic_ingestion

APP = "r53sigma_route53"
RISK = {"informational": 21, "low": 21, "medium": 47, "high": 73, "critical": 99}

RULE_TXT = """
title: Resolver TXT queries to a paste site
id: 0b7d3c2a-1111-4aaa-8bbb-000000000001
status: test
description: TXT lookups of a paste site, a known staging channel.
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name|endswith: '.pastebin.com'
        query_type: TXT
    condition: selection
level: medium
"""

RULE_METADATA = """
title: Resolver query for the instance metadata name
id: 0b7d3c2a-1111-4aaa-8bbb-000000000002
status: test
description: A lookup of the instance metadata host name through the Resolver.
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_name: 'instance-data.ec2.internal'
    condition: selection
level: high
"""

RULES = {"txt_paste.yml": RULE_TXT, "metadata_name.yml": RULE_METADATA}

# A first-seen rule: Splunk states it (a KV store collection, its lookup, two searches); Logs
# Insights refuses it (no state between runs), so its cloudwatch files leave it out.
RULE_FIRST_SEEN = """
title: First-seen query name in an account
id: 0b7d3c2a-1111-4aaa-8bbb-000000000005
status: test
description: A name answered for the first time in an account.
logsource: {product: aws, service: route53resolver}
detection:
    sel:
        rcode: NOERROR
    condition: sel
first_seen: {fields: [account_id, query_name], history: 14d}
level: low
"""


def _log_source(conv) -> str:
    found = catalogue.for_logsource(conv.logsource.get("category"), conv.logsource.get("product"), conv.logsource.get("service"))
    return found[0].source


def build(root: Path, rules: dict[str, str] | None = None) -> Path:
    """Write rule files under root/rules and the dist under root/dist; return the dist folder."""
    rule_dir = root / "rules"
    rule_dir.mkdir(parents=True, exist_ok=True)
    for old in rule_dir.glob("*.yml"):
        old.unlink()
    for name, text in (rules or RULES).items():
        (rule_dir / name).write_text(textwrap.dedent(text), encoding="utf-8")
    conversions, errors = conversion.convert_paths([rule_dir], ["elasticsearch", "splunk", "cloudwatch"])
    assert not errors and all(c.ok or c.not_expressible for c in conversions), [c.error for c in conversions if not c.ok]
    by_target = {t: [c for c in conversions if c.target == t and c.ok] for t in ("elasticsearch", "splunk", "cloudwatch")}
    files: dict[str, object] = {}

    sources = {s.source: s for s in catalogue.log_sources()}
    kibana = []
    for c in sorted(by_target["elasticsearch"], key=lambda c: c.rule_id):
        log_source = sources[_log_source(c)]
        kibana.append({
            "rule_id": c.rule_id, "name": c.title, "description": c.rule.description or c.title,
            "risk_score": RISK[c.level or "medium"], "severity": c.level or "medium", "type": "query",
            "language": "lucene", "query": c.query, "index": log_source.targets["elasticsearch"]["index"],
            "version": 1, "enabled": False, "tags": ["Route 53"], "interval": "5m", "from": "now-6m",
        })
    files["elastic/rules.ndjson"] = "".join(json.dumps(rule, sort_keys=True) + "\n" for rule in kibana)
    for path, body in elastic_ingestion.render().items():
        files["elastic/" + path.split("/", 1)[1]] = body

    # the app's savedsearches.conf as the pack renders it (targets/splunk), so deploy reads real stanzas
    files[f"splunk/{APP}/default/savedsearches.conf"] = splunk_app.savedsearches_conf([package.packaged(c) for c in by_target["splunk"]])
    files[f"splunk/{APP}/default/app.conf"] = "[launcher]\nversion = 0.1.0\n"
    baselines = [package.packaged(c) for c in by_target["splunk"] if c.first_seen]
    if baselines:  # as the app renders them: beside the add-on's own (CSV) lookup stanza
        files[f"splunk/{APP}/default/collections.conf"] = splunk_first_seen.collections_conf(baselines) + "\n"
        files[f"splunk/{APP}/default/transforms.conf"] = (splunk_lookups.TRANSFORMS_STANZA + "\n"
                                                          + splunk_first_seen.transforms_conf(baselines) + "\n")

    rendered = cloudwatch_ingestion.render([rule_dir])
    template = rendered["cloudwatch/cloudformation.json"]
    definitions = []
    for c in sorted(by_target["cloudwatch"], key=lambda c: c.title):
        log_source = sources[_log_source(c)]
        name = f"r53sigma/{log_source.source}/{c.title}"
        definitions.append({"name": name, "queryString": c.query,
                            "logGroupNames": [log_source.targets["cloudwatch"]["log_group"]], "rule_id": c.rule_id})
        template["Resources"]["Query" + c.rule_id.replace("-", "")] = {
            "Type": "AWS::Logs::QueryDefinition",
            "Properties": {"Name": name, "QueryString": c.query, "LogGroupNames": [{"Ref": cloudwatch_ingestion._logical_id(log_source.source) + "LogGroupName"}]},
        }
    files["cloudwatch/template.json"] = template
    files["cloudwatch/query_definitions.json"] = definitions
    files["queries/queries.json"] = [c.export() for c in conversions if c.ok]

    dist = root / "dist"
    for relative, content in files.items():
        path = dist / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return dist


RULE_TXT_BASE = """
title: Resolver TXT query
id: 0b7d3c2a-1111-4aaa-8bbb-000000000003
name: resolver_txt_query
status: test
description: Base rule, a TXT lookup.
logsource: {product: aws, service: route53resolver}
detection:
    selection:
        query_type: TXT
    condition: selection
level: low
"""

RULE_TXT_BURST = """
title: Burst of TXT queries from one source
id: 0b7d3c2a-1111-4aaa-8bbb-000000000004
status: test
description: More than 50 TXT lookups from one source within 5 minutes.
correlation:
    type: event_count
    rules: [resolver_txt_query]
    group-by: [srcaddr]
    timespan: 5m
    condition: {gt: 50}
level: medium
"""

ALERTING_RULES = {"txt_paste.yml": RULE_TXT, "txt_query.yml": RULE_TXT_BASE, "txt_burst.yml": RULE_TXT_BURST}


def build_packaged(root: Path, rules: dict[str, str] | None = None) -> Path:
    """dist/ as `r53sigma package` writes it for inline rules (the real packagers: alarms, metric
    filters, Contributor Insights rules); return the dist folder."""
    rule_dir = root / "rules"
    rule_dir.mkdir(parents=True, exist_ok=True)
    for old in rule_dir.glob("*.yml"):
        old.unlink()
    for name, text in (rules or ALERTING_RULES).items():
        (rule_dir / name).write_text(textwrap.dedent(text), encoding="utf-8")
    build = package.build([rule_dir])
    assert not build.problems, build.problems
    dist = root / "dist"
    package.write(dist, build.files, force=True)
    return dist
