"""Reconcile: make the servers and the catalog agree again after crashes.

1. Tenants stuck in ``provisioning`` or ``deleting`` whose lock is free (the process
   that held it died) are finished: provisioning rolls forward, deleting completes.
   Tenants whose lock is held are in progress elsewhere and left alone.
2. Resources carrying tenantvec's marker are judged by what the marker says, parsed
   exactly: one naming a tenant incarnation that is deleted or unknown to this catalog
   (or, for older markers, a tenant id no live tenant has) is an **orphan** -- reported,
   and removed with ``fix=True``. One whose marker does not parse, or names a live
   tenant that does not record it, is **ambiguous**: reported, never removed. One
   marked by another catalog is not ours and left alone.
3. Files a killed backup or restore left behind (its scratch directory under
   ``TENANTVEC_HOME/scratch``, a backup's half-written file) are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from controlplane.backends.base import OwnedResource
from controlplane.context import PlaneContext
from controlplane.errors import TenantBusy, TenantvecError
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.change import set_state
from controlplane.lifecycle.index import restore_vector_index
from controlplane.lifecycle.move import settle_move
from controlplane.lifecycle.tenants import finish_delete, finish_provisioning
from controlplane.model.records import (
    MOVE_STATES,
    Operation,
    OperationOutcome,
    ServerState,
    Tenant,
    TenantState,
)
from controlplane.model.views import ReconcileView, RepairView, details_of
from controlplane.scratch import sweep

__all__ = [
    "ReconcileReport",
    "Repair",
    "Survey",
    "find_orphans",
    "reconcile",
    "survey",
]

logger = logging.getLogger(__name__)

# How long a lock whose holder just died may take to be released (its server session
# ends when it notices): reconcile waits this long before calling an operation live.
DEAD_HOLDER_SECONDS = 2.0


@dataclass(frozen=True)
class Repair:
    tenant: str
    was: str
    action: str  # "finished-create", "finished-delete", "skipped-in-progress"
    outcome: str  # "ok", "failed", "skipped"
    error: str | None = None

    def view(self) -> RepairView:
        return RepairView(
            tenant=self.tenant,
            was=self.was,
            action=self.action,
            outcome=self.outcome,
            error=self.error,
        )


@dataclass(frozen=True)
class ReconcileReport:
    repairs: list[Repair] = field(default_factory=list)
    orphans: list[OwnedResource] = field(default_factory=list)
    # Marked resources reconcile cannot attribute: reported, never removed.
    ambiguous: list[OwnedResource] = field(default_factory=list)
    removed: list[OwnedResource] = field(default_factory=list)
    failed_tenants: list[str] = field(default_factory=list)
    # Scratch directories of killed backups and restores, removed.
    scratch_removed: list[str] = field(default_factory=list)
    # Servers marked draining that still hold tenants: a drain that stopped (or one in
    # progress). Reported only: 'servers drain' again, or 'servers activate'.
    draining: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return (
            all(r.outcome == "ok" for r in self.repairs)
            and len(self.orphans) == len(self.removed)
            and not self.ambiguous
        )

    def view(self) -> ReconcileView:
        return ReconcileView(
            repairs=[r.view() for r in self.repairs],
            orphans=[o.view() for o in self.orphans],
            ambiguous=[o.view() for o in self.ambiguous],
            removed=[o.view() for o in self.removed],
            failed_tenants=list(self.failed_tenants),
            scratch_removed=list(self.scratch_removed),
            draining=dict(self.draining),
            clean=self.clean,
        )


async def reconcile(plane: PlaneContext, *, fix: bool = False, actor: str) -> ReconcileReport:
    repairs = [
        await _repair(plane, t, actor)
        for t in await plane.catalog.list_tenants(
            states=[TenantState.PROVISIONING, TenantState.RESTORING, TenantState.DELETING]
        )
    ]
    repairs += await _finish_interrupted(plane, actor)
    repairs += await _settle_moves(plane)
    scratch = await asyncio.to_thread(sweep, plane.settings.scratch_root)
    found = await survey(plane)
    removed: list[OwnedResource] = []
    if fix:
        for resource in found.orphans:
            if await _remove_orphan(plane, resource, actor):
                removed.append(resource)
    failed = [t.id for t in await plane.catalog.list_tenants(states=[TenantState.FAILED])]
    return ReconcileReport(
        draining=await draining_servers(plane),
        repairs=repairs,
        orphans=found.orphans,
        ambiguous=found.ambiguous,
        removed=removed,
        failed_tenants=failed,
        scratch_removed=[str(path) for path in scratch],
    )


async def draining_servers(plane: PlaneContext) -> dict[str, int]:
    """Servers marked draining that still hold live tenants, and how many."""
    counts = await plane.catalog.count_live_tenants_by_server()
    return {
        s.name: counts.get(s.name, 0)
        for s in await plane.catalog.list_servers()
        if s.state is ServerState.DRAINING and counts.get(s.name, 0)
    }


@dataclass(frozen=True)
class Survey:
    """Every marked resource, sorted: what no tenant owns any more, and what cannot be
    told (never removed: an operator has to look)."""

    orphans: list[OwnedResource] = field(default_factory=list)
    ambiguous: list[OwnedResource] = field(default_factory=list)


async def survey(plane: PlaneContext) -> Survey:
    """Find the resources on the infrastructure that no live tenant accounts for."""
    # Resources first, tenants second: a tenant's row is written before its resources,
    # so every resource seen here already has its row when the tenants are read.
    resources: list[OwnedResource] = []
    for backend in plane.backends.all():
        resources.extend(await backend.list_resources())
    tenants = _Tenants(
        await plane.catalog.list_tenants(include_deleted=True), plane.catalog.catalog_id
    )
    found = Survey()
    for resource in resources:
        verdict = tenants.verdict(resource)
        if verdict is _Verdict.ORPHAN:
            found.orphans.append(resource)
        elif verdict is _Verdict.AMBIGUOUS:
            found.ambiguous.append(resource)
    return found


async def find_orphans(plane: PlaneContext) -> list[OwnedResource]:
    """Marked resources whose tenant is gone (see :func:`survey`)."""
    return (await survey(plane)).orphans


class _Verdict(Enum):
    OWNED = "owned"  # a live tenant records it
    ORPHAN = "orphan"  # its marker parses and names a tenant that is gone: removable
    AMBIGUOUS = "ambiguous"  # the marker does not parse, or names a live tenant that
    # does not record it: reported, never removed
    FOREIGN = "foreign"  # another catalog's: not ours to judge


class _Tenants:
    """The catalog's tenants (deleted ones too), as reconcile looks them up."""

    def __init__(self, tenants: list[Tenant], catalog_id: str) -> None:
        self._catalog_id = catalog_id
        self._by_uid = {t.uid: t for t in tenants}
        self._live = {
            (backend, t.id): t
            for t in tenants
            if t.state is not TenantState.DELETED
            for backend in {copy.backend for copy in t.copies}
        }

    def verdict(self, resource: OwnedResource) -> _Verdict:
        if resource.catalog_id is not None and resource.catalog_id != self._catalog_id:
            return _Verdict.FOREIGN
        if resource.tenant_uid is not None:
            tenant = self._by_uid.get(resource.tenant_uid)
            if tenant is None or tenant.state is TenantState.DELETED:
                return _Verdict.ORPHAN
            return _Verdict.OWNED if _records(tenant, resource) else _Verdict.AMBIGUOUS
        if resource.tenant_id is not None:
            # An older marker (or a Neon name) names a tenant id, not an incarnation.
            tenant = self._live.get((resource.backend, resource.tenant_id))
            if tenant is None:
                return _Verdict.ORPHAN
            return _Verdict.OWNED if _records(tenant, resource) else _Verdict.AMBIGUOUS
        return _Verdict.AMBIGUOUS

    def owned(self, resource: OwnedResource) -> bool:
        return self.verdict(resource) is not _Verdict.ORPHAN


