"""CloudWatch Logs ingestion for Route 53 logs: field-index policies and log transformers.

Rendered from the field catalogue and the rules under sigma_rules/:

- a field-index policy per log group, `{"Fields": [...]}` with at most 20 Logs Insights names,
  chosen by how many rules filter on each catalogued field (ties: catalogue order). Array fields
  are left out: Logs Insights flattens arrays by index (`answers.0.Rdata`), so an index on one
  position would miss the others; the timestamp is not a filter field;
- a transformer per log group (`parseJSON` for Resolver JSON, `parseRoute53` for public
  hosted-zone lines, which must come first) and, separately, an optional `parseToOCSF` one;
- the same as one CloudFormation template (AWS::Logs::Transformer, AWS::Logs::AccountPolicy with
  FIELD_INDEX_POLICY scoped to the log group by name prefix) for existing log groups.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from r53sigma import catalogue
from r53sigma.catalogue import LogSource

TARGET = "cloudwatch"
MAX_INDEXED_FIELDS = 20  # AWS quota per field-index policy
MAX_POLICY_DOCUMENT = 30720  # AWS::Logs::AccountPolicy PolicyDocument length
TRANSFORMERS = {"json": "parseJSON", "space_separated": "parseRoute53"}
TRANSFORMER_SOURCES = ("resolver", "public_zone")  # CloudTrail arrives as JSON from CloudTrail itself
OCSF_TRANSFORMER = {"resolver": {"eventSource": "Route53Resolver", "ocsfVersion": "V1.1"}}


def _detection_items(detection) -> Iterator:
    for item in detection.detection_items:
        if hasattr(item, "detection_items"):
            yield from _detection_items(item)
        else:
            yield item


def rule_field_counts(rule_paths: list[Path] | None = None) -> dict[str, Counter]:
    """Per log source: catalogue field name -> number of rules whose detection filters on it."""
    from sigma.rule import SigmaRule

    from r53sigma import rules

    counts: dict[str, Counter] = {source: Counter() for source in catalogue.load()}
    for rule in rules.load(rule_paths).rules:
        if not isinstance(rule, SigmaRule):
            continue
        ls = rule.logsource
        found = catalogue.for_logsource(ls.category, ls.product, ls.service)
        if found is None:
            continue
        log_source, generic_dns = found
        fields = set()
        for detection in rule.detection.detections.values():
            for item in _detection_items(detection):
                field = log_source.field_for(item.field, generic_dns=generic_dns) if item.field else None
                if field is not None:
                    fields.add(field.name)
        counts[log_source.source].update(fields)
    return counts


def indexed_fields(log_source: LogSource, counts: Counter) -> list[str]:
    order = list(log_source.fields)
    candidates = [
        name
        for name in order
        if counts[name] > 0 and not log_source.fields[name].array and name != log_source.timestamp
    ]
    candidates.sort(key=lambda name: (-counts[name], order.index(name)))
    return [log_source.fields[name].target(TARGET).name for name in candidates[:MAX_INDEXED_FIELDS]]


def index_policy(fields: list[str]) -> dict[str, Any]:
    return {"Fields": fields}


def transformer_config(log_source: LogSource) -> list[dict]:
    """The PutTransformer `transformerConfig` (API spelling)."""
    return [{TRANSFORMERS[log_source.format]: {}}]


def _cfn_processor(processor: dict) -> dict:
    """API processor spelling (parseJSON, eventSource) to CloudFormation's (ParseJSON, EventSource)."""
    ((name, settings),) = processor.items()
    return {name[0].upper() + name[1:]: {k[0].upper() + k[1:]: v for k, v in settings.items()}}


def _logical_id(source: str) -> str:
    return "".join(part.capitalize() for part in source.split("_"))


def cloudformation(policies: dict[str, dict]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    for log_source in catalogue.log_sources():
        prefix = _logical_id(log_source.source)
        parameter = f"{prefix}LogGroupName"
        parameters[parameter] = {
            "Type": "String",
            "Default": log_source.targets[TARGET]["log_group"],
            "Description": f"Log group receiving {log_source.title}",
        }
        if log_source.source in TRANSFORMER_SOURCES:
            resources[f"{prefix}Transformer"] = {
                "Type": "AWS::Logs::Transformer",
                "Properties": {
                    "LogGroupIdentifier": {"Ref": parameter},
                    "TransformerConfig": [_cfn_processor(p) for p in transformer_config(log_source)],
                },
            }
        if log_source.source in policies:
            resources[f"{prefix}FieldIndexPolicy"] = {
                "Type": "AWS::Logs::AccountPolicy",
                "Properties": {
                    "PolicyName": f"r53sigma-{log_source.source}-field-index",
                    "PolicyType": "FIELD_INDEX_POLICY",
                    "PolicyDocument": json.dumps(policies[log_source.source], separators=(",", ":")),
                    "SelectionCriteria": {"Fn::Sub": f'LogGroupNamePrefix IN ["${{{parameter}}}"]'},
                },
            }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "r53sigma: CloudWatch Logs transformers and field indexes for Route 53 logs (rendered from the catalogue)",
        "Parameters": parameters,
        "Resources": resources,
    }


def render(rule_paths: list[Path] | None = None) -> dict[str, Any]:
    counts = rule_field_counts(rule_paths)
    files: dict[str, Any] = {}
    policies: dict[str, dict] = {}
    for log_source in catalogue.log_sources():
        fields = indexed_fields(log_source, counts[log_source.source])
        if fields:  # AWS requires at least one field
            policies[log_source.source] = index_policy(fields)
            files[f"cloudwatch/field-index-policy-{log_source.source}.json"] = policies[log_source.source]
        if log_source.source in TRANSFORMER_SOURCES:
            files[f"cloudwatch/transformer-{log_source.source}.json"] = transformer_config(log_source)
        if log_source.source in OCSF_TRANSFORMER:
            files[f"cloudwatch/transformer-{log_source.source}-ocsf.json"] = [
                {"parseToOCSF": OCSF_TRANSFORMER[log_source.source]}
            ]
    files["cloudwatch/cloudformation.json"] = cloudformation(policies)
    return files
