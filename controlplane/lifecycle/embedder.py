"""Changing a tenant's embedding model (and, with it, possibly its dimensions).

The new model (or none: the tenant then stores only the vectors its callers send) is
recorded in the catalog at once; chunks embedded by the old one stay
searchable until ``tenantctl backfill`` re-embeds them -- except when the dimensions
change: vectors of the old size cannot live in the new column, so the column is
recreated empty (``tenantvec_schema.reshape``) and search finds nothing until the
backfill has run.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.context import PlaneContext
from controlplane.lifecycle.change import TenantChange, run_change
from controlplane.model.embedder import EmbedderSpec, describe_embedder, embedder_json
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from tenantvec_schema.reshape import change_dimensions
from tenantvec_schema.spec import SchemaSpec

__all__ = ["set_embedder"]

logger = logging.getLogger(__name__)


async def set_embedder(
    plane: PlaneContext,
    tenant_id: str,
    embedder: EmbedderSpec | None,
    *,
    dims: int | None = None,
    actor: str,
) -> Tenant:
    """Give the tenant ``embedder`` (None: no embedder), and ``dims`` if they change."""
    if embedder is not None:
        plane.embedders.for_spec(embedder)  # refuses a provider that is not configured
    return await run_change(plane, tenant_id, SetEmbedder(embedder, dims), actor=actor)


class SetEmbedder(TenantChange):
    action = "set-embedder"

    def __init__(self, embedder: EmbedderSpec | None, dims: int | None) -> None:
        self.embedder = embedder
        self.dims = dims

    def details(self, tenant: Tenant) -> dict[str, Any]:
        self._schema(tenant)  # validates the dimensions against the index kind
        if self.embedder is not None:
            self.embedder.check_dims(self._dims(tenant))
        details = {
            "from": describe_embedder(tenant.embedder),
            "to": describe_embedder(self.embedder),
        }
        if self._dims(tenant) != tenant.dims:
            details["dims"] = f"{tenant.dims} -> {self._dims(tenant)}"
        logger.info("tenant %s: embedder %s", tenant.id, details)
        return details

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        new_dims = self._dims(tenant)
        if new_dims != tenant.dims:
            async with connect(
                plane.service_conninfo(tenant),
                where=f"tenant {tenant.id!r}",
                timeout=plane.settings.connect_timeout,
                autocommit=False,
            ) as conn:
                await change_dimensions(conn, self._schema(tenant))
        changes: dict[str, Any] = {"embedder": embedder_json(self.embedder), "dims": new_dims}
        if new_dims != tenant.dims:  # new vectors, a new index: recall measured again
            changes["recall"] = tenant.recall.reset().to_json()
        return await plane.catalog.update_tenant(tenant.uid, **changes)

    def _dims(self, tenant: Tenant) -> int:
        return self.dims or tenant.dims

    def _schema(self, tenant: Tenant) -> SchemaSpec:
        return SchemaSpec(
            dims=self._dims(tenant),
            metric=tenant.metric,
            index=tenant.index,
            text_config=tenant.text_config,
        )