def _records(tenant: Tenant, resource: OwnedResource) -> bool:
    """Whether ``tenant``'s placement records this very resource -- in the copy that
    serves, or in the other copy of a move in progress.

    On servers the location is the server name and must match the copy's; elsewhere
    (Neon, own servers) the resource's name is unique on its own.
    """
    for copy in tenant.copies:
        if copy.backend != resource.backend:
            continue
        if copy.server is not None and copy.server != resource.location:
            continue
        if resource.name in copy.resource_names:
            return True
    return False


async def _repair(plane: PlaneContext, stuck: Tenant, actor: str) -> Repair:
    try:
        async with plane.catalog.tenant_lock(stuck.id, wait=DEAD_HOLDER_SECONDS):
            tenant = await plane.catalog.find_tenant(stuck.id)
            if tenant is None or tenant.uid != stuck.uid or tenant.state != stuck.state:
                return Repair(stuck.id, stuck.state, "already-settled", "ok")
            if tenant.state is TenantState.RESTORING:
                # A restore is not resumable from here (its file may be gone): roll it
                # back, so that nothing half-loaded is ever served; restore again.
                await finish_delete(plane, tenant, actor=actor, action="reconcile-restore")
                return Repair(tenant.id, tenant.state, "rolled-back-restore", "ok")
            if tenant.state is TenantState.PROVISIONING:
                await finish_provisioning(plane, tenant, actor=actor, action="reconcile-create")
                return Repair(tenant.id, tenant.state, "finished-create", "ok")
            await finish_delete(plane, tenant, actor=actor, action="reconcile-delete")
            return Repair(tenant.id, tenant.state, "finished-delete", "ok")
    except TenantBusy:
        return Repair(stuck.id, stuck.state, "skipped-in-progress", "skipped")
    except TenantvecError as exc:
        action = {
            TenantState.PROVISIONING: "finished-create",
            TenantState.RESTORING: "rolled-back-restore",
        }.get(stuck.state, "finished-delete")
        return Repair(stuck.id, stuck.state, action, "failed", str(exc))


