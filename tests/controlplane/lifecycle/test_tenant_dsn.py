"""A tenant's own DSN, used as an application would and as an attacker would.

What a tenant makes through it (its own tables, views, functions, sequences, indexes on
vector columns, rows) is carried by backup, restore and moves; what it tries against the
control plane (its database's comment, privileges and settings, functions that shadow
built-ins, lifting a write pause or its limits) changes nothing the control plane relies
on -- also for a tenant made before layout 3, once ``migrate`` has converted it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from controlplane.backends.markers import LAYOUT
from controlplane.dsn import ConnInfo
from controlplane.lifecycle._pause import pause_writes
from controlplane.lifecycle.backup import backup_tenant
from controlplane.lifecycle.move import move_tenant
from controlplane.lifecycle.restore import restore_tenant
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.controlplane.lifecycle.layouts import make_layout_2
from tests.controlplane.lifecycle.rows import load, rows_of
from tests.fakes.neon import FakeNeon
from tests.fixtures.cli import TenantCtl, one_line_error
from tests.fixtures.fakes import neon_settings

# What an application keeps beside tenantvec's tables, through the tenant's DSN.
OWN_OBJECTS = [
    "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, v vector(3))",
    "CREATE INDEX notes_v ON notes USING hnsw (v vector_cosine_ops)",
    "CREATE INDEX notes_body ON notes (lower(body))",
    "CREATE SEQUENCE tickets START 100",
    "SELECT nextval('tickets'), nextval('tickets')",
    "CREATE TABLE audit (note_id int, at_len int)",
    """CREATE FUNCTION remember() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO audit VALUES (NEW.id, length(NEW.body)); RETURN NEW; END $$""",
    "CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION remember()",
    "CREATE VIEW titled AS SELECT id, title FROM public.documents WHERE title IS NOT NULL",
    "CREATE SCHEMA reporting",
    "CREATE TABLE reporting.daily (day date PRIMARY KEY, n int)",
    "INSERT INTO reporting.daily VALUES ('2026-12-01', 3), ('2026-12-02', 5)",
    "INSERT INTO notes (body, v) SELECT 'note ' || i, ARRAY[i, 1, 0]::vector "
    "FROM generate_series(1, 30) i",
    "INSERT INTO public.documents (id, title) VALUES ('by-sql', 'written through the DSN')",
]


async def own_state(dsn: str) -> dict[str, Any]:
    """Everything of the tenant's own, as its DSN sees it."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:

        async def rows(query: str) -> list[tuple[Any, ...]]:
            return await (await conn.execute(query)).fetchall()

        return {
            "objects": await rows(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('app', 'reporting') ORDER BY 1, 2"
            ),
            "indexes": await rows(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'app' ORDER BY 1"
            ),
            "notes": await rows("SELECT id, body, v::text FROM notes ORDER BY id"),
            "audit": await rows("SELECT * FROM audit ORDER BY 1"),
            "daily": await rows("SELECT * FROM reporting.daily ORDER BY 1"),
            "titled": await rows("SELECT * FROM titled ORDER BY 1"),
            "tickets": await rows("SELECT last_value FROM tickets"),
            "next_note": await rows("SELECT last_value, is_called FROM notes_id_seq"),
            "nearest": await rows("SELECT id FROM notes ORDER BY v <=> '[3,1,0]' LIMIT 3"),
            "trigger": await rows(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'notes'::regclass "
                "AND NOT tgisinternal"
            ),
        }


