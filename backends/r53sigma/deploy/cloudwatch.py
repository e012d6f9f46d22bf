"""Deploy to CloudWatch Logs with boto3: saved queries, field-index policies, transformers.

- Query definitions from dist/cloudwatch/query_definitions.json, idempotent by name: an existing
  definition of that name is updated in place (`PutQueryDefinition` with its `queryDefinitionId`),
  never duplicated. The pack's definitions are named `r53sigma/...`; `--prune` deletes those that
  dist no longer has (PutQueryDefinition takes no tags: the name prefix is the only mark).
- Field indexes and transformers exactly as dist/cloudwatch/template.json declares them:
  `AWS::Logs::AccountPolicy` (FIELD_INDEX_POLICY) -> `PutAccountPolicy`, `AWS::Logs::Transformer`
  -> `PutTransformer` (CloudFormation's `ParseJSON`/`EventSource` spelling turned into the API's
  `parseJSON`/`eventSource`). Log-group names are the template's parameters: their defaults, or
  `--log-group SOURCE=NAME` (SOURCE is a log source such as `resolver`, or the parameter name).
  `--prune` deletes field-index account policies named `r53sigma-*` that dist no longer has (no tags
  on PutAccountPolicy either);
  transformers are left in place (a log group has at most one, and it may be the user's).
- Alerting: metric filters, Contributor Insights rules and the alarms on them, through the Logs and
  CloudWatch APIs (deploy/cloudwatch_alerting.py); `--alarm-topic ARN` (the template's
  `AlarmTopicArn`) is the SNS topic the alarms notify. The dashboard is left to CloudFormation.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from r53sigma.deploy import dist as dist_files
from r53sigma.deploy.cloudwatch_alerting import Alerting
from r53sigma.deploy.common import (
    CREATE, DELETE, UNCHANGED, UPDATE, Action, AuthFailed, DeployError, Rejected, Retry, Transient, Unreachable, readable,
)
from r53sigma.deploy.dist import DistError, Selection
from r53sigma.deploy.settings import Settings, SettingsError

NAME = "cloudwatch"
KEYS = ["region", "profile", "log_groups", "alarm_topic"]
TOPIC_PARAMETER = "AlarmTopicArn"
QUERY_PREFIX = "r53sigma/"
POLICY_PREFIX = "r53sigma-"
FIELD_INDEX = "FIELD_INDEX_POLICY"
QUERY_LANGUAGE = "CWLI"
STACK_ONLY = ("AWS::CloudWatch::Dashboard",)
ALERTING = ("AWS::Logs::MetricFilter", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::InsightRule")
NOT_APPLIED = "stack only"  # a plan row that is no change: deploy leaves it to CloudFormation
MONITORING_OPERATIONS = frozenset({"PutInsightRule", "DescribeInsightRules", "DeleteInsightRules",
                                   "PutMetricAlarm", "DescribeAlarms", "DeleteAlarms", "ListTagsForResource"})
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure", "OperationAbortedException",
})
AUTH_CODES = frozenset({
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
    "ExpiredTokenException", "ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch",
})


def classify(error: BaseException) -> DeployError | None:
    from botocore import exceptions as boto

    if isinstance(error, boto.ClientError):
        info = error.response.get("Error", {})
        code, message = info.get("Code", ""), readable(info.get("Message", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = f"{'CloudWatch' if error.operation_name in MONITORING_OPERATIONS else 'CloudWatch Logs'} {error.operation_name}"
        if code in AUTH_CODES or status in (401, 403):
            return AuthFailed(f"{where}: {code}: {message}; check the AWS credentials and the IAM policy the README lists")
        if code in TRANSIENT_CODES or status in (429, 500, 502, 503, 504):
            return Transient(f"{where}: {code}: {message}")
        return Rejected(f"{where}: {code}: {message}")
    if isinstance(error, (boto.NoCredentialsError, boto.PartialCredentialsError, boto.ProfileNotFound)):
        return AuthFailed(f"AWS credentials: {error}")
    if isinstance(error, boto.NoRegionError):
        return AuthFailed("AWS region not set: use --region, R53SIGMA_CLOUDWATCH_REGION or AWS_REGION")
    if isinstance(error, (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ReadTimeoutError)):
        return Unreachable(f"CloudWatch Logs: cannot connect ({error})")
    return None


def connect(settings: Settings, service: str = "logs"):
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=settings.get("profile"), region_name=settings.get("region"))
    # One attempt per call at the botocore level: the deploy's own retry reports and bounds them.
    return session.client(service, config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30))


def api_spelling(value):
    """CloudFormation's `ParseToOCSF: {EventSource: ...}` -> the API's `parseToOCSF: {eventSource: ...}`."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: api_spelling(v) for key, v in value.items()}
    if isinstance(value, list):
        return [api_spelling(v) for v in value]
    return value


