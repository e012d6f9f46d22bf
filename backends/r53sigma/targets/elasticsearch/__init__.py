"""Elasticsearch room: ingest pipelines, index templates and the documents they produce.

Rendered from the field catalogue only (`ingestion`); `documents` computes the same ECS documents
in Python for the cross-target checks.
"""
from .documents import caseless_fields, document_from_raw, indexed_fields
from .ingestion import render
from r53sigma.targets.spec import Target

__all__ = ["TARGET", "caseless_fields", "document_from_raw", "indexed_fields", "render"]


def _package(rules, roots):
    from . import dashboard, kibana

    return {**kibana.render(rules), dashboard.DASHBOARD_FILE: dashboard.ndjson()}


def _first_seen(rule, spec, query):
    from .first_seen import native_form

    return native_form(rule, spec, query)


def _verifier():
    from .verify import ElasticsearchVerifier

    return ElasticsearchVerifier()


def _deployer():
    from r53sigma.deploy import elastic

    return elastic, "ElasticTarget"


TARGET = Target(
    "elasticsearch", "route53_elasticsearch",
    "r53sigma.targets.elasticsearch.lucene:LuceneBackend", "r53sigma.targets.elasticsearch.backend:HoppingESQLBackend",
    "lucene", "esql", ".lucene", ".esql",
    order=1,
    render_ingestion=render,
    render_package=_package,
    verifier=_verifier,
    deployer=_deployer,
    deploy_name="elastic",
    window_guarantee=0.5,  # hopping buckets (r53sigma.targets.elasticsearch.backend)
    first_seen=_first_seen,  # Kibana new_terms rules (first_seen.py)
    first_seen_form="Kibana new_terms rule",
    first_seen_max_fields=3,
    first_seen_max_fields_reason="a Kibana new_terms rule combines up to three fields (Elastic docs, "
    "New terms rules: https://www.elastic.co/docs/solutions/security/detect-and-alert/new-terms)",
    mapping_column="ECS (Elasticsearch)",
)
