"""The shapes of ingest and retrieval requests and results.

msgspec structs: the HTTP API decodes request bodies straight into them (unknown fields
and out-of-range numbers are refused while decoding), the CLI and Python callers build
them directly. What depends on the tenant -- dimensions, metric -- is checked by the
retrieval functions (``validation``), which every caller goes through.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

__all__ = [
    "MAX_BATCH_DOCUMENTS",
    "MAX_CHUNKS_PER_DOCUMENT",
    "Chunk",
    "ChunkIn",
    "Document",
    "DocumentIn",
    "DocumentResult",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "TenantStats",
    "UpsertRequest",
    "UpsertResponse",
]

MAX_BATCH_DOCUMENTS = 1_000
MAX_CHUNKS_PER_DOCUMENT = 10_000

DocumentId = Annotated[
    str, Meta(min_length=1, max_length=512, description="The caller's id for the document.")
]
Metadata = Annotated[
    dict[str, Any], Meta(description="Any JSON object; searches filter on it by containment.")
]
Vector = Annotated[
    list[float], Meta(min_length=1, description="Exactly as many numbers as the tenant's dims.")
]


class ChunkIn(Struct, forbid_unknown_fields=True):
    content: Annotated[str, Meta(min_length=1, max_length=1_000_000)]
    embedding: Vector
    metadata: Metadata = {}
    start_offset: Annotated[int, Meta(ge=0)] | None = None
    end_offset: Annotated[int, Meta(ge=0)] | None = None


class DocumentIn(Struct, forbid_unknown_fields=True):
    id: DocumentId
    chunks: Annotated[list[ChunkIn], Meta(max_length=MAX_CHUNKS_PER_DOCUMENT)]
    title: Annotated[str, Meta(max_length=10_000)] | None = None
    source: Annotated[str, Meta(max_length=10_000)] | None = None
    metadata: Metadata = {}


class UpsertRequest(Struct, forbid_unknown_fields=True):
    documents: Annotated[list[DocumentIn], Meta(min_length=1, max_length=MAX_BATCH_DOCUMENTS)]


class DocumentResult(Struct):
    id: str
    # "created", "updated", or "unchanged" (same title, metadata and chunks as stored)
    status: str
    chunks: int


class UpsertResponse(Struct):
    documents: list[DocumentResult]


class SearchRequest(Struct, forbid_unknown_fields=True):
    vector: Vector
    k: Annotated[int, Meta(ge=1, le=100)] = 10
    filter: Annotated[
        dict[str, Any] | None,
        Meta(description='JSON containment (@>) on chunk metadata, e.g. {"lang": "en"}.'),
    ] = None
    min_similarity: float | None = None
    include_content: bool = True
    include_metadata: bool = True
    ef_search: Annotated[int, Meta(ge=1, le=1000)] | None = None
    probes: Annotated[int, Meta(ge=1, le=32_768)] | None = None


class SearchHit(Struct, omit_defaults=True):
    document_id: str
    chunk: int
    score: float
    content: str | None = None
    metadata: dict[str, Any] | None = None


class SearchResponse(Struct):
    results: list[SearchHit]


class Chunk(Struct, omit_defaults=True):
    ordinal: int
    content: str
    metadata: dict[str, Any]
    start_offset: int | None = None
    end_offset: int | None = None
    embedding: list[float] | None = None


class Document(Struct):
    id: str
    title: str | None
    source: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    chunks: list[Chunk]


class TenantStats(Struct):
    tenant: str
    documents: int
    chunks: int
    dims: int
    metric: str
    index: str
    schema_version: int
    index_bytes: int
    table_bytes: int
    database_bytes: int