# What an interrupted operation's tenant is brought to: its catalog state, on the
# backend (the operation's own work is idempotent, so doing it again finishes it).
_ROLL_FORWARD = {"suspend": TenantState.SUSPENDED, "resume": TenantState.READY}
_STATE_REPAIRED = {
    "create",
    "reconcile-create",
    "restore",
    "reconcile-restore",
    "delete",
    "reconcile-delete",
    "delete-failed",
    "backup",  # read only: closing its operation is all there is to do
}


# Operations that take a tenant's vector index away for a while: an interrupted one is
# finished by building the index the catalog records (if it is not there and valid).
_INDEX_REBUILT = {"bulk-load", "set-index"}


async def _finish_interrupted(plane: PlaneContext, actor: str) -> list[Repair]:
    """Operations left ``running`` by a process that died: closed as interrupted, and
    their tenant brought to a state its backend agrees with.

    Every operation runs under its tenant's lock, so one whose lock is free has no
    process behind it any more. A suspend or resume is finished; for anything else the
    backend is made to match the catalog again (a ready tenant's database open, its own
    server running; a suspended one's closed; its role limits as recorded).
    """
    catalog = plane.catalog
    repairs: list[Repair] = []
    for operation in await catalog.list_operations(outcome=OperationOutcome.RUNNING, limit=1000):
        if operation.tenant_uid is None:
            continue
        tenant = await catalog.find_tenant_by_uid(operation.tenant_uid)
        if tenant is None:
            continue
        try:
            async with catalog.tenant_lock(tenant.id, wait=DEAD_HOLDER_SECONDS):
                current = await catalog.find_operation(operation.id)
                if current is None or current.outcome is not OperationOutcome.RUNNING:
                    continue  # it ended while we looked
                await catalog.end_operation(
                    operation.id,
                    OperationOutcome.FAILED,
                    error="interrupted: the process running it died (closed by reconcile)",
                )
                _remove_partial_file(operation)
                now = await catalog.find_tenant_by_uid(operation.tenant_uid)
                if operation.action == "move" and now is not None and now.state in MOVE_STATES:
                    repairs.append(await _settle_move(plane, now))
                    continue
                if operation.action in _STATE_REPAIRED or now is None:
                    continue  # creates and deletes: finished above by their tenant's state
                if now.state not in (TenantState.READY, TenantState.SUSPENDED):
                    continue
                await _converge(plane, now, _ROLL_FORWARD.get(operation.action, now.state))
                if operation.action in _INDEX_REBUILT and now.state is TenantState.READY:
                    await restore_vector_index(plane, now)
                repairs.append(Repair(now.id, now.state, f"finished-{operation.action}", "ok"))
        except TenantBusy:
            continue  # somebody is at it right now
        except TenantvecError as exc:
            repairs.append(
                Repair(tenant.id, tenant.state, f"finished-{operation.action}", "failed", str(exc))
            )
    if repairs:
        for repair in repairs:
            await plane.tenant_changed(repair.tenant)
    return repairs


