"""Documents and their chunks in a tenant database: upsert, read, delete.

A document arrives as ``text`` (chunked with the tenant's chunking, embedded with its
embedder) or as ready ``chunks`` (whose missing embeddings are filled in the same way).
An upsert goes in two steps:

1. *prepare* -- compare each document's content hash with the stored one and drop the
   unchanged ones, then chunk and embed the rest. No connection is held while the
   embedding provider works, and nothing is written yet;
2. *write* -- in one transaction, replace each changed document's chunks as a whole.
   A concurrent search runs on a snapshot: it sees the old chunks or the new ones,
   never a mix. Documents are written in id order, so two batches cannot deadlock.

A failure in either step -- bad input, a provider error, a wrong answer -- leaves the
tenant's database as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from controlplane.errors import DocumentNotFound, InvalidRequest, TenantHasNoEmbedder
from controlplane.inputs import check_json, check_text
from controlplane.retrieval._chunkids import made_up_chunk_id
from controlplane.retrieval._chunking import split_text
from controlplane.retrieval._chunkrows import (
    CHUNK_COLUMNS,
    ChunkRow,
    chunk_from_row,
    copy_chunks,
    embed_missing,
)
from controlplane.retrieval._validation import check_vector
from controlplane.retrieval.models import (
    MAX_DOCUMENT_ID,
    Chunk,
    ChunkIn,
    ChunkWrite,
    Document,
    DocumentIn,
    DocumentResult,
    UpsertRequest,
    UpsertResponse,
)
from controlplane.routing import Route, TenantConnection, TenantRouter

__all__ = [
    "PreparedDocument",
    "check_unique_chunk_ids",
    "check_document_id",
    "delete_document",
    "get_document",
    "prepare_documents",
    "upsert_documents",
    "validate_chunk",
    "validate_document",
    "write_documents",
]

# MessagePack: floats go in as their 8 bytes, where JSON would format each one.
_hash_encoder = msgspec.msgpack.Encoder(order="deterministic")

_UPSERT_DOCUMENT = """
INSERT INTO documents AS d (id, title, source, metadata, content_hash)
VALUES (%(id)s, %(title)s, %(source)s, %(metadata)s, %(hash)s)
ON CONFLICT (id) DO UPDATE
    SET title = EXCLUDED.title, source = EXCLUDED.source, metadata = EXCLUDED.metadata,
        content_hash = EXCLUDED.content_hash, updated_at = now()
    WHERE d.content_hash IS DISTINCT FROM EXCLUDED.content_hash
RETURNING (xmax = 0) AS inserted
"""
_STORED = """
SELECT d.id, d.content_hash, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)
FROM documents d WHERE d.id = ANY(%s)
"""


@dataclass
class PreparedDocument:
    doc: DocumentIn
    hash: str
    # None when the stored document already has this hash: nothing to write.
    chunks: list[ChunkRow] | None
    stored_chunks: int = 0


def check_document_id(document_id: str, where: str = "document id") -> str:
    """A caller's document id: 1-512 characters, none of them a control character."""
    if not 1 <= len(document_id) <= MAX_DOCUMENT_ID:
        raise InvalidRequest(f"{where} must be 1-{MAX_DOCUMENT_ID} characters")
    return check_text(document_id, where, single_line=True)


def validate_document(route: Route, doc: DocumentIn, where: str) -> None:
    """Everything about one document that can be checked without the database."""
    check_document_id(doc.id, f"{where}.id")
    if (doc.text is None) == (doc.chunks is None):
        raise InvalidRequest(f"{where}: give either text or chunks")
    if doc.text is not None:
        check_text(doc.text, f"{where}.text")
    for name in ("title", "source"):
        value = getattr(doc, name)
        if value is not None:
            check_text(value, f"{where}.{name}")
    check_json(doc.metadata, f"{where}.metadata")
    if doc.text is not None and route.embedder is None:
        raise TenantHasNoEmbedder(route.tenant_id, f"the text of {where}")
    for c, chunk in enumerate(doc.chunks or ()):
        validate_chunk(route, chunk, f"{where}.chunks[{c}]")


