"""Retrieval: documents, chunks, embeddings and search inside one tenant's database.

This package's top level holds the request and response types (no I/O, cheap to
import); the operations that need a tenant connection live in their own modules
(``documents``, ``search``, ``ingest``, ``jobs``, ``stats``) and are re-exported by
``controlplane``. A tenant's specs (embedder, chunking) are in ``controlplane.model``.
"""

from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import EmbedderSpec
from controlplane.retrieval._chunking import TextChunk, split_text
from controlplane.retrieval.models import (
    ChunkIn,
    ChunkWrite,
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
    "ChunkWrite",
    "ChunkingSpec",
    "Document",
    "DocumentIn",
    "EmbedderSpec",
    "Job",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "TenantStats",
    "TextChunk",
    "UpsertRequest",
    "UpsertResponse",
    "split_text",
]
