"""Changing what one tenant may take from its server: its role's limits.

A tenant's limits (:class:`RoleLimits`: connections of its own clients, statement and
idle-in-transaction timeouts) come from its tier at creation; :func:`set_limits` moves
it to another tier or overrides single values later. The owner role is altered on the
server first, then the catalog records it; routers reconnect with the new timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controlplane.context import PlaneContext
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.change import TenantChange, run_change
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import with_limits
from controlplane.model.records import Tenant

__all__ = ["set_limits"]

logger = logging.getLogger(__name__)


async def set_limits(
    plane: PlaneContext,
    tenant_id: str,
    overrides: Mapping[str, Any],
    *,
    tier: str | None = None,
    actor: str,
) -> Tenant:
    """Give a ready tenant ``tier``'s limits (default: its current tier) with
    ``overrides`` (``connection_limit``, ``statement_timeout``,
    ``idle_in_transaction_timeout``) applied on top."""

    return await run_change(plane, tenant_id, SetLimits(tier, overrides), actor=actor)


class SetLimits(TenantChange):
    action = "set-limits"

    def __init__(self, tier: str | None, overrides: Mapping[str, Any]) -> None:
        self.tier = tier
        self.overrides = overrides

    def details(self, tenant: Tenant) -> dict[str, Any]:
        return {"from": _current(tenant).to_json(), "to": self._limits(tenant).to_json()}

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        limits = self._limits(tenant)
        backend = plane.backend(tenant.backend)
        await with_retries(
            lambda: backend.set_limits(tenant, limits), seconds=backend.retry_seconds
        )
        updated = await plane.catalog.update_tenant(
            tenant.uid, placement=with_limits(tenant.placement, limits)
        )
        logger.info("tenant %s: limits now %s", tenant.id, limits.to_json())
        return updated

    def _limits(self, tenant: Tenant) -> RoleLimits:
        return RoleLimits.resolve(self.tier or _current(tenant).tier, self.overrides)


def _current(tenant: Tenant) -> RoleLimits:
    return tenant.where.limits