async def _settle_moves(plane: PlaneContext) -> list[Repair]:
    """Moves whose process died without an operation left running to say so (one that
    failed, then could not clean up): settled like the others, under the lock."""
    repairs: list[Repair] = []
    for tenant in await plane.catalog.list_tenants(states=list(MOVE_STATES)):
        try:
            async with plane.catalog.tenant_lock(tenant.id, wait=DEAD_HOLDER_SECONDS):
                now = await plane.catalog.find_tenant_by_uid(tenant.uid)
                if now is None or now.state not in MOVE_STATES:
                    continue
                repairs.append(await _settle_move(plane, now))
        except TenantBusy:
            repairs.append(Repair(tenant.id, tenant.state, "skipped-in-progress", "skipped"))
        except TenantvecError as exc:
            repairs.append(Repair(tenant.id, tenant.state, "settle-move", "failed", str(exc)))
    return repairs


async def _settle_move(plane: PlaneContext, tenant: Tenant) -> Repair:
    """Settle a dead move of ``tenant`` (the caller holds its lock): forward once it had
    switched, back before."""
    done = "finished-move" if tenant.state is TenantState.SWITCHED else "rolled-back-move"
    await settle_move(plane, tenant)
    return Repair(tenant.id, tenant.state, done, "ok")


def _remove_partial_file(operation: Operation) -> None:
    """A backup killed midway leaves its half-written file beside the one it was
    making (its operation names it): no use to anyone."""
    partial = operation.details.get("partial") if operation.action == "backup" else None
    if isinstance(partial, str) and Path(partial).name.endswith(".partial"):
        with contextlib.suppress(OSError):
            Path(partial).unlink(missing_ok=True)


async def _converge(plane: PlaneContext, tenant: Tenant, target: TenantState) -> None:
    """Make the backend serve (``ready``) or not (``suspended``), and record ``target``."""
    backend = plane.backend(tenant.backend)
    seconds = backend.retry_seconds
    if target is TenantState.READY:
        await with_retries(lambda: backend.resume(tenant), seconds=seconds)
        limits = tenant.where.limits
        await with_retries(lambda: backend.set_limits(tenant, limits), seconds=seconds)
    else:
        await with_retries(lambda: backend.suspend(tenant), seconds=seconds)
    if tenant.state is not target:
        await set_state(plane, tenant, target)


async def _remove_orphan(plane: PlaneContext, resource: OwnedResource, actor: str) -> bool:
    """Remove one orphan, re-checking under the tenant's lock that it still is one."""
    catalog = plane.catalog
    owner = await catalog.find_tenant_by_uid(resource.tenant_uid) if resource.tenant_uid else None
    lock_id = owner.id if owner else resource.tenant_id or resource.name
    try:
        async with catalog.tenant_lock(lock_id):
            tenants = _Tenants(await catalog.list_tenants(include_deleted=True), catalog.catalog_id)
            if tenants.owned(resource):
                return False
            operation = await plane.catalog.begin_operation(
                "remove-orphan",
                actor,
                tenant_id=resource.tenant_id,
                details=details_of(resource.view()),
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
