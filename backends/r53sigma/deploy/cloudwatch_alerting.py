"""Deploy the CloudWatch alerting objects of dist/cloudwatch/template.json through the APIs, exactly as
the template declares them (its parameters resolved: log groups, the SNS topic):

- `AWS::Logs::MetricFilter` -> Logs `PutMetricFilter` (CloudFormation's `MetricTransformations`
  spelled as the API's `metricTransformations`), read back with `DescribeMetricFilters` per log group;
- `AWS::CloudWatch::InsightRule` -> CloudWatch `PutInsightRule` (`RuleBody` as `RuleDefinition`),
  read back with `DescribeInsightRules`;
- `AWS::CloudWatch::Alarm` -> CloudWatch `PutMetricAlarm` (the properties are the API's names), read
  back with `DescribeAlarms`; `AlarmActions` is the topic, or empty without one (so removing the topic
  is an update too).

Filters and rules are applied before the alarms on them. Idempotent: an object whose live state holds
what dist says is unchanged. Insight rules and alarms are created with the pack's marker tag
(`MARKER_TAG`: `Tags` on PutInsightRule and PutMetricAlarm, which ignore it on an update); `--prune`
deletes an insight rule (`r53sigma-...`) or alarm (`r53sigma ...`) that dist no longer has only when
ListTagsForResource shows the marker, and lists an untagged one as kept (created by hand, or by a
deploy before the tag). Metric filters take no tags (PutMetricFilter has no `Tags`): the pack's are
known by their name (`r53sigma ...`) alone. The dashboard stays with CloudFormation: its body
refers to the alarms' ARNs, which only the stack resolves.
"""
from __future__ import annotations

import json
import re

from r53sigma.deploy.common import CREATE, DELETE, UNCHANGED, UPDATE, Action, Retry, subset_equal
from r53sigma.deploy.dist import DistError

FILTER_PREFIX = "r53sigma "
ALARM_PREFIX = "r53sigma "
RULE_PREFIX = "r53sigma-"
MARKER_TAG = {"Key": "managed-by", "Value": "r53sigma"}
KEPT = "kept"  # a plan row that is no change: a prune candidate without the marker tag
ALARM_KEYS = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods",
              "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions", "Metrics")


def condition_holds(template: dict, name: str, parameters: dict) -> bool:
    """The template's conditions use Fn::Not, Fn::Equals and Ref only."""
    def value(node):
        if isinstance(node, dict) and "Ref" in node:
            return parameters[node["Ref"]]
        if isinstance(node, dict) and "Fn::Not" in node:
            return not value(node["Fn::Not"][0])
        if isinstance(node, dict) and "Fn::Equals" in node:
            left, right = node["Fn::Equals"]
            return value(left) == value(right)
        if isinstance(node, dict) and "Condition" in node:
            return condition_holds(template, node["Condition"], parameters)
        if isinstance(node, (dict, list)):
            raise DistError(f"template.json: unsupported condition {json.dumps(node)[:80]}")
        return node
    return bool(value(template.get("Conditions", {})[name]))