def validate_chunk(route: Route, chunk: ChunkIn | ChunkWrite, at: str) -> None:
    """One chunk, as part of a document or on its own."""
    if chunk.id is not None:
        check_document_id(chunk.id, f"{at}.id")
    check_json(chunk.metadata, f"{at}.metadata")
    if chunk.embedding is None and route.embedder is None:
        raise TenantHasNoEmbedder(route.tenant_id, f"{at}, sent without an embedding,")
    if chunk.embedding is not None:
        schema = route.schema
        check_vector(
            chunk.embedding,
            tenant_id=route.tenant_id,
            dims=schema.dims,
            metric=schema.metric,
            where=f"{at}.embedding",
        )
    check_text(chunk.content, f"{at}.content")
    if (
        chunk.start_offset is not None
        and chunk.end_offset is not None
        and chunk.end_offset < chunk.start_offset
    ):
        raise InvalidRequest(f"{at}: end_offset is before start_offset")


def validate_upsert(route: Route, request: UpsertRequest) -> None:
    seen: set[str] = set()
    for d, doc in enumerate(request.documents):
        if doc.id in seen:
            raise InvalidRequest(f"document {doc.id!r} appears twice in the batch")
        seen.add(doc.id)
        validate_document(route, doc, f"documents[{d}]")
    check_unique_chunk_ids(request.documents)


def check_unique_chunk_ids(docs: Sequence[DocumentIn]) -> None:
    """No chunk id twice in a batch: the caller's ids and the made-up ones together."""
    seen: set[str] = set()
    for doc in docs:
        for ordinal, chunk in enumerate(doc.chunks or ()):
            chunk_id = chunk.id if chunk.id is not None else made_up_chunk_id(doc.id, ordinal)
            if chunk_id in seen:
                raise InvalidRequest(f"chunk id {chunk_id!r} appears twice in the batch")
            seen.add(chunk_id)


def content_hash(route: Route, doc: DocumentIn) -> str:
    """What decides "unchanged": the document as sent, and for text the chunking too
    (a new chunking re-chunks). The embedder is not part of it: 'tenantctl backfill'
    re-embeds after a model change."""
    digest = hashlib.sha256(_hash_encoder.encode(doc))
    if doc.text is not None:
        digest.update(_hash_encoder.encode(route.chunking.to_json()))
    return digest.hexdigest()


async def prepare_documents(
    router: TenantRouter, route: Route, docs: Sequence[DocumentIn]
) -> list[PreparedDocument]:
    """Hash, skip the unchanged, chunk and embed the rest (validated documents only)."""
    prepared = [PreparedDocument(doc, content_hash(route, doc), None) for doc in docs]
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(_STORED, ([p.doc.id for p in prepared],))
        stored = {row[0]: (row[1], int(row[2])) for row in await cur.fetchall()}
    changed = []
    for p in prepared:
        stored_hash, stored_chunks = stored.get(p.doc.id, (None, 0))
        if stored_hash == p.hash:
            p.stored_chunks = stored_chunks
        else:
            p.chunks = _chunk_rows(route, p.doc)
            changed.append(p)
    await embed_missing(router, route, [row for p in changed for row in p.chunks or ()])
    return prepared


def _chunk_rows(route: Route, doc: DocumentIn) -> list[ChunkRow]:
    if doc.text is not None:
        return [
            ChunkRow(None, c.content, c.start, c.end, dict(doc.metadata), None, None)
            for c in split_text(doc.text, route.chunking)
        ]
    return [
        # Chunks carry their document's metadata, so one index serves filters on
        # either; a chunk's own keys win.
        ChunkRow(
            c.id,
            c.content,
            c.start_offset,
            c.end_offset,
            {**doc.metadata, **c.metadata},
            c.embedding,
            None,
        )
        for c in doc.chunks or ()
    ]


