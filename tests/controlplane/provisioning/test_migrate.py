"""``migrate --all``: every tenant upgraded, one failure reported, the rest carried on."""

from __future__ import annotations

import psycopg

from controlplane.catalog.records import TenantState
from controlplane.plane import ControlPlane
from controlplane.provisioning.lifecycle import TenantRequest, create_tenant, delete_tenant
from controlplane.provisioning.migrate import migrate_all
from tenant_schema import MigrationSet
from tests.fixtures.cli import TenantCtl

LATEST = MigrationSet.bundled().latest


async def test_migrate_all_reports_failures_and_carries_on(
    plane: ControlPlane, tenantctl: TenantCtl, tenant_id: str
) -> None:
    ids = [f"{tenant_id}-{n}" for n in range(4)]
    for tid in ids:
        await create_tenant(plane, TenantRequest(id=tid, dims=3), actor="test")
    # Tamper with one tenant's ledger, as if its migration file had been edited.
    broken = ids[2]
    conninfo = plane.tenant_conninfo(await plane.catalog.get_tenant(broken))
    async with await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")

    result = tenantctl("migrate", "--all", "--concurrency", "2", "--json")
    assert result.code == 1, result.stderr
    body = result.json()
    outcome = {r["tenant"]: r for r in body["results"] if r["tenant"] in ids}
    assert {t for t, r in outcome.items() if not r["ok"]} == {broken}
    assert "changed after it was applied" in outcome[broken]["error"]
    assert all(outcome[t]["to_version"] == LATEST for t in ids if t != broken)
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 tenant(s) failed")

    # The failure is recorded as an operation; the tenant itself stays ready.
    ops = await plane.catalog.list_operations(tenant_id=broken, limit=1)
    assert (ops[0].action, ops[0].outcome.value) == ("migrate", "failed")
    assert (await plane.catalog.get_tenant(broken)).state is TenantState.READY

    # Library form, with a progress callback: the same verdicts.
    seen: list[str] = []
    results = await migrate_all(plane, actor="test", on_result=lambda r: seen.append(r.tenant))
    assert sorted(seen) == sorted(r.tenant for r in results)
    assert {r.tenant for r in results if not r.ok} & set(ids) == {broken}
    for tid in ids:
        await delete_tenant(plane, tid, actor="test")


async def test_migrate_one_tenant_records_version(
    plane: ControlPlane, tenantctl: TenantCtl, tenant_id: str
) -> None:
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    result = tenantctl("migrate", tenant_id, "--json")
    assert result.code == 0, result.stderr
    assert result.json()["results"][0] == {
        **result.json()["results"][0],
        "tenant": tenant_id,
        "ok": True,
        "to_version": LATEST,
        "applied": [],
    }
    assert tenantctl("migrate").code == 2
    assert tenantctl("migrate", tenant_id, "--all").code == 2
    await delete_tenant(plane, tenant_id, actor="test")
