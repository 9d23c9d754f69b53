"""Chunks one at a time: write, read and delete a chunk by its id, leaving its siblings.

What LlamaIndex calls nodes: a caller that keeps its own chunking adds chunks to a
document over several calls, replaces one, deletes one. A chunk's id is unique in the
tenant (``chunkids``); a write names the chunk's document, which is made -- with no
title and empty metadata -- when there is none yet.

A write clears its documents' content hash: the next whole-document upsert of one of
them is never taken for "unchanged" (it replaces the chunks as a whole again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from pgvector import Vector
from psycopg.types.json import Jsonb

from controlplane.errors import ChunkIdTaken, InvalidRequest
from controlplane.retrieval._chunkids import chunk_id_sql
from controlplane.retrieval._chunkrows import (
    CHUNK_COLUMNS,
    ChunkRow,
    chunk_from_row,
    copy_chunks,
    embed_missing,
)
from controlplane.retrieval.documents import check_document_id, validate_chunk
from controlplane.retrieval.models import (
    MAX_BATCH_DOCUMENTS,
    ChunkFetchResponse,
    ChunkResult,
    ChunkUpsertResponse,
    ChunkWrite,
    DeleteResponse,
    StoredChunk,
)
from controlplane.routing import Route, TenantConnection, TenantRouter, use_vector_types

__all__ = ["delete_chunks", "fetch_chunks", "upsert_chunks"]

_CHUNK_ID = chunk_id_sql()

# In id order, so two writers lock documents in the same order; a document that is
# there is locked by the DO UPDATE, one that is not is made.
_LOCK_DOCUMENTS = """
INSERT INTO documents AS d (id)
SELECT id FROM unnest(%s::text[]) AS ids(id) ORDER BY id
ON CONFLICT (id) DO UPDATE SET content_hash = NULL, updated_at = now()
RETURNING d.id, d.metadata
"""
_UPDATE_CHUNK = """
UPDATE chunks SET content = %(content)s, embedding = %(embedding)s, metadata = %(metadata)s,
    start_offset = %(start)s, end_offset = %(end)s, embedder = %(embedder)s
