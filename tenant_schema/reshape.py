"""Changing a tenant's vector dimensions: the one schema change that is per tenant.

Versioned migrations (``migrations/``) change every tenant alike. A new embedding model
with other dimensions changes one tenant: its ``chunks.embedding`` column is recreated
as ``vector(new dims)`` -- emptied, since vectors of one model mean nothing to another
-- and its vector index rebuilt, in one transaction under the migration lock. The
chunks keep their text; ``tenantctl backfill`` embeds them again.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from controlplane.errors import MigrationError
from tenant_schema.migrations import vector_index_sql
from tenant_schema.runner import LOCK_KEY
from tenant_schema.spec import IndexKind, SchemaSpec

__all__ = ["change_dimensions"]


async def change_dimensions(conn: psycopg.AsyncConnection[Any], spec: SchemaSpec) -> None:
    """Recreate ``chunks.embedding`` as ``vector(spec.dims)``, empty, with its indexes."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            await conn.execute("DROP INDEX IF EXISTS chunks_embedding_idx")
            await conn.execute("ALTER TABLE chunks DROP COLUMN embedding")
            await conn.execute(
                sql.SQL("ALTER TABLE chunks ADD COLUMN embedding vector({})").format(
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
