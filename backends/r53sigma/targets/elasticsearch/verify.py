"""Elasticsearch's verify adapter: a case's events as the ingest pipeline indexes them, searched by
real Lucene (one Java call for every query, batched) and by the ES|QL model."""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from sigma.correlations import SigmaCorrelationRule

from r53sigma import catalogue
from r53sigma.targets.spec import bursts_of_buckets, ModelGap, Rejected, Unavailable, Verifier


class ElasticsearchVerifier(Verifier):
    batched = ("lucene",)

    def evaluate(self, language: str, query: str, rule: Any, case: Any, source: Any) -> Any:
        if language != "esql":
            return super().evaluate(language, query, rule, case, source)
        from r53sigma.targets.elasticsearch import esql_model

        try:
            parsed = esql_model.Query.parse(query)
        except esql_model.QuerySyntaxError as error:
            raise ModelGap(f"ES|QL model: {error}") from error
        sources = [s for s in catalogue.log_sources()
                   if any(fnmatch.fnmatchcase(pattern, index) or pattern == index
                          for pattern in parsed.indices for index in s.targets["elasticsearch"]["index"])]
        if len(sources) != 1:
            raise Rejected(f"ES|QL FROM {', '.join(parsed.indices)} names no single index of the pack")
        try:
            parsed.check(esql_mapping(sources[0]))
        except esql_model.QueryTypeError as error:
            raise Rejected(f"Elasticsearch would reject the ES|QL query: {error}") from error
        documents = [dict(elastic_fields(raw, event.source), _id=[number])
                     for number, (raw, event) in enumerate(zip(case.raws, case.events), 1)
                     if event.source == sources[0].source]
        try:
            rows = parsed.run(documents)
        except esql_model.QuerySyntaxError as error:
            raise ModelGap(f"ES|QL model: {error}") from error
        if isinstance(rule, SigmaCorrelationRule):
            aggregate = re.compile(r"(event|value|event_type)_count$|value_(sum|avg)$").match
            return bursts_of_buckets(rows, "timebucket", aggregate, rule.timespan.seconds)
        return {row["_id"] for row in rows}

    def evaluate_batch(self, language: str, work: list[tuple[str, Any, list, Any]]) -> list:
        from r53sigma.targets.elasticsearch.lucene_engine import LuceneEngine, LuceneUnavailable

        documents: list[list[tuple[str, str, str]]] = []
        all_ranges = []
        for _query, rule, cases, source in work:
            feed = deployed_feed(rule)
            ranges = []
            for case in cases:
                start = len(documents)
                for raw, event in zip(case.raws, case.events):
                    # a document of another index is never searched: an empty stand-in keeps the numbering
                    documents.append(lucene_document(raw, event.source, feed) if source and event.source == source.source else [])
                ranges.append(range(start, len(documents)))
            all_ranges.append(ranges)
        try:
            lucene = LuceneEngine()
        except LuceneUnavailable as error:
            raise Unavailable(f"Lucene unavailable: {error}") from error
        answers = lucene.search(documents, {str(n): query for n, (query, *_rest) in enumerate(work)})
        results: list = []
        for n, ranges in enumerate(all_ranges):
            answer = answers.get(str(n))
            if isinstance(answer, str) or answer is None:
                results.append(Rejected(f"Lucene cannot parse the query: {answer}"))
                continue
            results.append([{i - numbers.start + 1 for i in answer if i in numbers} for numbers in ranges])
        return results


def esql_mapping(log_source: catalogue.LogSource) -> dict[str, str]:
    """Field -> type as the index template maps it, sub-fields included; a flattened field appears whole."""
    from r53sigma.targets.elasticsearch import ingestion

    mapping: dict[str, str] = {}
    for name, spec in ingestion.field_mappings(log_source).items():
        root = next((r for r in log_source.flattened_roots("elasticsearch") if name.startswith(r + ".")), None)
        if root is not None:
            mapping[root + "." + name[len(root) + 1:].split(".")[0]] = "flattened"
            continue
        mapping[name] = spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            mapping[f"{name}.{sub}"] = sub_spec["type"]
    return mapping


def elastic_fields(raw: Any, source: str, ioc_entries: list | None = None) -> dict[str, list]:
    from r53sigma.targets.elasticsearch.documents import document_from_raw, indexed_fields

    return indexed_fields(document_from_raw(raw, source, ioc_entries), source)


def deployed_feed(rule: Any) -> list | None:
    """The enrich index for a threat-feed rule's case: the list the case gives, as deploy loads it."""
    from r53sigma import ioc

    listed = ioc.list_match(rule)
    return [ioc.Entry(d) for d in listed.domains or []] if listed else None


def lucene_document(raw: Any, source: str, ioc_entries: list | None = None) -> list[tuple[str, str, str]]:
    """Indexed (field, type, value) triples, typed as the index template maps them (as Lucene needs)."""
    from r53sigma.targets.elasticsearch.lucene_engine import indexed_type

    log_source = catalogue.load()[source]
    types, roots = esql_mapping(log_source), log_source.flattened_roots("elasticsearch")
    values = []
    for name, items in elastic_fields(raw, source, ioc_entries).items():
        kind = types.get(name, "keyword")
        for item in items:
            values.append((name, indexed_type(kind, name, roots), str(item).lower() if isinstance(item, bool) else str(item)))
    return values
