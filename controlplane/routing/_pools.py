"""One tenant's connection pool, with the bookkeeping the router's budget needs.

The psycopg pool starts empty (``min_size=0``) and may hold at most ``reserved``
connections -- the slots this tenant holds in its server's budget. The router raises
``reserved`` one slot at a time when all of the tenant's connections are busy, and
gives the slots back only after :meth:`TenantPool.close` has closed every connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import time
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from pgvector.psycopg.vector import VectorBinaryDumper, VectorDumper
from psycopg import AsyncConnection
from psycopg.adapt import AdaptersMap
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from controlplane.pgconnect import PINNED_OPTIONS, ROUTER_APPLICATION
from controlplane.routing._routes import Route

__all__ = ["TenantPool", "use_vector_types"]

logger = logging.getLogger(__name__)

CONNECTION_IDLE_SECONDS = 60.0


def _router_adapters() -> AdaptersMap:
    """How router connections send vectors: pgvector's formats, with the type's oid left
    for the server to infer (0), as it does from the column or operator a vector meets.

    pgvector's ``register_vector_async`` looks the type up on every new connection:
    four catalog queries before the first search of a cold tenant. Every vector a
    router connection sends goes into a vector column or operator, so none is needed.
    (Reading vectors back, or a binary COPY, needs the types: :func:`use_vector_types`.)
    """
    adapters = AdaptersMap(psycopg.adapters)
    adapters.register_dumper(Vector, VectorDumper)  # text: COPY
    adapters.register_dumper(Vector, VectorBinaryDumper)  # binary: parameters
    set_json_loads(_load_json, adapters)
    return adapters


def _load_json(data: str | bytes) -> Any:
    """jsonb as Python, with msgspec (a search reads ten metadata objects: the standard
    library's json took ~70 us of them). jsonb numbers are arbitrary precision; one that
    no float holds (1e400) is read as the standard library reads it."""
    try:
        return msgspec.json.decode(data)
    except msgspec.ValidationError:
        return json.loads(data)


_ADAPTERS = _router_adapters()


async def use_vector_types(conn: AsyncConnection[Any]) -> None:
    """Make pgvector's types known to ``conn`` (oids, loaders), once per connection:
    what a binary COPY of vectors and reading vectors back need."""
    if conn.adapters.types.get("vector") is None:
        await register_vector_async(conn)


async def _check(conn: AsyncConnection[Any]) -> None:
    """Discard a connection whose server hung up while it sat idle in the pool.

    After a restart, a crash or a suspension the server has closed its end: the socket
    then reads EOF (or a FATAL message). Seeing that costs one poll() and no round trip,
    and it means the request gets a fresh connection -- or, if the server is down, a
    clean failure the router can act on (restart, resume) before any statement runs.
    An idle connection has nothing else to read: we use neither LISTEN nor SET.
    """
    if conn.closed or _readable(conn.pgconn.socket):
        await conn.close()
        raise psycopg.OperationalError("the server closed the connection while it was idle")


def _readable(fd: int) -> bool:
    poller = select.poll()  # not select(): descriptors can pass FD_SETSIZE with many pools
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class TenantPool:
    def __init__(
        self,
        route: Route,
        *,
        connect_timeout: int,
        idle_seconds: float,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        if route.conninfo is None:
            raise ValueError(f"tenant {route.tenant_id!r} has no connection string")
        self.route = route
        self.connect_timeout = connect_timeout
        self.reserved = 0  # budget slots held == the pool's max_size once open
        self.in_use = 0  # connections checked out through the router
        self.last_used = time.monotonic()
        self.retired = False  # no new checkouts; close when the last one returns
        connection: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": connect_timeout,
            "application_name": ROUTER_APPLICATION,
            "context": _ADAPTERS,
            "options": PINNED_OPTIONS,
        }
        if route.limits is not None:
            # The tenant's statement timeouts hold for its API requests too.
            connection["options"] = f"{PINNED_OPTIONS} {route.limits.connection_options()}"
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            route.conninfo.dsn,
            min_size=0,
            max_size=1,
            open=False,
            check=_check,
            kwargs=connection,
            configure=self._configure,
            name=f"tenant-{route.tenant_id}",
            # A connection idle this long is closed (the pool shrinks; the router then
            # returns its slot to the budget), long before an idle pool is closed.
            max_idle=min(idle_seconds, CONNECTION_IDLE_SECONDS),
            # A database that refuses a connection fails the request waiting for it at
            # once (the router says why and fails fast for a moment): no retries in the
            # background while a client waits out its timeout.
            reconnect_timeout=0.0,
            reconnect_failed=self._gave_up,
            num_workers=1,
        )
        self._opened = False
        self._closing: asyncio.Task[None] | None = None
        self._on_connect = on_connect

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        # Nothing to set up (no query: see _router_adapters); counted for /metrics.
        if self._on_connect is not None:
            self._on_connect()

    @property
    def tenant_id(self) -> str:
        return self.route.tenant_id

    @property
    def pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        return self._pool

    async def grow(self) -> None:
        """Let the pool hold one more connection (the caller reserved a budget slot)."""
        self.reserved += 1
        if not self._opened:
            # With min_size=0, opening connects nothing: connections are made on demand.
            await self._pool.open(wait=False)
            self._opened = True
        else:
            await self._pool.resize(0, self.reserved)

    def _gave_up(self, pool: AsyncConnectionPool[Any]) -> None:
        # Closing the pool fails the requests waiting on it (PoolClosed) now; the
        # router then retires it. From a task: this runs in the pool's own worker.
        if self._closing is None:
            self._closing = asyncio.create_task(pool.close(timeout=0))

    def idle(self) -> int:
        """Connections sitting unused in the pool now."""
        return self._pool.get_stats().get("pool_available", 0) if self._opened else 0

    async def shrink(self, timeout: float) -> bool:
        """Hold no more connections than ``reserved`` (which the router just lowered by
        one): close an idle connection if there is one too many. False if none came
        free within ``timeout`` (the slot must then stay reserved)."""
        if self.reserved > 0:
            await self._pool.resize(0, self.reserved)  # no new connection beyond it
        deadline = time.monotonic() + timeout
        while self.connections() > self.reserved:
            if await self._close_one_idle():
                continue
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)  # all busy for a moment: one comes back soon
        return True

    async def _close_one_idle(self) -> bool:
        # psycopg_pool has no public way to close one idle connection: resize() closes
        # none, and a closed connection handed back is replaced by a new one. This is
        # what the pool's own max_idle shrinking does (AsyncConnectionPool._shrink_pool),
        # for one connection; tests/controlplane/routing pins the behaviour.
        pool = self._pool
        async with pool._lock:  # noqa: SLF001
            if not pool._pool:  # noqa: SLF001
                return False
            conn = pool._pool.popleft()  # noqa: SLF001
            pool._nconns -= 1  # noqa: SLF001
            pool._nconns_min = min(pool._nconns_min, len(pool._pool))  # noqa: SLF001
        await conn.close()
        return True

    def connections(self) -> int:
        """Connections the pool holds now (idle, in use, or being made)."""
        return self._pool.get_stats().get("pool_size", 0) if self._opened else 0

    async def close(self) -> None:
        if self._closing is not None:
            await self._closing
        if self._opened:
            await self._pool.close()
        logger.debug("tenant %s: pool closed (%d slots)", self.tenant_id, self.reserved)
