"""Retrieval: documents, chunks, embeddings and search inside one tenant's database.

This package's top level holds the data types and the per-tenant settings (embedder,
chunking); the operations that need a tenant connection live in their own modules
(``documents``, ``search``, ``ingest``, ``jobs``, ``stats``) and are re-exported by
``controlplane``.
"""

from controlplane.retrieval.chunking import ChunkingSpec, TextChunk, split_text
from controlplane.retrieval.embedding import Embedders, EmbedderSpec, Purpose
from controlplane.retrieval.models import (
    ChunkIn,
    Document,
    DocumentIn,
    Job,
    SearchHit,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
)

__all__ = [
    "ChunkIn",
    "ChunkingSpec",
    "Document",
    "DocumentIn",
    "EmbedderSpec",
    "Embedders",
    "Job",
    "Purpose",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "TenantStats",
    "TextChunk",
    "UpsertRequest",
    "UpsertResponse",
    "split_text",
]
