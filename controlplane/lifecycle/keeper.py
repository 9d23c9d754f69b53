"""The background work that keeps tenants' compute right-sized, in each API process.

* Scale to zero: every ``TENANTVEC_SUSPEND_AFTER / 4`` this process writes its
  tenants' last use to the catalog and suspends the tenants nobody (in any process)
  has used for ``TENANTVEC_SUSPEND_AFTER``.
* Supervision: every ``TENANTVEC_SUPERVISE_SECONDS`` it restarts the servers of ready
  ``instance``/``docker`` tenants that died.
* Limits: every ``TENANTVEC_LIMITS_SECONDS`` it ends what tenants' own sessions on
  shared servers do beyond their limits (lifecycle/_enforce.py).

Several API processes may run it at once: both steps take each tenant's lock and
check again under it, so a tenant is suspended or restarted once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from controlplane.context import PlaneContext
from controlplane.lifecycle._enforce import Enforced, enforce_limits
from controlplane.lifecycle.supervise import supervise
from controlplane.lifecycle.suspend import suspend_idle
from controlplane.routing.router import TenantRouter

__all__ = ["ComputeKeeper"]

logger = logging.getLogger(__name__)


class ComputeKeeper:
    def __init__(self, plane: PlaneContext, router: TenantRouter) -> None:
        self._plane = plane
        self._router = router  # whose activity is flushed before idle tenants are judged
        settings = plane.settings
        self._suspend_after = settings.suspend_after
        self._supervise_every = settings.supervise_seconds
        self._suspend_every = (self._suspend_after or 0) / 4
        self._limits_every = settings.limits_seconds

    async def run(self) -> None:
        next_suspend = next_supervise = next_limits = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                if self._suspend_after is not None and now >= next_suspend:
                    next_suspend = now + self._suspend_every
                    await self.suspend_idle()
                if now >= next_supervise:
                    next_supervise = now + self._supervise_every
                    await self.supervise()
                if now >= next_limits:
                    next_limits = now + self._limits_every
                    await self.enforce_limits()
            except Exception:  # noqa: BLE001 -- the loop must outlive a catalog outage
                logger.warning("compute keeper round failed; retrying", exc_info=True)
            due = [next_supervise, next_limits] + ([next_suspend] if self._suspend_after else [])
            await asyncio.sleep(max(0.05, min(due) - time.monotonic()))

    async def suspend_idle(self) -> list[str]:
        assert self._suspend_after is not None
        await self._router.flush_activity()  # our own requests count too
        suspended = await suspend_idle(self._plane, self._suspend_after, actor="idle-suspender")
        if suspended:
            logger.info("suspended %d idle tenant(s): %s", len(suspended), ", ".join(suspended))
        return suspended

    async def enforce_limits(self) -> list[Enforced]:
        return await enforce_limits(self._plane)

    async def supervise(self) -> list[str]:
        return await supervise(self._plane, actor="supervisor")
