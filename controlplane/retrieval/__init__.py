"""Retrieval: documents, chunks and vector search inside one tenant's database."""

from controlplane.retrieval.documents import delete_document, get_document, upsert_documents
from controlplane.retrieval.models import (
    ChunkIn,
    Document,
    DocumentIn,
    SearchHit,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
)
from controlplane.retrieval.search import search
from controlplane.retrieval.stats import tenant_stats

__all__ = [
    "ChunkIn",
    "Document",
    "DocumentIn",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "TenantStats",
    "UpsertRequest",
    "UpsertResponse",
    "delete_document",
    "get_document",
    "search",
    "tenant_stats",
    "upsert_documents",
]
