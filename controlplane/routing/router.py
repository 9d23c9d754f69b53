"""The tenant router: a warm, bounded connection pool per tenant, opened on first use.

Which tenants hold how many connections -- pools, per-server budgets, eviction -- is
``capacity.PoolCapacity``'s policy; the router puts requests through it.

A request that finds no room waits up to ``pool_wait_seconds`` and then gets
:class:`OverCapacity` (HTTP 503 + Retry-After). A suspended tenant is resumed, and a
tenant whose own server died is restarted, before its request goes on
(``lifecycle.wake``). A tenant whose database still cannot be reached fails with
:class:`TenantUnavailable`, alone: its pool is closed, its budget slots are returned,
and for a short while its requests fail fast instead of queueing.

The router also remembers when each tenant was last used and writes it to the catalog
(:meth:`TenantRouter.flush_activity`), which is what scale to zero goes by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from controlplane.errors import CatalogUnavailable, TenantUnavailable
from controlplane.model.records import TenantState
from controlplane.pgconnect import describe_pg_error
from controlplane.routing._availability import is_unavailable, same_incarnation, state_reason
from controlplane.routing._capacity import PoolCapacity
from controlplane.routing._grace import CatalogGrace
from controlplane.routing._pools import TenantPool
from controlplane.routing._routes import Route, RouteTable
from controlplane.routing._sources import RoutingPlane
from tenantvec_schema.migrations import MigrationSet

__all__ = ["RouterStats", "TenantConnection", "TenantRouter"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How long requests to a tenant whose database just failed to connect fail at once
# (and what Retry-After says), so a dead database does not tie up waiting requests.
DOWN_SECONDS = 2.0
# A route older than this is read again when its database refuses a connection: the
# tenant may have moved (a move keeps the old copy one route TTL + 1 s past its switch).
ROUTE_FOLLOW_SECONDS = 1.0
# read_only_sql_transaction: a write into a database a move has paused.
READ_ONLY_SQLSTATE = "25006"
# What a refused write is told to wait: a small tenant's move switches over in seconds.
WRITES_PAUSED_RETRY_SECONDS = 2.0
# Upgraded incarnations remembered (a set of uids, cleared past this: it only saves a
# catalog read per tenant).
_UPGRADED_REMEMBERED = 100_000


@dataclass(frozen=True)
class TenantConnection:
    """A connection to one tenant's database, as the tenant's own role."""

    route: Route
    conn: AsyncConnection[Any]

    @property
    def session_settings(self) -> dict[str, str]:
        """The settings this connection's session was given (set_config(..., false))
        that are known to hold: a search sets only those it needs otherwise."""
        return _SESSION_SETTINGS.setdefault(self.conn, {})

    @property
    def tenant_id(self) -> str:
        return self.route.tenant_id


# Per connection: what its session was set to. Weak: a connection closed and dropped
# by its pool takes its entry along; a new connection starts knowing nothing.
_SESSION_SETTINGS: weakref.WeakKeyDictionary[AsyncConnection[Any], dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class RouterStats:
    open_pools: int
    pools_opened: int  # since the router started: how often a tenant needed a cold pool
    connections_opened: int  # and how many connections to tenant databases it made
    budget_per_server: int  # this process's share of each server's budget
    budgets: dict[str, dict[str, int]]  # per server: limit, reserved, in_use, connections, peak


class TenantRouter:
    """Routes ``connection(tenant_id)`` to the tenant's pool. Open with :meth:`open`."""

    def __init__(self, plane: RoutingPlane) -> None:
        settings = plane.settings
        self._plane = plane
        # Shared with the key verifier: one view of whether the catalog answers.
        self.grace = CatalogGrace(settings.catalog.grace_seconds)
        self._routes = RouteTable(plane, ttl=settings.routing.route_ttl_seconds, grace=self.grace)
        self._budget_limit = settings.routing.worker_connection_budget
        self._idle_seconds = settings.routing.pool_idle_seconds
        self._wait_seconds = settings.routing.pool_wait_seconds
        self._ttl = settings.routing.route_ttl_seconds
        self._connect_timeout = settings.connect_timeout
        self._capacity = PoolCapacity(
            max_pools=settings.routing.max_pools,
            budget_limit=self._budget_limit,
            pool_max=settings.routing.pool_max_size,
            wait_seconds=self._wait_seconds,
            make_pool=self._new_pool,
        )
        # tenant id -> (until, reason, the route it is about): a mark for one database,
        # so the tenant's new copy after a move, or its next incarnation, is not held to it.
        self._down: dict[str, tuple[float, str, Route]] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._connections_opened = 0
        # Last request per tenant (monotonic), written to the catalog every
        # _activity_every seconds for scale to zero (catalog.activity).
        self._last_use: dict[str, float] = {}
        self._activity_every = min(10.0, (settings.suspend_after or 40.0) / 4)
        self._activity_flushed = time.monotonic()
        # Work of layers above that runs on the maintenance tick (the key verifier's
        # background re-checks), each on its own: one failing does not stop the rest.
        self._maintenance_hooks: list[Callable[[], Awaitable[None]]] = []
        self._latest = MigrationSet.bundled().latest
        # Tenant incarnations brought to the latest schema (or found there) by this
        # process, while their cached route still says otherwise.
        self._upgraded: set[str] = set()
        plane.on_tenant_change(self.forget)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, plane: RoutingPlane) -> AsyncIterator[TenantRouter]:
        router = cls(plane)
        router._maintenance = asyncio.create_task(router._maintain(), name="tenantvec-router")
        try:
            yield router
        finally:
            await router.close()

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self._capacity.close()

    # -- the request path --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(self, target: str | Route) -> AsyncIterator[TenantConnection]:
        """A connection to the tenant's database for the duration of the block.

        ``target`` is a tenant id, or a route from :meth:`route`: then the connection
        goes to that very incarnation of the tenant, or fails with TenantNotFound if it
        is gone (deleted, or deleted and created again) -- never to a successor.

        A suspended tenant is resumed first, and a tenant whose own server died is
        restarted (``lifecycle.wake``): the request waits instead of failing.
        """
        if isinstance(target, Route):
            tenant_id, incarnation = target.tenant_id, target.uid
        else:
            tenant_id, incarnation = target, None
        # A route the caller just had from route() is still the table's: used as is.
        route = (
            target
            if isinstance(target, Route) and self._routes.holds(target)
            else same_incarnation(await self._routes.get(tenant_id), incarnation)
        )
        if route.state is TenantState.SUSPENDED:
            await self._plane.wake(tenant_id)
            route = await self._fresh_route(tenant_id, incarnation)
        if not route.state.serves:
            raise TenantUnavailable(tenant_id, route.state.value, state_reason(route))
        if route.schema_version < self._latest and route.uid not in self._upgraded:
            # An upgrade of tenantvec has not reached this tenant yet: migrate it before
            # the request, which would meet a schema this code does not read.
            await self._plane.upgrade(tenant_id)
            if len(self._upgraded) > _UPGRADED_REMEMBERED:
                self._upgraded.clear()
            self._upgraded.add(route.uid)
        down = self._down.get(tenant_id)
        if down is not None:
            until, reason, where = down
            if time.monotonic() < until and where.same_target(route):
                if not self._plane.backend(route.backend).supervises:
                    # A database that refused us a moment ago: fail at once, do not queue.
                    raise TenantUnavailable(
                        tenant_id, route.state.value, reason, retry_after=until - time.monotonic()
                    )
                # A server of the tenant's own died: wait for the restart that the first
                # failing request started (one per tenant), bounded by its timeout.
                await self._plane.wake(tenant_id)
                route = await self._fresh_route(tenant_id, incarnation)
            self._down.pop(tenant_id, None)
        self._last_use[tenant_id] = time.monotonic()
        try:
            tpool, conn = await self._acquire(route, time.monotonic() + self._wait_seconds)
        except TenantUnavailable as refused:
            route = await self._recover(route, incarnation, refused)
            tpool, conn = await self._acquire(route, time.monotonic() + self._wait_seconds)
        try:
            yield TenantConnection(route, conn)
        except psycopg.Error as exc:
            if exc.sqlstate == READ_ONLY_SQLSTATE:
                # A move paused the tenant's writes (lifecycle/move.py): say so and come
                # back; the route is read again, to find the tenant where it moved. A
                # move whose process died is rolled back here, so writes do not wait
                # for an operator's reconcile.
                self._routes.forget(tenant_id)
                if await self._plane.resume_writes(tenant_id):
                    raise TenantUnavailable(
                        tenant_id,
                        route.state.value,
                        "a move that had paused its writes was abandoned and is rolled "
                        "back: retry (this write was not made)",
                        retry_after=1,
                    ) from exc
                raise TenantUnavailable(
                    tenant_id,
                    route.state.value,
                    "it is moving to another placement: writes are paused until the move "
                    "switches over (reads go on)",
                    retry_after=WRITES_PAUSED_RETRY_SECONDS,
                ) from exc
            if is_unavailable(exc):
                self._routes.forget(tenant_id)  # read the catalog again next time
                raise TenantUnavailable(
                    tenant_id, route.state.value, describe_pg_error(exc), lost=True
                ) from exc
            raise
        finally:
            await tpool.pool.putconn(conn)
            self._last_use[tenant_id] = time.monotonic()
            await self._capacity.checkin(tpool)

    async def read(
        self, target: str | Route, work: Callable[[TenantConnection], Awaitable[T]]
    ) -> T:
        """Run read-only ``work`` on a connection to the tenant.

        If the connection is lost while it runs -- the tenant's server died, or was
        restarted, under it -- ``work`` runs once more on a new connection (after the
        tenant is woken, when its server is one tenantvec runs): reads are safe to repeat,
        and a request in flight when a server dies should not fail for it.
        """
        try:
            async with self.connection(target) as tc:
                return await work(tc)
        except TenantUnavailable as exc:
            if not exc.lost:
                raise
            logger.info("tenant %s: connection lost mid-read; reading again", exc.tenant_id)
        async with self.connection(target) as tc:
            return await work(tc)

    async def _acquire(
        self, route: Route, deadline: float
    ) -> tuple[TenantPool, AsyncConnection[Any]]:
        tpool = await self._capacity.checkout(route, deadline)
        try:
            return tpool, await self._getconn(tpool, deadline)
        except BaseException:
            await self._capacity.checkin(tpool)
            raise

    async def _recover(
        self, route: Route, incarnation: str | None, refused: TenantUnavailable
    ) -> Route:
        """Where to try once more after the tenant's database refused a connection.

        Raises ``refused`` when there is nowhere else to try.
        """
        tenant_id = route.tenant_id
        # Another process moved it (a cached route outlived the switch): follow the move.
        # A route the catalog confirmed this last second is its word already: not read
        # again (a dead database's requests must not each cost a catalog query).
        if time.monotonic() - route.fetched_at > ROUTE_FOLLOW_SECONDS:
            self._routes.forget(tenant_id)
            now = same_incarnation(await self._routes.get(tenant_id), incarnation)
            if now.state.serves and not now.same_target(route):
                logger.info("tenant %s: moved since its route was read; following it", tenant_id)
                return now
        # Its server died, or another process suspended it: bring it back, once.
        if not await self._plane.wake(tenant_id):
            raise refused
        self._down.pop(tenant_id, None)
        return await self._fresh_route(tenant_id, incarnation)

    async def _fresh_route(self, tenant_id: str, incarnation: str | None) -> Route:
        """The tenant's route as the catalog has it now (after a wake-up)."""
        self._routes.forget(tenant_id)
        route = same_incarnation(await self._routes.get(tenant_id), incarnation)
        if not route.state.serves:
            raise TenantUnavailable(tenant_id, route.state.value, state_reason(route))
        return route

    async def _getconn(self, tpool: TenantPool, deadline: float) -> AsyncConnection[Any]:
        # A slot is reserved for us, so the pool can always hand out or make a
        # connection; a timeout here means the database does not accept one.
        timeout = max(0.1, min(deadline - time.monotonic(), self._connect_timeout))
        try:
            return await tpool.pool.getconn(timeout=timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            down = self._down.get(tpool.tenant_id)
            if down is not None and down[2].same_target(tpool.route):  # a concurrent request knows
                reason = down[1]
            else:
                # Stop the pool's own attempts first, so the diagnosis below is the
                # only connection attempt on the tenant's unused slot.
                await tpool.pool.close()
                reason = await self._diagnose(tpool)
                logger.warning("tenant %s: database unreachable: %s", tpool.tenant_id, reason)
            self._down[tpool.tenant_id] = (time.monotonic() + DOWN_SECONDS, reason, tpool.route)
            await self._capacity.retire(tpool)
            raise TenantUnavailable(
                tpool.tenant_id, tpool.route.state.value, reason, retry_after=DOWN_SECONDS
            ) from exc

    async def _diagnose(self, tpool: TenantPool) -> str:
        """Why the tenant's database refused the pool, from one direct attempt.

        The attempt runs on a slot the tenant already holds and has not used: the pool
        could not make the connection that slot was reserved for.
        """
        conninfo = tpool.route.conninfo
        assert conninfo is not None
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo.dsn, connect_timeout=self._connect_timeout, autocommit=True
            )
        except psycopg.Error as exc:
            return describe_pg_error(exc)
        await conn.close()
        return f"no connection within {self._connect_timeout} s"

    # -- invalidation and housekeeping -----------------------------------------------

    async def forget(self, tenant_id: str) -> None:
        """Drop the tenant's cached route and close its pool (lifecycle change)."""
        self._routes.forget(tenant_id)
        self._down.pop(tenant_id, None)
        await self._capacity.forget(tenant_id)

    async def _maintain(self) -> None:
        # Entries older than ttl / 2 are re-checked each tick: at ttl / 4 a tick, none
        # reaches its ttl (and so a request) while the catalog answers.
        tick = min(1.0, self._ttl / 4, self._idle_seconds / 2)
        while True:
            await asyncio.sleep(tick)
            for hook in self._maintenance_hooks:
                try:
                    await hook()
                except Exception:  # noqa: BLE001 -- the loop must outlive anything
                    logger.warning("router maintenance hook failed; retrying", exc_info=True)
            try:
                await self._capacity.close_idle(time.monotonic() - self._idle_seconds)
                await self._revalidate()
                if (
                    time.monotonic() - self._activity_flushed >= self._activity_every
                    and self.grace.should_ask()
                ):
                    await self.flush_activity()
            except CatalogUnavailable:
                self.grace.failed()  # said once, when the outage began
            except Exception:  # noqa: BLE001 -- the loop must outlive anything
                logger.warning("router maintenance failed; retrying", exc_info=True)

    async def _revalidate(self) -> None:
        """Re-read the catalog for open pools' routes about to expire, in one query."""
        stale = self._routes.stale(self._capacity.tenants(), older_than=self._ttl / 2)
        if not stale or not self.grace.should_ask():
            return
        try:
            versions = await self._plane.catalog.tenant_versions(stale)
        except CatalogUnavailable:
            self.grace.failed()  # routes stay while the grace lasts; requests decide
            return
        self.grace.answered()
        for tenant_id in stale:
            current = versions.get(tenant_id)
            if current is None:
                self._routes.gone(tenant_id)
            if current is None or not self._routes.confirm(tenant_id, *current):
                logger.info("tenant %s: catalog entry changed; closing its pool", tenant_id)
                await self.forget(tenant_id)

    async def flush_activity(self) -> None:
        """Write when each tenant served its last request here to the catalog."""
        now = time.monotonic()
        self._activity_flushed = now
        ages = {tid: now - used for tid, used in self._last_use.items()}
        ages.update({tid: 0.0 for tid in self._capacity.busy()})
        self._last_use.clear()
        try:
            await self._plane.catalog.activity.touch(ages)
        except BaseException:
            for tid, age in ages.items():  # keep them for the next attempt
                self._last_use.setdefault(tid, now - age)
            raise

    def _new_pool(self, route: Route) -> TenantPool:
        return TenantPool(
            route,
            connect_timeout=self._connect_timeout,
            idle_seconds=self._idle_seconds,
            on_connect=self._connected,
        )

    def _connected(self) -> None:
        self._connections_opened += 1

    # -- observation -------------------------------------------------------------------

    def stats(self) -> RouterStats:
        return RouterStats(
            open_pools=self._capacity.open_pools(),
            pools_opened=self._capacity.pools_opened,
            connections_opened=self._connections_opened,
            budget_per_server=self._budget_limit,
            budgets=self._capacity.budgets(),
        )

    @property
    def plane(self) -> RoutingPlane:
        return self._plane

    async def route(
        self, tenant_id: str, *, incarnation: str | None = None, fresh: bool = False
    ) -> Route:
        """The tenant's (cached) route; TenantNotFound if it has none -- or, when
        ``incarnation`` (a tenant uid) is given, if that incarnation is gone.
        ``fresh``: read the catalog now instead of trusting the cache."""
        if fresh:
            self._routes.forget(tenant_id)
        return same_incarnation(await self._routes.get(tenant_id), incarnation)

    def on_maintenance(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook()`` on every maintenance tick (about once a second), off the
        request path."""
        self._maintenance_hooks.append(hook)

    def on_incarnation_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(tenant_id)`` when a tenant this router knew is found deleted
        or replaced by a new incarnation (how cached keys of it are dropped)."""
        self._routes.on_incarnation_change(listener)
