"""The router against the real server: roles, budgets, eviction, idle close, invalidation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from controlplane.errors import OverCapacity, TenantNotFound, TenantUnavailable
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.routing import TenantRouter
from controlplane.routing import _pools as pools_module
from controlplane.settings import Settings
from tests.fixtures.postgres import placement_names


async def _tenants(plane: ControlPlane, n: int) -> list[str]:
    ids = [f"r-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    await asyncio.gather(
        *(create_tenant(plane, TenantRequest(id=t, dims=3), actor="test") for t in ids)
    )
    return ids


async def _router_connections(
    plane: ControlPlane, superuser_dsn: str, tenants: list[str]
) -> dict[str, int]:
    """Connections the server sees from routers, per tenant (as its service role)."""
    roles = {(await placement_names(plane, t))[2]: t for t in tenants}
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT usename, count(*) FROM pg_stat_activity "
            "WHERE application_name = 'tenantvec-router' AND usename = ANY(%s) GROUP BY 1",
            (list(roles),),
        )
        return {roles[str(name)]: int(n) for name, n in await cur.fetchall()}


@pytest.fixture
async def tuned(
    pg_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[ControlPlane]:
    routing = pg_settings.routing.replace(**getattr(request, "param", {}))  # routing settings
    async with ControlPlane.open(pg_settings.replace(routing=routing)) as plane:
        yield plane


async def test_connections_are_the_tenants_own_role(
    plane: ControlPlane, superuser_dsn: str
) -> None:
    (tenant,) = await _tenants(plane, 1)
    database, owner, service = await placement_names(plane, tenant)
    async with TenantRouter.open(plane) as router, router.connection(tenant) as tc:
        # Logged in as the tenant's service role, which owns the database.
        cur = await tc.conn.execute(
            "SELECT session_user, current_user, current_database(), "
            "pg_has_role(session_user, %s, 'MEMBER'), current_setting('search_path')",
            (owner,),
        )
        assert await cur.fetchone() == (service, service, database, True, "public")
        cur = await tc.conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname IN (session_user, %s)", (owner,)
        )
        assert await cur.fetchall() == [(False,), (False,)]
        cur = await tc.conn.execute("SHOW statement_timeout")
        assert await cur.fetchone() == ("30s",)  # the small tier's, for API requests too
        assert await _router_connections(plane, superuser_dsn, [tenant]) == {tenant: 1}
    assert await _router_connections(plane, superuser_dsn, [tenant]) == {}


@pytest.mark.parametrize(
    "tuned",
    [{"max_connections_per_server": 3, "pool_max_size": 2, "pool_wait_seconds": 30}],
    indirect=True,
)
async def test_the_budget_is_never_exceeded_under_concurrency(
    tuned: ControlPlane, superuser_dsn: str
) -> None:
    tenants = await _tenants(tuned, 6)
    peak = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            seen = await _router_connections(tuned, superuser_dsn, tenants)
            peak = max(peak, sum(seen.values()))
            await asyncio.sleep(0.005)

    async with TenantRouter.open(tuned) as router:

        async def work(i: int) -> str:
            tenant = tenants[i % len(tenants)]
            async with router.connection(tenant) as tc:
                await tc.conn.execute("SELECT pg_sleep(0.02)")
                return tc.tenant_id

        sampler = asyncio.create_task(sample())
        served = await asyncio.gather(*(work(i) for i in range(120)))
        done.set()
        await sampler
        stats = router.stats().budgets["local"]
    assert sorted(set(served)) == sorted(tenants)
    assert 1 <= peak <= 3  # as Postgres counted them (pg_stat_activity), not the router
    assert stats["limit"] == 3


@pytest.mark.parametrize(
    "tuned",
    [{"max_connections_per_server": 1, "pool_wait_seconds": 0.3}],
    indirect=True,
)
async def test_over_budget_requests_fail_fast_with_retry_after(tuned: ControlPlane) -> None:
    first, second = await _tenants(tuned, 2)
    async with TenantRouter.open(tuned) as router, router.connection(first):
        with pytest.raises(OverCapacity) as caught:
            async with router.connection(second):
                pass
        assert caught.value.retry_after == 1
        assert "all 1 connections to server 'local' are in use" in str(caught.value)
    # with the first connection back, the second tenant gets the slot (the idle pool
    # of the first is closed to make room)
    async with TenantRouter.open(tuned) as router:
        async with router.connection(first):
            pass
        async with router.connection(second) as tc:
            assert tc.tenant_id == second


async def _hold(router: TenantRouter, tenant: str, n: int) -> None:
    """Use ``n`` connections of the tenant at once, then give them all back."""
    ready = asyncio.Barrier(n)

    async def one() -> None:
        async with router.connection(tenant) as tc:
            await ready.wait()
            await tc.conn.execute("SELECT 1")

    await asyncio.gather(*(one() for _ in range(n)))


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()


@pytest.mark.parametrize(
    "tuned", [{"max_connections_per_server": 3, "pool_max_size": 3}], indirect=True
)
async def test_a_full_budget_takes_one_idle_connection_not_a_whole_pool(
    tuned: ControlPlane, superuser_dsn: str
) -> None:
    hot, cold = await _tenants(tuned, 2)
    async with TenantRouter.open(tuned) as router:
        await _hold(router, hot, 3)  # the whole budget, now idle
        assert await _router_connections(tuned, superuser_dsn, [hot]) == {hot: 3}
        async with router.connection(cold) as tc:
            await tc.conn.execute("SELECT 1")

        async def shared() -> bool:
            seen = await _router_connections(tuned, superuser_dsn, [hot, cold])
            return seen == {hot: 2, cold: 1}

        # The hot tenant gave up one connection and kept its pool and the other two.
        assert await _until(shared)
        stats = router.stats().budgets["local"]
        assert (stats["reserved"], stats["pools"]) == (3, 2)


@pytest.mark.parametrize(
    "tuned", [{"max_connections_per_server": 2, "pool_max_size": 1}], indirect=True
)
async def test_a_full_budget_is_relieved_by_the_coldest_tenant_not_the_least_recent(
    tuned: ControlPlane, superuser_dsn: str
) -> None:
    hot, once, newcomer = await _tenants(tuned, 3)
    async with TenantRouter.open(tuned) as router:
        for tenant in (hot, hot, hot, hot, once):  # hot asked often, once just now
            async with router.connection(tenant) as tc:
                await tc.conn.execute("SELECT 1")
        assert await _router_connections(tuned, superuser_dsn, [hot, once]) == {hot: 1, once: 1}
        async with router.connection(newcomer) as tc:
            await tc.conn.execute("SELECT 1")

        async def settled() -> bool:
            seen = await _router_connections(tuned, superuser_dsn, [hot, once, newcomer])
            return seen == {hot: 1, newcomer: 1}

        # Least recently used would have closed hot's connection; heat keeps it.
        assert await _until(settled)
        assert router.stats().pools_opened == 3


@pytest.mark.parametrize(
    "tuned", [{"max_connections_per_server": 4, "pool_max_size": 3}], indirect=True
)
async def test_pools_shrink_when_their_connections_sit_idle(
    tuned: ControlPlane, superuser_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "CONNECTION_IDLE_SECONDS", 0.3)
    (tenant,) = await _tenants(tuned, 1)
    async with TenantRouter.open(tuned) as router:
        await _hold(router, tenant, 3)
        assert router.stats().budgets["local"]["reserved"] == 3

        async def shrunk() -> bool:
            return router.stats().budgets["local"]["reserved"] == 1

        # Unused, its connections close one by one and their slots return to the
        # budget; the pool itself stays open, with one slot, until it is idle for long.
        assert await _until(shrunk, seconds=8)
        assert router.stats().open_pools == 1
        assert (await _router_connections(tuned, superuser_dsn, [tenant])).get(tenant, 0) <= 1


@pytest.mark.parametrize("tuned", [{"max_pools": 2}], indirect=True)
async def test_the_coldest_idle_pools_are_closed_beyond_max_pools(
    tuned: ControlPlane, superuser_dsn: str
) -> None:
    a, b, c = await _tenants(tuned, 3)
    async with TenantRouter.open(tuned) as router:
        for tenant in (a, b, a, c):
            async with router.connection(tenant) as tc:
                await tc.conn.execute("SELECT 1")
        await asyncio.sleep(0.2)  # the evicted pool closes in the background
        assert router.stats().open_pools == 2
        assert set(await _router_connections(tuned, superuser_dsn, [a, b, c])) == {a, c}


@pytest.mark.parametrize("tuned", [{"pool_idle_seconds": 0.4}], indirect=True)
async def test_idle_pools_are_closed(tuned: ControlPlane, superuser_dsn: str) -> None:
    (tenant,) = await _tenants(tuned, 1)
    async with TenantRouter.open(tuned) as router:
        async with router.connection(tenant):
            pass
        assert router.stats().open_pools == 1

        # Retired on the maintenance tick after 0.4 s idle, its slot back once its
        # connection is closed (a moment later); a loaded machine may take longer.
        def closed() -> bool:
            stats = router.stats()
            return stats.open_pools == 0 and stats.budgets["local"]["reserved"] == 0

        deadline = time.monotonic() + 20
        while not closed() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert router.stats().open_pools == 0
        assert router.stats().budgets["local"]["reserved"] == 0
        assert await _router_connections(tuned, superuser_dsn, [tenant]) == {}


async def test_deleting_a_tenant_closes_its_warm_pool_at_once(
    plane: ControlPlane, superuser_dsn: str
) -> None:
    keep, doomed = await _tenants(plane, 2)
    doomed_service = (await placement_names(plane, doomed))[2]
    async with TenantRouter.open(plane) as router:
        for tenant in (keep, doomed):
            async with router.connection(tenant):
                pass
        await delete_tenant(plane, doomed, actor="test")
        assert router.stats().open_pools == 1
        with pytest.raises(TenantNotFound):
            async with router.connection(doomed):
                pass
        async with router.connection(keep) as tc:
            await tc.conn.execute("SELECT 1")
    assert doomed_service is not None
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (doomed_service,)
        )
        assert await cur.fetchone() == (0,)


async def test_an_unreachable_tenant_fails_alone(plane: ControlPlane, superuser_dsn: str) -> None:
    healthy, broken = await _tenants(plane, 2)
    async with TenantRouter.open(plane) as router:
        async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as admin:
            database = (await placement_names(plane, broken))[0]
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        with pytest.raises(TenantUnavailable) as caught:
            async with router.connection(broken):
                pass
        assert caught.value.state == "ready"
        assert "not currently accepting connections" in str(caught.value)
        async with router.connection(healthy) as tc:
            await tc.conn.execute("SELECT 1")
        # while it is marked down, its requests fail at once
        with pytest.raises(TenantUnavailable):
            async with router.connection(broken):
                pass
        stats = router.stats().budgets["local"]
        assert stats["pools"] == 1 and stats["reserved"] == 1  # only the healthy tenant's
