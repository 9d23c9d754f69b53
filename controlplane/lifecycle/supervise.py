"""Supervision: tenants whose server tenantvec runs get it back when it dies.

For ``instance`` and ``docker`` tenants the control plane is the supervisor: a server
that is not running while its tenant is ``ready`` (killed, crashed, or stopped by
``tenantctl down``) is started again and the restart recorded as an operation. The
router does it when a request finds the server down (``lifecycle.wake``); API processes
also sweep every ``TENANTVEC_SUPERVISE_SECONDS`` (``lifecycle.keeper``), so a dead server
comes back even when nobody asks.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantBusy, TenantvecError
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.change import TenantChange, run_change
from controlplane.model.records import Tenant, TenantState

__all__ = ["restart_if_down", "supervise"]

logger = logging.getLogger(__name__)


async def restart_if_down(plane: PlaneContext, tenant_id: str, *, actor: str) -> bool:
    """Start a ready tenant's server if it is not running; True if it was restarted.

    A no-op (False, no operation) for a running server and for backends whose servers
    are not tenantvec's to run.
    """
    tenant = await plane.catalog.get_tenant(tenant_id)
    backend = plane.backend(tenant.backend)
    if not backend.supervises:
        return False

    restart = Restart()
    await run_change(plane, tenant_id, restart, actor=actor)
    return restart.restarted


class Restart(TenantChange):
    action = "restart"

    def __init__(self) -> None:
        self.restarted = False

    def details(self, tenant: Tenant) -> dict[str, Any]:
        return {"backend": tenant.backend, "reason": "its server was not running"}

    async def applies(self, plane: PlaneContext, tenant: Tenant) -> bool:
        return not await plane.backend(tenant.backend).running(tenant)

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        logger.warning("tenant %s: its server is not running; restarting it", tenant.id)
        backend = plane.backend(tenant.backend)
        await with_retries(lambda: backend.resume(tenant), seconds=backend.retry_seconds)
        self.restarted = True
        return tenant


async def supervise(plane: PlaneContext, *, actor: str) -> list[str]:
    """Restart every ready tenant whose server died; return their ids."""
    restarted = []
    for tenant in await plane.catalog.list_tenants(states=[TenantState.READY]):
        if not plane.backend(tenant.backend).supervises:
            continue
        try:
            if await restart_if_down(plane, tenant.id, actor=actor):
                restarted.append(tenant.id)
        except (TenantBusy, Conflict):
            continue  # changing under someone else's hands; the next sweep looks again
        except TenantvecError as exc:
            logger.warning("tenant %s: restart failed: %s", tenant.id, exc)
    return restarted
