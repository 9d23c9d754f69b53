"""The shapes of ingest and retrieval requests and results.

msgspec structs: the HTTP API decodes request bodies straight into them (unknown fields
and out-of-range numbers are refused while decoding), the CLI and Python callers build
them directly. What depends on the tenant -- dimensions, metric -- is checked by the
retrieval functions (``validation``), which every caller goes through.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from controlplane.inputs import K_CEILING

__all__ = [
    "CountRequest",
    "DeleteRequest",
    "DeleteResponse",
    "DocumentCount",
    "DocumentIds",
    "FetchRequest",
    "FetchResponse",
    "MAX_BATCH_DOCUMENTS",
    "MAX_CHUNKS_PER_DOCUMENT",
    "MAX_DOCUMENT_ID",
    "MAX_OFFSET",
    "Chunk",
    "ChunkDeleteRequest",
    "ChunkFetchRequest",
    "ChunkFetchResponse",
    "ChunkIn",
    "ChunkResult",
    "ChunkUpsertRequest",
    "ChunkUpsertResponse",
    "ChunkWrite",
    "StoredChunk",
    "Document",
    "DocumentIn",
    "DocumentResult",
    "Job",
    "JobError",
    "SearchHit",
    "SearchMode",
    "SearchRequest",
    "SearchResponse",
    "TenantStats",
    "UpsertRequest",
    "UpsertResponse",
]

MAX_BATCH_DOCUMENTS = 1_000
MAX_CHUNKS_PER_DOCUMENT = 10_000
MAX_TEXT_CHARS = 10_000_000
MAX_DOCUMENT_ID = 512
# Chunk offsets are stored as Postgres integers.
MAX_OFFSET = 2**31 - 1


def _text_id(description: str) -> Meta:
    """An id callers choose: 1-512 characters, none of them a control character."""
    return Meta(
        min_length=1,
        max_length=MAX_DOCUMENT_ID,
        # For the OpenAPI document only: check_document_id decides (on the whole string,
        # with a message naming the field).
        extra_json_schema={"pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"},
        description=description,
    )


DocumentId = Annotated[
    str, _text_id("The caller's id for the document: any text without control characters.")
]
ChunkId = Annotated[
    str,
    _text_id(
        "A chunk's id, unique in the tenant: the caller's (a LlamaIndex node id, say) or, "
        'when none was given, "<document id>#<ordinal>".'
    ),
]
Metadata = Annotated[
    dict[str, Any],
    Meta(description="Any JSON object; searches filter on it (SearchRequest.filter)."),
]
Vector = Annotated[
    list[float], Meta(min_length=1, description="Exactly as many numbers as the tenant's dims.")
]


class ChunkIn(Struct, forbid_unknown_fields=True):
    content: Annotated[str, Meta(min_length=1, max_length=1_000_000)]
    embedding: (
        Annotated[Vector, Meta(description="Omit to have the tenant's embedder embed content.")]
        | None
    ) = None
    metadata: Metadata = {}
    start_offset: Annotated[int, Meta(ge=0, le=MAX_OFFSET)] | None = None
    end_offset: Annotated[int, Meta(ge=0, le=MAX_OFFSET)] | None = None
    id: (
        Annotated[ChunkId, Meta(description='Omit for the made-up "<document id>#<ordinal>".')]
        | None
    ) = None


class DocumentIn(Struct, forbid_unknown_fields=True):
    """A document as ``text`` (chunked and embedded by the control plane) or as ``chunks``."""

    id: DocumentId
    text: (
        Annotated[
            str,
            Meta(
                max_length=MAX_TEXT_CHARS,
                description="The document's text; the tenant's chunking and embedder apply.",
            ),
        ]
        | None
    ) = None
    chunks: Annotated[list[ChunkIn], Meta(max_length=MAX_CHUNKS_PER_DOCUMENT)] | None = None
    title: Annotated[str, Meta(max_length=10_000)] | None = None
    source: Annotated[str, Meta(max_length=10_000)] | None = None
    metadata: Metadata = {}


# A document is its text or its chunks, never both (validate_document enforces it).
_TEXT_OR_CHUNKS = {
    "oneOf": [
        {
            "required": ["text"],
            "properties": {"text": {"type": "string"}, "chunks": {"type": "null"}},
        },
        {
            "required": ["chunks"],
            "properties": {"chunks": {"type": "array"}, "text": {"type": "null"}},
        },
    ]
}


class UpsertRequest(Struct, forbid_unknown_fields=True):
    documents: Annotated[
        list[Annotated[DocumentIn, Meta(extra_json_schema=_TEXT_OR_CHUNKS)]],
        Meta(min_length=1, max_length=MAX_BATCH_DOCUMENTS),
    ]


class DocumentResult(Struct):
    id: str
    # "created", "updated", or "unchanged" (same text or chunks, title and metadata as
    # stored: nothing was embedded or written)
    status: str
    chunks: int


class UpsertResponse(Struct):
    documents: list[DocumentResult]


SearchMode = Literal["vector", "keyword", "hybrid"]


class SearchRequest(Struct, forbid_unknown_fields=True):
    """A query as ``text`` (embedded with the tenant's embedder) and/or a ``vector``."""

    text: Annotated[str, Meta(min_length=1, max_length=100_000)] | None = None
    vector: Vector | None = None
    mode: (
        Annotated[
            SearchMode,
            Meta(
                description="vector (default), keyword (full text), or hybrid: both rankings "
                "fused by reciprocal rank."
            ),
        ]
        | None
    ) = None
    hybrid: Annotated[bool, Meta(description='Shorthand for "mode": "hybrid".')] = False
    keyword_weight: Annotated[
        float, Meta(ge=0, le=1, description="Hybrid: the full-text ranking's share (0-1).")
    ] = 0.5
    k: Annotated[
        int,
        Meta(
            ge=1,
            le=K_CEILING,
            description="How many hits: at most the server's TENANTVEC_MAX_K (1000 by "
            "default); more is a 400 that says the limit.",
        ),
    ] = 10
    filter: Annotated[
        dict[str, Any] | None,
        Meta(
            description="On chunk metadata: plain keys and values match by JSON containment "
            '({"lang": "en"}); operators $eq $ne $gt $gte $lt $lte $in $nin $exists on a field '
            '({"year": {"$gte": 2020}}) and $and $or $not over conditions. Bad filters get '
            "a 400 naming the operator (docs/ingestion.md)."
        ),
    ] = None
    min_similarity: float | None = None
    include_content: bool = True
    include_metadata: bool = True
    include_embeddings: Annotated[
        bool, Meta(description="Each hit carries its chunk's vector (for MMR re-ranking).")
    ] = False
    ef_search: Annotated[int, Meta(ge=1, le=1000)] | None = None
    probes: Annotated[int, Meta(ge=1, le=32_768)] | None = None


class SearchHit(Struct, omit_defaults=True):
    document_id: str
    chunk: int  # the chunk's ordinal in its document
    chunk_id: str
    # vector: the similarity; keyword: ts_rank_cd; hybrid: the fused reciprocal-rank score
    score: float
    # The vector similarity, in keyword and hybrid modes when a query vector was used.
    similarity: float | None = None
    content: str | None = None
    metadata: dict[str, Any] | None = None
    embedding: list[float] | None = None


class SearchResponse(Struct):
    results: list[SearchHit]


class Chunk(Struct, omit_defaults=True):
    id: str
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


class JobError(Struct):
    document: str | None
    error: str


class Job(Struct):
    """An ingestion job: its documents are written as it goes, each batch atomically."""

    id: str
    tenant: str
    kind: str
    # pending -> running -> completed | failed ("failed": it stopped early; see error)
    state: str
    total: int
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[JobError]
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class DocumentIds(Struct):
    """A page of a tenant's document ids, in id order; ``next_cursor`` fetches the next
    page (None: this was the last)."""

    ids: list[str]
    next_cursor: str | None


class DocumentCount(Struct):
    documents: int
    chunks: int


class CountRequest(Struct, forbid_unknown_fields=True):
    filter: Annotated[
        dict[str, Any] | None, Meta(description="On document metadata (SearchRequest.filter).")
    ] = None


class FetchRequest(Struct, forbid_unknown_fields=True):
    ids: Annotated[list[DocumentId], Meta(min_length=1, max_length=1000)]
    include_embeddings: bool = False


class FetchResponse(Struct):
    documents: list[Document]  # in the order asked, each once
    missing: list[str]  # ids the tenant has no document for


class DeleteRequest(Struct, forbid_unknown_fields=True):
    """Exactly one of ``ids`` and ``filter`` (on document metadata)."""

    ids: Annotated[list[DocumentId], Meta(min_length=1, max_length=1000)] | None = None
    filter: dict[str, Any] | None = None


class DeleteResponse(Struct):
    deleted: int
    missing: list[str]  # of the ids asked for, those that were not there


class ChunkWrite(Struct, forbid_unknown_fields=True):
    """One chunk written on its own: it replaces the chunk of the same id, or joins its
    document after the last chunk (the document is made, empty, if there is none). The
    document's other chunks are left as they are."""

    id: ChunkId
    document_id: DocumentId
    content: Annotated[str, Meta(min_length=1, max_length=1_000_000)]
    embedding: (
        Annotated[Vector, Meta(description="Omit to have the tenant's embedder embed content.")]
        | None
    ) = None
    metadata: Annotated[
        dict[str, Any],
        Meta(description="Stored over the document's metadata (the chunk's keys win)."),
    ] = {}
    start_offset: Annotated[int, Meta(ge=0, le=MAX_OFFSET)] | None = None
    end_offset: Annotated[int, Meta(ge=0, le=MAX_OFFSET)] | None = None


class ChunkUpsertRequest(Struct, forbid_unknown_fields=True):
    chunks: Annotated[list[ChunkWrite], Meta(min_length=1, max_length=MAX_BATCH_DOCUMENTS)]


class ChunkResult(Struct):
    id: str
    document_id: str
    ordinal: int
    status: Literal["created", "updated"]


class ChunkUpsertResponse(Struct):
    chunks: list[ChunkResult]  # in the order sent


class StoredChunk(Chunk, kw_only=True):
    """A chunk read on its own: it names its document."""

    document_id: str


class ChunkFetchRequest(Struct, forbid_unknown_fields=True):
    ids: Annotated[list[ChunkId], Meta(min_length=1, max_length=MAX_BATCH_DOCUMENTS)]
    include_embeddings: bool = False


class ChunkFetchResponse(Struct):
    chunks: list[StoredChunk]  # in the order asked, each once
    missing: list[str]  # ids the tenant has no chunk for


class ChunkDeleteRequest(Struct, forbid_unknown_fields=True):
    ids: Annotated[list[ChunkId], Meta(min_length=1, max_length=MAX_BATCH_DOCUMENTS)]
