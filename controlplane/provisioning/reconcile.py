"""Reconcile: make the servers and the catalog agree again after crashes.

1. Tenants stuck in ``provisioning`` or ``deleting`` whose lock is free (the process
   that held it died) are finished: provisioning rolls forward, deleting completes.
   Tenants whose lock is held are in progress elsewhere and left alone.
2. Resources carrying tenantvec's marker that no live tenant owns are orphans: reported,
   and removed with ``fix=True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from controlplane.catalog.models import utcnow
from controlplane.catalog.records import OperationOutcome, Tenant, TenantState
from controlplane.errors import TenantBusy, TenantvecError
from controlplane.plane import ControlPlane
from controlplane.provisioning.backend import OwnedResource
from controlplane.provisioning.lifecycle import delete_tenant, finish_delete, finish_provisioning

__all__ = ["GcReport", "ReconcileReport", "Repair", "collect_expired", "find_orphans", "reconcile"]

logger = logging.getLogger("tenantvec.reconcile")


@dataclass(frozen=True)
class Repair:
    tenant: str
    was: str
    action: str  # "finished-create", "finished-delete", "skipped-in-progress"
    outcome: str  # "ok", "failed", "skipped"
    error: str | None = None

    def public_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "was": self.was,
            "action": self.action,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReconcileReport:
    repairs: list[Repair] = field(default_factory=list)
    orphans: list[OwnedResource] = field(default_factory=list)
    removed: list[OwnedResource] = field(default_factory=list)
    failed_tenants: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(r.outcome == "ok" for r in self.repairs) and len(self.orphans) == len(
            self.removed
        )

    def public_dict(self) -> dict[str, Any]:
        return {
            "repairs": [r.public_dict() for r in self.repairs],
            "orphans": [o.public_dict() for o in self.orphans],
            "removed": [o.public_dict() for o in self.removed],
            "failed_tenants": self.failed_tenants,
            "clean": self.clean,
        }


async def reconcile(plane: ControlPlane, *, fix: bool = False, actor: str) -> ReconcileReport:
    repairs = [
        await _repair(plane, t, actor)
        for t in await plane.catalog.list_tenants(
            states=[TenantState.PROVISIONING, TenantState.DELETING]
        )
    ]
    orphans = await find_orphans(plane)
    removed: list[OwnedResource] = []
    if fix:
        for resource in orphans:
            if await _remove_orphan(plane, resource, actor):
                removed.append(resource)
    failed = [t.id for t in await plane.catalog.list_tenants(states=[TenantState.FAILED])]
    return ReconcileReport(repairs=repairs, orphans=orphans, removed=removed, failed_tenants=failed)


async def find_orphans(plane: ControlPlane) -> list[OwnedResource]:
    """Marked resources that no live tenant accounts for."""
    # Resources first, tenants second: a tenant's row is written before its resources,
    # so every resource seen here already has its row when the tenants are read.
    resources: list[OwnedResource] = []
    for backend in plane.backends.values():
        resources.extend(await backend.list_resources())
    live = await _live_tenants(plane)
    return [resource for resource in resources if not _accounted_for(live, resource)]


_LiveTenants = dict[tuple[str, str], Tenant]


async def _live_tenants(plane: ControlPlane) -> _LiveTenants:
    return {(t.backend, t.id): t for t in await plane.catalog.list_tenants()}


def _accounted_for(live: _LiveTenants, resource: OwnedResource) -> bool:
    """Whether a live tenant of the resource's backend records this very resource.

    On servers the location is the server name and must match the tenant's; elsewhere
    (Neon) the resource's id is unique on its own and must be in the placement.
    """
    if resource.tenant_id is None:
        return False
    tenant = live.get((resource.backend, resource.tenant_id))
    if tenant is None:
        return False
    if tenant.server is not None and tenant.server != resource.location:
        return False
    return resource.name in {str(v) for v in tenant.placement.values()}


async def _repair(plane: ControlPlane, stuck: Tenant, actor: str) -> Repair:
    try:
        async with plane.catalog.tenant_lock(stuck.id):
            tenant = await plane.catalog.find_tenant(stuck.id)
            if tenant is None or tenant.uid != stuck.uid or tenant.state != stuck.state:
                return Repair(stuck.id, stuck.state, "already-settled", "ok")
            if tenant.state is TenantState.PROVISIONING:
                await finish_provisioning(plane, tenant, actor=actor, action="reconcile-create")
                return Repair(tenant.id, tenant.state, "finished-create", "ok")
            await finish_delete(plane, tenant, actor=actor, action="reconcile-delete")
            return Repair(tenant.id, tenant.state, "finished-delete", "ok")
    except TenantBusy:
        return Repair(stuck.id, stuck.state, "skipped-in-progress", "skipped")
    except TenantvecError as exc:
        action = "finished-create" if stuck.state is TenantState.PROVISIONING else "finished-delete"
        return Repair(stuck.id, stuck.state, action, "failed", str(exc))


async def _remove_orphan(plane: ControlPlane, resource: OwnedResource, actor: str) -> bool:
    """Remove one orphan, re-checking under the tenant's lock that it still is one."""
    lock_id = resource.tenant_id or resource.name
    try:
        async with plane.catalog.tenant_lock(lock_id):
            if _accounted_for(await _live_tenants(plane), resource):
                return False
            operation = await plane.catalog.begin_operation(
                "remove-orphan",
                actor,
                tenant_id=resource.tenant_id,
                details=resource.public_dict(),
            )
            try:
                await plane.backend(resource.backend).remove_resource(resource)
            except TenantvecError as exc:
                await plane.catalog.end_operation(
                    operation, OperationOutcome.FAILED, error=str(exc)
                )
                logger.warning(
                    "could not remove orphan %s %s: %s", resource.kind, resource.name, exc
                )
                return False
            await plane.catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
            logger.info(
                "removed orphan %s %s on %s", resource.kind, resource.name, resource.location
            )
            return True
    except TenantBusy:
        return False


@dataclass(frozen=True)
class GcReport:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def public_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "failed": self.failed}


async def collect_expired(plane: ControlPlane, *, actor: str) -> GcReport:
    """Delete every live tenant whose ``--ttl`` has run out (throwaway CI tenants)."""
    expired = await plane.catalog.list_tenants(
        states=[
            TenantState.READY,
            TenantState.SUSPENDED,
            TenantState.FAILED,
            TenantState.PROVISIONING,
        ],
        expired_before=utcnow(),
    )
    report = GcReport()
    for tenant in expired:
        try:
            await delete_tenant(plane, tenant.id, actor=actor)
            report.deleted.append(tenant.id)
        except TenantvecError as exc:
            report.failed[tenant.id] = str(exc)
    return report