def parameter_values(template: dict, overrides: dict[str, str], topic: str | None = None) -> dict[str, str]:
    parameters = template.get("Parameters", {})
    values = {name: spec.get("Default") for name, spec in parameters.items()}
    if topic:
        if TOPIC_PARAMETER not in parameters:
            raise SettingsError("--alarm-topic: dist/cloudwatch/template.json has no alarms to notify")
        if not re.fullmatch(parameters[TOPIC_PARAMETER].get("AllowedPattern", ".*"), topic):
            raise SettingsError(f"--alarm-topic {topic}: not an SNS topic ARN")
        values[TOPIC_PARAMETER] = topic
    for key, group in overrides.items():
        parameter = key if key in parameters else "".join(p.capitalize() for p in key.split("_")) + "LogGroupName"
        if parameter not in parameters:
            known = sorted({re.sub(r"(?<!^)(?=[A-Z])", "_", p[: -len("LogGroupName")]).lower() for p in parameters if p.endswith("LogGroupName")})
            raise SettingsError(f"--log-group {key}=...: unknown log source (known: {', '.join(known)})")
        values[parameter] = group
    return values


def resolve(value, parameters: dict[str, str]):
    """The two intrinsic functions the packaged template uses: Ref to a parameter, Fn::Sub over parameters."""
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(parameters[m.group(1)]), value["Fn::Sub"])
    if isinstance(value, (dict, list)) and ("Ref" in json.dumps(value) or "Fn::" in json.dumps(value)):
        raise DistError(f"template.json: unsupported intrinsic function in {json.dumps(value)[:80]}")
    return value


