"""The schema changes that are per tenant: its vector dimensions and its vector index.

Versioned migrations (``migrations/``) change every tenant alike. Two changes touch one
tenant only:

- a new embedding model with other dimensions: ``chunks.embedding`` is recreated as
  ``vector(new dims)`` -- emptied, since vectors of one model mean nothing to another --
  and its vector index rebuilt, in one transaction under the migration lock. The chunks
  keep their text; ``tenantctl backfill`` embeds them again.
- another vector index (kind or build parameters): the new index is built
  ``CONCURRENTLY`` beside the old one, so searches and writes go on meanwhile, then
  swapped in by a rename. Loading into a tenant without an index and building it
  afterwards is also the fast path for bulk loads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import sql

from controlplane.errors import MigrationError
from tenantvec_schema.migrations import vector_index_sql
from tenantvec_schema.runner import LOCK_KEY
from tenantvec_schema.spec import IndexKind, SchemaSpec

__all__ = ["change_dimensions", "rebuild_vector_index", "take_migration_lock"]

_INDEX = "chunks_embedding_idx"
_LOCK_POLL_SECONDS = 0.2
_NEW_INDEX = "chunks_embedding_idx_new"


async def change_dimensions(conn: psycopg.AsyncConnection[Any], spec: SchemaSpec) -> None:
    """Recreate ``chunks.embedding`` as ``vector(spec.dims)``, empty, with its indexes."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            await conn.execute("DROP INDEX IF EXISTS chunks_embedding_idx")
            await conn.execute("ALTER TABLE chunks DROP COLUMN embedding")
            await conn.execute(
                # STORAGE MAIN as migration 0003 made it: vectors in the row.
                sql.SQL("ALTER TABLE chunks ADD COLUMN embedding vector({}) STORAGE MAIN").format(
                    sql.Literal(spec.dims)
                )
            )
            await conn.execute("UPDATE chunks SET embedder = NULL")
            if spec.index.kind is not IndexKind.NONE:
                await conn.execute(vector_index_sql(spec))
            await conn.execute(
                "CREATE INDEX IF NOT EXISTS chunks_unembedded_idx ON chunks (id) "
                "WHERE embedding IS NULL"
            )
    except psycopg.Error as exc:
        raise MigrationError(
            f"changing dimensions to {spec.dims} failed: {exc.diag.message_primary or exc}"
        ) from exc


async def take_migration_lock(conn: psycopg.AsyncConnection[Any]) -> None:
    """Take the tenant database's migration lock for the session, waiting as long as
    another session holds it -- without a statement open meanwhile: a session waiting
    in ``pg_advisory_lock`` holds a snapshot, and a ``CREATE INDEX CONCURRENTLY`` run by
    the lock's holder (a build whose client was killed runs on to its end) waits for
    every such snapshot: a deadlock. Short tries instead."""
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        row = await cur.fetchone()
        if row is not None and row[0]:
            return
        await asyncio.sleep(_LOCK_POLL_SECONDS)


async def rebuild_vector_index(
    conn: psycopg.AsyncConnection[Any],
    spec: SchemaSpec,
    *,
    online: bool = True,
    memory: str | None = None,
) -> None:
    """Replace the vector index of ``chunks`` with ``spec.index`` -- ``online``
    (``CREATE INDEX CONCURRENTLY``: writers go on; two passes over the table) or, for a
    database nothing serves yet (a restore, a move), in one faster pass. ``memory``:
    the build's ``maintenance_work_mem`` (an HNSW graph that does not fit is built far
    slower).

    ``conn`` must be in autocommit mode: ``CREATE INDEX CONCURRENTLY`` refuses to run in
    a transaction. The session holds the migration lock throughout, so no migration or
    other rebuild runs beside it. A build that fails leaves an invalid index behind,
    which is dropped; the old index keeps serving.
    """
    if memory is not None:
        await conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
    await take_migration_lock(conn)
    try:
        await conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_NEW_INDEX)))
        if spec.index.kind is IndexKind.NONE:
            await conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(_INDEX))
            )
            return
        try:
            await conn.execute(vector_index_sql(spec, name=_NEW_INDEX, concurrently=online))
        except psycopg.Error:
            await conn.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_NEW_INDEX))
            )
            raise
        async with conn.transaction():
            await conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_INDEX)))
            await conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(_NEW_INDEX), sql.Identifier(_INDEX)
                )
            )
    except psycopg.Error as exc:
        raise MigrationError(
            f"building the {spec.index.kind} index failed: {exc.diag.message_primary or exc}"
        ) from exc
    finally:
        if not conn.closed:  # a lost session has released its locks already
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
