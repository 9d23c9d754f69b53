"""Changing a tenant's embedding model (and, with it, possibly its dimensions).

The new model is recorded in the catalog at once; chunks embedded by the old one stay
searchable until ``tenantctl backfill`` re-embeds them -- except when the dimensions
change: vectors of the old size cannot live in the new column, so the column is
recreated empty (``tenant_schema.reshape``) and search finds nothing until the
backfill has run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.context import PlaneContext
from controlplane.lifecycle.change import change_tenant
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from tenant_schema.reshape import change_dimensions
from tenant_schema.spec import SchemaSpec

__all__ = ["set_embedder"]

logger = logging.getLogger("tenantvec.lifecycle")


async def set_embedder(
    plane: PlaneContext,
    tenant_id: str,
    embedder: EmbedderSpec,
    *,
    dims: int | None = None,
    actor: str,
) -> Tenant:
    plane.embedders.for_spec(embedder)  # refuses a provider that is not configured

    def plan(tenant: Tenant) -> tuple[dict[str, Any], Callable[[], Awaitable[Tenant]]]:
        new_dims = dims or tenant.dims
        schema = SchemaSpec(
            dims=new_dims,
            metric=tenant.metric,
            index=tenant.index,
            text_config=tenant.text_config,
        )  # validates the dimensions against the index kind
        details = {"from": str(tenant.embedder), "to": str(embedder)}
        if new_dims != tenant.dims:
            details["dims"] = f"{tenant.dims} -> {new_dims}"

        async def work() -> Tenant:
            if new_dims != tenant.dims:
                async with connect(
                    plane.service_conninfo(tenant),
                    where=f"tenant {tenant_id!r}",
                    timeout=plane.settings.connect_timeout,
                    autocommit=False,
                ) as conn:
                    await change_dimensions(conn, schema)
            return await plane.catalog.update_tenant(
                tenant.uid, embedder=embedder.to_json(), dims=new_dims
            )

        logger.info("tenant %s: embedder %s (%s)", tenant_id, embedder, details)
        return details, work

    return await change_tenant(plane, tenant_id, "set-embedder", actor, plan)
