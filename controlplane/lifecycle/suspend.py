"""Scale to zero: suspending a tenant's compute while its data stays, and resuming it.

What suspension means is the backend's: the ``postgres`` backend closes the tenant's
database to connections; ``instance`` and ``docker`` stop the tenant's server; ``neon``
suspends the tenant's compute endpoint. A suspended tenant keeps its data, DSN and
keys. Its first request resumes it (the router, ``lifecycle.wake``), as does
``tenantctl tenants resume``.

Tenants unused for ``TENANTVEC_SUSPEND_AFTER`` are suspended by :func:`suspend_idle`,
which API processes run periodically (``lifecycle.keeper``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantBusy, TenantvecError
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.change import TenantChange, run_change, set_state
from controlplane.model.records import Tenant, TenantState, validate_tenant_id

__all__ = ["resume_tenant", "suspend_idle", "suspend_tenant"]

logger = logging.getLogger(__name__)


async def suspend_tenant(plane: PlaneContext, tenant_id: str, *, actor: str) -> Tenant:
    """Suspend a ready tenant (a no-op for one already suspended)."""
    return await _switch(plane, tenant_id, actor, to=TenantState.SUSPENDED)


async def resume_tenant(
    plane: PlaneContext, tenant_id: str, *, actor: str, trigger: str = "command"
) -> Tenant:
    """Resume a suspended tenant (a no-op for one already ready)."""
    return await _switch(plane, tenant_id, actor, to=TenantState.READY, trigger=trigger)


async def suspend_idle(plane: PlaneContext, idle_seconds: float, *, actor: str) -> list[str]:
    """Suspend every ready tenant unused for ``idle_seconds``; return their ids.

    Each is checked again under its lock, so a tenant that served a request meanwhile
    (and whose router has recorded it) stays up, as does one a client is connected to
    directly with its DSN. Tenants busy with another change are left for the next round.
    """
    activity = plane.catalog.activity
    suspended = []
    for tenant_id in await activity.idle(idle_seconds):

        async def still_idle(tenant: Tenant) -> bool:
            if not await activity.is_idle(tenant.uid, idle_seconds):
                return False
            # Clients using the tenant's DSN directly never pass the router: ask the
            # database (backends that cannot tell report no such sessions).
            facts = await plane.backend(tenant.backend).describe(tenant)
            return not facts.get("direct_connections")

        try:
            before = await _switch(
                plane,
                tenant_id,
                actor,
                to=TenantState.SUSPENDED,
                trigger=f"idle for {idle_seconds:g} s",
                only_if=still_idle,
            )
        except (TenantBusy, Conflict):
            continue
        except TenantvecError as exc:
            logger.warning("tenant %s: idle suspension failed: %s", tenant_id, exc)
            continue
        if before.state is TenantState.SUSPENDED:
            suspended.append(tenant_id)
    return suspended


async def _switch(
    plane: PlaneContext,
    tenant_id: str,
    actor: str,
    *,
    to: TenantState,
    trigger: str = "command",
    only_if: Callable[[Tenant], Awaitable[bool]] | None = None,
) -> Tenant:
    validate_tenant_id(tenant_id)
    current = await plane.catalog.get_tenant(tenant_id)
    if current.state is to:
        return current
    return await run_change(plane, tenant_id, Switch(to, trigger, only_if), actor=actor)


class Switch(TenantChange):
    """Suspend a ready tenant, or resume a suspended one."""

    def __init__(
        self,
        to: TenantState,
        trigger: str,
        only_if: Callable[[Tenant], Awaitable[bool]] | None,
    ) -> None:
        suspending = to is TenantState.SUSPENDED
        self.action = "suspend" if suspending else "resume"
        self.state = TenantState.READY if suspending else TenantState.SUSPENDED
        self.to = to
        self.trigger = trigger
        self._only_if = only_if

    def details(self, tenant: Tenant) -> dict[str, Any]:
        return {"backend": tenant.backend, "trigger": self.trigger}

    async def applies(self, plane: PlaneContext, tenant: Tenant) -> bool:
        return self._only_if is None or await self._only_if(tenant)

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        backend = plane.backend(tenant.backend)
        step = backend.suspend if self.to is TenantState.SUSPENDED else backend.resume
        await with_retries(lambda: step(tenant), seconds=backend.retry_seconds)
        updated = await set_state(plane, tenant, self.to)
        logger.info("tenant %s: %s (%s)", tenant.id, self.to.value, self.trigger)
        return updated