async def write_documents(
    conn: Any, route: Route, prepared: Sequence[PreparedDocument]
) -> dict[str, DocumentResult]:
    """Write prepared documents on ``conn``, inside the caller's transaction.

    Three round trips whatever the batch size: the document rows in one pipelined
    ``executemany`` (in id order, so concurrent batches lock rows in the same order),
    one DELETE of the replaced documents' chunks, one COPY of every new chunk.
    """
    results: dict[str, DocumentResult] = {}
    changed = sorted((p for p in prepared if p.chunks is not None), key=lambda p: p.doc.id)
    for p in prepared:
        if p.chunks is None:
            results[p.doc.id] = DocumentResult(
                id=p.doc.id, status="unchanged", chunks=p.stored_chunks
            )
    if not changed:
        return results
    written: list[PreparedDocument] = []
    replaced: list[str] = []
    async with conn.cursor() as cur:
        await cur.executemany(
            _UPSERT_DOCUMENT,
            [
                {
                    "id": p.doc.id,
                    "title": p.doc.title,
                    "source": p.doc.source,
                    "metadata": Jsonb(p.doc.metadata),
                    "hash": p.hash,
                }
                for p in changed
            ],
            returning=True,
        )
        for p in changed:
            row = await cur.fetchone()
            chunks = len(p.chunks or ())
            if row is None:  # written, identical, by a concurrent request since we looked
                results[p.doc.id] = DocumentResult(id=p.doc.id, status="unchanged", chunks=chunks)
            else:
                inserted = bool(row[0])
                if not inserted:
                    replaced.append(p.doc.id)
                written.append(p)
                status = "created" if inserted else "updated"
                results[p.doc.id] = DocumentResult(id=p.doc.id, status=status, chunks=chunks)
            cur.nextset()
    if replaced:
        await conn.execute("DELETE FROM chunks WHERE document_id = ANY(%s)", (replaced,))
    await copy_chunks(
        conn,
        route,
        [(p.doc.id, ordinal, c) for p in written for ordinal, c in enumerate(p.chunks or ())],
    )
    return results


async def upsert_documents(
    router: TenantRouter,
    tenant_id: str,
    request: UpsertRequest,
    *,
    incarnation: str | None = None,
) -> UpsertResponse:
    """Write a batch of documents with their chunks, atomically."""
    route = await router.route(tenant_id, incarnation=incarnation)
    validate_upsert(route, request)
    prepared = await prepare_documents(router, route, request.documents)
    async with router.connection(route) as tc, tc.conn.transaction():
        results = await write_documents(tc.conn, route, prepared)
    return UpsertResponse(documents=[results[doc.id] for doc in request.documents])


def document_from_row(row: Sequence[Any], chunks: list[Chunk]) -> Document:
    """A document from (id, title, source, metadata, created_at, updated_at)."""
    return Document(
        id=row[0],
        title=row[1],
        source=row[2],
        metadata=row[3],
        created_at=row[4].isoformat(),
        updated_at=row[5].isoformat(),
        chunks=chunks,
    )


async def get_document(
    router: TenantRouter,
    tenant_id: str,
    document_id: str,
    *,
    include_embeddings: bool = False,
    incarnation: str | None = None,
) -> Document:
    check_document_id(document_id)
    route = await router.route(tenant_id, incarnation=incarnation)

    async def run(tc: TenantConnection) -> Document | None:
        cur = await tc.conn.execute(
            "SELECT id, title, source, metadata, created_at, updated_at FROM documents "
            "WHERE id = %s",
            (document_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        embedding = ", embedding::real[]" if include_embeddings else ""
        cur = await tc.conn.execute(
            f"SELECT {CHUNK_COLUMNS}{embedding} FROM chunks WHERE document_id = %s "
            "ORDER BY ordinal",
            (document_id,),
        )
        chunks = [
            chunk_from_row(c, c[6] if include_embeddings else None) for c in await cur.fetchall()
        ]
        return document_from_row(row, chunks)

    document = await router.read(route, run)
    if document is None:
        raise DocumentNotFound(tenant_id, document_id)
    return document


async def delete_document(
    router: TenantRouter, tenant_id: str, document_id: str, *, incarnation: str | None = None
) -> None:
    """Delete the document and its chunks; DocumentNotFound if there is none."""
    check_document_id(document_id)
    route = await router.route(tenant_id, incarnation=incarnation)
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            "DELETE FROM documents WHERE id = %s RETURNING id", (document_id,)
        )
        if await cur.fetchone() is None:
            raise DocumentNotFound(tenant_id, document_id)
