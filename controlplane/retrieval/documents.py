"""Documents and their chunks in a tenant database: upsert, read, delete.

An upsert is one transaction: every document of the batch is written, or none is.
Each document's chunks are replaced as a whole (a document is the unit of change);
a document sent again unchanged -- same title, source, metadata and chunks, by content
hash -- is left alone, so re-sending a corpus costs no index churn.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from pgvector import Vector
from psycopg.types.json import Jsonb

from controlplane.errors import DocumentNotFound, InvalidRequest
from controlplane.retrieval.models import (
    Chunk,
    Document,
    DocumentIn,
    DocumentResult,
    UpsertRequest,
    UpsertResponse,
)
from controlplane.retrieval.validation import check_vector
from controlplane.routing import Route, TenantRouter

__all__ = ["delete_document", "get_document", "upsert_documents"]

_hash_encoder = msgspec.json.Encoder(order="deterministic")

_UPSERT_DOCUMENT = """
INSERT INTO documents AS d (id, title, source, metadata, content_hash)
VALUES (%(id)s, %(title)s, %(source)s, %(metadata)s, %(hash)s)
ON CONFLICT (id) DO UPDATE
    SET title = EXCLUDED.title, source = EXCLUDED.source, metadata = EXCLUDED.metadata,
        content_hash = EXCLUDED.content_hash, updated_at = now()
    WHERE d.content_hash IS DISTINCT FROM EXCLUDED.content_hash
RETURNING (xmax = 0) AS inserted
"""
_INSERT_CHUNK = """
INSERT INTO chunks (document_id, ordinal, start_offset, end_offset, content, embedding, metadata)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def validate_upsert(route: Route, request: UpsertRequest) -> None:
    seen: set[str] = set()
    schema = route.schema
    for d, doc in enumerate(request.documents):
        if doc.id in seen:
            raise InvalidRequest(f"document {doc.id!r} appears twice in the batch")
        seen.add(doc.id)
        for c, chunk in enumerate(doc.chunks):
            where = f"documents[{d}].chunks[{c}]"
            check_vector(
                chunk.embedding,
                tenant_id=route.tenant_id,
                dims=schema.dims,
                metric=schema.metric,
                where=f"{where}.embedding",
            )
            if "\x00" in chunk.content:
                raise InvalidRequest(f"{where}.content contains a NUL character")
            if (
                chunk.start_offset is not None
                and chunk.end_offset is not None
                and chunk.end_offset < chunk.start_offset
            ):
                raise InvalidRequest(f"{where}: end_offset is before start_offset")


async def upsert_documents(
    router: TenantRouter, tenant_id: str, request: UpsertRequest
) -> UpsertResponse:
    """Write a batch of documents with their chunks, atomically."""
    validate_upsert(await router.route(tenant_id), request)
    results: dict[str, DocumentResult] = {}
    async with router.connection(tenant_id) as tc, tc.conn.transaction():
        # Fixed order: two batches touching the same documents cannot deadlock.
        for doc in sorted(request.documents, key=lambda d: d.id):
            results[doc.id] = await _upsert_one(tc.conn, doc)
    return UpsertResponse(documents=[results[doc.id] for doc in request.documents])


async def _upsert_one(conn: Any, doc: DocumentIn) -> DocumentResult:
    cur = await conn.execute(
        _UPSERT_DOCUMENT,
        {
            "id": doc.id,
            "title": doc.title,
            "source": doc.source,
            "metadata": Jsonb(doc.metadata),
            "hash": hashlib.sha256(_hash_encoder.encode(doc)).hexdigest(),
        },
    )
    row = await cur.fetchone()
    if row is None:
        return DocumentResult(id=doc.id, status="unchanged", chunks=len(doc.chunks))
    inserted = bool(row[0])
    if not inserted:
        await conn.execute("DELETE FROM chunks WHERE document_id = %s", (doc.id,))
    if doc.chunks:
        async with conn.cursor() as cur:
            await cur.executemany(
                _INSERT_CHUNK,
                [
                    (
                        doc.id,
                        ordinal,
                        chunk.start_offset,
                        chunk.end_offset,
                        chunk.content,
                        Vector(chunk.embedding),
                        # Chunks carry their document's metadata, so one index serves
                        # filters on either; a chunk's own keys win.
                        Jsonb({**doc.metadata, **chunk.metadata}),
                    )
                    for ordinal, chunk in enumerate(doc.chunks)
                ],
            )
    status = "created" if inserted else "updated"
    return DocumentResult(id=doc.id, status=status, chunks=len(doc.chunks))


async def get_document(
    router: TenantRouter, tenant_id: str, document_id: str, *, include_embeddings: bool = False
) -> Document:
    async with router.connection(tenant_id) as tc:
        cur = await tc.conn.execute(
            "SELECT id, title, source, metadata, created_at, updated_at FROM documents "
            "WHERE id = %s",
            (document_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise DocumentNotFound(tenant_id, document_id)
        embedding = ", embedding" if include_embeddings else ""
        cur = await tc.conn.execute(
            "SELECT ordinal, content, metadata, start_offset, end_offset"
            + embedding
            + " FROM chunks WHERE document_id = %s ORDER BY ordinal",
            (document_id,),
        )
        chunks = [
            Chunk(
                ordinal=c[0],
                content=c[1],
                metadata=c[2],
                start_offset=c[3],
                end_offset=c[4],
                embedding=c[5].to_list() if include_embeddings else None,
            )
            for c in await cur.fetchall()
        ]
    return Document(
        id=row[0],
        title=row[1],
        source=row[2],
        metadata=row[3],
        created_at=row[4].isoformat(),
        updated_at=row[5].isoformat(),
        chunks=chunks,
    )


async def delete_document(router: TenantRouter, tenant_id: str, document_id: str) -> None:
    """Delete the document and its chunks; DocumentNotFound if there is none."""
    async with router.connection(tenant_id) as tc:
        cur = await tc.conn.execute(
            "DELETE FROM documents WHERE id = %s RETURNING id", (document_id,)
        )
        if await cur.fetchone() is None:
            raise DocumentNotFound(tenant_id, document_id)
