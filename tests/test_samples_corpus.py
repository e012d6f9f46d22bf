"""The engine on the real public samples in ../shared/corpus/samples/, read in place (rules inline)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sigma.collection import SigmaCollection

from r53sigma.scan.reference import Engine
from r53sigma.scan.records import read_paths

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "samples"


@pytest.fixture(scope="module")
def events():
    if not SAMPLES.is_dir():
        pytest.skip(f"../shared corpus absent: {SAMPLES}")
    errors = []
    found = list(read_paths([SAMPLES], errors.append))
    assert errors == [], errors  # every sample line is a record the reader understands
    return found


def run(rule_yaml: str, events) -> list:
    collection = SigmaCollection.from_yaml(rule_yaml)
    collection.resolve_rule_references()
    return Engine(collection).evaluate(collection.rules[-1], events)


def origins(alerts) -> list[tuple[str, int]]:
    return [(Path(a.event.file).name, a.event.line) for a in alerts]


def test_every_sample_is_read(events):
    sources = [e.source for e in events]
    assert sources.count("resolver") == 36  # 34 elastic lines, the AWS docs example, the OpenSearch record
    assert sources.count("public_zone") == 5
    assert sources.count("cloudtrail") == 6


def test_nxdomain_lines(events):
    resolver = run("""
title: nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: nxdomain}, condition: sel}
""", events)
    public = run("""
title: nx
logsource: {product: aws, service: route53}
detection: {sel: {responseCode: NXDOMAIN}, condition: sel}
""", events)
    assert len(resolver) == 11
    assert all(a.event.raw["rcode"] == "NXDOMAIN" for a in resolver)
    assert [a.event.record["queryName"] for a in public] == ["bad.example.com"]


def test_ptr_lines_with_generic_dns_names(events):
    alerts = run("""
title: ptr to ec2.internal
logsource: {category: dns}
detection:
  sel: {record_type: PTR, answer|endswith: .ec2.internal}
  condition: sel
""", events)
    assert [a.event.record["query_name"] for a in alerts] == ["159.86.31.172.in-addr.arpa"]


def test_reverse_lookups_by_query_name(events):
    alerts = run("""
title: reverse
logsource: {product: aws, service: route53resolver}
detection:
  sel: {query_name|endswith: [.in-addr.arpa, .ip6.arpa]}
  condition: sel
""", events)
    assert len(alerts) == 7
    assert all(a.event.record["query_type"] == "PTR" for a in alerts)


def test_dns_firewall_alert_and_block_records(events):
    alerts = run("""
title: firewall
logsource: {product: aws, service: route53resolver}
detection:
  sel: {firewall_rule_action: [alert, block]}
  condition: sel
""", events)
    assert sorted((a.event.record["firewall_rule_action"], Path(a.event.file).parent.name) for a in alerts) == [
        ("ALERT", "opensearch_security_analytics"),
        ("BLOCK", "aws_docs"),
        ("BLOCK", "elastic_integrations"),  # Elastic's test file repeats the AWS docs example
    ]


def test_firewall_record_from_resolver_endpoint_has_no_instance(events):
    alerts = run("""
title: endpoint
logsource: {product: aws, service: route53resolver}
detection:
  sel: {srcids.resolver_endpoint|startswith: rslvr-in-, srcids.instance: null}
  condition: sel
""", events)
    assert [a.event.record["answers"][0]["Rdata"] for a in alerts] == ["127.0.0.62"]


def test_cloudtrail_domain_contact_update_is_lower_camel(events):
    alerts = run("""
title: contact
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventSource: route53domains.amazonaws.com, eventName: UpdateDomainContact}
  condition: sel
""", events)
    assert [a.event.raw["eventName"] for a in alerts] == ["updateDomainContact"]


def test_upstream_sigmahq_event_source_never_matches_domain_calls(events):
    # The upstream defect: route53domains calls are not logged under route53.amazonaws.com.
    alerts = run("""
title: upstream
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventSource: route53.amazonaws.com, eventName: UpdateDomainContact}
  condition: sel
""", events)
    assert alerts == []


def test_cloudtrail_record_changes_any_element(events):
    alerts = run("""
title: create A
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName: ChangeResourceRecordSets
    requestParameters.changeBatch.changes.action: CREATE
    requestParameters.changeBatch.changes.resourceRecordSet.name: test.example.com.
  condition: sel
""", events)
    # CloudTrail keeps the trailing dot: the catalogue does not normalise this field.
    assert len(alerts) == 1


def test_cloudtrail_hosted_zone_deleted(events):
    alerts = run("""
title: deleted
logsource: {product: aws, service: cloudtrail}
detection: {sel: {eventName: DeleteHostedZone}, condition: sel}
""", events)
    assert [a.event.raw["eventSource"] for a in alerts] == ["route53.amazonaws.com"]


def test_nxdomain_burst_correlation_on_the_elastic_lines(events):
    alerts = run("""
title: nx
name: nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: burst
correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 5m, condition: {gte: 5}}
""", events)
    assert [(a.group, a.value) for a in alerts] == [({"srcaddr": "172.31.86.159"}, 10)]
