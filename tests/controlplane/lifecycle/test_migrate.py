"""``migrate --all``: every tenant upgraded, one failure reported, the rest carried on."""

from __future__ import annotations

import psycopg

from controlplane.backends.markers import LAYOUT
from controlplane.dsn import ConnInfo
from controlplane.failpoints import CRASH_EXIT_CODE
from controlplane.lifecycle.migrate import migrate_all
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from tenantvec_schema.migrations import MigrationSet
from tests.controlplane.lifecycle.layouts import make_layout_2
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
    conninfo = plane.service_conninfo(await plane.catalog.get_tenant(broken))
    async with await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")

    # The catalog records every one of them current: without --verify none is opened.
    trusted = tenantctl("migrate", "--all", "--json")
    assert trusted.code == 0, trusted.stderr
    assert {r["tenant"] for r in trusted.json()["results"] if r["ok"]} >= set(ids)
    result = tenantctl("migrate", "--all", "--verify", "--concurrency", "2", "--json")
    assert result.code == 1, result.stderr
    body = result.json()
    outcome = {r["tenant"]: r for r in body["results"] if r["tenant"] in ids}
    assert {t for t, r in outcome.items() if not r["ok"]} == {broken}
    assert "changed after it was applied" in outcome[broken]["error"]
    assert all(outcome[t]["to_version"] == LATEST for t in ids if t != broken)
    # The session catalog holds other tests' tenants too: only ours are judged.
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "failed to migrate" in last and broken in last
    assert not [t for t in ids if t != broken and t in last]

    # The failure is recorded as an operation; the tenant itself stays ready.
    ops = await plane.catalog.list_operations(tenant_id=broken, limit=1)
    assert (ops[0].action, ops[0].outcome.value) == ("migrate", "failed")
    assert (await plane.catalog.get_tenant(broken)).state is TenantState.READY

    # Library form, with a progress callback: the same verdicts.
    seen: list[str] = []
    results = await migrate_all(
        plane, actor="test", verify=True, on_result=lambda r: seen.append(r.tenant)
    )
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


async def _make_legacy(plane: ControlPlane, tenant_id: str, superuser_dsn: str) -> None:
    """Turn a new tenant into one an older tenantvec made: database and role named after
    its id with the old marker, no service role, no limits, nothing in the placement."""
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    tenant = await make_layout_2(plane, tenant, superuser_dsn)
    name, service = tenant.placement["database"], tenant.placement["service_role"]
    ident, old = psycopg.sql.Identifier(name), psycopg.sql.Identifier(tenant_id)
    legacy = psycopg.sql.Literal(f"tenantvec tenant={tenant_id}")
    inside = ConnInfo.parse(superuser_dsn).with_(dbname=name).dsn
    async with await psycopg.AsyncConnection.connect(inside, autocommit=True) as conn:
        await conn.execute(
            psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(service))
        )
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        service_ident = psycopg.sql.Identifier(service)
        await conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(service_ident))
        await conn.execute(psycopg.sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, old))
        await conn.execute(psycopg.sql.SQL("ALTER ROLE {} RENAME TO {}").format(ident, old))
        await conn.execute(psycopg.sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(old))
        await conn.execute(psycopg.sql.SQL("ALTER ROLE {} RESET ALL").format(old))
        await conn.execute(psycopg.sql.SQL("COMMENT ON DATABASE {} IS {}").format(old, legacy))
        await conn.execute(psycopg.sql.SQL("COMMENT ON ROLE {} IS {}").format(old, legacy))
    dsn = plane.tenant_conninfo(tenant).with_(user=tenant_id, dbname=tenant_id)
    placement = {"database": tenant_id, "role": tenant_id, "address": tenant.placement["address"]}
    await plane.catalog.update_tenant(
        tenant.uid,
        placement=placement,
        dsn_encrypted=plane.box.encrypt(dsn.dsn),
        service_dsn_encrypted=None,
    )
    async with await psycopg.AsyncConnection.connect(dsn.dsn, autocommit=True) as conn:
        await conn.execute("INSERT INTO documents (id) VALUES ('kept')")


async def test_migrate_renames_older_tenants_to_opaque_names(
    plane: ControlPlane, tenantctl: TenantCtl, tenant_id: str, superuser_dsn: str
) -> None:
    await _make_legacy(plane, tenant_id, superuser_dsn)
    # Interrupted after the new names were recorded and the database renamed, before
    # the role: the next run finishes the job.
    crashed = tenantctl(
        "migrate", tenant_id, env={"TENANTVEC_FAILPOINTS": "conform.after_database"}
    )
    assert crashed.code == CRASH_EXIT_CODE, crashed.stderr
    result = tenantctl("migrate", tenant_id, "--json")
    assert result.code == 0, result.stderr

    tenant = await plane.catalog.get_tenant(tenant_id)
    placement = tenant.placement
    assert placement["layout"] == LAYOUT and "rename_to" not in placement
    assert placement["database"].startswith("tv_") and placement["role"] == placement["database"]
    owner = plane.tenant_conninfo(tenant)
    assert (owner.user, owner.dbname) == (placement["role"], placement["database"])
    async with await psycopg.AsyncConnection.connect(owner.dsn) as conn:
        assert await (await conn.execute("SELECT id FROM documents")).fetchall() == [("kept",)]
    async with await psycopg.AsyncConnection.connect(plane.service_conninfo(tenant).dsn) as conn:
        cur = await conn.execute(
            "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname = current_database()"
        )
        assert await cur.fetchone() == (placement["service_role"], placement["service_role"])
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s UNION ALL "
            "SELECT count(*) FROM pg_roles WHERE rolname = %s UNION ALL "
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s",
            (tenant_id, tenant_id, placement["role"]),
        )
        assert [r[0] for r in await cur.fetchall()] == [0, 0, 10]
    await delete_tenant(plane, tenant_id, actor="test")
