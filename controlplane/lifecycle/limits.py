"""Changing what one tenant may take from its server: its role's limits.

A tenant's limits (:class:`RoleLimits`: connections of its own clients, statement and
idle-in-transaction timeouts) come from its tier at creation; :func:`set_limits` moves
it to another tier or overrides single values later. The owner role is altered on the
server first, then the catalog records it; routers reconnect with the new timeouts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from controlplane.context import PlaneContext
from controlplane.lifecycle.change import change_tenant
from controlplane.lifecycle.retry import with_retries
from controlplane.model.limits import RoleLimits
from controlplane.model.records import Tenant

__all__ = ["set_limits"]

logger = logging.getLogger("tenantvec.lifecycle")


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

    def plan(tenant: Tenant) -> tuple[dict[str, Any], Callable[[], Awaitable[Tenant]]]:
        current = RoleLimits.from_json(tenant.placement.get("limits"))
        limits = RoleLimits.resolve(tier or current.tier, overrides)
        details = {"from": current.to_json(), "to": limits.to_json()}

        async def work() -> Tenant:
            backend = plane.backend(tenant.backend)
            await with_retries(
                lambda: backend.set_limits(tenant, limits), seconds=plane.settings.retry_seconds
            )
            updated = await plane.catalog.update_tenant(
                tenant.uid, placement={**tenant.placement, "limits": limits.to_json()}
            )
            logger.info("tenant %s: limits now %s", tenant.id, limits.to_json())
            return updated

        return details, work

    return await change_tenant(plane, tenant_id, "set-limits", actor, plan)
