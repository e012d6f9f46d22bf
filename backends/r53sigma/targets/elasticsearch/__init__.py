"""Elasticsearch room: ingest pipelines, index templates and the documents they produce.

Rendered from the field catalogue only (`ingestion`); `documents` computes the same ECS documents
in Python for the cross-target checks.
"""
from .documents import caseless_fields, document_from_raw, indexed_fields
from .ingestion import render

__all__ = ["caseless_fields", "document_from_raw", "indexed_fields", "render"]
