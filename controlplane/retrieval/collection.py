"""A tenant's documents as a collection: list their ids, count, fetch and delete many.

What every peer vector store offers besides upsert and search: ids page by page (a
cursor, keyset on the id, so a page costs the same at the millionth id as at the
first), counts, fetching and deleting a batch of ids in one round trip, and deleting
everything a filter matches. Filters here are on *document* metadata, in the language
of ``retrieval.filters`` (the documents table has its own GIN index on it).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from controlplane.errors import InvalidRequest
from controlplane.inputs import check_json
from controlplane.retrieval._chunkrows import CHUNK_COLUMNS, chunk_from_row
from controlplane.retrieval._filters import compile_filter
from controlplane.retrieval.documents import check_document_id, document_from_row
from controlplane.retrieval.models import (
    Chunk,
    DeleteResponse,
    DocumentCount,
    DocumentIds,
    FetchResponse,
)
from controlplane.routing import TenantConnection, TenantRouter

__all__ = ["count_documents", "delete_documents", "fetch_documents", "list_document_ids"]

MAX_PAGE = 1000


def _where(spec: dict[str, Any] | None) -> tuple[sql.SQL, dict[str, Any]]:
    if spec is None:
        return sql.SQL(""), {}
    check_json(spec, "filter")
    condition = compile_filter(spec)
    if condition.kind == "containment":
        return sql.SQL(" WHERE metadata @> %(filter)s"), {"filter": Jsonb(condition.value)}
    return sql.SQL(" WHERE metadata @@ %(filter)s::jsonpath"), {"filter": condition.value}


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return check_document_id(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError, InvalidRequest):
        raise InvalidRequest("cursor is not one this API gave (pass next_cursor as is)") from None


async def list_document_ids(
    router: TenantRouter,
    tenant_id: str,
    *,
    cursor: str | None = None,
    limit: int = 100,
    incarnation: str | None = None,
) -> DocumentIds:
    """Up to ``limit`` ids after ``cursor`` (from the page before), in id order."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    after = _decode_cursor(cursor) if cursor else None
    route = await router.route(tenant_id, incarnation=incarnation)

    async def run(tc: TenantConnection) -> list[str]:
        # One more than asked for tells whether another page follows.
        if after is None:
            cur = await tc.conn.execute(
                "SELECT id FROM documents ORDER BY id LIMIT %s", (limit + 1,)
            )
        else:
            cur = await tc.conn.execute(
                "SELECT id FROM documents WHERE id > %s ORDER BY id LIMIT %s", (after, limit + 1)
            )
        return [row[0] for row in await cur.fetchall()]

    ids = await router.read(route, run)
    more = len(ids) > limit
    ids = ids[:limit]
    return DocumentIds(ids=ids, next_cursor=encode_cursor(ids[-1]) if more else None)


async def count_documents(
    router: TenantRouter,
    tenant_id: str,
    spec: dict[str, Any] | None = None,
    *,
    incarnation: str | None = None,
) -> DocumentCount:
    """Documents (those ``spec`` matches, if given) and their chunks."""
    where, params = _where(spec)
    route = await router.route(tenant_id, incarnation=incarnation)
    statement = sql.SQL(
        "WITH d AS (SELECT id FROM documents{where}) "
        "SELECT (SELECT count(*) FROM d), "
        "(SELECT count(*) FROM chunks WHERE document_id IN (SELECT id FROM d))"
    ).format(where=where)

    async def run(tc: TenantConnection) -> tuple[int, int]:
        cur = await tc.conn.execute(statement, params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    documents, chunks = await router.read(route, run)
    return DocumentCount(documents=documents, chunks=chunks)


def _unique(ids: list[str]) -> list[str]:
    for document_id in ids:
        check_document_id(document_id)
    return list(dict.fromkeys(ids))


async def fetch_documents(
    router: TenantRouter,
    tenant_id: str,
    ids: list[str],
    *,
    include_embeddings: bool = False,
    incarnation: str | None = None,
) -> FetchResponse:
    """The documents of ``ids`` with their chunks, in the order asked, and the ids the
    tenant has no document for. Two statements, however many ids."""
    wanted = _unique(ids)
    if not 1 <= len(wanted) <= MAX_PAGE:
        raise InvalidRequest(f"ids: give 1 to {MAX_PAGE} document ids")
    route = await router.route(tenant_id, incarnation=incarnation)
    vector = ", embedding::real[]" if include_embeddings else ""

    async def run(tc: TenantConnection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        docs = await tc.conn.execute(
            "SELECT id, title, source, metadata, created_at, updated_at FROM documents "
            "WHERE id = ANY(%s)",
            (wanted,),
        )
        documents = await docs.fetchall()
        chunks = await tc.conn.execute(
            f"SELECT document_id, {CHUNK_COLUMNS}{vector} FROM chunks "
            "WHERE document_id = ANY(%s) ORDER BY document_id, ordinal",
            (wanted,),
        )
        return documents, await chunks.fetchall()

    rows, chunk_rows = await router.read(route, run)
    chunks: dict[str, list[Chunk]] = {}
    for c in chunk_rows:
        embedding = c[7] if include_embeddings else None
        chunks.setdefault(c[0], []).append(chunk_from_row(c[1:], embedding))
    found = {row[0]: document_from_row(row, chunks.get(row[0], [])) for row in rows}
    return FetchResponse(
        documents=[found[i] for i in wanted if i in found],
        missing=[i for i in wanted if i not in found],
    )


async def delete_documents(
    router: TenantRouter,
    tenant_id: str,
    *,
    ids: list[str] | None = None,
    spec: dict[str, Any] | None = None,
    incarnation: str | None = None,
) -> DeleteResponse:
    """Delete the documents of ``ids``, or every document ``spec`` matches (exactly one
    of the two), with their chunks, in one statement: all or nothing."""
    if (ids is None) == (spec is None):
        raise InvalidRequest("say what to delete: ids, or a filter (not both)")
    route = await router.route(tenant_id, incarnation=incarnation)
    if ids is not None:
        wanted = _unique(ids)
        if not 1 <= len(wanted) <= MAX_PAGE:
            raise InvalidRequest(f"ids: give 1 to {MAX_PAGE} document ids")
        statement: sql.SQL | sql.Composed = sql.SQL(
            "DELETE FROM documents WHERE id = ANY(%(ids)s) RETURNING id"
        )
        params: dict[str, Any] = {"ids": wanted}
    else:
        if not spec:
            raise InvalidRequest(
                "filter: an empty filter would delete everything; delete "
                "the tenant, or name what to delete"
            )
        where, params = _where(spec)
        statement = sql.SQL("DELETE FROM documents{where} RETURNING id").format(where=where)
        wanted = []
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(statement, params)
        deleted = {row[0] for row in await cur.fetchall()}
    return DeleteResponse(deleted=len(deleted), missing=[i for i in wanted if i not in deleted])
