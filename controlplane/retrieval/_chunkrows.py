"""Rows of a tenant's ``chunks`` table: how they are embedded, written and read.

Shared by the two ways chunks are written -- a whole document at a time
(``documents``) and a chunk at a time (``chunks``) -- and by every reader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from pgvector import Vector
from psycopg.types.json import Jsonb

from controlplane.embedding import Purpose
from controlplane.errors import ChunkIdTaken, DocumentRejected
from controlplane.pgconnect import describe_pg_error
from controlplane.retrieval._chunkids import chunk_id_sql, made_up_chunk_id
from controlplane.retrieval.models import Chunk
from controlplane.routing import Route, TenantRouter, use_vector_types

__all__ = ["CHUNK_COLUMNS", "ChunkRow", "chunk_from_row", "copy_chunks", "embed_missing"]

_COPY_CHUNKS = (
    "COPY chunks (document_id, ordinal, key, start_offset, end_offset, content, embedding, "
    "metadata, embedder) FROM STDIN (FORMAT BINARY)"
)
_CHUNK_TYPES = ["text", "int4", "text", "int4", "int4", "text", "vector", "jsonb", "text"]
_UNIQUE_VIOLATION = "23505"
# SQLSTATE classes of errors the data causes: 22 data exception (a value out of range),
# 54 program limit exceeded (a tsvector over 1 MB).
_DATA_ERROR_CLASSES = ("22", "54")
_COPY_LINE_RE = re.compile(r"COPY chunks, line (\d+)")

# The columns chunk_from_row reads, in its order (the chunks table unaliased).
CHUNK_COLUMNS = f"{chunk_id_sql()}, ordinal, content, metadata, start_offset, end_offset"


@dataclass
class ChunkRow:
    key: str | None  # the caller's chunk id (None: made up from the ordinal)
    content: str
    start: int | None
    end: int | None
    metadata: dict[str, Any]
    embedding: list[float] | None
    embedder: str | None  # None: the caller's vector


async def embed_missing(router: TenantRouter, route: Route, rows: Sequence[ChunkRow]) -> None:
    """Fill in the vectors the caller did not send, with the tenant's embedder, in one
    call to the provider (no connection is held meanwhile)."""
    missing = [row for row in rows if row.embedding is None]
    if not missing:
        return
    embedder = router.plane.embedders.for_tenant(
        route.tenant_id, route.embedder, "a chunk sent without an embedding"
    )
    result = await embedder.embed(
        [row.content for row in missing], dims=route.schema.dims, purpose=Purpose.DOCUMENT
    )
    for row, vector in zip(missing, result.vectors, strict=True):
        row.embedding = vector
        row.embedder = result.identity


async def copy_chunks(conn: Any, route: Route, rows: Sequence[tuple[str, int, ChunkRow]]) -> None:
    """COPY new chunks -- (document id, ordinal, row) -- inside the caller's transaction.

    A row the database refuses names its document: DocumentRejected for its data,
    ChunkIdTaken for an id another chunk has.
    """
    if not rows:
        return
    await use_vector_types(conn)  # the COPY is binary
    try:
        async with conn.cursor() as cur, cur.copy(_COPY_CHUNKS) as copy:
            # Binary: pgvector's binary form is one struct.pack per vector, while its
            # text form formats every float in Python (most of a batch's time at 1024
            # dims).
            copy.set_types(_CHUNK_TYPES)
            for document_id, ordinal, c in rows:
                await copy.write_row(
                    (
                        document_id,
                        ordinal,
                        c.key,
                        c.start,
                        c.end,
                        c.content,
                        Vector(c.embedding) if c.embedding is not None else None,
                        Jsonb(c.metadata),
                        c.embedder,
                    )
                )
    except psycopg.Error as exc:
        sqlstate = exc.sqlstate or ""
        if sqlstate[:2] not in _DATA_ERROR_CLASSES and sqlstate != _UNIQUE_VIOLATION:
            raise
        line = _COPY_LINE_RE.search(exc.diag.context or "")
        at = int(line.group(1)) - 1 if line else len(rows)
        document, ordinal, row = rows[at] if at < len(rows) else (None, 0, None)
        if sqlstate == _UNIQUE_VIOLATION:
            # The one unique key a new chunk can clash with is its id: its (document,
            # ordinal) pair is fresh (a replaced document's chunks are deleted first, a
            # chunk added to one comes after its last, under the document's lock).
            chunk_id = "?"
            if document is not None and row is not None:
                chunk_id = row.key or made_up_chunk_id(document, ordinal)
            raise ChunkIdTaken(route.tenant_id, chunk_id, document) from exc
        raise DocumentRejected(
            document,
            f"document {document!r} was refused by the tenant's database: {describe_pg_error(exc)}"
            if document
            else f"the tenant's database refused a chunk: {describe_pg_error(exc)}",
        ) from exc


def chunk_from_row(row: Sequence[Any], embedding: list[float] | None) -> Chunk:
    """A chunk from a row of CHUNK_COLUMNS (and whatever follows)."""
    return Chunk(
        id=row[0],
        ordinal=row[1],
        content=row[2],
        metadata=row[3],
        start_offset=row[4],
        end_offset=row[5],
        embedding=embedding,
    )
