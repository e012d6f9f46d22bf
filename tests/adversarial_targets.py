"""A test-only target: single-event rules in ES|QL (the pack's Elasticsearch target sends them to
Lucene), so the adversarial generator proves the ES|QL backend + pipeline on the ES|QL model too.
Joins the registry through R53SIGMA_TARGETS (r53sigma.targets.registry)."""
from r53sigma.targets.elasticsearch import TARGET as ELASTICSEARCH
from r53sigma.targets.spec import Target

TARGET = Target(
    "elasticsearch_esql", ELASTICSEARCH.pipeline,
    ELASTICSEARCH.correlation_backend, ELASTICSEARCH.correlation_backend,
    "esql", "esql", ".esql", ".esql",
    order=999, siem=False, verifier=ELASTICSEARCH.verifier,
)
