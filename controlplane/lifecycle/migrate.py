"""Upgrading tenant schemas: one tenant, or the whole fleet concurrently and resumably.

Resumable because each tenant's migration is idempotent: re-running after an
interruption skips the tenants already at the target and carries on with the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.backends.markers import LAYOUT
from controlplane.context import PlaneContext
from controlplane.errors import TenantvecError
from controlplane.lifecycle.fleetwork import for_each_tenant
from controlplane.lifecycle.retry import with_retries
from controlplane.lifecycle.tenants import apply_schema, checkpoint_for
from controlplane.model.records import OperationOutcome, Tenant, TenantState
from tenantvec_schema.migrations import MigrationSet

__all__ = ["TenantMigration", "migrate_all", "migrate_tenant"]

logger = logging.getLogger("tenantvec.migrate")


@dataclass(frozen=True)
class TenantMigration:
    tenant: str
    from_version: int
    to_version: int
    applied: tuple[int, ...]
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def public_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "applied": list(self.applied),
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


async def migrate_tenant(plane: PlaneContext, tenant_id: str, *, actor: str) -> TenantMigration:
    """Upgrade one tenant; errors are reported in the result, not raised."""
    started = time.perf_counter()
    try:
        async with plane.catalog.tenant_lock(tenant_id):
            tenant = await plane.catalog.get_tenant(tenant_id)
            return await _migrate_locked(plane, tenant, actor, started)
    except TenantvecError as exc:
        return TenantMigration(tenant_id, -1, -1, (), time.perf_counter() - started, str(exc))


async def _migrate_locked(
    plane: PlaneContext, tenant: Tenant, actor: str, started: float
) -> TenantMigration:
    if tenant.state is not TenantState.READY:
        return TenantMigration(
            tenant.id,
            tenant.schema_version,
            tenant.schema_version,
            (),
            time.perf_counter() - started,
            f"tenant is {tenant.state}, not ready",
        )
    operation = await plane.catalog.begin_operation("migrate", actor, tenant=tenant)
    backend = plane.backend(tenant.backend)
    seconds = backend.retry_seconds
    try:
        # Its layout first (opaque names, service role, limits): the schema is then
        # applied through the service role.
        checkpoint = checkpoint_for(plane, tenant, resuming=True)
        await with_retries(lambda: backend.conform(checkpoint.tenant, checkpoint), seconds=seconds)
        if checkpoint.tenant.updated_at != tenant.updated_at:
            tenant = checkpoint.tenant
            await plane.tenant_changed(tenant.id)  # routers reconnect under the new names
        conninfo = plane.service_conninfo(tenant)
        report = await with_retries(lambda: apply_schema(plane, tenant, conninfo), seconds=seconds)
    except TenantvecError as exc:
        await plane.catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
        logger.warning("tenant %s: migration failed: %s", tenant.id, exc)
        return TenantMigration(
            tenant.id,
            tenant.schema_version,
            tenant.schema_version,
            (),
            time.perf_counter() - started,
            str(exc),
        )
    if report.to_version != tenant.schema_version:
        await plane.catalog.update_tenant(tenant.uid, schema_version=report.to_version)
    await plane.catalog.end_operation(
        operation,
        OperationOutcome.SUCCEEDED,
        details={"from": report.from_version, "to": report.to_version},
    )
    return TenantMigration(
        tenant.id,
        report.from_version,
        report.to_version,
        report.applied,
        time.perf_counter() - started,
    )


async def migrate_all(
    plane: PlaneContext,
    *,
    actor: str,
    concurrency: int | None = None,
    verify: bool = False,
    on_result: Callable[[TenantMigration], None] | None = None,
) -> list[TenantMigration]:
    """Upgrade every ready tenant, ``concurrency`` at a time; one failure stops no other.

    A tenant the catalog records at the latest version and layout is reported current
    without a connection (a fleet is mostly current: checking each database cost ~27 ms
    of a 2-core machine per tenant); ``verify`` checks its ledger all the same.
    """
    tenants = await plane.catalog.list_tenants(states=[TenantState.READY])
    latest = MigrationSet.bundled().latest
    done: list[TenantMigration] = []
    if not verify:
        for tenant in tenants:
            if _recorded_current(tenant, latest):
                done.append(TenantMigration(tenant.id, latest, latest, (), 0.0))
                if on_result is not None:
                    on_result(done[-1])
        tenants = [t for t in tenants if not _recorded_current(t, latest)]

    async def one(tenant: Tenant) -> TenantMigration:
        return await migrate_tenant(plane, tenant.id, actor=actor)

    return done + await for_each_tenant(
        tenants,
        one,
        concurrency=concurrency or plane.settings.migrate_concurrency,
        on_result=on_result,
    )


def _recorded_current(tenant: Tenant, latest: int) -> bool:
    return tenant.schema_version >= latest and tenant.where.layout >= LAYOUT
