"""Crash recovery: a process killed between any two provisioning steps is repaired."""

from __future__ import annotations

import psycopg
import pytest

from controlplane.catalog.records import TenantState
from controlplane.failpoints import CRASH_EXIT_CODE
from controlplane.plane import ControlPlane
from controlplane.provisioning.lifecycle import TenantRequest, create_tenant, delete_tenant
from controlplane.provisioning.reconcile import find_orphans, reconcile
from tenant_schema import MigrationSet
from tests.fixtures.cli import TenantCtl


async def _objects_on_server(superuser_dsn: str, name: str) -> tuple[bool, bool]:
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as conn:
        db = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        ).fetchone()
        role = await (
            await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        ).fetchone()
    return db is not None, role is not None


@pytest.mark.parametrize(
    "failpoint", ["create.after_catalog", "create.after_resources", "create.after_schema"]
)
async def test_create_killed_midway_is_finished_by_reconcile(
    plane: ControlPlane,
    tenantctl: TenantCtl,
    tenant_id: str,
    superuser_dsn: str,
    failpoint: str,
) -> None:
    crashed = tenantctl(
        "tenants", "create", tenant_id, "--dims", "3", env={"TENANTVEC_FAILPOINTS": failpoint}
    )
    assert crashed.code == CRASH_EXIT_CODE, crashed.stderr
    stuck = await plane.catalog.get_tenant(tenant_id)
    assert stuck.state is TenantState.PROVISIONING

    result = tenantctl("reconcile", "--json")
    assert result.code == 0, result.stderr
    repairs = {r["tenant"]: r for r in result.json()["repairs"]}
    assert repairs[tenant_id]["action"] == "finished-create"
    assert repairs[tenant_id]["outcome"] == "ok"

    repaired = await plane.catalog.get_tenant(tenant_id)
    assert (
        repaired.state is TenantState.READY
        and repaired.schema_version == MigrationSet.bundled().latest
    )
    conninfo = plane.tenant_conninfo(repaired)
    async with await psycopg.AsyncConnection.connect(conninfo.dsn) as conn:
        assert await (await conn.execute("SELECT count(*) FROM chunks")).fetchone() == (0,)
    assert [o for o in await find_orphans(plane) if o.tenant_id == tenant_id] == []
    await delete_tenant(plane, tenant_id, actor="test")


@pytest.mark.parametrize("failpoint", ["delete.after_catalog", "delete.after_resources"])
async def test_delete_killed_midway_is_finished_by_reconcile(
    plane: ControlPlane,
    tenantctl: TenantCtl,
    tenant_id: str,
    superuser_dsn: str,
    failpoint: str,
) -> None:
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    crashed = tenantctl(
        "tenants", "delete", tenant_id, "--yes", env={"TENANTVEC_FAILPOINTS": failpoint}
    )
    assert crashed.code == CRASH_EXIT_CODE, crashed.stderr
    assert (await plane.catalog.get_tenant(tenant_id)).state is TenantState.DELETING

    report = await reconcile(plane, actor="test")
    assert [(r.tenant, r.action, r.outcome) for r in report.repairs if r.tenant == tenant_id] == [
        (tenant_id, "finished-delete", "ok")
    ]
    assert await plane.catalog.find_tenant(tenant_id) is None
    assert await _objects_on_server(superuser_dsn, tenant_id) == (False, False)


async def test_operation_in_progress_is_left_alone(plane: ControlPlane, tenant_id: str) -> None:
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    await plane.catalog.update_tenant(
        (await plane.catalog.get_tenant(tenant_id)).uid, state=TenantState.DELETING.value
    )
    async with plane.catalog.tenant_lock(tenant_id):  # as if another process were deleting
        report = await reconcile(plane, actor="test")
    mine = [r for r in report.repairs if r.tenant == tenant_id]
    assert [(r.action, r.outcome) for r in mine] == [("skipped-in-progress", "skipped")]
    await reconcile(plane, actor="test")
    assert await plane.catalog.find_tenant(tenant_id) is None


async def test_orphans_are_reported_and_fixed(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str
) -> None:
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    # The catalog forgets the tenant behind our back: its database and role are orphans.
    await plane.catalog.update_tenant(tenant.uid, state=TenantState.DELETED.value)
    # An unmarked database of the same shape is somebody else's: never touched.
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute("DROP DATABASE IF EXISTS not_ours")
        await conn.execute("CREATE DATABASE not_ours")

    report = await reconcile(plane, actor="test")
    orphans = {(o.kind, o.name) for o in report.orphans}
    assert {("database", tenant_id), ("role", tenant_id)} <= orphans
    assert not any(name == "not_ours" for _, name in orphans)
    assert report.removed == []
    assert await _objects_on_server(superuser_dsn, tenant_id) == (True, True)

    fixed = await reconcile(plane, fix=True, actor="test")
    assert {(o.kind, o.name) for o in fixed.removed} >= {
        ("database", tenant_id),
        ("role", tenant_id),
    }
    assert await _objects_on_server(superuser_dsn, tenant_id) == (False, False)
    assert await _objects_on_server(superuser_dsn, "not_ours") == (True, False)
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute("DROP DATABASE not_ours")
