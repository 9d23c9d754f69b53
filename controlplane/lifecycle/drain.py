"""Draining a server: every tenant on it moved elsewhere, a few at a time.

The server is marked ``draining`` first, so placement sends it no new tenant (and no
moving one); then each tenant on it is moved (lifecycle/move.py) to the least full
active server -- or to the backend asked for -- with at most ``concurrency`` moves at
once. Each move is crash-safe on its own, so a drain that dies is resumed by running it
again: what already moved is no longer on the server, and a move the dead drain left
half done is settled first (rolled back or finished, as reconcile would). When nothing
is left the server can be unregistered (``tenantctl servers remove``); ``tenantctl
servers activate`` takes it back into placement instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.context import PlaneContext
from controlplane.errors import CatalogUnavailable, InvalidRequest, TenantvecError
from controlplane.lifecycle._fleetwork import for_each_tenant
from controlplane.lifecycle.move import move_tenant, settle_move
from controlplane.lifecycle.placement import choose_server
from controlplane.model.records import MOVE_STATES, ServerState, Tenant, TenantState
from controlplane.model.views import DrainMoveView, DrainView

__all__ = [
    "DrainReport",
    "MoveOutcome",
    "check_destination",
    "check_drain",
    "drain_server",
    "tenants_to_drain",
]

logger = logging.getLogger(__name__)

# Tenants a drain moves (one a dead move left half done is settled first); others on
# the server (provisioning, restoring, deleting, failed) are reconcile's or an
# operator's first, and are reported as left.
_MOVABLE = frozenset({TenantState.READY, TenantState.SUSPENDED}) | MOVE_STATES
# How long to wait for the lock of a tenant whose move a dead drain left half done.
_DEAD_HOLDER_SECONDS = 2.0


@dataclass(frozen=True)
class MoveOutcome:
    tenant: str
    ok: bool
    to: str | None = None  # the server (or backend) it moved to
    seconds: float = 0.0
    error: str | None = None

    def view(self) -> DrainMoveView:
        return DrainMoveView(
            tenant=self.tenant,
            ok=self.ok,
            to=self.to,
            seconds=round(self.seconds, 3),
            error=self.error,
        )


@dataclass(frozen=True)
class DrainReport:
    server: str
    moves: list[MoveOutcome] = field(default_factory=list)
    # Tenants still on the server afterwards (failed moves, and tenants not movable).
    left: list[str] = field(default_factory=list)

    @property
    def drained(self) -> bool:
        return not self.left

    def view(self) -> DrainView:
        return DrainView(
            server=self.server,
            moved=sum(m.ok for m in self.moves),
            failed=sum(not m.ok for m in self.moves),
            moves=[m.view() for m in self.moves],
            left=list(self.left),
            drained=self.drained,
        )


def check_drain(server: str, to_server: str | None, concurrency: int) -> None:
    """Refuse a drain that cannot be (before anything is marked or moved)."""
    if concurrency < 1:
        raise InvalidRequest("--concurrency must be at least 1")
    if to_server == server:
        raise InvalidRequest(f"cannot drain server {server!r} onto itself")


async def tenants_to_drain(plane: PlaneContext, server: str) -> list[Tenant]:
    """The live tenants on ``server``, as a drain finds them."""
    await plane.catalog.get_server(server)  # ServerNotFound for a name never registered
    return [
        t
        for t in await plane.catalog.list_tenants(server=server)
        if t.state is not TenantState.DELETED
    ]


async def drain_server(
    plane: PlaneContext,
    server: str,
    *,
    backend: str = "postgres",
    to_server: str | None = None,
    concurrency: int = 2,
    actor: str,
    on_result: Callable[[MoveOutcome], None] | None = None,
) -> DrainReport:
    """Mark ``server`` draining and move every tenant off it (to ``backend``, on
    ``to_server`` or the least full active server)."""
    check_drain(server, to_server, concurrency)
    found = await plane.catalog.get_server(server)
    await check_destination(plane, server, backend, to_server)
    if found.state is not ServerState.DRAINING:
        await plane.catalog.update_server(server, state=ServerState.DRAINING)
        logger.info("server %s: draining (no new tenants)", server)

    async def one(tenant: Tenant) -> MoveOutcome:
        started = asyncio.get_running_loop().time()
        try:
            if tenant.state in MOVE_STATES:
                await _settle_dead_move(plane, tenant)
                current = await plane.catalog.get_tenant(tenant.id)
                if current.server != server:  # the dead move had switched already
                    return _done(tenant.id, current.server or current.backend, started)
            report = await move_tenant(
                plane, tenant.id, backend=backend, server=to_server, actor=actor
            )
            moved = report.tenant
            return _done(tenant.id, moved.server or moved.backend, started)
        except CatalogUnavailable:
            raise  # no tenant can move without it: the drain stops, reconcile settles
        except TenantvecError as exc:
            logger.warning("server %s: moving tenant %s failed: %s", server, tenant.id, exc)
            return MoveOutcome(tenant.id, False, error=str(exc))

    # Moves a dead drain left half done, wherever they stand: one that switched already
    # has its tenant off the server but its old copy still on it.
    for tenant in await plane.catalog.list_tenants(states=list(MOVE_STATES)):
        if server in {copy.server for copy in tenant.copies}:
            try:
                await _settle_dead_move(plane, tenant)
            except TenantvecError as exc:
                logger.warning("server %s: settling tenant %s failed: %s", server, tenant.id, exc)
    movable = [t for t in await tenants_to_drain(plane, server) if t.state in _MOVABLE]
    moves = await for_each_tenant(movable, one, concurrency=concurrency, on_result=on_result)
    left = [t.id for t in await tenants_to_drain(plane, server)]
    return DrainReport(server, moves, left)


async def check_destination(
    plane: PlaneContext, server: str, backend: str, to_server: str | None
) -> None:
    """Where the tenants are to go, resolved before the server is marked: a target that
    is misspelt, not configured, draining or full stops the drain before it begins, and
    the server keeps taking tenants."""
    target = plane.backend(backend)  # NotConfigured for a backend this plane lacks
    if to_server is not None and not target.uses_servers:
        raise InvalidRequest(
            f"the {target.kind} backend does not place tenants on registered servers: drop --to"
        )
    if not target.uses_servers:
        return
    movable = [t for t in await tenants_to_drain(plane, server) if t.state in _MOVABLE]
    if to_server is not None or movable:
        await choose_server(plane, to_server, exclude=server)


def _done(tenant_id: str, to: str, started: float) -> MoveOutcome:
    return MoveOutcome(tenant_id, True, to=to, seconds=asyncio.get_running_loop().time() - started)


async def _settle_dead_move(plane: PlaneContext, tenant: Tenant) -> None:
    """A move left half done by a process that died: settled under the tenant's lock
    (held by a live mover instead: TenantBusy, reported as this tenant's failure)."""
    async with plane.catalog.tenant_lock(tenant.id, wait=_DEAD_HOLDER_SECONDS):
        await settle_move(plane, await plane.catalog.get_tenant(tenant.id))
