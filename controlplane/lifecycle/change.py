"""One shape for every per-tenant change: lock, the right state, an operation, notify."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantvecError
from controlplane.model.records import (
    OperationOutcome,
    Tenant,
    TenantState,
    validate_tenant_id,
)

__all__ = ["change_tenant"]

# Given the tenant as the catalog has it (under its lock): the operation's details and
# the work, which applies the change and returns the updated record.
Plan = Callable[[Tenant], tuple[dict[str, Any], Callable[[], Awaitable[Tenant]]]]


async def change_tenant(
    plane: PlaneContext,
    tenant_id: str,
    action: str,
    actor: str,
    plan: Plan,
    *,
    state: TenantState = TenantState.READY,
    only_if: Callable[[Tenant], Awaitable[bool]] | None = None,
) -> Tenant:
    """Run ``plan``'s work on a tenant in ``state`` under its lock, recorded as ``action``.

    ``only_if``, checked under the lock, may decline the change: the tenant is returned
    as it is and no operation is recorded (a restart of a server that runs after all).
    """
    validate_tenant_id(tenant_id)
    catalog = plane.catalog
    async with catalog.tenant_lock(tenant_id):
        tenant = await catalog.get_tenant(tenant_id)
        if tenant.state is not state:
            raise Conflict(f"tenant {tenant_id!r} is {tenant.state}; run {action} when {state}")
        if only_if is not None and not await only_if(tenant):
            return tenant
        details, work = plan(tenant)
        operation = await catalog.begin_operation(action, actor, tenant=tenant, details=details)
        try:
            updated = await work()
        except TenantvecError as exc:
            await catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            raise
        await catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
    await plane.tenant_changed(tenant_id)
    return updated
