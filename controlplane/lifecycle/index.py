"""Changing a tenant's vector index: per-tenant tuning, and the fast path for bulk loads.

Each tenant has its own index, so one tenant can move to a denser HNSW graph, to
IVFFlat, or to exact search without touching any other. The new index is built online
(``tenantvec_schema.reshape.rebuild_vector_index``) and recorded in the catalog once it
serves; a tenant loaded with ``--index none`` and indexed afterwards is built in one
pass instead of one graph insertion per vector.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from controlplane.context import PlaneContext
from controlplane.lifecycle.change import TenantChange, run_change
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from tenantvec_schema.reshape import rebuild_vector_index, take_migration_lock
from tenantvec_schema.runner import LOCK_KEY
from tenantvec_schema.spec import IndexKind, IndexSpec, SchemaSpec

__all__ = ["restore_vector_index", "set_index"]

logger = logging.getLogger(__name__)


async def set_index(plane: PlaneContext, tenant_id: str, index: IndexSpec, *, actor: str) -> Tenant:
    """Build ``index`` for the tenant's chunks, replace the old one, record it."""
    started = time.perf_counter()
    updated = await run_change(plane, tenant_id, SetIndex(index), actor=actor)
    logger.info(
        "tenant %s: %s index built in %.1fs", tenant_id, index.kind, time.perf_counter() - started
    )
    return updated


class SetIndex(TenantChange):
    action = "set-index"

    def __init__(self, index: IndexSpec) -> None:
        self.index = index

    def details(self, tenant: Tenant) -> dict[str, Any]:
        return {"from": tenant.index.to_json(), "to": self._schema(tenant).index.to_json()}

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        async with connect(
            plane.service_conninfo(tenant),
            where=f"tenant {tenant.id!r}",
            timeout=plane.settings.connect_timeout,
        ) as conn:
            await rebuild_vector_index(
                conn, self._schema(tenant), memory=plane.settings.index_build_memory
            )
        index = self._schema(tenant).index
        # Recall measured on the old index says nothing of the new one: measured again.
        return await plane.catalog.update_tenant(
            tenant.uid,
            index_kind=index.kind.value,
            index_params=index.params(),
            recall=tenant.recall.reset().to_json(),
        )

    def _schema(self, tenant: Tenant) -> SchemaSpec:
        """The tenant's schema with the new index. A precision not given is the one the
        tenant's index has (a new index of a tenant without one: by its dimensions)."""
        index = self.index
        if index.precision is None and tenant.index.kind is not IndexKind.NONE:
            index = replace(index, precision=tenant.index.precision)
        return SchemaSpec(
            dims=tenant.dims, metric=tenant.metric, index=index, text_config=tenant.text_config
        )


async def restore_vector_index(plane: PlaneContext, tenant: Tenant) -> bool:
    """Build the vector index the catalog records if the tenant's database lacks it or
    holds an invalid one (a bulk load or a build killed half way). True if one was
    built.

    The look is taken under the migration lock: a client killed during ``DROP INDEX
    CONCURRENTLY`` or ``CREATE INDEX CONCURRENTLY`` leaves its server session running
    the statement to its end, holding the lock -- an index seen valid before that
    session is done could still be dropped after.
    """
    if tenant.index.kind is IndexKind.NONE:
        return False
    async with connect(
        plane.service_conninfo(tenant),
        where=f"tenant {tenant.id!r}",
        timeout=plane.settings.connect_timeout,
    ) as conn:
        await take_migration_lock(conn)
        try:
            cur = await conn.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = 'chunks_embedding_idx' "
                "AND c.relnamespace = 'public'::regnamespace"
            )
            row = await cur.fetchone()
            if row is not None and row[0]:
                return False
            await rebuild_vector_index(
                conn, tenant.schema, online=True, memory=plane.settings.index_build_memory
            )
        finally:
            if not conn.closed:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    logger.info("tenant %s: vector index built again (%s)", tenant.id, tenant.index.kind)
    return True
