"""Waking a tenant for a request: resume it if suspended, restart its server if it died,
upgrade its schema if an upgrade has not reached it yet -- and lift a pause of its
writes that a dead move left.

Requests must not fail because a tenant scaled to zero or its server crashed: the
router asks :class:`Waker` to bring the tenant back and waits. Per tenant, at most one
wake-up runs in this process at a time; every request that needs it awaits the same
one (so twenty concurrent first requests resume a tenant once). Across processes the
tenant's lifecycle lock does the same: a process that finds it taken waits until the
holder is done and looks again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from controlplane.context import PlaneContext
from controlplane.errors import Conflict, TenantBusy, TenantUnavailable, TenantvecError
from controlplane.lifecycle.migrate import upgrade_on_touch
from controlplane.lifecycle.move import resume_abandoned_move
from controlplane.lifecycle.supervise import restart_if_down
from controlplane.lifecycle.suspend import resume_tenant
from controlplane.model.records import TenantState

__all__ = ["Waker"]

logger = logging.getLogger(__name__)

ACTOR = "router"
# How often to look again while another process holds the tenant's lock.
_BUSY_POLL = 0.05
# How often a tenant whose writes are refused as paused is checked for a dead move.
RESUME_CHECK_SECONDS = 2.0


class Waker:
    def __init__(self, plane: PlaneContext, *, timeout: float) -> None:
        self._plane = plane
        self._timeout = timeout
        self._running: dict[str, asyncio.Task[bool]] = {}
        self._upgrading: dict[str, asyncio.Task[bool]] = {}
        # tenant id -> when resume_writes may look at it again (monotonic)
        self._resume_checked: dict[str, float] = {}
        self._settling: set[asyncio.Task[bool]] = set()  # held until done

    async def wake(self, tenant_id: str) -> bool:
        """Bring the tenant to serving state; False if there was nothing this could do.

        True means: it was resumed or restarted (by us or someone else), or it is ready
        and its server runs. Raises TenantUnavailable when waking it failed.
        """
        task = self._running.get(tenant_id)
        if task is None:
            task = asyncio.create_task(self._wake(tenant_id), name=f"wake-{tenant_id}")
            self._running[tenant_id] = task
            task.add_done_callback(lambda _: self._running.pop(tenant_id, None))
        # Shielded: a request that gives up must not cancel the others' wake-up.
        return await asyncio.shield(task)

    async def upgrade(self, tenant_id: str) -> bool:
        """Migrate the tenant to the latest schema (lifecycle/migrate.py); one upgrade
        per tenant at a time in this process, every request that needs it awaiting it."""
        task = self._upgrading.get(tenant_id)
        if task is None:
            task = asyncio.create_task(
                upgrade_on_touch(self._plane, tenant_id), name=f"upgrade-{tenant_id}"
            )
            self._upgrading[tenant_id] = task
            task.add_done_callback(lambda _: self._upgrading.pop(tenant_id, None))
        return await asyncio.shield(task)

    async def resume_writes(self, tenant_id: str) -> bool:
        """Roll back a dead move that left the tenant's writes paused (True if so).

        Asked by the router when a write is refused as paused: at most once per tenant
        per ``RESUME_CHECK_SECONDS`` (a live move's pause refuses many writes, each of
        which would otherwise cost a catalog read and a lock attempt).
        """
        now = time.monotonic()
        if self._resume_checked.get(tenant_id, 0.0) > now:
            return False
        if len(self._resume_checked) > 1024:  # forget the long-expired
            self._resume_checked = {t: u for t, u in self._resume_checked.items() if u > now}
        self._resume_checked[tenant_id] = now + RESUME_CHECK_SECONDS
        # Its own task, shielded: a request that gives up (its client went away) must
        # not stop a roll-back halfway.
        task = asyncio.create_task(self._resume(tenant_id), name=f"resume-writes-{tenant_id}")
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return await asyncio.shield(task)

    async def _resume(self, tenant_id: str) -> bool:
        try:
            return await resume_abandoned_move(self._plane, tenant_id)
        except TenantvecError:
            logger.warning(
                "tenant %s: could not settle the move that paused its writes; run reconcile",
                tenant_id,
                exc_info=True,
            )
            return False

    async def _wake(self, tenant_id: str) -> bool:
        catalog = self._plane.catalog
        deadline = time.monotonic() + self._timeout
        while True:
            tenant = await catalog.get_tenant(tenant_id)
            try:
                if tenant.state is TenantState.SUSPENDED:
                    started = time.monotonic()
                    await resume_tenant(self._plane, tenant_id, actor=ACTOR, trigger="request")
                    logger.info(
                        "tenant %s: resumed for a request in %.0f ms",
                        tenant_id,
                        (time.monotonic() - started) * 1000,
                    )
                    return True
                if tenant.state is TenantState.READY:
                    if not self._plane.backend(tenant.backend).supervises:
                        return False
                    await restart_if_down(self._plane, tenant_id, actor=ACTOR)
                    return True
                return False
            except (TenantBusy, Conflict):
                # Another process is changing the tenant (resuming it, most likely).
                if time.monotonic() > deadline:
                    raise TenantUnavailable(
                        tenant_id, tenant.state.value, "another change of it is still running"
                    ) from None
                await asyncio.sleep(_BUSY_POLL)
            except TenantvecError as exc:
                action = "resuming" if tenant.state is TenantState.SUSPENDED else "restarting"
                raise TenantUnavailable(
                    tenant_id, tenant.state.value, f"{action} it failed: {exc}"
                ) from exc
