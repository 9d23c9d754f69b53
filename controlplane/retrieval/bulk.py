"""The bulk path: a large load into a small tenant builds its vector index once.

pgvector inserts each committed row into the tenant's HNSW graph, at 3.6-8.8 ms of one
core per 1,024-d row on the reference machine; building the graph once over the same
rows (``CREATE INDEX``, parallel workers, enough ``maintenance_work_mem``) is 4-10x
cheaper per row (docs/benchmarks.md, "Peers"). So a load that brings at least as many
rows as the tenant holds -- more than it holds, and at least ``BULK_MIN_ROWS`` -- runs
as:

1. a ``bulk-load`` operation begins, under the tenant's lock (no set-index, move,
   backup or other bulk load meanwhile; searches and writes go on);
2. the vector index is dropped (``DROP INDEX CONCURRENTLY``): searches read every row
   exactly -- correct, slower -- and every row written from now on costs a COPY;
3. the rows are written as always, batch by batch, each batch its own transaction;
4. the index is built again, online, once (``CREATE INDEX CONCURRENTLY``);
5. the operation ends.

A process killed anywhere leaves the operation running; ``reconcile`` finishes it by
building the index the catalog records (``lifecycle.index.restore_vector_index``:
nothing to do if it is there and valid). The rows committed stay; running the load again skips them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import sql

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantvecError
from controlplane.failpoints import failpoint
from controlplane.lifecycle.index import restore_vector_index
from controlplane.model.records import OperationOutcome, Tenant, TenantState
from controlplane.pgconnect import connect
from tenantvec_schema.reshape import take_migration_lock
from tenantvec_schema.runner import LOCK_KEY
from tenantvec_schema.spec import IndexKind

__all__ = ["BULK_MIN_ROWS", "bulk_load", "chunk_count", "wants_bulk"]

logger = logging.getLogger(__name__)

BULK_MIN_ROWS = 5_000
ACTION = "bulk-load"
_INDEX = "chunks_embedding_idx"


def wants_bulk(tenant: Tenant, incoming: int, existing: int) -> bool:
    """Whether a load of ``incoming`` rows into a tenant of ``existing`` rows is cheaper
    with one index build than with ``incoming`` graph insertions."""
    return (
        tenant.index.kind is not IndexKind.NONE
        and incoming >= BULK_MIN_ROWS
        # More than it holds: the same files loaded again must not rebuild for nothing.
        and incoming > existing
    )


async def chunk_count(plane: PlaneContext, tenant: Tenant) -> int:
    async with connect(
        plane.service_conninfo(tenant),
        where=f"tenant {tenant.id!r}",
        timeout=plane.settings.connect_timeout,
    ) as conn:
        cur = await conn.execute("SELECT count(*) FROM chunks")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


@contextlib.asynccontextmanager
async def bulk_load(
    plane: PlaneContext, tenant_id: str, *, rows: int, actor: str
) -> AsyncIterator[Tenant]:
    """Hold the tenant's lock and its vector index off while the caller writes; build
    the index once when the block ends (also when it fails: what was written stays)."""
    catalog = plane.catalog
    async with catalog.tenant_lock(tenant_id):
        tenant = await catalog.get_tenant(tenant_id)
        if tenant.state is not TenantState.READY:
            raise Conflict(f"tenant {tenant_id!r} is {tenant.state}; load it when ready")
        operation = await catalog.begin_operation(
            ACTION, actor, tenant=tenant, details={"rows": rows, "index": tenant.index.to_json()}
        )
        started = time.perf_counter()
        async with _service(plane, tenant) as conn:
            await take_migration_lock(conn)
            try:
                await conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(_INDEX))
                )
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        logger.info("tenant %s: bulk load of %d rows, index off", tenant_id, rows)
        failpoint(plane.settings, "bulk.after_drop")
        # Interrupted (Ctrl-C, a cancelled task): the operation stays running and the
        # index off, for reconcile to build -- not minutes of building on the way out.
        try:
            yield tenant
        except Exception as exc:
            await restore_vector_index(plane, tenant)
            error = str(exc) if isinstance(exc, TenantvecError) else type(exc).__name__
            await catalog.end_operation(operation, OperationOutcome.FAILED, error=error)
            raise
        failpoint(plane.settings, "bulk.before_build")
        await restore_vector_index(plane, tenant)
        # A new graph over other rows: its recall is measured again (retrieval/recall.py).
        await catalog.update_tenant(tenant.uid, recall=tenant.recall.reset().to_json())
        await catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
        logger.info(
            "tenant %s: bulk load done, index built (%.1fs in all)",
            tenant_id,
            time.perf_counter() - started,
        )
    await plane.tenant_changed(tenant_id)


@contextlib.asynccontextmanager
async def _service(
    plane: PlaneContext, tenant: Tenant
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with connect(
        plane.service_conninfo(tenant),
        where=f"tenant {tenant.id!r}",
        timeout=plane.settings.connect_timeout,
    ) as conn:
        yield conn