class CloudWatchTarget:
    label = "CloudWatch Logs"

    def __init__(self, dist: Path, settings: Settings, selection: Selection, prune: bool = False,
                 force: bool = False, client=None, monitoring=None, sts=None):
        self.dist = dist / "cloudwatch"
        self.settings = settings
        self.selection = selection
        self.prune = prune
        self._client = client
        self._monitoring = monitoring
        self._sts = sts

    @property
    def monitoring(self):
        """The CloudWatch (metrics, alarms, Contributor Insights) client."""
        if self._monitoring is None:
            self._monitoring = connect(self.settings, "cloudwatch")
        return self._monitoring

    def caller_identity(self) -> dict:
        """STS GetCallerIdentity (no permission needed): the account an insight rule's ARN names."""
        if self._sts is None:
            self._sts = connect(self.settings, "sts")
        return self._sts.get_caller_identity()

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.settings)
        return self._client

    def _template(self) -> tuple[dict, dict[str, str]]:
        template = dist_files.read_json(self.dist / "template.json")
        return template, parameter_values(template, dict(self.settings.get("log_groups") or {}), self.settings.get("alarm_topic"))

    # ---- query definitions ---------------------------------------------------------------
    def _current_queries(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        token = None
        while True:
            request = {"queryDefinitionNamePrefix": QUERY_PREFIX, "maxResults": 1000}
            if token:
                request["nextToken"] = token
            response = self.client.describe_query_definitions(**request)
            for definition in response.get("queryDefinitions", []):
                found.setdefault(definition["name"], definition)  # a duplicate name: the first is updated
            token = response.get("nextToken")
            if not token:
                return found

    def plan_queries(self, retry: Retry, defaults_to_groups: dict[str, str]) -> list[Action]:
        rows = dist_files.read_json(self.dist / "query_definitions.json")
        desired = {}
        for row in rows:
            if self.selection(str(row.get("rule_id") or ""), row["name"].rsplit("/", 1)[-1]):
                groups = [defaults_to_groups.get(g, g) for g in row.get("logGroupNames", [])]
                desired[row["name"]] = {"name": row["name"], "queryString": row["queryString"], "logGroupNames": groups}
        current = retry.call("describe query definitions", self._current_queries, classify)
        actions = []
        for name, want in desired.items():
            live = current.get(name)
            if live is None:
                actions.append(Action("query definition", name, CREATE, run=self._put_query(want)))
                continue
            differing = [k for k in ("queryString", "logGroupNames") if sorted_if_list(want[k]) != sorted_if_list(live.get(k, []))]
            if not differing:
                actions.append(Action("query definition", name, UNCHANGED))
            else:
                actions.append(Action("query definition", name, UPDATE, "changed: " + ", ".join(differing),
                                      run=self._put_query({**want, "queryDefinitionId": live["queryDefinitionId"]})))
        if self.prune:
            for name, live in sorted(current.items()):
                if name not in desired and self.selection(title=name.rsplit("/", 1)[-1]):
                    actions.append(Action("query definition", name, DELETE, "no longer in dist",
                                          run=lambda i=live["queryDefinitionId"]: self.client.delete_query_definition(queryDefinitionId=i)))
        return actions

    def _put_query(self, request: dict):
        return lambda: self.client.put_query_definition(queryLanguage=QUERY_LANGUAGE, **request)

    # ---- field indexes and transformers --------------------------------------------------
    def plan_ingestion(self, retry: Retry, template: dict, parameters: dict[str, str]) -> list[Action]:
        policies, transformers, stack_only = {}, {}, []
        for logical_id, resource in sorted(template.get("Resources", {}).items()):
            kind, props = resource.get("Type"), resource.get("Properties", {})
            if kind == "AWS::Logs::AccountPolicy" and props.get("PolicyType") == FIELD_INDEX:
                policies[props["PolicyName"]] = {
                    "policyName": props["PolicyName"], "policyType": FIELD_INDEX,
                    "policyDocument": resolve(props["PolicyDocument"], parameters),
                    "selectionCriteria": resolve(props["SelectionCriteria"], parameters),
                    "scope": "ALL",
                }
            elif kind == "AWS::Logs::Transformer":
                group = resolve(props["LogGroupIdentifier"], parameters)
                transformers[group] = api_spelling(props["TransformerConfig"])
            elif kind in STACK_ONLY:
                # the dashboard's body refers to the alarms' ARNs, which only the stack resolves
                stack_only.append(Action(kind.rsplit("::", 1)[1], logical_id, NOT_APPLIED,
                                         "not applied by deploy: install with `aws cloudformation deploy` of template.json"))
            elif kind not in ALERTING and kind != "AWS::Logs::QueryDefinition":
                raise DistError(f"template.json: {logical_id} is a {kind}, which deploy does not know how to apply")
        actions: list[Action] = list(stack_only)
        current = retry.call("describe field-index policies", self._current_policies, classify)
        for name, want in policies.items():
            live = current.get(name)
            if live is None:
                actions.append(Action("field-index policy", name, CREATE, run=self._put_policy(want)))
            elif json.loads(live.get("policyDocument") or "{}") == json.loads(want["policyDocument"]) and live.get("selectionCriteria") == want["selectionCriteria"]:
                actions.append(Action("field-index policy", name, UNCHANGED))
            else:
                actions.append(Action("field-index policy", name, UPDATE, want["selectionCriteria"], run=self._put_policy(want)))
        for group, config in transformers.items():
            live = retry.call(f"get transformer of {group}", lambda: self._current_transformer(group), classify)
            if live is None:
                actions.append(Action("transformer", group, CREATE, run=self._put_transformer(group, config)))
            elif live == config:
                actions.append(Action("transformer", group, UNCHANGED))
            else:
                actions.append(Action("transformer", group, UPDATE, "replaces the log group's transformer",
                                      run=self._put_transformer(group, config)))
        if self.prune:
            for name in sorted(set(current) - set(policies)):
                if name.startswith(POLICY_PREFIX):
                    actions.append(Action("field-index policy", name, DELETE, "no longer in dist", run=lambda n=name:
                                          self.client.delete_account_policy(policyName=n, policyType=FIELD_INDEX)))
        return actions

    def _current_policies(self) -> dict[str, dict]:
        found, token = {}, None
        while True:
            request = {"policyType": FIELD_INDEX, **({"nextToken": token} if token else {})}
            response = self.client.describe_account_policies(**request)
            found.update({p["policyName"]: p for p in response.get("accountPolicies", [])})
            token = response.get("nextToken")
            if not token:
                return found

    def _current_transformer(self, group: str) -> list | None:
        try:
            return self.client.get_transformer(logGroupIdentifier=group).get("transformerConfig")
        except self.client.exceptions.ResourceNotFoundException:
            return None

    def _put_policy(self, request: dict):
        return lambda: self.client.put_account_policy(**request)

    def _put_transformer(self, group: str, config: list):
        return lambda: self.client.put_transformer(logGroupIdentifier=group, transformerConfig=config)

    def plan(self, retry: Retry) -> list[Action]:
        dist_files.require_dir(self.dist)
        template, parameters = self._template()
        defaults = {spec.get("Default"): parameters[name] for name, spec in template.get("Parameters", {}).items()}
        ingestion = self.plan_ingestion(retry, template, parameters) if self.selection.everything else []
        groups = sorted({v for k, v in parameters.items() if k.endswith("LogGroupName") and v})
        alerting = Alerting(lambda: self.client, lambda: self.monitoring, self.selection, self.prune, self.caller_identity)
        return ingestion + self.plan_queries(retry, defaults) + alerting.plan(retry, classify, template, parameters, groups)

    classify = staticmethod(classify)


def sorted_if_list(value):
    return sorted(value) if isinstance(value, list) else value
