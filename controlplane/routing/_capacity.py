"""How many tenant connections one router may hold, and which tenants hold them.

:class:`PoolCapacity` owns a router's open tenant pools and the per-server budgets they
draw on. Its policy, all per process:

* at most ``max_pools`` pools are open; to open another, the coldest idle pool is
  closed;
* each server has a connection budget (:class:`ServerBudget`); a pool grows one
  connection at a time, only into a free slot, and a full budget is relieved one idle
  connection at a time, from the pool whose connections see the fewest requests each
  (``heat``: requests, decayed, over the connections held) -- so hot tenants keep their
  connections and the rest share what is left;
* slots of connections a pool closed after sitting idle go back: pools shrink;
* each pool holds at most ``pool_max`` connections.

A checkout that finds no room waits until ``deadline`` and then gets
:class:`OverCapacity`. A slot comes back only once its connection is closed, so the
connections a server sees from this process never exceed its budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from controlplane.errors import OverCapacity
from controlplane.routing._budget import ServerBudget
from controlplane.routing._heat import TenantHeat
from controlplane.routing._pools import TenantPool
from controlplane.routing._routes import Route

__all__ = ["PoolCapacity"]

logger = logging.getLogger(__name__)

# How fast a tenant's past requests stop counting toward keeping its connections: a
# request's weight halves every this many seconds. Long enough that a tenant asked a few
# times a minute outranks one asked once, short enough that yesterday's hot tenant does
# not hold a connection today's traffic needs.
HEAT_HALF_LIFE_SECONDS = 30.0


class PoolCapacity:
    """A router's tenant pools and server budgets. One event loop; one lock (a
    condition) guards everything, and waiters wake when slots or pools free up."""

    def __init__(
        self,
        *,
        max_pools: int,
        budget_limit: int,
        pool_max: int,
        wait_seconds: float,
        make_pool: Callable[[Route], TenantPool],
    ) -> None:
        self._max_pools = max_pools
        self._budget_limit = budget_limit
        self._pool_max = min(pool_max, budget_limit)
        self._wait_seconds = wait_seconds
        self._make_pool = make_pool
        self._pools: OrderedDict[str, TenantPool] = OrderedDict()  # LRU order
        self._budgets: dict[str, ServerBudget] = {}
        self._cond = asyncio.Condition()
        self._waiters = 0  # checkouts waiting on it: a check-in wakes them only if any
        self._closing: set[asyncio.Task[None]] = set()
        self._heat = TenantHeat(HEAT_HALF_LIFE_SECONDS)
        self.pools_opened = 0

    # -- checkout and checkin ------------------------------------------------------------

    async def checkout(self, route: Route, deadline: float) -> TenantPool:
        """Count one more user of the tenant's pool, growing it into the budget if needed."""
        self._heat.hit(route.tenant_id, time.monotonic())
        async with self._cond:
            while True:
                short: ServerBudget | None = None  # the budget we wait on, if full
                tpool = self._pools.get(route.tenant_id)
                if tpool is not None and not tpool.route.same_target(route):
                    self._retire(tpool)  # the tenant moved or was re-created
                    tpool = None
                if tpool is None and (len(self._pools) < self._max_pools or self._evict_coldest()):
                    tpool = self._pools[route.tenant_id] = self._make_pool(route)
                    self.pools_opened += 1
                if tpool is not None:
                    self._pools.move_to_end(route.tenant_id)
                    if tpool.in_use < tpool.reserved:
                        tpool.in_use += 1
                        return tpool
                    if tpool.reserved < self._pool_max:
                        budget = self._budget(route)
                        if budget.take():
                            await tpool.grow()
                            tpool.in_use += 1
                            return tpool
                        short = budget
                        if budget.releasing <= budget.waiting:
                            # Take back one idle slot on this server for this request
                            # (each waiting request has one coming back); it returns,
                            # and wakes us, once its connection is closed.
                            self._reclaim_slot(route.budget_key, keep=tpool)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._over_capacity(route)
                # Counted before the first await after the checks above: a check-in
                # either sees this waiter or happened before the checks saw its state.
                self._waiters += 1
                if short is not None:
                    short.waiting += 1
                try:
                    await asyncio.wait_for(self._cond.wait(), remaining)
                except TimeoutError:
                    raise self._over_capacity(route) from None
                finally:
                    self._waiters -= 1
                    if short is not None:
                        short.waiting -= 1

    async def checkin(self, tpool: TenantPool) -> None:
        # No lock for the counts: nothing awaits between reading and changing them
        # (one event loop), and the lock is taken only to wake checkouts that wait.
        tpool.in_use -= 1
        tpool.last_used = time.monotonic()
        if tpool.retired and tpool.in_use == 0:
            self._start_close(tpool)
        if self._waiters:
            async with self._cond:
                self._cond.notify_all()

    # -- taking pools out of service ------------------------------------------------------

    async def retire(self, tpool: TenantPool) -> None:
        """Take the pool out of service; it closes once nobody uses it."""
        async with self._cond:
            self._retire(tpool)

    async def forget(self, tenant_id: str) -> None:
        """Retire the tenant's pool, if one is open."""
        async with self._cond:
            tpool = self._pools.get(tenant_id)
            if tpool is not None:
                self._retire(tpool)

    async def close_idle(self, unused_since: float) -> None:
        """Retire pools unused since ``unused_since`` (monotonic), and give back the slots
        of connections that pools closed after sitting idle."""
        async with self._cond:
            for tpool in list(self._pools.values()):
                if tpool.in_use == 0 and tpool.last_used < unused_since:
                    logger.info("tenant %s: closing idle pool", tpool.tenant_id)
                    self._retire(tpool)
            self._return_unused_slots()
            self._heat.forget_cold(time.monotonic(), keep=set(self._pools))

    async def close(self) -> None:
        """Close every pool and wait until all are closed."""
        async with self._cond:
            for tpool in list(self._pools.values()):
                self._retire(tpool)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- observation ----------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Tenants with an open pool, least recently used first."""
        return list(self._pools)

    def busy(self) -> Iterator[str]:
        """Tenants with a connection checked out now."""
        return (tid for tid, tpool in self._pools.items() if tpool.in_use)

    def open_pools(self) -> int:
        return len(self._pools)

    def budgets(self) -> dict[str, dict[str, int]]:
        """Per server: limit, reserved, peak, in_use, connections, pools."""
        budgets: dict[str, dict[str, int]] = {}
        for key, budget in self._budgets.items():
            pools = [p for p in self._pools.values() if p.route.budget_key == key]
            budgets[key] = {
                "limit": budget.limit,
                "reserved": budget.reserved,
                "peak": budget.peak,
                "in_use": sum(p.in_use for p in pools),
                "connections": sum(p.connections() for p in pools),
                "pools": len(pools),
            }
        return budgets

    # -- the policy (all of it holds the lock) ------------------------------------------

    def _retire(self, tpool: TenantPool) -> None:
        if self._pools.get(tpool.tenant_id) is tpool:
            del self._pools[tpool.tenant_id]
        if not tpool.retired:
            tpool.retired = True
            self._budget(tpool.route).releasing += tpool.reserved
            if tpool.in_use == 0:
                self._start_close(tpool)

    def _evict_coldest(self) -> bool:
        """Retire the coldest idle pool (to open another beyond max_pools)."""
        idle = [tpool for tpool in self._pools.values() if tpool.in_use == 0]
        if not idle:
            return False
        self._retire(self._coldest(idle))
        return True

    def _coldest(self, pools: list[TenantPool]) -> TenantPool:
        # min() keeps the first of equals: the least recently used (LRU order).
        return min(pools, key=lambda tpool: self._heat.rank(tpool.tenant_id))

    def _least_used_connection(self, pools: list[TenantPool]) -> TenantPool:
        """The pool whose connections see the fewest requests each: its heat over the
        connections it holds. A pool's fourth connection is worth a quarter of its heat,
        so a hot tenant keeps its connections while tenants asked now and then share
        what is left, and among equals a pool's extra connection goes before another
        tenant's only one."""
        return min(
            pools,
            key=lambda tpool: self._heat.rank(tpool.tenant_id) - math.log(tpool.reserved),
        )

    def _reclaim_slot(self, budget_key: str, *, keep: TenantPool) -> bool:
        """Free one budget slot on ``budget_key``'s server: of the pools holding a slot
        they are not using, the one whose connections are least used gives one back --
        one connection, not the whole pool, so a busy tenant keeps the rest. A pool left
        with no slot is retired."""
        candidates = [
            tpool
            for tpool in self._pools.values()
            if tpool is not keep
            and tpool.route.budget_key == budget_key
            and tpool.in_use < tpool.reserved
        ]
        if not candidates:
            return False
        tpool = self._least_used_connection(candidates)
        if tpool.reserved == 1:
            self._retire(tpool)  # idle, with one slot: nothing left to keep
            return True
        tpool.reserved -= 1
        self._budget(tpool.route).releasing += 1
        self._start_task(self._give_back_slot(tpool))
        return True

    def _return_unused_slots(self) -> None:
        """Give back the slots of connections that pools closed after sitting idle (a
        pool's max_idle): pools shrink with their traffic."""
        for tpool in self._pools.values():
            spare = tpool.reserved - max(tpool.in_use, tpool.connections(), 1)
            if spare > 0 and not tpool.retired:
                tpool.reserved -= spare
                budget = self._budget(tpool.route)
                budget.releasing += spare
                budget.give_back(spare)
                self._start_task(tpool.shrink(timeout=0.1))  # the pool's max_size
                self._cond.notify_all()

    def _budget(self, route: Route) -> ServerBudget:
        key = route.budget_key
        budget = self._budgets.get(key)
        if budget is None:
            limit = min(self._budget_limit, route.budget_limit or self._budget_limit)
            budget = self._budgets[key] = ServerBudget(key, limit)
        return budget

    def _over_capacity(self, route: Route) -> OverCapacity:
        budget = self._budget(route)
        return OverCapacity(
            f"all {budget.limit} connections to server {route.budget_key!r} are in use and "
            f"none freed up within {self._wait_seconds:g} s; retry shortly",
            retry_after=1,
        )

    # -- closing in the background --------------------------------------------------------

    def _start_close(self, tpool: TenantPool) -> None:
        self._start_task(self._close_pool(tpool))

    def _start_task(self, work: Awaitable[Any]) -> None:
        """Run ``work`` in the background; :meth:`close` waits for what is left."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_pool(self, tpool: TenantPool) -> None:
        try:
            await tpool.close()
        finally:
            # Only now are the connections gone: give their slots back.
            async with self._cond:
                self._budget(tpool.route).give_back(tpool.reserved)
                tpool.reserved = 0
                self._cond.notify_all()

    async def _give_back_slot(self, tpool: TenantPool) -> None:
        """Close the connection of the slot ``tpool`` gave up, then return the slot."""
        shrunk = False
        try:
            shrunk = await tpool.shrink(timeout=tpool.connect_timeout)
        finally:
            async with self._cond:
                budget = self._budget(tpool.route)
                if shrunk or tpool.retired:  # a retired pool's connections are closing
                    budget.give_back(1)
                else:  # it still holds the connection: the slot stays taken
                    budget.releasing = max(0, budget.releasing - 1)
                    tpool.reserved += 1
                self._cond.notify_all()
