"""Helpers for the CloudWatch tests: convert a rule, run the query on the Logs Insights model, and
ask the reference engine what the rule means."""
from __future__ import annotations

import json

from sigma.collection import SigmaCollection

from r53sigma.scan import records as event_reading
from r53sigma.scan.reference import Engine
from r53sigma.targets.cloudwatch import insights_model
from sigma.backends.cloudwatch import CloudWatchLogsInsightsBackend
from sigma.pipelines.route53 import pipelines

RESOLVER = "logsource: {product: aws, service: route53resolver}"


def rule_yaml(detection: str, logsource: str = RESOLVER, title: str = "test rule") -> str:
    return f"title: {title}\nid: 11111111-2222-4333-8444-555555555555\n{logsource}\ndetection:\n{detection}\n"


def convert(yaml_text: str, output_format: str = "default", **options) -> str:
    backend = CloudWatchLogsInsightsBackend(pipelines["route53_cloudwatch"](), **options)
    result = backend.convert(SigmaCollection.from_yaml(yaml_text), output_format)
    return result[0] if isinstance(result, list) else result


def filter_line(query: str) -> str:
    return next(line for line in query.splitlines() if line.startswith("| filter "))[len("| filter "):]


def resolver(query_name="www.example.com.", answers=(), **fields) -> str:
    record = {
        "version": "1.100000", "account_id": "123456789012", "region": "us-east-1", "vpc_id": "vpc-0abc",
        "query_timestamp": "2024-05-01T10:00:00Z", "query_name": query_name, "query_type": "A",
        "query_class": "IN", "rcode": "NOERROR", "answers": [dict(a) for a in answers],
        "srcaddr": "10.0.0.5", "srcport": "53000", "transport": "UDP", "srcids": {"instance": "i-0abc"},
    }
    record.update(fields)
    return json.dumps(record)


def answer(rdata: str, rtype: str = "A") -> dict:
    return {"Rdata": rdata, "Type": rtype, "Class": "IN"}


def engine_says(yaml_text: str, raw: str) -> bool:
    rule = SigmaCollection.from_yaml(yaml_text).rules[0]
    return Engine([rule]).matches(rule, event_reading.parse_record(raw))


def model_says(query: str, raw: str, dash_absent: bool = False) -> bool:
    """Whether the query returns the event; `dash_absent`: the reading where a `-` column is no field."""
    return bool(insights_model.Query.parse(query).run([insights_model.event(raw, 0.0, dash_absent)]))


PUBLIC = "logsource: {product: aws, service: route53}"


def public_line(query_name="www.example.com", query_type="A", rcode="NOERROR", edge="IAD12", resolver_ip="192.0.2.1", subnet="-") -> str:
    """A public hosted-zone query log line (AWS's documented column order)."""
    return f"1.0 2017-12-13T08:16:02.130Z Z123412341234 {query_name} {query_type} {rcode} UDP {edge} {resolver_ip} {subnet}"


def assert_agree(yaml_text: str, raws: list[str], expected: list[bool]) -> str:
    """The converted query selects exactly the events the rule selects (and the test's expectation)."""
    query = convert(yaml_text)
    engine = [engine_says(yaml_text, raw) for raw in raws]
    assert engine == expected, f"reference engine: {engine}"
    for dash_absent in (False, True):  # both readings of a public hosted-zone `-` column
        model = [model_says(query, raw, dash_absent) for raw in raws]
        assert model == expected, f"Logs Insights model (dash_absent={dash_absent}): {model}\n{query}"
    return query


def alerts_agree(collection_yaml: str, raws: list[str], query: str | None = None) -> list[tuple]:
    """The correlation query fires for exactly the (window, group) pairs the reference engine fires for
    (the last rule of the collection is the correlation; event times are the records' own)."""
    from sigma.correlations import SigmaCorrelationRule

    collection = SigmaCollection.from_yaml(collection_yaml)
    query = query if query is not None else convert_collection(collection_yaml)[-1]
    collection.resolve_rule_references()
    correlation = next(r for r in reversed(collection.rules) if isinstance(r, SigmaCorrelationRule))
    events = [event_reading.parse_record(raw) for raw in raws]
    # Logs Insights bins are fixed (epoch-aligned); the engine's window slides and starts at the burst's
    # first event, so a burst is compared by the bin its first event falls in (cases fit in one bin)
    span = correlation.timespan.seconds
    engine = sorted((span * (a.window_start // span), tuple(str(v) for v in a.group.values()))
                    for a in Engine(collection).evaluate(correlation, events))
    width = len(correlation.group_by or [])
    rows = insights_model.run(query, [insights_model.event(raw, e.time) for raw, e in zip(raws, events)])
    # stats rows hold the window, then the group values, in the `by` order (trailing dots: the engine's
    # normalised values against the raw ones)
    model = sorted((values[0], tuple(str(v).rstrip(".") for v in values[1:1 + width])) for values in (list(r.values()) for r in rows))
    engine = [(w, tuple(v.rstrip(".") for v in g)) for w, g in engine]
    assert model == engine, f"model {model} != engine {engine}\n{query}"
    return engine


def convert_collection(yaml_text: str, output_format: str = "default", **options) -> list:
    backend = CloudWatchLogsInsightsBackend(pipelines["route53_cloudwatch"](), **options)
    return backend.convert(SigmaCollection.from_yaml(yaml_text), output_format)
