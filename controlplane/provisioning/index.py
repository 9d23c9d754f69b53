"""Changing a tenant's vector index: per-tenant tuning, and the fast path for bulk loads.

Each tenant has its own index, so one tenant can move to a denser HNSW graph, to
IVFFlat, or to exact search without touching any other. The new index is built online
(``tenant_schema.reshape.rebuild_vector_index``) and recorded in the catalog once it
serves; a tenant loaded with ``--index none`` and indexed afterwards is built in one
pass instead of one graph insertion per vector.
"""

from __future__ import annotations

import logging
import time

from controlplane.catalog.records import OperationOutcome, Tenant, TenantState
from controlplane.errors import Conflict, TenantvecError
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from tenant_schema.reshape import rebuild_vector_index
from tenant_schema.spec import IndexSpec, SchemaSpec

__all__ = ["set_index"]

logger = logging.getLogger("tenantvec.lifecycle")


async def set_index(plane: ControlPlane, tenant_id: str, index: IndexSpec, *, actor: str) -> Tenant:
    """Build ``index`` for the tenant's chunks, replace the old one, record it."""
    catalog = plane.catalog
    async with catalog.tenant_lock(tenant_id):
        tenant = await catalog.get_tenant(tenant_id)
        if tenant.state is not TenantState.READY:
            raise Conflict(f"tenant {tenant_id!r} is {tenant.state}; change its index when ready")
        schema = SchemaSpec(
            dims=tenant.dims, metric=tenant.metric, index=index, text_config=tenant.text_config
        )  # validates the index kind against the dimensions
        details = {
            "from": {"kind": tenant.index.kind.value, **tenant.index.params()},
            "to": {"kind": index.kind.value, **index.params()},
        }
        operation = await catalog.begin_operation(
            "set-index", actor, tenant=tenant, details=details
        )
        started = time.perf_counter()
        try:
            async with connect(
                plane.tenant_conninfo(tenant),
                where=f"tenant {tenant_id!r}",
                timeout=plane.settings.connect_timeout,
            ) as conn:
                await rebuild_vector_index(conn, schema)
            updated = await catalog.update_tenant(
                tenant.uid, index_kind=index.kind.value, index_params=index.params()
            )
        except TenantvecError as exc:
            await catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            raise
        await catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
    await plane.tenant_changed(tenant_id)
    logger.info(
        "tenant %s: %s index built in %.1fs", tenant_id, index.kind, time.perf_counter() - started
    )
    return updated
