"""The catalog store on a database of its own: tenant locks, activity, the job queue,
and the one place driver errors become ours."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from bench.faults import catalog_reachable
from controlplane.catalog.store import Catalog
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    CatalogUnavailable,
    InvalidRequest,
    TenantBusy,
    TenantChanged,
    TenantExists,
)
from controlplane.model.records import Tenant, TenantState


@pytest.fixture
async def catalog(empty_catalog: ConnInfo) -> AsyncIterator[Catalog]:
    opened = await Catalog.connect(empty_catalog)
    try:
        yield opened
    finally:
        await opened.close()


async def _add(catalog: Catalog, tenant_id: str, state: TenantState = TenantState.READY) -> Tenant:
    return await catalog.add_tenant(
        id=tenant_id,
        state=state.value,
        backend="postgres",
        dims=3,
        metric="cosine",
        index_kind="hnsw",
        index_params={},
        text_config="english",
        schema_version=2,
    )


async def test_a_tenant_lock_has_one_holder_and_waiting_gets_it_once_freed(
    catalog: Catalog,
) -> None:
    async with catalog.tenant_lock("alpha"):
        with pytest.raises(TenantBusy):
            async with catalog.tenant_lock("alpha"):
                pass
        started = time.monotonic()
        with pytest.raises(TenantBusy):
            async with catalog.tenant_lock("alpha", wait=0.3):
                pass
        assert time.monotonic() - started >= 0.3  # it did wait
        async with catalog.tenant_lock("beta"):  # another tenant's is free
            pass

    async def release_soon() -> None:
        async with catalog.tenant_lock("alpha"):
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(release_soon())
    await asyncio.sleep(0.1)
    async with catalog.tenant_lock("alpha", wait=5):  # taken as soon as it is released
        assert holder.done()


async def test_a_dead_holders_lock_is_released_with_its_session(
    catalog: Catalog, empty_catalog: ConnInfo
) -> None:
    # A process that dies leaves its lock connection; the server ends that session.
    other = await psycopg.AsyncConnection.connect(empty_catalog.dsn, autocommit=True)
    await other.execute(
        "SELECT pg_advisory_lock(x'74656E76'::int, hashtext('gamma'))"  # the catalog's key
    )
    with pytest.raises(TenantBusy):
        async with catalog.tenant_lock("gamma"):
            pass
    await other.close()  # as a kill -9 would, the socket closes
    async with catalog.tenant_lock("gamma", wait=2):
        pass


async def test_activity_is_judged_by_the_catalogs_clock(catalog: Catalog) -> None:
    used, unused = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    for tenant_id in (used, unused):
        await _add(catalog, tenant_id)
    await asyncio.sleep(0.2)
    await catalog.activity.touch({used: 0.0, "not-a-tenant": 0.0})
    idle = await catalog.activity.idle(0.1)
    assert unused in idle and used not in idle
    # A report of an old use moves nobody's last use back (greatest of the two), and an
    # old use is no use since the tenant became ready (updated_at counts then).
    await catalog.activity.touch({used: 3600.0, unused: 3600.0})
    idle = await catalog.activity.idle(0.1)
    assert unused in idle and used not in idle
    tenant = await catalog.find_tenant(used)
    assert tenant is not None
    assert await catalog.activity.is_idle(tenant.uid, 60) is False
    assert await catalog.activity.is_idle(tenant.uid, 0) is True


async def test_jobs_are_claimed_once_and_again_after_their_lease_runs_out(
    catalog: Catalog,
) -> None:
    tenant = await _add(catalog, f"t-{uuid.uuid4().hex[:8]}")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await catalog.jobs.enqueue(first, tenant.uid, tenant.id)
    await catalog.jobs.enqueue(first, tenant.uid, tenant.id)  # the same job: still one
    await catalog.jobs.enqueue(second, tenant.uid, tenant.id)
    assert await catalog.jobs.waiting() == 2
    claims = await asyncio.gather(*(catalog.jobs.claim(f"p{i}", 0.5) for i in range(4)))
    taken = [c for c in claims if c is not None]
    assert sorted(c.id for c in taken) == sorted([first, second])  # each once (SKIP LOCKED)
    assert await catalog.jobs.claim("late", 30) is None
    mine = next(c for c in taken if c.id == first)
    holder = next(f"p{i}" for i, c in enumerate(claims) if c is mine)
    assert await catalog.jobs.renew(first, "someone-else", 30) is False
    assert await catalog.jobs.renew(first, holder, 30) is True
    await asyncio.sleep(0.6)  # the other lease runs out: its holder died
    again = await catalog.jobs.claim("survivor", 30)
    assert again is not None and again.id == second and again.attempts == 2
    await catalog.jobs.release(second, "survivor")  # given back: not an attempt
    back = await catalog.jobs.claim("next", 30)
    assert back is not None and back.id == second and back.attempts == 2
    for job in (first, second):
        await catalog.jobs.finish(job)
    assert await catalog.jobs.waiting() == 0


async def test_driver_errors_become_the_librarys(catalog: Catalog, empty_catalog: ConnInfo) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await _add(catalog, tenant_id)
    with pytest.raises(TenantExists):
        await _add(catalog, tenant_id)
    with pytest.raises(InvalidRequest, match="the catalog refused a value"):
        await _add(catalog, "x" * 64)  # longer than the column
    gone = await Catalog.connect(empty_catalog)
    await gone.close()
    unreachable = empty_catalog.with_(port=1)
    with pytest.raises(CatalogUnavailable):
        await Catalog.connect(unreachable, connect_timeout=1)


async def test_an_update_that_expects_a_row_changes_it_only_if_the_row_still_holds_it(
    catalog: Catalog,
) -> None:
    """How a long operation's step makes sure nobody took the tenant over meanwhile:
    of two writers that read the same placement, the second is refused, not merged."""
    tenant = await _add(catalog, "gamma")
    first = await catalog.update_tenant(
        tenant.uid, expect={"placement": tenant.placement}, placement={"move": {"phase": "a"}}
    )
    with pytest.raises(TenantChanged, match="gamma"):
        await catalog.update_tenant(
            tenant.uid, expect={"placement": tenant.placement}, placement={"move": {"phase": "b"}}
        )
    assert (
        (await catalog.get_tenant("gamma")).placement == first.placement == {"move": {"phase": "a"}}
    )
    # Two writers at once from the same reading: exactly one wins.
    outcomes = await asyncio.gather(
        *(
            catalog.update_tenant(
                tenant.uid, expect={"placement": first.placement}, placement={"n": n}
            )
            for n in range(5)
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, Tenant)]
    assert len(won) == 1 and all(isinstance(o, TenantChanged) for o in outcomes if o not in won)
    assert (await catalog.get_tenant("gamma")).placement == won[0].placement


async def test_a_catalog_outage_under_a_tenant_lock_is_one_error_of_ours(
    catalog: Catalog, empty_catalog: ConnInfo, superuser_dsn: str
) -> None:
    """The catalog goes away while a lock is held (a move, a drain): the caller hears
    CatalogUnavailable from its own step, not a driver error from the lock's release;
    and a lock asked for while it is away is CatalogUnavailable too."""
    name = empty_catalog.dbname
    try:
        with pytest.raises(CatalogUnavailable):
            async with catalog.tenant_lock("t-held"):
                await catalog_reachable(superuser_dsn, name, reachable=False)
                await catalog.find_tenant("t-held")
        with pytest.raises(CatalogUnavailable):
            async with catalog.tenant_lock("t-other"):
                pass
    finally:
        await catalog_reachable(superuser_dsn, name, reachable=True)
    async with catalog.tenant_lock("t-held"):  # released with the session it died with
        pass
