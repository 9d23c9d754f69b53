"""Moving a tenant to another placement: copy, verify, switch, drop the old copy.

Between any two placements -- a server to another, a shared server to an ``instance``
of its own, local to ``neon`` and back. Under the tenant's lock:

1. **Plan** the new copy (the target backend's own ``plan``: names, a server chosen
   by room, never the one it leaves) and make the tenant ``moving`` with that copy as
   its ``other_copy`` -- before anything is made, so a crash leaves a record of every
   resource that may exist.
2. **Make** the new copy's database and roles (``create``: the markers name the same
   tenant incarnation, so reconcile counts them as the tenant's while it moves).
3. **Copy** while writes go on: ``pg_dump`` of the serving copy (with its fingerprint:
   counts and a digest of every document and chunk row, vectors included, in the same
   snapshot), loaded by the restore's loader (schema at that version, rows, migrations,
   the digest compared row for row, the vector index built in one pass).
4. **Pause writes and catch up**: ``ALTER DATABASE ... SET
   default_transaction_read_only`` and the tenant's open sessions ended, so every API
   process, job and pool gets read-only sessions from here on -- enforced by Postgres,
   not by a flag some process might not have read yet. Reads go on; a write is refused
   (``25006``), which the router answers with 503 + ``Retry-After``. Then what was
   written during the copy is brought over document by document (lifecycle/_catchup.py)
   and both fingerprints compared. (A tenant at an older schema version than the
   latest is paused before the copy instead: its copy is migrated past it.)
5. **Switch**: one catalog update makes the new copy the tenant's (backend, server,
   placement, DSNs, schema version), the tenant ``switched`` and the old copy its
   ``other_copy``; routers here are told, those of other processes re-read the catalog
   within their route TTL -- the old copy stays, paused, that long, so none of them
   writes into it or finds it gone.
6. **Drop the old copy**; the tenant is ``ready`` again, with one copy.

A kill at any point leaves the tenant served from exactly one copy: the catalog's.
``reconcile`` settles what a dead move left (:func:`settle_move`): a ``moving`` tenant
becomes ``rolling-back`` (its new copy dropped, the pause lifted); a ``switched`` one
has its old copy dropped (finished); both end ``ready``. So does an API process that
finds a tenant's writes paused by a move nobody runs any more
(:func:`resume_abandoned_move`). Every phase change goes through ``set_state``, over the
state and copy its writer last read: a mover that lost its lock without dying stops at
its next step instead of switching to a copy being dropped.

Keys, labels, embedder, chunking, index and role limits are the tenant's catalog row,
which the move never replaces: they follow it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from controlplane.backends.base import Checkpoint
from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    CatalogUnavailable,
    Conflict,
    InvalidRequest,
    OverCapacity,
    ProvisioningError,
    TenantBusy,
    TenantChanged,
    TenantvecError,
)
from controlplane.failpoints import failpoint
from controlplane.lifecycle._catchup import CatchUp, catch_up
from controlplane.lifecycle._pause import pause_writes
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.backup import check_carriable, dump_tenant, tenant_settings
from controlplane.lifecycle.change import (
    as_read,
    record_other_copy,
    set_state,
    state_conflict,
)
from controlplane.lifecycle.placement import choose_server
from controlplane.lifecycle.restore import DumpLoader, request_from_settings
from controlplane.lifecycle.tenants import make_resources
from controlplane.model.placement import TenantCopy, with_limits
from controlplane.model.records import (
    MOVE_STATES,
    OperationOutcome,
    Tenant,
    TenantState,
    validate_tenant_id,
)
from controlplane.model.views import Location, MoveView, details_of
from controlplane.pgconnect import connect
from controlplane.scratch import scratch_dir
from tenantvec_schema.migrations import MigrationSet

__all__ = [
    "MoveReport",
    "move_tenant",
    "resume_abandoned_move",
    "settle_move",
]

logger = logging.getLogger(__name__)

# What a change takes to reach every router beyond its route TTL (the TTL setting's
# own promise: "within this delay plus one second").
ROUTE_CHANGE_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class MoveReport:
    tenant: Tenant
    source_backend: str
    source_server: str | None
    documents: int
    chunks: int
    # Documents copied again (or deleted) during the pause: written while the first
    # copy ran.
    caught_up: int
    seconds: float
    # From pausing writes to the switch, as this process saw it; other processes'
    # routers may refuse writes up to one route TTL longer.
    writes_paused_seconds: float

    def view(self) -> MoveView:
        return MoveView(
            tenant=self.tenant.view(),
            moved_from=Location(backend=self.source_backend, server=self.source_server),
            documents=self.documents,
            chunks=self.chunks,
            caught_up=self.caught_up,
            verified=True,  # a move that does not verify fails
            seconds=round(self.seconds, 3),
            writes_paused_seconds=round(self.writes_paused_seconds, 3),
        )


async def move_tenant(
    plane: PlaneContext,
    tenant_id: str,
    *,
    backend: str | None = None,
    server: str | None = None,
    actor: str,
) -> MoveReport:
    """Move tenant ``tenant_id`` to ``backend`` (default: its own) on ``server`` (for
    backends that use servers; default: the active one with the most room)."""
    started = time.monotonic()
    validate_tenant_id(tenant_id)
    tenant = await plane.catalog.get_tenant(tenant_id)
    if tenant.state is TenantState.SUSPENDED:
        await plane.wake(tenant.id)  # a copy is read from a running database
    target = plane.backend(backend or tenant.backend)
    _check_target(tenant, target.kind, target.uses_servers, server)
    async with plane.catalog.tenant_lock(tenant.id):
        tenant = await plane.catalog.get_tenant(tenant_id)  # as it is now, under the lock
        if tenant.state is not TenantState.READY:
            raise state_conflict(tenant, "move it when ready")
        source = (tenant.backend, tenant.server)
        operation = await plane.catalog.begin_operation(
            "move",
            actor,
            tenant=tenant,
            details={"from": {"backend": source[0], "server": source[1]}},
        )
        try:
            moved, copied, paused = await _move(plane, tenant, target.kind, server)
        except Exception as exc:
            if isinstance(exc, CatalogUnavailable):
                raise  # nothing to record or settle it with: reconcile does, later
            await plane.catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            current = await plane.catalog.find_tenant_by_uid(tenant.uid)
            if current is not None:
                try:
                    await settle_move(plane, current)  # nothing half-made stays
                except Exception as settling:  # noqa: BLE001 -- reconcile finishes it
                    _left_for_reconcile(tenant, "settling the failed move", settling)
            raise
        report = MoveReport(
            moved,
            source[0],
            source[1],
            copied[0],
            copied[1],
            copied[2],
            time.monotonic() - started,
            paused,
        )
        details = details_of(report.view(), "tenant")
        await plane.catalog.end_operation(operation, OperationOutcome.SUCCEEDED, details=details)
    logger.info(
        "tenant %s: moved to %s in %.1f s", tenant.id, moved.server or moved.backend, report.seconds
    )
    return report


def _check_target(tenant: Tenant, kind: str, uses_servers: bool, server: str | None) -> None:
    if server is not None and not uses_servers:
        raise InvalidRequest(
            f"the {kind} backend does not place tenants on registered servers: drop the server"
        )
    if kind == tenant.backend:
        if not uses_servers:
            raise InvalidRequest(
                f"tenant {tenant.id!r} is on the {kind} backend already; move it to "
                "another backend (a server of the postgres backend, instance, neon)"
            )
        if server is not None and server == tenant.server:
            raise InvalidRequest(f"tenant {tenant.id!r} is on server {server!r} already")


async def _move(
    plane: PlaneContext, tenant: Tenant, kind: str, server: str | None
) -> tuple[Tenant, tuple[int, int, int], float]:
    catalog = plane.catalog
    target = plane.backend(kind)
    # Before anything is made: a tenant whose objects cannot be carried stays put.
    own = await check_carriable(plane, tenant)
    request = request_from_settings(
        tenant_settings(tenant), as_id=None, backend=kind, server=server
    )
    chosen = None
    if target.uses_servers:
        exclude = tenant.server if kind == tenant.backend else None
        try:
            chosen = await choose_server(plane, server, exclude=exclude)
        except OverCapacity as exc:
            # Not a moment's overload, as for a create: this fleet has no place for it.
            raise Conflict(f"tenant {tenant.id!r} has nowhere to move: {exc}") from None
    plan = await target.plan(request, chosen)
    new_copy = TenantCopy(
        kind, plan.server, with_limits(plan.placement.to_json(), tenant.where.limits)
    )
    tenant = await set_state(plane, tenant, TenantState.MOVING, other_copy=new_copy)
    failpoint(plane.settings, "move.after_record")

    paused_at = 0.0
    try:

        async def save(
            placement: dict[str, Any], conninfo: ConnInfo | None, service: ConnInfo | None
        ) -> Tenant:
            # The new copy's progress goes into the tenant's other copy; its DSNs stay in
            # memory until the switch (a move that dies is rolled back, never resumed).
            nonlocal tenant
            made = TenantCopy(kind, plan.server, placement)
            tenant = await record_other_copy(plane, tenant, made)
            return tenant.in_copy(made)

        checkpoint = Checkpoint(
            tenant.in_copy(new_copy),
            plan.conninfo,
            save,
            resuming=False,
            catalog_id=catalog.catalog_id,
            service_conninfo=plan.service_conninfo,
        )

        owner = await make_resources(target, checkpoint)
        service = checkpoint.service_conninfo or owner

        # A tenant at the latest schema version is copied while it takes writes, and caught
        # up during the pause; one at an older version (its copy is migrated past it), or
        # with objects of its own (which no catch-up follows), is paused first and copied
        # once.
        live_copy = tenant.schema_version == MigrationSet.bundled().latest and not own
        if not live_copy:
            await pause_writes(plane, tenant, paused=True)
            paused_at = time.monotonic()
            failpoint(plane.settings, "move.after_pause")
        async with scratch_dir(plane.settings.scratch_root, "move") as scratch:
            dumps = await dump_tenant(plane, tenant, scratch)
            version, found = dumps.schema_version, dumps.fingerprint
            loader = DumpLoader(
                version, found, dumps.rows, dumps.own, invalid=ProvisioningError, owner=owner
            )
            loaded = await loader(plane, checkpoint.tenant, service)
        caught_up = 0
        if live_copy:
            if loaded.to_version != version:
                raise ProvisioningError(
                    f"tenant {tenant.id!r} was migrated while it moved; move it again"
                )
            await pause_writes(plane, tenant, paused=True)
            paused_at = time.monotonic()
            failpoint(plane.settings, "move.after_pause")
            caught = await _catch_up(plane, tenant, service)
            found, caught_up = caught.fingerprint, caught.copied + caught.deleted
        failpoint(plane.settings, "move.after_copy")

        # Over the state and copy as this mover last read them: nobody took it over.
        moved = await set_state(
            plane,
            tenant,
            TenantState.SWITCHED,
            backend=kind,
            server=plan.server,
            placement=checkpoint.tenant.placement,
            other_copy=tenant.serving_copy,
            dsn_encrypted=plane.box.encrypt(owner.dsn),
            service_dsn_encrypted=plane.box.encrypt(service.dsn)
            if checkpoint.service_conninfo is not None
            else None,
            schema_version=loaded.to_version,
        )
    except Exception:
        # Was this move settled by somebody else meanwhile (it looked dead: this process
        # lost its lock without dying)? They dropped the new copy as its record then
        # stood and lifted the pause; what this process made or paused since is its own
        # to undo, as nobody else knows of it. (If not, move_tenant settles the move.)
        try:
            await _undo_if_taken_over(plane, tenant)
        except Exception as exc:  # noqa: BLE001 -- the move's own error is the one to raise
            _left_for_reconcile(tenant, "undoing its move", exc)
        raise
    paused = time.monotonic() - paused_at
    await plane.tenant_changed(tenant.id)
    failpoint(plane.settings, "move.after_switch")
    # Routers read the catalog again within their route TTL plus one maintenance tick
    # (a route read just before the switch may be cached just after it, here too);
    # until then they may still send requests to the old copy: it stays, paused.
    await asyncio.sleep(plane.settings.routing.route_ttl_seconds + ROUTE_CHANGE_SLACK_SECONDS)
    try:
        moved = await settle_move(plane, moved)
    except TenantChanged:
        # Another process settled it first (dropped the old copy): done all the same.
        moved = await catalog.get_tenant(tenant.id)
    return moved, (found.documents, found.chunks, caught_up), paused


def _left_for_reconcile(tenant: Tenant, what: str, exc: BaseException) -> None:
    """Say that cleaning up after a failed move failed too -- in one line where the
    cause is known (the catalog or a server away: reconcile settles it once back)."""
    if isinstance(exc, CatalogUnavailable):
        logger.info("tenant %s: %s waits for the catalog: %s", tenant.id, what, exc)
    elif isinstance(exc, TenantvecError):
        logger.warning("tenant %s: %s failed (%s); run reconcile", tenant.id, what, exc)
    else:
        logger.warning("tenant %s: %s failed; run reconcile", tenant.id, what, exc_info=exc)


async def _undo_if_taken_over(plane: PlaneContext, tenant: Tenant) -> None:
    """After a step of a move failed: if somebody else settled the move meanwhile, remove
    the new copy (as ``tenant``'s record, this mover's last, names it) and lift the pause
    on the old one -- unless the catalog serves that new copy (the switch committed
    although its answer was lost, and was finished since): then nothing is undone."""
    current = await plane.catalog.find_tenant_by_uid(tenant.uid)
    if current is not None and as_read(current) == as_read(tenant):
        return  # still ours: move_tenant settles it
    made = tenant.other_copy if tenant.state is TenantState.MOVING else None
    if made is None:
        return
    if current is not None and current.serving_copy == made:
        return
    logger.warning("tenant %s: its move was settled by another process; undoing", tenant.id)
    await _drop_copy(plane, tenant.in_copy(made), "new")
    if current is not None and current.state.serves:
        await pause_writes(plane, current, paused=False)


async def _catch_up(plane: PlaneContext, tenant: Tenant, target: ConnInfo) -> CatchUp:
    """What was written to the (now paused) source while it was copied, into the copy."""
    where = f"tenant {tenant.id!r}"
    timeout = plane.settings.connect_timeout
    async with (
        connect(plane.service_conninfo(tenant), where=where, timeout=timeout) as source,
        connect(target, where=f"{where} (new copy)", timeout=timeout, autocommit=False) as copy,
    ):
        return await catch_up(source, copy, where=where)


async def settle_move(plane: PlaneContext, tenant: Tenant) -> Tenant:
    """Finish what a move of ``tenant`` left (the caller holds its lock): the copy that
    does not serve is dropped; before the switch the pause on the serving copy is lifted
    too (rolled back); the tenant ends ``ready``. A tenant not moving: unchanged."""
    if tenant.state not in MOVE_STATES:
        return tenant
    if tenant.state is TenantState.MOVING:
        # Take the move from its mover first. A mover that lost its lock (its catalog
        # connection dropped: it looks dead) but still runs finds the state changed at
        # its next step and stops, instead of switching to the copy dropped below.
        tenant = await set_state(plane, tenant, TenantState.ROLLING_BACK)
    if tenant.other_copy is not None:
        which = "old" if tenant.state is TenantState.SWITCHED else "new"
        await _drop_copy(plane, tenant.in_copy(tenant.other_copy), which)
    if tenant.state is TenantState.ROLLING_BACK:
        await pause_writes(plane, tenant, paused=False)
    settled = await set_state(plane, tenant, TenantState.READY, other_copy=None)
    await plane.tenant_changed(tenant.id)
    return settled


async def resume_abandoned_move(plane: PlaneContext, tenant_id: str) -> bool:
    """Roll back a move that paused the tenant's writes and that nobody runs any more
    (its lock is free: the mover died), as reconcile would -- for an API process whose
    write found the tenant paused, so writes do not wait for an operator. False when
    there is nothing to do: no move, one past its switch, or one that is alive."""
    tenant = await plane.catalog.find_tenant(tenant_id)
    if tenant is None or not _pauses_writes(tenant):
        return False
    try:
        async with plane.catalog.tenant_lock(tenant_id):
            now = await plane.catalog.find_tenant_by_uid(tenant.uid)
            if now is None or not _pauses_writes(now):
                return False
            for operation in await plane.catalog.list_operations(
                tenant_id=tenant_id, outcome=OperationOutcome.RUNNING, limit=10
            ):
                if operation.action == "move":
                    await plane.catalog.end_operation(
                        operation.id,
                        OperationOutcome.FAILED,
                        error="interrupted: the process running it died (rolled back "
                        "when a write found the tenant paused)",
                    )
            await settle_move(plane, now)
    except TenantBusy:
        return False  # the move is alive: its pause ends at its switch
    logger.warning(
        "tenant %s: a move whose process died had paused its writes; rolled it back",
        tenant_id,
    )
    return True


def _pauses_writes(tenant: Tenant) -> bool:
    return tenant.state in (TenantState.MOVING, TenantState.ROLLING_BACK)


async def _drop_copy(plane: PlaneContext, shadow: Tenant, which: str) -> None:
    backend = plane.backend(shadow.backend)
    erasure = await with_retries(lambda: backend.delete(shadow), seconds=backend.retry_seconds)
    logger.info(
        "tenant %s: dropped its %s copy on %s (%s)",
        shadow.id,
        which,
        shadow.server or shadow.backend,
        "gone now" if erasure.immediate else "kept by the infrastructure for a while",
    )
