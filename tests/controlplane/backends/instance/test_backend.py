"""The instance backend: a Postgres server per tenant, run by tenantvec on this machine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import psycopg
import pytest

from controlplane.backends.instance.backend import InstanceBackend
from controlplane.errors import InvalidRequest
from controlplane.lifecycle.reconcile import find_orphans, reconcile
from controlplane.lifecycle.supervise import restart_if_down, supervise
from controlplane.lifecycle.suspend import resume_tenant, suspend_tenant
from controlplane.lifecycle.tenants import (
    TenantRequest,
    create_tenant,
    delete_tenant,
    describe_tenant,
    tenant_conninfo,
)
from controlplane.localpg.cluster import port_is_free
from controlplane.model.compute import ComputeSpec
from controlplane.model.records import Tenant, TenantState
from controlplane.plane import ControlPlane

ACTOR = "test"


async def _create(plane: ControlPlane, tenant_id: str, **options: object) -> Tenant:
    request = TenantRequest(id=tenant_id, dims=3, backend="instance", **options)  # type: ignore[arg-type]
    return await create_tenant(plane, request, actor=ACTOR)


async def _as_tenant(plane: ControlPlane, tenant_id: str, query: str) -> list[tuple[object, ...]]:
    conninfo = await tenant_conninfo(plane, tenant_id)
    async with await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn:
        cur = await conn.execute(query)
        return await cur.fetchall() if cur.description else []


def _postmaster_pid(tenant: Tenant) -> int:
    pidfile = Path(tenant.placement["data_dir"]) / "postmaster.pid"
    return int(pidfile.read_text().splitlines()[0])


async def test_create_gives_the_tenant_a_server_of_its_own(
    plane: ControlPlane, tenant_id: str
) -> None:
    tenant = await _create(plane, tenant_id)
    assert tenant.state is TenantState.READY
    assert tenant.server is None
    port = tenant.placement["port"]
    low, high = plane.settings.instance.ports
    assert low <= port <= high and port != plane.settings.embedded.port

    root = plane.settings.home / "instances" / tenant.placement["instance"]
    assert root.name.startswith(f"{tenant_id}-")  # a new name for every tenant made
    assert json.loads((root / "instance.json").read_text())["uid"] == tenant.uid
    assert tenant.placement["data_dir"] == str(root / "pg" / "data")

    conninfo = await tenant_conninfo(plane, tenant_id)
    owner = tenant.placement["role"]
    assert (conninfo.host, conninfo.port, conninfo.user) == ("127.0.0.1", port, owner)
    # The tenant's role owns its database on that server, with the schema applied,
    # and is no superuser there.
    rows = await _as_tenant(
        plane,
        tenant_id,
        "SELECT current_user, rolsuper, (SELECT count(*) FROM chunks), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'vector') "
        "FROM pg_roles WHERE rolname = current_user",
    )
    assert rows[0][:3] == (owner, False, 0) and rows[0][3]
    # Its own cluster: nobody else's tenant database lives there.
    databases = await _as_tenant(
        plane, tenant_id, "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"
    )
    assert [d for (d,) in databases] == sorted(["postgres", tenant.placement["database"]])

    described = (await describe_tenant(plane, tenant_id)).live
    assert isinstance(described, dict)
    assert described["running"] is True and described["port"] == port
    assert described["memory_bytes"] > 0 and described["uptime_seconds"] >= 0

    await delete_tenant(plane, tenant_id, actor=ACTOR)
    assert not root.exists()
    assert port_is_free(port)


async def test_tiers_and_explicit_settings_are_applied(plane: ControlPlane, tenant_id: str) -> None:
    await _create(
        plane, tenant_id, tier="medium", resources={"work_mem": "12mb", "max_connections": 40}
    )
    try:
        shown = {}
        for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "max_connections"):
            ((value,),) = await _as_tenant(plane, tenant_id, f"SHOW {name}")
            shown[name] = value
        medium = ComputeSpec.resolve("medium")
        assert shown == {
            "shared_buffers": medium.shared_buffers,
            "work_mem": "12MB",  # normalised to Postgres's unit spelling
            "maintenance_work_mem": medium.maintenance_work_mem,
            "max_connections": "40",
        }
        # The settings survive a suspend/resume (they are rewritten at every start).
        await suspend_tenant(plane, tenant_id, actor=ACTOR)
        await resume_tenant(plane, tenant_id, actor=ACTOR)
        ((value,),) = await _as_tenant(plane, tenant_id, "SHOW work_mem")
        assert value == "12MB"
    finally:
        await delete_tenant(plane, tenant_id, actor=ACTOR)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tier": "huge"}, "unknown tier 'huge'"),
        ({"resources": {"shared_buffers": "12"}}, "invalid memory size '12'"),
        ({"resources": {"work_mem": "9TB"}}, "work_mem '9TB' is out of range"),
        ({"resources": {"max_connections": 2}}, "max_connections 2 is out of range"),
        ({"resources": {"fsync": "off"}}, "unknown resource setting 'fsync'"),
    ],
)
def test_bad_sizes_are_refused_before_anything_is_made(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        TenantRequest(id="sized", backend="instance", **options)  # type: ignore[arg-type]


async def test_sizes_are_refused_for_shared_servers(plane: ControlPlane, tenant_id: str) -> None:
    with pytest.raises(InvalidRequest, match="does not give a tenant a server of its own"):
        await create_tenant(
            plane, TenantRequest(id=tenant_id, resources={"work_mem": "8MB"}), actor=ACTOR
        )
    with pytest.raises(InvalidRequest, match="drop --region"):
        await _create(plane, tenant_id, region="eu-west")
    assert await plane.catalog.find_tenant(tenant_id) is None


async def test_concurrent_creates_get_distinct_ports(plane: ControlPlane, tenant_id: str) -> None:
    ids = [f"{tenant_id}-{n}" for n in range(4)]
    tenants = await asyncio.gather(*(_create(plane, tid) for tid in ids))
    try:
        ports = {t.placement["port"] for t in tenants}
        assert len(ports) == len(ids)
        for tenant in tenants:  # each answers on its own port, as its own role
            owner = tenant.placement["role"]
            assert await _as_tenant(plane, tenant.id, "SELECT current_user") == [(owner,)]
    finally:
        for tid in ids:
            await delete_tenant(plane, tid, actor=ACTOR)


async def test_suspend_stops_the_server_and_resume_keeps_the_data(
    plane: ControlPlane, tenant_id: str
) -> None:
    tenant = await _create(plane, tenant_id)
    port = tenant.placement["port"]
    try:
        await _as_tenant(plane, tenant_id, "INSERT INTO documents (id, title) VALUES ('d', 'x')")
        for cycle in range(3):
            suspended = await suspend_tenant(plane, tenant_id, actor=ACTOR)
            assert suspended.state is TenantState.SUSPENDED
            assert port_is_free(port), "a suspended instance's server must be stopped"
            resumed = await resume_tenant(plane, tenant_id, actor=ACTOR)
            assert resumed.state is TenantState.READY
            count = await _as_tenant(plane, tenant_id, "SELECT count(*) FROM documents")
            assert count == [(1,)], f"cycle {cycle}"
        ops = await plane.catalog.list_operations(tenant_id=tenant_id, limit=20)
        assert [o.action for o in ops].count("suspend") == 3
    finally:
        await delete_tenant(plane, tenant_id, actor=ACTOR)


async def test_a_killed_server_is_restarted_and_recorded(
    plane: ControlPlane, tenant_id: str
) -> None:
    tenant = await _create(plane, tenant_id)
    try:
        await _as_tenant(plane, tenant_id, "INSERT INTO documents (id, title) VALUES ('d', 'x')")
        assert await restart_if_down(plane, tenant_id, actor=ACTOR) is False  # runs: no-op

        os.kill(_postmaster_pid(tenant), signal.SIGKILL)
        backend = plane.backend("instance")
        for _ in range(100):
            if not await backend.running(tenant):
                break
            await asyncio.sleep(0.02)
        assert await supervise(plane, actor="supervisor") == [tenant_id]

        # Crash recovery replayed the WAL: the committed row is there.
        assert await _as_tenant(plane, tenant_id, "SELECT id FROM documents") == [("d",)]
        ops = await plane.catalog.list_operations(tenant_id=tenant_id, limit=5)
        assert (ops[0].action, ops[0].actor, ops[0].outcome) == (
            "restart",
            "supervisor",
            "succeeded",
        )
        assert ops[0].details["reason"] == "its server was not running"
    finally:
        await delete_tenant(plane, tenant_id, actor=ACTOR)


async def test_an_instance_nobody_owns_is_an_orphan(plane: ControlPlane, tenant_id: str) -> None:
    tenant = await _create(plane, tenant_id)
    port = tenant.placement["port"]
    # The catalog forgets the tenant (a restored old catalog, say): its server remains.
    await plane.catalog.update_tenant(tenant.uid, state=TenantState.DELETED.value)

    name = tenant.placement["instance"]
    orphans = [o for o in await find_orphans(plane) if o.tenant_id == tenant_id]
    assert [(o.backend, o.kind, o.name) for o in orphans] == [("instance", "instance", name)]

    # A tenant made again with the same id is not confused with the orphan...
    again = await _create(plane, tenant_id)
    assert again.placement["instance"] != name and again.placement["port"] != port
    orphans = [o for o in await find_orphans(plane) if o.tenant_id == tenant_id]
    assert [o.name for o in orphans] == [name]

    # ...and reconcile --fix removes the orphan, not the live tenant's server.
    await reconcile(plane, fix=True, actor=ACTOR)
    assert not (plane.settings.home / "instances" / name).exists()
    assert port_is_free(port)
    assert not [o for o in await find_orphans(plane) if o.tenant_id == tenant_id]
    owner = again.placement["role"]
    assert await _as_tenant(plane, tenant_id, "SELECT current_user") == [(owner,)]
    await delete_tenant(plane, tenant_id, actor=ACTOR)


async def test_stop_all_stops_every_instance_and_requests_bring_them_back(
    plane: ControlPlane, tenant_id: str
) -> None:
    tenant = await _create(plane, tenant_id)
    try:
        backend = plane.backend("instance")
        assert isinstance(backend, InstanceBackend)
        assert await asyncio.to_thread(backend.stop_all) >= 1
        assert not await backend.running(tenant)
        assert await restart_if_down(plane, tenant_id, actor=ACTOR) is True
        assert await _as_tenant(plane, tenant_id, "SELECT 1") == [(1,)]
    finally:
        await delete_tenant(plane, tenant_id, actor=ACTOR)
