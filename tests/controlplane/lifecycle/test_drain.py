"""Placement by room (tenants and bytes, draining honoured) and draining a server, on two
real servers: bounded concurrency, a drain killed midway and run again."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import psycopg
import pytest

from controlplane.errors import Conflict
from controlplane.lifecycle.placement import choose_server
from controlplane.lifecycle.reconcile import find_orphans
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.records import ServerState, TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.controlplane.lifecycle.rows import load
from tests.fixtures.cli import TENANTCTL, TenantCtl, kill_group_after, one_line_error, settings_env

HASH = EmbedderSpec.parse("hash")


async def _reset(plane: ControlPlane) -> None:
    for name in ("local", "second"):
        await plane.catalog.update_server(
            name, state=ServerState.ACTIVE, capacity=None, capacity_bytes=None
        )
    plane.servers._bytes.clear()  # placement re-reads what each server holds


async def test_placement_weighs_tenants_and_bytes_and_skips_draining_servers(
    fleet: Settings,
) -> None:
    async with ControlPlane.open(fleet) as plane:
        await _reset(plane)
        local = await plane.servers.used_bytes(await plane.catalog.get_server("local"), timeout=5)
        second = await plane.servers.used_bytes(await plane.catalog.get_server("second"), timeout=5)
        # No limits: the server holding fewer bytes first.
        expected = "local" if local < second else "second"
        assert (await choose_server(plane, None)).name == expected
        # A byte limit the server is past: it is full, the other one takes tenants.
        await plane.catalog.update_server(expected, capacity_bytes=1)
        other = "second" if expected == "local" else "local"
        assert (await choose_server(plane, None)).name == other
        # Tenant limits weigh as fractions: 1 of 2 is fuller than 0 of 100.
        await plane.catalog.update_server(expected, capacity_bytes=None, capacity=2)
        await plane.catalog.update_server(other, capacity=100)
        ids = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(2)]
        placed = []
        for tenant_id in ids:
            tenant = await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH), actor="t"
            )
            placed.append(tenant.server)
        assert placed == [expected, other]  # both empty: fewer bytes; then 1 of 2 is fuller
        # Draining: never chosen, not even by name.
        await plane.catalog.update_server(other, state=ServerState.DRAINING)
        assert (await choose_server(plane, None)).name == expected
        with pytest.raises(Conflict, match="draining"):
            await choose_server(plane, other)
        for tenant_id in ids:
            await delete_tenant(plane, tenant_id, actor="t")
        await _reset(plane)


def test_a_drain_moves_every_tenant_off_and_resumes_after_a_kill(
    fleet: Settings, tenantctl: TenantCtl
) -> None:
    env = settings_env(fleet)
    ids = [f"d-{uuid.uuid4().hex[:10]}" for _ in range(5)]

    async def setup() -> None:
        async with ControlPlane.open(fleet) as plane:
            await _reset(plane)
            for n, tenant_id in enumerate(ids):
                await create_tenant(
                    plane,
                    TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="second"),
                    actor="t",
                )
                await load(plane, tenant_id, 50 + n)

    asyncio.run(setup())
    # A first drain, killed (its whole process group) while moves are in flight.
    kill_group_after(["servers", "drain", "second", "--concurrency", "2", "--json"], env, 2.0)
    listed = tenantctl("servers", "list", "--json", settings=fleet).json()
    assert {s["name"]: s["state"] for s in listed}["second"] == "draining"
    assert all(s["bytes"] > 0 and "capacity_bytes" in s for s in listed), listed
    # Run again: it settles what the kill left and moves the rest.
    again = tenantctl("servers", "drain", "second", "--json", settings=fleet, timeout=300)
    assert again.code == 0, again.stderr
    report = again.json()
    assert report["drained"] and report["left"] == [] and report["failed"] == 0

    async def check() -> None:
        async with ControlPlane.open(fleet) as plane:
            for n, tenant_id in enumerate(ids):
                tenant = await plane.catalog.get_tenant(tenant_id)
                assert tenant.server == "local" and tenant.state is TenantState.READY
                assert tenant.other_copy is None
                async with await psycopg.AsyncConnection.connect(
                    plane.service_conninfo(tenant).dsn
                ) as conn:
                    row = await (await conn.execute("SELECT count(*) FROM documents")).fetchone()
                assert row == (50 + n,), tenant_id
            assert not [o for o in await find_orphans(plane) if o.tenant_id in ids]
            # New tenants do not go to the drained server.
            extra = await create_tenant(
                plane, TenantRequest(id=f"d-{uuid.uuid4().hex[:10]}", dims=3), actor="t"
            )
            assert extra.server == "local"
            await delete_tenant(plane, extra.id, actor="t")
            for tenant_id in ids:
                await delete_tenant(plane, tenant_id, actor="t")

    asyncio.run(check())
    reconciled = tenantctl("reconcile", "--json", settings=fleet)
    assert reconciled.code == 0 and reconciled.json()["clean"], reconciled.stdout
    activated = tenantctl("servers", "activate", "second", settings=fleet)
    assert activated.code == 0, activated.stderr
    assert "active" in activated.stdout


def test_drain_refuses_bad_input_in_one_line(fleet: Settings, tenantctl: TenantCtl) -> None:
    def states() -> dict[str, str]:
        listed = tenantctl("servers", "list", "--json", settings=fleet).json()
        return {s["name"]: s["state"] for s in listed}

    before = states()
    for args, code, says in (
        (("servers", "drain", "nowhere"), 3, "nowhere"),  # 3: not found
        (("servers", "drain", "second", "--to", "postgres:second"), 2, "onto itself"),
        (("servers", "drain", "second", "--to", "postgres:"), 2, "BACKEND or BACKEND:SERVER"),
        (("servers", "drain", "second", "--concurrency", "0"), 2, "concurrency"),
        # The target is resolved before anything is marked: a typo stops nothing.
        (("servers", "drain", "second", "--to", "postgres:secnod"), 3, "secnod"),
        (("servers", "drain", "second", "--to", "instance:local"), 2, "drop --to"),
        (
            ("servers", "add", "x", "postgresql://a:b@127.0.0.1:1/p", "--max-bytes", "lots"),
            2,
            "lots",
        ),
    ):
        result = tenantctl(*args, settings=fleet)
        assert result.code == code, (args, result.stdout, result.stderr)
        assert says in one_line_error(result.stderr), (args, result.stderr)
    assert states() == before  # nothing was marked draining


def test_a_drain_settles_a_move_off_it_that_died_after_the_switch(
    fleet: Settings, tenantctl: TenantCtl, tenant_id: str
) -> None:
    """The tenant is on another server already, its old copy still on this one: the
    drain finishes that move (the old copy dropped) before it calls the server empty."""
    assert tenantctl("servers", "activate", "second", settings=fleet).code == 0
    env = settings_env(fleet)
    created = tenantctl("tenants", "create", tenant_id, "--dims", "3", "--server", "second",
                        settings=fleet)  # fmt: skip
    assert created.code == 0, created.stderr
    crashed = subprocess.run(
        [*TENANTCTL, "tenants", "move", tenant_id, "--to", "postgres:local"],
        env={**env, "TENANTVEC_FAILPOINTS": "move.after_switch"},
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == 137, crashed.stderr
    drained = tenantctl("servers", "drain", "second", "--json", settings=fleet)
    assert drained.code == 0, drained.stderr
    assert drained.json()["drained"]
    shown = tenantctl("tenants", "show", tenant_id, "--json", settings=fleet).json()
    assert shown["server"] == "local" and "move" not in shown["placement"]

    async def left_on_second() -> list[str]:
        async with ControlPlane.open(fleet) as plane:
            uid = (await plane.catalog.get_tenant(tenant_id)).uid
            return [
                r.name
                for r in await plane.backend("postgres").list_resources()
                if r.tenant_uid == uid and r.location == "second"
            ]

    assert asyncio.run(left_on_second()) == []
    assert tenantctl("tenants", "delete", tenant_id, "--yes", settings=fleet).code == 0
    assert tenantctl("servers", "activate", "second", settings=fleet).code == 0


def test_a_server_left_draining_is_reported(fleet: Settings, tenantctl: TenantCtl) -> None:
    """What a drain that failed or was killed leaves -- a server marked draining with
    tenants still on it -- is named by reconcile and doctor, with what to run."""
    tenant_id = f"d-{uuid.uuid4().hex[:10]}"

    async def leave_draining() -> None:
        async with ControlPlane.open(fleet) as plane:
            await _reset(plane)
            await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, server="second"), actor="t"
            )
            await plane.catalog.update_server("second", state=ServerState.DRAINING)

    asyncio.run(leave_draining())
    try:
        reconciled = tenantctl("reconcile", "--json", settings=fleet)
        assert reconciled.code == 0 and reconciled.json()["draining"] == {"second": 1}
        said = tenantctl("reconcile", settings=fleet).stdout
        assert "server second is draining with 1 tenant(s) still on it" in said
        assert "tenantctl servers drain second" in said
        doctor = tenantctl("doctor", "--json", settings=fleet).json()
        (check,) = [c for c in doctor["checks"] if c["name"] == "server second"]
        assert check["status"] == "warn" and "servers activate second" in check["detail"]
    finally:
        assert tenantctl("servers", "activate", "second", settings=fleet).code == 0
        assert tenantctl("tenants", "delete", tenant_id, "--yes", settings=fleet).code == 0
