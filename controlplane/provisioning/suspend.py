"""Suspending and resuming a tenant: its compute stops serving, its data stays.

What suspension means is the backend's: the ``postgres`` backend closes the tenant's
database to connections; the ``neon`` backend suspends the tenant's compute endpoint
(Neon bills no compute while it sleeps). A suspended tenant keeps its data, DSN and
keys; the router refuses its requests until it is resumed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.catalog.records import Tenant, TenantState, validate_tenant_id
from controlplane.plane import ControlPlane
from controlplane.provisioning.change import change_tenant
from controlplane.provisioning.retry import with_retries

__all__ = ["resume_tenant", "suspend_tenant"]

logger = logging.getLogger("tenantvec.lifecycle")


async def suspend_tenant(plane: ControlPlane, tenant_id: str, *, actor: str) -> Tenant:
    """Suspend a ready tenant (a no-op for one already suspended)."""
    return await _switch(plane, tenant_id, actor, to=TenantState.SUSPENDED)


async def resume_tenant(plane: ControlPlane, tenant_id: str, *, actor: str) -> Tenant:
    """Resume a suspended tenant (a no-op for one already ready)."""
    return await _switch(plane, tenant_id, actor, to=TenantState.READY)


async def _switch(plane: ControlPlane, tenant_id: str, actor: str, *, to: TenantState) -> Tenant:
    validate_tenant_id(tenant_id)
    current = await plane.catalog.get_tenant(tenant_id)
    if current.state is to:
        return current
    suspending = to is TenantState.SUSPENDED
    action = "suspend" if suspending else "resume"

    def plan(tenant: Tenant) -> tuple[dict[str, Any], Callable[[], Awaitable[Tenant]]]:
        backend = plane.backend(tenant.backend)
        step = backend.suspend if suspending else backend.resume

        async def work() -> Tenant:
            await with_retries(lambda: step(tenant), seconds=plane.settings.retry_seconds)
            updated = await plane.catalog.update_tenant(tenant.uid, state=to.value)
            logger.info("tenant %s: %s", tenant.id, to.value)
            return updated

        return {"backend": tenant.backend}, work

    required = TenantState.READY if suspending else TenantState.SUSPENDED
    return await change_tenant(plane, tenant_id, action, actor, plan, state=required)