WHERE document_id = %(document)s AND ordinal = %(ordinal)s
"""


def _validate(route: Route, writes: Sequence[ChunkWrite]) -> None:
    if not 1 <= len(writes) <= MAX_BATCH_DOCUMENTS:
        raise InvalidRequest(f"chunks: give 1 to {MAX_BATCH_DOCUMENTS} chunks")
    seen: set[str] = set()
    for i, w in enumerate(writes):
        at = f"chunks[{i}]"
        check_document_id(w.document_id, f"{at}.document_id")
        if w.id in seen:
            raise InvalidRequest(f"chunk id {w.id!r} appears twice in the batch")
        seen.add(w.id)
        validate_chunk(route, w, at)


async def upsert_chunks(
    router: TenantRouter,
    tenant_id: str,
    writes: Sequence[ChunkWrite],
    *,
    incarnation: str | None = None,
) -> ChunkUpsertResponse:
    """Write each chunk in place of the chunk of its id, or after its document's last
    chunk; atomically, the batch as a whole."""
    route = await router.route(tenant_id, incarnation=incarnation)
    _validate(route, writes)
    rows = [
        ChunkRow(w.id, w.content, w.start_offset, w.end_offset, w.metadata, w.embedding, None)
        for w in writes
    ]
    await embed_missing(router, route, rows)
    async with router.connection(route) as tc, tc.conn.transaction():
        results = await _write(tc.conn, route, writes, rows)
    return ChunkUpsertResponse(chunks=results)


async def _write(
    conn: Any, route: Route, writes: Sequence[ChunkWrite], rows: list[ChunkRow]
) -> list[ChunkResult]:
    documents = sorted({w.document_id for w in writes})
    cur = await conn.execute(_LOCK_DOCUMENTS, (documents,))
    document_metadata = {row[0]: row[1] for row in await cur.fetchall()}
    cur = await conn.execute(
        f"SELECT {_CHUNK_ID}, document_id, ordinal FROM chunks WHERE {_CHUNK_ID} = ANY(%s) "
        "FOR UPDATE",
        ([w.id for w in writes],),
    )
    stored = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT document_id, max(ordinal) + 1 FROM chunks WHERE document_id = ANY(%s) "
        "GROUP BY document_id",
        (documents,),
    )
    next_ordinal = {row[0]: row[1] for row in await cur.fetchall()}
    results: list[ChunkResult] = []
    updates: list[dict[str, Any]] = []
    new: list[tuple[str, int, ChunkRow]] = []
    for w, row in zip(writes, rows, strict=True):
        # Chunks carry their document's metadata (one index serves filters on either);
        # the chunk's own keys win.
        row.metadata = {**document_metadata[w.document_id], **w.metadata}
        if w.id in stored:
            document, ordinal = stored[w.id]
            if document != w.document_id:
                raise ChunkIdTaken(route.tenant_id, w.id, w.document_id)
            updates.append(_update_params(document, ordinal, row))
            results.append(ChunkResult(w.id, document, ordinal, "updated"))
        else:
            ordinal = next_ordinal.get(w.document_id, 0)
            next_ordinal[w.document_id] = ordinal + 1
            new.append((w.document_id, ordinal, row))
            results.append(ChunkResult(w.id, w.document_id, ordinal, "created"))
    if updates:
        await use_vector_types(conn)
        async with conn.cursor() as cur:
            await cur.executemany(_UPDATE_CHUNK, updates)
    await copy_chunks(conn, route, new)
    return results


def _update_params(document: str, ordinal: int, row: ChunkRow) -> dict[str, Any]:
    return {
        "document": document,
        "ordinal": ordinal,
        "content": row.content,
        "embedding": Vector(row.embedding) if row.embedding is not None else None,
        "metadata": Jsonb(row.metadata),
        "start": row.start,
        "end": row.end,
        "embedder": row.embedder,
    }


def _unique(ids: Sequence[str]) -> list[str]:
    for chunk_id in ids:
        check_document_id(chunk_id, "chunk id")
    wanted = list(dict.fromkeys(ids))
    if not 1 <= len(wanted) <= MAX_BATCH_DOCUMENTS:
        raise InvalidRequest(f"ids: give 1 to {MAX_BATCH_DOCUMENTS} chunk ids")
    return wanted


async def fetch_chunks(
    router: TenantRouter,
    tenant_id: str,
    ids: Sequence[str],
    *,
    include_embeddings: bool = False,
    incarnation: str | None = None,
) -> ChunkFetchResponse:
    """The chunks of ``ids``, in the order asked, and the ids there is no chunk for."""
    wanted = _unique(ids)
    route = await router.route(tenant_id, incarnation=incarnation)
    vector = ", embedding::real[]" if include_embeddings else ""

    async def run(tc: TenantConnection) -> list[tuple[Any, ...]]:
        cur = await tc.conn.execute(
            f"SELECT document_id, {CHUNK_COLUMNS}{vector} FROM chunks WHERE {_CHUNK_ID} = ANY(%s)",
            (wanted,),
        )
        return list(await cur.fetchall())

    found = {}
    for row in await router.read(route, run):
        chunk = chunk_from_row(row[1:], row[7] if include_embeddings else None)
        found[chunk.id] = StoredChunk(document_id=row[0], **msgspec.structs.asdict(chunk))
    return ChunkFetchResponse(
        chunks=[found[i] for i in wanted if i in found],
        missing=[i for i in wanted if i not in found],
    )


async def delete_chunks(
    router: TenantRouter,
    tenant_id: str,
    ids: Sequence[str],
    *,
    incarnation: str | None = None,
) -> DeleteResponse:
    """Delete the chunks of ``ids``, in one statement; their documents stay (with the
    chunks they have left, or none)."""
    wanted = _unique(ids)
    route = await router.route(tenant_id, incarnation=incarnation)
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            f"WITH gone AS (DELETE FROM chunks WHERE {_CHUNK_ID} = ANY(%s) "
            f"RETURNING {_CHUNK_ID} AS id, document_id), "
            "touched AS (UPDATE documents SET content_hash = NULL, updated_at = now() "
            "WHERE id IN (SELECT document_id FROM gone)) "
            "SELECT id FROM gone",
            (wanted,),
        )
        deleted = {row[0] for row in await cur.fetchall()}
    return DeleteResponse(deleted=len(deleted), missing=[i for i in wanted if i not in deleted])