async def run_as(dsn: str, statements: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            await conn.execute(statement)


async def test_what_a_tenant_makes_itself_is_carried_by_backup_restore_and_moves(
    fleet: Settings, fake_neon: FakeNeon, tenant_id: str, tmp_path: Path
) -> None:
    async with ControlPlane.open(neon_settings(fleet, fake_neon)) as plane:
        await create_tenant(plane, TenantRequest(id=tenant_id, dims=3, server="local"), actor="t")
        await load(plane, tenant_id, 20)
        dsn = plane.tenant_conninfo(await plane.catalog.get_tenant(tenant_id)).dsn
        await run_as(dsn, OWN_OBJECTS)
        before = await own_state(dsn)
        assert len(before["notes"]) == 30 and len(before["audit"]) == 30
        rows = await rows_of(plane, tenant_id)

        report = await backup_tenant(plane, tenant_id, tmp_path / "b.tvbackup", actor="t")
        assert report.manifest.own is not None
        restored = await restore_tenant(
            plane, report.path, as_id=f"{tenant_id}-copy", server="second", actor="t"
        )
        copy_dsn = plane.tenant_conninfo(restored.tenant).dsn
        assert await own_state(copy_dsn) == before
        assert await rows_of(plane, f"{tenant_id}-copy") == rows
        # The copy's tables are its own role's, and its schema app is first on its path.
        await run_as(copy_dsn, ["INSERT INTO notes (body) VALUES ('after restore')"])

        trail = (("instance", None), ("neon", None), ("postgres", "second"))
        for backend, server in trail:
            moved = await move_tenant(plane, tenant_id, backend=backend, server=server, actor="t")
            assert (moved.tenant.backend, moved.tenant.server) == (backend, server)
            dsn = plane.tenant_conninfo(moved.tenant).dsn
            assert await own_state(dsn) == before, backend
            assert await rows_of(plane, tenant_id) == rows
        for tid in (tenant_id, f"{tenant_id}-copy"):
            await delete_tenant(plane, tid, actor="t")


# What a tenant's role tries against what the control plane relies on, and how
# Postgres answers it (a GRANT it may not make is a warning that grants nothing).
ATTACKS = [
    ("COMMENT ON DATABASE {db} IS 'x'", "must be owner of database"),
    ("ALTER DATABASE {db} SET search_path = s, pg_catalog, public", "must be owner"),
    ("ALTER DATABASE {db} SET default_transaction_read_only = off", "must be owner"),
    ("ALTER DATABASE {db} ALLOW_CONNECTIONS true", "must be owner"),
    ("CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE sql AS $$SELECT 'x'$$", "denied"),
    ("CREATE TABLE public.bar_keep (x text)", "denied"),
    ("ALTER TABLE public.chunks ADD COLUMN evil int", "must be owner"),
    ("TRUNCATE public.chunks", "denied"),
    ("DROP TABLE public.documents", "must be owner"),
    ("UPDATE public.schema_migrations SET checksum = 'x'", "denied"),
    ("CREATE TRIGGER t BEFORE INSERT ON public.chunks FOR EACH ROW EXECUTE FUNCTION f()", "denied"),
    ("ALTER ROLE CURRENT_USER CONNECTION LIMIT 1000", "denied to alter role"),
]


async def attempt(dsn: str, statement: str) -> str | None:
    """What Postgres says to ``statement`` through ``dsn`` (None: it did it)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            await conn.execute(statement)
        except psycopg.Error as exc:
            return str(exc)
    return None


async def database_facts(superuser_dsn: str, database: str) -> tuple[Any, ...]:
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as conn:
        cur = await conn.execute(
            "SELECT pg_get_userbyid(datdba), shobj_description(d.oid, 'pg_database'), "
            "(SELECT array_agg(g.grantee::regrole::text ORDER BY 1) FROM aclexplode(datacl) g "
            " WHERE g.grantee <> 0), "
            "EXISTS (SELECT 1 FROM aclexplode(datacl) g WHERE g.grantee = 0), "
            "(SELECT setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid "
            " AND s.setrole = 0) FROM pg_database d WHERE datname = %s",
            (database,),
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)


async def test_a_tenant_dsn_cannot_change_what_the_control_plane_relies_on(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str, tmp_path: Path
) -> None:
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="t")
    other = await create_tenant(plane, TenantRequest(id=f"{tenant_id}-o", dims=3), actor="t")
    await load(plane, tenant_id, 5)
    db = tenant.placement["database"]
    dsn = plane.tenant_conninfo(tenant).dsn
    for statement, refused in ATTACKS:
        said = await attempt(dsn, statement.format(db=db))
        assert said is not None and refused in said, (statement, said)
    # A GRANT it holds no grant option for grants nothing: the other tenant's role
    # still cannot connect.
    assert await attempt(dsn, f"GRANT CONNECT ON DATABASE {db} TO PUBLIC") is None
    other_dsn = ConnInfo.parse(plane.tenant_conninfo(other).dsn).with_(dbname=db).dsn
    with pytest.raises(
        psycopg.OperationalError, match="permission denied for database|no pg_hba.conf entry"
    ):
        await psycopg.AsyncConnection.connect(other_dsn)
    owner, comment, grantees, public, settings = await database_facts(superuser_dsn, db)
    assert owner == tenant.placement["service_role"] and comment.startswith("tenantvec ")
    assert set(grantees) == {tenant.placement["service_role"], tenant.placement["role"]}
    assert not public and settings is None
    # Its own role's defaults are its own to change -- not its connection limit, and
    # not the control plane's sessions: backup and restore still verify.
    await run_as(dsn, ["ALTER ROLE CURRENT_USER SET search_path = pg_catalog"])
    report = await backup_tenant(plane, tenant_id, tmp_path / "b.tvbackup", actor="t")
    restored = await restore_tenant(plane, report.path, as_id=f"{tenant_id}-r", actor="t")
    assert restored.manifest.fingerprint == (await rows_of(plane, f"{tenant_id}-r"))[0]
    for tid in (tenant_id, f"{tenant_id}-o", f"{tenant_id}-r"):
        await delete_tenant(plane, tid, actor="t")


async def test_a_write_pause_shuts_the_tenant_dsn_out_until_it_is_lifted(
    plane: ControlPlane, tenant_id: str
) -> None:
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="t")
    dsn = plane.tenant_conninfo(tenant).dsn
    held = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await pause_writes(plane, tenant, paused=True)
    try:
        # Its open session was ended; a new one is refused -- so no session of its
        # own can turn its read-only default off and write during a move.
        with pytest.raises(psycopg.OperationalError):
            await held.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            await psycopg.AsyncConnection.connect(dsn)
        # The control plane's own sessions read on, and cannot write.
        async with await psycopg.AsyncConnection.connect(
            plane.service_conninfo(tenant).dsn, autocommit=True
        ) as conn:
            assert await (await conn.execute("SELECT count(*) FROM documents")).fetchone() == (0,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute("INSERT INTO documents (id) VALUES ('x')")
    finally:
        await held.close()
        await pause_writes(plane, tenant, paused=False)
    await run_as(dsn, ["INSERT INTO public.documents (id) VALUES ('after')"])
    await delete_tenant(plane, tenant_id, actor="t")


async def test_migrate_takes_back_what_a_tenant_of_layout_2_changed(
    plane: ControlPlane, tenantctl: TenantCtl, tenant_id: str, superuser_dsn: str, tmp_path: Path
) -> None:
    """Before layout 3 the tenant's role owned its database: every trick worked. After
    ``tenantctl migrate`` none holds, its own objects live in schema app, and it backs
    up, restores and deletes."""
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor="t")
    tenant = await make_layout_2(plane, tenant, superuser_dsn)
    await load(plane, tenant_id, 5)
    db = tenant.placement["database"]
    other = await create_tenant(plane, TenantRequest(id=f"{tenant_id}-o", dims=3), actor="t")
    dsn = plane.tenant_conninfo(tenant).dsn
    await run_as(
        dsn,
        [
            "CREATE TABLE bar_keep (x text)",
            "INSERT INTO bar_keep VALUES ('kept')",
            "CREATE FUNCTION public.md5(text) RETURNS text LANGUAGE sql AS $$SELECT 'x'$$",
            "CREATE SCHEMA s",
            f"COMMENT ON DATABASE {db} IS 'not yours'",
            f"GRANT CONNECT ON DATABASE {db} TO PUBLIC",
            f"ALTER DATABASE {db} SET search_path = s, pg_catalog, public",
        ],
    )
    # Refused while it keeps objects in public: one line, nothing made.
    refused = tenantctl("tenants", "backup", tenant_id, "--to", str(tmp_path / "x.tvbackup"))
    assert refused.code == 4 and "bar_keep" in one_line_error(refused.stderr), refused.stderr
    assert not list(tmp_path.iterdir())

    migrated = tenantctl("migrate", tenant_id, "--json")
    assert migrated.code == 0, migrated.stderr
    tenant = await plane.catalog.get_tenant(tenant_id)
    assert tenant.placement["layout"] == LAYOUT
    owner, comment, grantees, public, settings = await database_facts(superuser_dsn, db)
    assert owner == tenant.placement["service_role"] and comment.startswith("tenantvec ")
    assert not public and settings is None
    assert set(grantees) == {tenant.placement["service_role"], tenant.placement["role"]}
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT (SELECT x FROM bar_keep), to_regclass('app.bar_keep') IS NOT NULL, "
            "to_regprocedure('app.md5(text)') IS NOT NULL, to_regprocedure('public.md5(text)')"
        )
        assert await cur.fetchone() == ("kept", True, True, None)
    for statement, refused_with in ATTACKS[:6]:
        said = await attempt(dsn, statement.format(db=db))
        assert said is not None and refused_with in said, (statement, said)

    backup = tmp_path / "b.tvbackup"
    assert tenantctl("tenants", "backup", tenant_id, "--to", str(backup)).code == 0
    restored = tenantctl("tenants", "restore", str(backup), "--as", f"{tenant_id}-r")
    assert restored.code == 0, restored.stderr
    copy = plane.tenant_conninfo(await plane.catalog.get_tenant(f"{tenant_id}-r")).dsn
    async with await psycopg.AsyncConnection.connect(copy) as conn:
        assert await (await conn.execute("SELECT x FROM bar_keep")).fetchall() == [("kept",)]
    for tid in (tenant_id, f"{tenant_id}-o", f"{tenant_id}-r"):
        assert tenantctl("tenants", "delete", tid, "--yes").code == 0
    del other


async def test_a_tenant_session_that_lifts_its_timeouts_is_held_to_them_all_the_same(
    plane: ControlPlane, tenant_id: str
) -> None:
    """Its DSN may raise its own session's timeouts (Postgres lets any session): the
    keeper's round ends what outlived the tenant's limits -- and never touches
    tenantvec's own sessions."""
    import asyncio
    import time

    from controlplane.lifecycle._enforce import GRACE_SECONDS, Enforced, enforce_limits

    tenant = await create_tenant(
        plane,
        TenantRequest(
            id=tenant_id,
            dims=3,
            limits={"statement_timeout": "1s", "idle_in_transaction_timeout": "1s"},
        ),
        actor="t",
    )
    dsn = plane.tenant_conninfo(tenant).dsn
    await run_as(dsn, ["ALTER ROLE CURRENT_USER SET statement_timeout = 0"])
    runaway = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    idle = await psycopg.AsyncConnection.connect(dsn)
    ours = await psycopg.AsyncConnection.connect(plane.service_conninfo(tenant).dsn)
    await runaway.execute("SET statement_timeout = 0")
    await idle.execute("SET idle_in_transaction_session_timeout = 0")
    await idle.execute("SELECT 1")  # now idle in a transaction
    started = time.monotonic()
    sleeping = asyncio.ensure_future(runaway.execute("SELECT pg_sleep(30)"))
    service_sleep = asyncio.ensure_future(ours.execute("SELECT pg_sleep(4)"))
    ended: list[Enforced] = []
    while time.monotonic() - started < 15 and len(ended) < 2:
        await asyncio.sleep(0.5)
        ended += [e for e in await enforce_limits(plane) if e.tenant == tenant_id]
    with pytest.raises(psycopg.errors.QueryCanceled):
        await sleeping
    took = time.monotonic() - started
    assert 1.0 <= took < 1.0 + GRACE_SECONDS + 3, took
    assert sorted(e.state for e in ended) == ["active", "idle in transaction"]
    with pytest.raises(psycopg.OperationalError):
        await idle.execute("SELECT 1")
    await service_sleep  # the control plane's own session ran its 4 s out
    for conn in (runaway, idle, ours):
        await conn.close()
    await delete_tenant(plane, tenant_id, actor="t")
