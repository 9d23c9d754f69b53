"""Crash recovery: a process killed between any two provisioning steps is repaired."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from controlplane.failpoints import CRASH_EXIT_CODE
from controlplane.lifecycle.reconcile import find_orphans, reconcile
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from tenantvec_schema.migrations import MigrationSet
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
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    name = tenant.placement["database"]
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
    assert await _objects_on_server(superuser_dsn, name) == (False, False)


async def test_two_processes_dropping_one_tenant_s_database_at_once_both_succeed(
    plane: ControlPlane, superuser_dsn: str
) -> None:
    """Reconcile settling a move while the mover it thought dead undoes the same copy:
    concurrent drops of one database and its roles (Postgres's DROP ROLE races
    otherwise: "could not find tuple for role")."""
    backend = plane.backend("postgres")
    for _ in range(4):
        tenant_id = f"t-{uuid.uuid4().hex[:12]}"
        tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
        await asyncio.gather(*(backend.delete(tenant) for _ in range(4)))
        assert await _objects_on_server(superuser_dsn, tenant.placement["database"]) == (
            False,
            False,
        )
        await delete_tenant(plane, tenant_id, actor="test")  # the catalog row


async def test_a_delete_outlasts_a_killed_create_s_create_database_still_running(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str
) -> None:
    """What a create killed mid-CREATE DATABASE leaves: the statement still runs on the
    server, so the database is not there when the delete looks, and DROP ROLE waits on it
    (the statement locks the owner role) and would then fail on the new database."""
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    name = tenant.placement["database"]
    scratch = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = psycopg.sql.Identifier
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(admin(name)))
        await conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(admin(scratch)))
    # The stand-in for the running CREATE DATABASE: the database appears under the
    # tenant's name, owned by its role, when this transaction commits.
    creating = await psycopg.AsyncConnection.connect(superuser_dsn)
    try:
        await creating.execute(
            psycopg.sql.SQL("ALTER DATABASE {} RENAME TO {}").format(admin(scratch), admin(name))
        )
        await creating.execute(
            psycopg.sql.SQL("ALTER DATABASE {} OWNER TO {}").format(admin(name), admin(name))
        )
        deleting = asyncio.create_task(delete_tenant(plane, tenant_id, actor="test"))
        async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
            for _ in range(200):  # until DROP ROLE waits on the role's lock
                waiting = await (
                    await conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                ).fetchone()
                if waiting and waiting[0]:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the delete never waited on the running create")
        await creating.commit()
        await deleting
    finally:
        await creating.close()
    assert await plane.catalog.find_tenant(tenant_id) is None
    assert await _objects_on_server(superuser_dsn, name) == (False, False)


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
    name, service = tenant.placement["database"], tenant.placement["service_role"]
    # The catalog forgets the tenant behind our back: its database and roles are orphans.
    await plane.catalog.update_tenant(tenant.uid, state=TenantState.DELETED.value)
    # An unmarked database of the same shape is somebody else's: never touched.
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute("DROP DATABASE IF EXISTS not_ours")
        await conn.execute("CREATE DATABASE not_ours")

    report = await reconcile(plane, actor="test")
    orphans = {(o.kind, o.name) for o in report.orphans}
    assert {("database", name), ("role", name), ("role", service)} <= orphans
    assert not any(n == "not_ours" for _, n in orphans)
    assert report.removed == []
    assert await _objects_on_server(superuser_dsn, name) == (True, True)

    fixed = await reconcile(plane, fix=True, actor="test")
    assert {(o.kind, o.name) for o in fixed.removed} >= {
        ("database", name),
        ("role", name),
        ("role", service),
    }
    assert await _objects_on_server(superuser_dsn, name) == (False, False)
    assert await _objects_on_server(superuser_dsn, service) == (False, False)
    assert await _objects_on_server(superuser_dsn, "not_ours") == (True, False)
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute("DROP DATABASE not_ours")


async def _mark(superuser_dsn: str, kind: str, name: str, comment: str) -> None:
    ident = psycopg.sql.Identifier(name)
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        if kind == "database":
            await conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)
            )
            await conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))
        else:
            await conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            await conn.execute(psycopg.sql.SQL("CREATE ROLE {}").format(ident))
        await conn.execute(
            psycopg.sql.SQL("COMMENT ON {} {} IS {}").format(
                psycopg.sql.SQL(kind.upper()), ident, psycopg.sql.Literal(comment)
            )
        )


async def _drop(superuser_dsn: str, kind: str, name: str) -> None:
    ident = psycopg.sql.Identifier(name)
    statement = (
        "DROP DATABASE IF EXISTS {} WITH (FORCE)"
        if kind == "database"
        else "DROP ROLE IF EXISTS {}"
    )
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute(psycopg.sql.SQL(statement).format(ident))


async def test_a_live_tenant_is_never_an_orphan_and_ambiguous_markers_are_never_dropped(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str
) -> None:
    """What the old `$` validators let through: a live tenant whose resources' markers
    say 'nltest\\n' must not be taken for tenant 'nltest''s orphans -- nor must
    anything reconcile cannot attribute exactly."""
    live = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="test")
    catalog_id = plane.catalog.catalog_id
    other_catalog = "0123456789abcdef" if catalog_id != "0123456789abcdef" else "fedcba9876543210"
    marked = {
        # legacy marker with a trailing newline: does not parse exactly
        ("database", "amb_newline"): f"tenantvec tenant={tenant_id}x\n",
        # a current marker naming the live tenant, on something it does not record
        ("role", "amb_live"): f"tenantvec catalog={catalog_id} uid={live.uid}",
        # garbage after the prefix
        ("role", "amb_garbage"): "tenantvec whatever",
        # another control plane's tenant (staging beside production): not ours
        ("role", "foreign_one"): f"tenantvec catalog={other_catalog} uid={live.uid}",
        # a well-formed marker of an incarnation this catalog never had: an orphan
        (
            "role",
            "orphan_unknown",
        ): f"tenantvec catalog={catalog_id} uid=00000000-0000-4000-8000-000000000000",
    }
    for (kind, name), comment in marked.items():
        await _mark(superuser_dsn, kind, name, comment)
    try:
        fixed = await reconcile(plane, fix=True, actor="test")
        names = lambda items: {o.name for o in items}  # noqa: E731
        assert {"amb_newline", "amb_live", "amb_garbage"} <= names(fixed.ambiguous)
        assert names(fixed.removed) & set(n for _, n in marked) == {"orphan_unknown"}
        assert not (names(fixed.orphans) | names(fixed.ambiguous)) & {"foreign_one"}
        assert not fixed.clean  # the ambiguous ones want a person
        for kind, name in [
            ("database", "amb_newline"),
            ("role", "amb_live"),
            ("role", "foreign_one"),
        ]:
            exists = await _objects_on_server(superuser_dsn, name)
            assert exists == ((True, False) if kind == "database" else (False, True))
        # the live tenant's own database and roles are untouched, and it serves
        assert await _objects_on_server(superuser_dsn, live.placement["database"]) == (True, True)
        conninfo = plane.tenant_conninfo(live)
        async with await psycopg.AsyncConnection.connect(conninfo.dsn) as conn:
            assert await (await conn.execute("SELECT count(*) FROM chunks")).fetchone() == (0,)
    finally:
        for kind, name in marked:
            await _drop(superuser_dsn, kind, name)
        await delete_tenant(plane, tenant_id, actor="test")


async def test_doctor_reports_ids_an_older_tenantvec_accepted_and_they_can_be_deleted(
    plane: ControlPlane,
) -> None:
    """An id with a trailing newline, as the old ``$`` validators let through: doctor says
    so, reconcile leaves its resources alone, and it is deleted by its uid."""
    from controlplane.lifecycle.doctor import run_doctor
    from controlplane.lifecycle.tenants import delete_tenant_by_uid

    good = f"nl-{uuid.uuid4().hex[:8]}"
    made = await create_tenant(plane, TenantRequest(id=good, dims=3), actor="test")
    bad_id = f"{good}x\n"
    bad = await plane.catalog.update_tenant(made.uid, id=bad_id)  # as an old catalog holds it
    report = await run_doctor(plane)
    (ids,) = [c for c in report.checks if c.name == "tenant ids"]
    assert ids.status == "warn" and repr(bad_id) in ids.detail and bad.uid in ids.detail
    fixed = await reconcile(plane, fix=True, actor="test")
    names = {v for v in bad.placement.values() if isinstance(v, str)}
    assert not {o.name for o in fixed.removed} & names
    deleted = await delete_tenant_by_uid(plane, bad.uid, actor="test")
    assert deleted.state is TenantState.DELETED
    assert await plane.catalog.find_tenant(bad_id) is None
