"""One shape for every per-tenant change: lock, the right state, an operation, notify.

A change is a small object saying what it is (``action``), the state the tenant must be
in, what the operation row records about it (``details``, which also validates it
against the tenant), and how it is done (``apply``). :func:`run_change` does the rest
the same way for all of them: the tenant's lock, a check of its state under the lock,
an operation row that ends succeeded or failed with the error, and the routers of this
process told.
"""

from __future__ import annotations

from typing import Any

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantvecError
from controlplane.model.placement import TenantCopy
from controlplane.model.records import (
    MOVE_STATES,
    OperationOutcome,
    Tenant,
    TenantState,
    check_transition,
    validate_tenant_id,
)

__all__ = [
    "TenantChange",
    "as_read",
    "record_other_copy",
    "run_change",
    "set_state",
    "state_conflict",
]


class TenantChange:
    """Subclass and give ``action``, ``details`` and ``apply``; the rest has defaults."""

    action: str
    # The state the tenant must be in (a change that moves it says so with set_state).
    state: TenantState = TenantState.READY

    def details(self, tenant: Tenant) -> dict[str, Any]:
        """What the operation row records; raise InvalidRequest if the change cannot
        apply to this tenant. Called under the lock, before anything is done."""
        return {}

    async def applies(self, plane: PlaneContext, tenant: Tenant) -> bool:
        """False declines the change: no operation, the tenant returned as it is."""
        return True

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        """Do it, and return the tenant as the catalog has it afterwards."""
        raise NotImplementedError


async def run_change(
    plane: PlaneContext, tenant_id: str, change: TenantChange, *, actor: str
) -> Tenant:
    """Run ``change`` on the tenant under its lock, recorded as an operation."""
    validate_tenant_id(tenant_id)
    catalog = plane.catalog
    action, state = change.action, change.state
    async with catalog.tenant_lock(tenant_id):
        tenant = await catalog.get_tenant(tenant_id)
        if tenant.state is not state:
            raise state_conflict(tenant, f"run {action} when {state}")
        if not await change.applies(plane, tenant):
            return tenant
        details = change.details(tenant)
        operation = await catalog.begin_operation(action, actor, tenant=tenant, details=details)
        try:
            updated = await change.apply(plane, tenant)
        except TenantvecError as exc:
            await catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            raise
        await catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
    await plane.tenant_changed(tenant_id)
    return updated


async def set_state(
    plane: PlaneContext, tenant: Tenant, target: TenantState, **changes: Any
) -> Tenant:
    """Record that ``tenant`` is now ``target`` (with other ``changes`` to its row):
    the one place a tenant's state is written, only along ``TRANSITIONS``, and only
    over the state (and move copy) ``tenant`` was read with -- whoever changed either
    meanwhile took the tenant over (TenantChanged)."""
    check_transition(tenant.state, target)
    return await plane.catalog.update_tenant(
        tenant.uid, expect=as_read(tenant), state=target.value, **changes
    )


async def record_other_copy(plane: PlaneContext, tenant: Tenant, copy: TenantCopy) -> Tenant:
    """Record what a move made of its new copy so far (its state unchanged), over the
    tenant as it was read: a move that somebody else settled meanwhile stops here."""
    if tenant.state is not TenantState.MOVING:
        raise Conflict(f"tenant {tenant.id!r} is {tenant.state}, not moving")
    return await plane.catalog.update_tenant(tenant.uid, expect=as_read(tenant), other_copy=copy)


def state_conflict(tenant: Tenant, then: str) -> Conflict:
    """The error for an operation ``tenant``'s state refuses: ``then`` says what to do.
    A move's phase found under the lock is a move whose process died: reconcile's."""
    if tenant.state in MOVE_STATES:
        return Conflict(
            f"tenant {tenant.id!r} is {tenant.state}: a move of it was interrupted; run "
            f"'tenantctl reconcile' to settle it, then {then}"
        )
    return Conflict(f"tenant {tenant.id!r} is {tenant.state}; {then}")


def as_read(tenant: Tenant) -> dict[str, Any]:
    """What a compare-and-set compares: where the tenant stands."""
    return {"state": tenant.state.value, "other_copy": tenant.other_copy}