def resolved(value, template: dict, parameters: dict):
    """A property with Ref, Fn::Sub (`${!` the literal `${`) and Fn::If resolved; AWS::NoValue -> None."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return None if value["Ref"] == "AWS::NoValue" else parameters[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = re.sub(r"\$\{([^}!]+)\}", lambda m: str(parameters[m.group(1)]), value["Fn::Sub"])
        return text.replace("${!", "${")
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        name, then, otherwise = value["Fn::If"]
        return resolved(then if condition_holds(template, name, parameters) else otherwise, template, parameters)
    if isinstance(value, dict):
        if any(k.startswith("Fn::") for k in value):
            raise DistError(f"template.json: unsupported intrinsic function in {json.dumps(value)[:80]}")
        return {k: v for k, v in ((k, resolved(v, template, parameters)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [resolved(v, template, parameters) for v in value]
    return value


def lower_first(value):
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: lower_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_first(v) for v in value]
    return value


class Alerting:
    """Plans metric filters, insight rules and alarms; ``logs``/``monitoring``: callables giving the
    boto3 clients (built on first use)."""

    def __init__(self, logs, monitoring, selection, prune: bool, caller=None):
        self.logs, self.monitoring, self.selection, self.prune = logs, monitoring, selection, prune
        self.caller = caller  # () -> STS GetCallerIdentity answer: an insight rule's ARN needs the account

    def desired(self, template: dict, parameters: dict) -> tuple[dict, dict, dict]:
        resources = template.get("Resources", {})
        chosen = {}  # logical id of an alarm and of what it alarms on -> selected
        for logical_id, resource in resources.items():
            if resource.get("Type") == "AWS::CloudWatch::Alarm":
                rule_id = resource.get("Metadata", {}).get("r53sigma", {}).get("rule_id", "")
                title = resource["Properties"]["AlarmName"].removeprefix(ALARM_PREFIX)
                keep = self.selection(rule_id, title)
                chosen[logical_id] = keep
                for dependency in ([resource["DependsOn"]] if isinstance(resource.get("DependsOn"), str) else resource.get("DependsOn", [])):
                    chosen[dependency] = keep
        filters, rules, alarms = {}, {}, {}
        for logical_id, resource in sorted(resources.items()):
            kind = resource.get("Type")
            if kind not in ("AWS::Logs::MetricFilter", "AWS::CloudWatch::InsightRule", "AWS::CloudWatch::Alarm"):
                continue
            if not chosen.get(logical_id, self.selection.everything):
                continue
            props = resolved(resource["Properties"], template, parameters)
            if kind == "AWS::Logs::MetricFilter":
                filters[(props["LogGroupName"], props["FilterName"])] = {
                    "logGroupName": props["LogGroupName"], "filterName": props["FilterName"],
                    "filterPattern": props["FilterPattern"], "metricTransformations": lower_first(props["MetricTransformations"])}
            elif kind == "AWS::CloudWatch::InsightRule":
                rules[props["RuleName"]] = {"RuleName": props["RuleName"], "RuleState": props["RuleState"],
                                            "RuleDefinition": props["RuleBody"], "Tags": [MARKER_TAG]}
            else:
                unknown = set(props) - set(ALARM_KEYS)
                if unknown:
                    raise DistError(f"template.json: {logical_id} has alarm properties deploy does not apply: {sorted(unknown)}")
                alarms[props["AlarmName"]] = {"AlarmActions": [], **props, "Tags": [MARKER_TAG]}
        return filters, rules, alarms

    def plan(self, retry: Retry, classify, template: dict, parameters: dict, log_groups: list[str]) -> list[Action]:
        filters, rules, alarms = self.desired(template, parameters)
        actions: list[Action] = []
        live_filters = {}
        for group in (log_groups if filters or self.prune else []):
            live_filters.update(retry.call(f"describe metric filters of {group}", lambda g=group: self._filters(g), classify))
        for key, want in filters.items():
            actions.append(self._compare("metric filter", f"{key[0]}: {key[1]}", want, live_filters.get(key),
                                         ("filterPattern", "metricTransformations"), lambda w=want: self.logs().put_metric_filter(**w)))
        live_rules = retry.call("describe insight rules", self._rules, classify) if rules or self.prune else {}
        for name, want in rules.items():
            live = live_rules.get(name)
            current = live and {"RuleState": live.get("State"), "RuleDefinition": _json_or_text(live.get("Definition"))}
            wanted = {"RuleState": want["RuleState"], "RuleDefinition": _json_or_text(want["RuleDefinition"])}
            actions.append(self._compare("insight rule", name, wanted, current, ("RuleState", "RuleDefinition"),
                                         lambda w=want: self.monitoring().put_insight_rule(**w)))
        live_alarms = retry.call("describe alarms", self._alarms, classify) if alarms or self.prune else {}
        for name, want in alarms.items():
            actions.append(self._compare("alarm", name, want, live_alarms.get(name), tuple(k for k in want if k not in ("AlarmName", "Tags")),
                                         lambda w=want: self.monitoring().put_metric_alarm(**w)))
        if self.prune:
            actions += self._prunes(retry, classify, filters, live_filters, rules, live_rules, alarms, live_alarms)
        return actions

    def _marked(self, retry: Retry, classify, arn: str) -> bool:
        tags = retry.call(f"list tags of {arn}", lambda: self.monitoring().list_tags_for_resource(ResourceARN=arn), classify)
        return MARKER_TAG in (tags.get("Tags") or [])

    def _rule_arn(self, retry: Retry, classify, name: str) -> str:
        """arn:<partition>:cloudwatch:<region>:<account>:insight-rule/<name> (CloudWatch API reference,
        ListTagsForResource); DescribeInsightRules gives no ARN, so the account is the caller's."""
        if not hasattr(self, "_identity"):
            self._identity = retry.call("get caller identity", self.caller, classify)
        partition = self._identity["Arn"].split(":")[1]
        return f"arn:{partition}:cloudwatch:{self.monitoring().meta.region_name}:{self._identity['Account']}:insight-rule/{name}"

    def _prunes(self, retry, classify, filters, live_filters, rules, live_rules, alarms, live_alarms) -> list[Action]:
        actions = []
        unmarked = "kept: no r53sigma marker tag (not the pack's, or deployed before tags): delete it by hand if it is"
        for name in sorted(set(live_alarms) - set(alarms)):
            if self.selection(title=name.removeprefix(ALARM_PREFIX)):
                if not self._marked(retry, classify, live_alarms[name]["AlarmArn"]):
                    actions.append(Action("alarm", name, KEPT, unmarked))
                    continue
                actions.append(Action("alarm", name, DELETE, "no longer in dist",
                                      run=lambda n=name: self.monitoring().delete_alarms(AlarmNames=[n])))
        for group, name in sorted(set(live_filters) - set(filters)):
            if self.selection(title=name.removeprefix(FILTER_PREFIX)):
                actions.append(Action("metric filter", f"{group}: {name}", DELETE, "no longer in dist",
                                      run=lambda g=group, n=name: self.logs().delete_metric_filter(logGroupName=g, filterName=n)))
        if self.selection.everything:  # a rule's name is its id: pruned on a full deploy only
            for name in sorted(set(live_rules) - set(rules)):
                if not self._marked(retry, classify, self._rule_arn(retry, classify, name)):
                    actions.append(Action("insight rule", name, KEPT, unmarked))
                    continue
                actions.append(Action("insight rule", name, DELETE, "no longer in dist",
                                      run=lambda n=name: _no_failures(self.monitoring().delete_insight_rules(RuleNames=[n]))))
        return actions

    @staticmethod
    def _compare(kind: str, name: str, want: dict, live: dict | None, keys: tuple, run) -> Action:
        if live is None:
            return Action(kind, name, CREATE, run=run)
        differing = [k for k in keys if not subset_equal(want.get(k), live.get(k))]
        if not differing:
            return Action(kind, name, UNCHANGED)
        return Action(kind, name, UPDATE, "changed: " + ", ".join(differing), run=run)

    def _filters(self, group: str) -> dict:
        found, token = {}, None
        while True:
            request = {"logGroupName": group, "filterNamePrefix": FILTER_PREFIX, **({"nextToken": token} if token else {})}
            try:
                response = self.logs().describe_metric_filters(**request)
            except self.logs().exceptions.ResourceNotFoundException:
                return found  # no such log group yet: nothing of ours in it
            found.update({(f["logGroupName"], f["filterName"]): f for f in response.get("metricFilters", [])})
            token = response.get("nextToken")
            if not token:
                return found

    def _rules(self) -> dict:
        found, token = {}, None
        while True:
            response = self.monitoring().describe_insight_rules(**({"NextToken": token} if token else {}))
            found.update({r["Name"]: r for r in response.get("InsightRules", []) if r["Name"].startswith(RULE_PREFIX)})
            token = response.get("NextToken")
            if not token:
                return found

    def _alarms(self) -> dict:
        found, token = {}, None
        while True:
            request = {"AlarmNamePrefix": ALARM_PREFIX, "AlarmTypes": ["MetricAlarm"], **({"NextToken": token} if token else {})}
            response = self.monitoring().describe_alarms(**request)
            found.update({a["AlarmName"]: a for a in response.get("MetricAlarms", [])})
            token = response.get("NextToken")
            if not token:
                return found


def _json_or_text(text):
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def _no_failures(response: dict) -> dict:
    """DeleteInsightRules answers 200 with per-rule Failures: a failure is an error of that action."""
    failures = response.get("Failures") or []
    if failures:
        from r53sigma.deploy.common import Rejected

        first = failures[0]
        raise Rejected(f"CloudWatch DeleteInsightRules: {first.get('FailureCode')}: {first.get('FailureDescription')}")
    return response
