"""The threat-feed rule in Elasticsearch: an enrich policy on the user's list, looked up at ingest.

Objects (rendered under mappings/elasticsearch/enrich/, created by ``r53sigma deploy elastic --ioc-domains FILE``):

- the source index ``r53sigma-ioc-domains`` (documents ``{domain, category}``, both keywords; domains as
  :func:`r53sigma.ioc.normalise` writes them);
- the ``match`` enrich policy ``r53sigma_ioc_domains`` on it (match_field ``domain``, enrich_fields
  ``category``), executed after each load (Elasticsearch, "Set up an enrich policy": the enrich index is a
  copy made by ``_execute``; a changed source index needs a new execution);
- the pipeline ``r53sigma-resolver-ioc``: a script writes the candidate keys (the lower-cased query name,
  then the name without each leading label: ``a.b.evil.example``, ``b.evil.example``, ``evil.example``,
  ``example``) to a temporary field, one ``enrich`` processor looks them all up (with a list value the
  match processor runs a ``terms`` query: MatchProcessor.getQueryBuilder in elastic/elasticsearch
  x-pack/plugin/enrich) writing every listed entry the name falls under to ``r53sigma.ioc`` (an array
  of ``{domain, category}``; ``max_matches`` 128, the documented maximum, as a name has at most 127
  labels), then the temporary field is removed.

Why a separate pipeline, called from the Resolver pipeline by a ``pipeline`` processor with
``ignore_missing_pipeline`` and ``ignore_failure``: Elasticsearch refuses to create a pipeline whose
enrich processor names a policy that has not been executed (elastic/elasticsearch#45826, "it is
required to execute a policy before creating a pipeline with an enrich processor"), so the Resolver
pipeline stays valid, and ingest never fails, on a cluster without a feed; deploy creates the
sub-pipeline after executing the policy.

Documented options used: enrich processor ``policy_name``, ``field``, ``target_field``, ``max_matches``
(<= 128), ``ignore_missing``
(https://www.elastic.co/guide/en/elasticsearch/reference/current/enrich-processor.html); pipeline
processor ``name``, ``ignore_missing_pipeline``
(https://www.elastic.co/guide/en/elasticsearch/reference/current/pipeline-processor.html); script
processor ``lang``, ``source``, ``params``, ``tag``, lower-casing with ``Processors.lowercase`` (the lowercase
processor's own method, locale-independent: "Using ingest processors in Painless",
https://www.elastic.co/guide/en/elasticsearch/painless/current/painless-ingest.html); ``ignore_failure``
on the script and enrich processors (a failed lookup leaves the document unenriched, never failed).
"""
from __future__ import annotations

from typing import Any, Iterable

from r53sigma import ioc

POLICY = ioc.BASE_NAME
SOURCE_INDEX = ioc.BASE_NAME.replace("_", "-")  # r53sigma-ioc-domains
PIPELINE = "r53sigma-resolver-ioc"
TARGET_FIELD = "r53sigma.ioc"  # pack-owned: ECS threat.enrichments is what Kibana's indicator-match alerts write
MATCHED_DOMAIN = f"{TARGET_FIELD}.domain"
MATCHED_CATEGORY = f"{TARGET_FIELD}.category"
KEYS_FIELD = "_r53sigma_ioc_keys"
MAX_MATCHES = 128
CALL_TAG = ioc.BASE_NAME  # the processors' tag in ingest stats

CANDIDATES = (
    "def node = ctx; for (def key : params.name) {"
    " if (!(node instanceof Map) || node.get(key) == null) { return; } node = node.get(key); }"
    " String name = Processors.lowercase(node.toString());"
    " List keys = new ArrayList(); keys.add(name);"
    " int dot = name.indexOf('.');"
    " while (dot >= 0) { keys.add(name.substring(dot + 1)); dot = name.indexOf('.', dot + 1); }"
    " ctx[params.keys] = keys;"
)


def candidates(name: str) -> list[str]:
    """What the script writes: the lower-cased name, then the text after each of its dots."""
    name = name.lower()
    return [name] + [name[i + 1:] for i, c in enumerate(name) if c == "."]


def call_processor() -> dict:
    """The step appended to the Resolver pipeline: run the lookup pipeline if deploy created it."""
    return {"pipeline": {"name": PIPELINE, "ignore_missing_pipeline": True, "ignore_failure": True, "tag": CALL_TAG}}


def mappings() -> dict[str, dict]:
    """What the lookup writes, for the Resolver index template (keywords, as in the source index)."""
    return {MATCHED_DOMAIN: {"type": "keyword"}, MATCHED_CATEGORY: {"type": "keyword"}}


def source_index() -> dict:
    return {"mappings": {"properties": {c: {"type": "keyword"} for c in ioc.LOOKUP_COLUMNS},
                         "_meta": {"managed_by": "r53sigma"}}}


def policy() -> dict:
    return {"match": {"indices": [SOURCE_INDEX], "match_field": ioc.LOOKUP_COLUMNS[0],
                      "enrich_fields": list(ioc.LOOKUP_COLUMNS[1:])}}


def lookup_pipeline(question_name: str) -> dict:
    """The sub-pipeline for the ECS query-name field ``question_name`` (from the catalogue)."""
    return {
        "description": f"r53sigma: {question_name} and its parent domains looked up in the enrich policy {POLICY}",
        "processors": [
            {"script": {"tag": "r53sigma_ioc_candidates", "lang": "painless", "source": CANDIDATES,
                        "params": {"name": question_name.split("."), "keys": KEYS_FIELD}, "ignore_failure": True}},
            {"enrich": {"policy_name": POLICY, "field": KEYS_FIELD, "target_field": TARGET_FIELD,
                        "max_matches": MAX_MATCHES, "ignore_missing": True, "ignore_failure": True}},
            {"remove": {"field": KEYS_FIELD, "ignore_missing": True}},
        ],
        "_meta": {"managed_by": "r53sigma", "log_source": "resolver"},
    }


def render(question_name: str) -> dict[str, Any]:
    return {
        f"elasticsearch/enrich/{SOURCE_INDEX}.index.json": source_index(),
        f"elasticsearch/enrich/{POLICY}.policy.json": policy(),
        f"elasticsearch/enrich/{PIPELINE}.pipeline.json": lookup_pipeline(question_name),
    }


def enrich_index(entries: Iterable[ioc.Entry]) -> dict[str, tuple[int, dict]]:
    """The enrich index ``_execute`` builds from the loaded feed: domain -> (position, document), the
    first entry of a domain kept (deploy indexes each domain once, by ``_id``)."""
    index: dict[str, tuple[int, dict]] = {}
    for entry in entries:
        if entry.domain not in index:
            index[entry.domain] = (len(index), {"domain": entry.domain, **({"category": entry.category} if entry.category else {})})
    return index


def matches(name: str, index: dict[str, tuple[int, dict]]) -> list[dict]:
    """What the enrich processor writes for ``name``: the documents whose domain is a candidate key
    (one hash probe per label, whatever the feed's size). Elasticsearch does not promise the order of
    the hits; the copy gives the feed's order (the Lucene query reads only whether there is one)."""
    found = sorted(index[key] for key in set(candidates(name)) if key in index)
    return [dict(document) for _position, document in found[:MAX_MATCHES]]


def lucene(base: str) -> str:
    """``base`` (the events having the name field) narrowed to those the lookup enriched."""
    return f"({base}) AND _exists_:{MATCHED_DOMAIN}"
