"""Tenant lifecycle against the real session Postgres."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector_async

from controlplane.errors import (
    InvalidRequest,
    ServerNotFound,
    TenantExists,
    TenantNotFound,
)
from controlplane.lifecycle.tenants import (
    TenantRequest,
    create_tenant,
    delete_tenant,
    describe_tenant,
    list_tenants,
    tenant_conninfo,
)
from controlplane.localpg.server import reserved_connections
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from tenantvec_schema.migrations import MigrationSet
from tenantvec_schema.spec import IndexKind, IndexSpec, Metric, Precision

ACTOR = "test"


async def test_create_list_show_delete(plane: ControlPlane, tenant_id: str) -> None:
    tenant = await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=8, labels={"env": "test"}), actor=ACTOR
    )
    assert tenant.state is TenantState.READY
    assert tenant.schema_version == MigrationSet.bundled().latest
    assert tenant.server == "local"

    listed = {t.id: t for t in await list_tenants(plane, labels={"env": "test"})}
    assert tenant_id in listed

    shown = await describe_tenant(plane, tenant_id)
    assert isinstance(shown.live, dict) and shown.live["exists"] is True
    assert shown.dims == 8
    assert [op.action for op in shown.operations] == ["create"]

    deleted = await delete_tenant(plane, tenant_id, actor=ACTOR)
    assert deleted.state is TenantState.DELETED
    assert tenant_id not in {t.id for t in await list_tenants(plane)}
    assert tenant_id in {t.id for t in await list_tenants(plane, include_deleted=True)}
    with pytest.raises(TenantNotFound):
        await describe_tenant(plane, tenant_id)


async def test_tenant_dsn_serves_vector_search(plane: ControlPlane, tenant_id: str) -> None:
    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor=ACTOR)
    conninfo = await tenant_conninfo(plane, tenant_id)
    assert conninfo.user == tenant.placement["role"] == conninfo.dbname

    async with await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn:
        await register_vector_async(conn)

        await conn.execute("INSERT INTO documents (id, title) VALUES ('doc-1', 'one')")
        vectors = {"east": [1, 0, 0], "north": [0, 1, 0], "up": [0, 0, 1]}
        for ordinal, (content, vec) in enumerate(vectors.items()):
            await conn.execute(
                "INSERT INTO chunks (document_id, ordinal, content, embedding) "
                "VALUES ('doc-1', %s, %s, %s)",
                (ordinal, content, np.array(vec, dtype=np.float32)),
            )
        await conn.execute("SET enable_seqscan = off")  # make the HNSW index answer
        cur = await conn.execute(
            "SELECT content FROM chunks ORDER BY embedding <=> %s LIMIT 1",
            (np.array([0.1, 0.9, 0.0], dtype=np.float32),),
        )
        assert (await cur.fetchone()) == ("north",)
        # The tsvector column is generated from the content.
        cur = await conn.execute("SELECT count(*) FROM chunks WHERE tsv @@ 'east'::tsquery")
        assert (await cur.fetchone()) == (1,)
        user = await (
            await conn.execute(
                "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user"
            )
        ).fetchone()
        assert user == (conninfo.user, False)
    await delete_tenant(plane, tenant_id, actor=ACTOR)


@pytest.mark.parametrize(
    ("metric", "index", "expected"),
    [
        (
            Metric.COSINE,
            IndexSpec(IndexKind.HNSW, m=8, ef_construction=32),
            "USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')",
        ),
        (
            Metric.L2,
            IndexSpec(IndexKind.IVFFLAT, lists=7),
            "USING ivfflat (embedding) WITH (lists='7')",
        ),  # l2 ops: the default, not shown
        (
            Metric.COSINE,
            IndexSpec(IndexKind.HNSW, precision=Precision.HALF),
            "USING hnsw (((embedding)::halfvec(4)) halfvec_cosine_ops) WITH (m='16'",
        ),
        (
            Metric.IP,
            IndexSpec(IndexKind.IVFFLAT, lists=3, precision=Precision.HALF),
            "USING ivfflat (((embedding)::halfvec(4)) halfvec_ip_ops) WITH (lists='3')",
        ),
        (Metric.IP, IndexSpec(IndexKind.NONE), None),
    ],
)
async def test_index_settings_are_applied(
    plane: ControlPlane, tenant_id: str, metric: Metric, index: IndexSpec, expected: str | None
) -> None:
    await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=4, metric=metric, index=index), actor=ACTOR
    )
    conninfo = await tenant_conninfo(plane, tenant_id)
    async with await psycopg.AsyncConnection.connect(conninfo.dsn) as conn:
        cur = await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_idx'"
        )
        row = await cur.fetchone()
    await delete_tenant(plane, tenant_id, actor=ACTOR)
    if expected is None:
        assert row is None
    else:
        assert row is not None and expected in row[0]


async def test_tenant_cannot_reach_another_tenants_database(
    plane: ControlPlane, superuser_dsn: str
) -> None:
    a, b = "isolation-a", "isolation-b"
    for tid in (a, b):
        if await plane.catalog.find_tenant(tid):
            await delete_tenant(plane, tid, actor=ACTOR)
        await create_tenant(plane, TenantRequest(id=tid, dims=3), actor=ACTOR)
    a_dsn = await tenant_conninfo(plane, a)
    b_dsn = await tenant_conninfo(plane, b)
    a_service = plane.service_conninfo(await plane.catalog.get_tenant(a))
    b_db = b_dsn.dbname

    # A's own credentials (its owner's and its service role's), B's database: refused.
    for own in (a_dsn, a_service):
        with pytest.raises(psycopg.OperationalError):
            await psycopg.AsyncConnection.connect(own.with_(dbname=b_db).dsn, connect_timeout=3)
    # And not only by pg_hba: the database itself denies CONNECT to anyone but B's roles.
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as admin:
        cur = await admin.execute(
            "SELECT has_database_privilege(%s, %s, 'CONNECT'), "
            "has_database_privilege(%s, %s, 'CONNECT'), "
            "has_database_privilege(%s, %s, 'CONNECT'), "
            "has_database_privilege('public', %s, 'CONNECT')",
            (a_dsn.user, b_db, a_service.user, b_db, b_dsn.user, b_db, b_db),
        )
        assert await cur.fetchone() == (False, False, True, False)
    # B's password does not open A's role either.
    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(
            a_dsn.with_(password=b_dsn.password).dsn, connect_timeout=3
        )
    for tid in (a, b):
        await delete_tenant(plane, tid, actor=ACTOR)


@pytest.mark.parametrize(
    "bad_id",
    [
        "A",
        "ab",
        "Acme",
        "acme_corp",
        "-acme",
        "acme-",
        "1acme",
        "a" * 64,
        "acme; drop",
        "postgres",
        "template1",
        "tenantvec-x",
        "",
        "acme\n",
        "acme\r\n",
        "ac\x00me",
        "acme ",
        "ａcme",
    ],
)
def test_invalid_tenant_ids_are_refused_before_any_sql(bad_id: str) -> None:
    with pytest.raises(InvalidRequest):
        TenantRequest(id=bad_id)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dims": 0},
        {"dims": 16001},
        {"dims": 4001},  # beyond what pgvector indexes, at any precision
        {"dims": 3000, "index": IndexSpec(precision=Precision.FULL)},
        {"text_config": "english; drop"},
        {"text_config": "klingon"},
        {"text_config": "english\n"},
        {"labels": {"env": "a\nb"}},
        {"labels": {"env\n": "x"}},
        {"labels": {"Bad Key": "x"}},
        {"ttl": timedelta(seconds=-1)},
    ],
)
def test_invalid_requests_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        TenantRequest(id="valid-id", **kwargs)  # type: ignore[arg-type]


async def test_duplicate_create_is_refused(plane: ControlPlane, tenant_id: str) -> None:
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor=ACTOR)
    with pytest.raises(TenantExists, match="already exists"):
        await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor=ACTOR)
    await delete_tenant(plane, tenant_id, actor=ACTOR)


async def test_deleted_id_can_be_reused(plane: ControlPlane, tenant_id: str) -> None:
    first = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor=ACTOR)
    await delete_tenant(plane, tenant_id, actor=ACTOR)
    second = await create_tenant(plane, TenantRequest(id=tenant_id, dims=5), actor=ACTOR)
    assert second.uid != first.uid and second.dims == 5
    history = await list_tenants(plane, include_deleted=True)
    assert [t.state for t in history if t.id == tenant_id] == [
        TenantState.DELETED,
        TenantState.READY,
    ]
    await delete_tenant(plane, tenant_id, actor=ACTOR)


async def test_unknown_tenant_and_server(plane: ControlPlane, tenant_id: str) -> None:
    with pytest.raises(TenantNotFound):
        await delete_tenant(plane, tenant_id, actor=ACTOR)
    with pytest.raises(TenantNotFound):
        await tenant_conninfo(plane, tenant_id)
    with pytest.raises(ServerNotFound):
        await create_tenant(
            plane, TenantRequest(id=tenant_id, dims=3, server="nowhere"), actor=ACTOR
        )
    assert await plane.catalog.find_tenant(tenant_id) is None


async def test_names_every_role_can_read_reveal_no_tenant_id(
    plane: ControlPlane, superuser_dsn: str
) -> None:
    """pg_database, pg_roles and their comments are readable by every role: a tenant
    listing them learns how many databases there are, and nothing about whose."""
    secret_id = "bigcustomer-confidential"
    if await plane.catalog.find_tenant(secret_id):
        await delete_tenant(plane, secret_id, actor=ACTOR)
    await create_tenant(plane, TenantRequest(id=secret_id, dims=3), actor=ACTOR)
    nosy_id = f"nosy-{secret_id[:4]}"
    if await plane.catalog.find_tenant(nosy_id):
        await delete_tenant(plane, nosy_id, actor=ACTOR)
    await create_tenant(plane, TenantRequest(id=nosy_id, dims=3), actor=ACTOR)
    nosy = await tenant_conninfo(plane, nosy_id)
    async with await psycopg.AsyncConnection.connect(nosy.dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT datname || ' ' || coalesce(shobj_description(oid, 'pg_database'), '') "
            "FROM pg_database UNION ALL "
            "SELECT rolname || ' ' || coalesce(shobj_description(oid, 'pg_authid'), '') "
            "FROM pg_roles UNION ALL "
            "SELECT coalesce(datname, '') || ' ' || coalesce(usename, '') FROM pg_stat_activity"
        )
        visible = " ".join(row[0] for row in await cur.fetchall())
    assert "bigcustomer" not in visible and "confidential" not in visible
    assert nosy_id not in visible  # not even its own id
    for tid in (secret_id, nosy_id):
        await delete_tenant(plane, tid, actor=ACTOR)


async def test_tenant_roles_have_limits_and_the_service_role_is_outside_them(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str
) -> None:
    tenant = await create_tenant(
        plane,
        TenantRequest(id=tenant_id, dims=3, tier="medium", limits={"statement_timeout": "45s"}),
        actor=ACTOR,
    )
    owner, service = tenant.placement["role"], tenant.placement["service_role"]
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as admin:
        cur = await admin.execute(
            "SELECT rolname, rolconnlimit, rolconfig, rolsuper, rolcreaterole "
            "FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            ([owner, service],),
        )
        rows = {row[0]: row[1:] for row in await cur.fetchall()}
        cur = await admin.execute(
            "SELECT pg_has_role(%s, 'pg_use_reserved_connections', 'USAGE'), "
            "pg_has_role(%s, %s, 'MEMBER'), pg_has_role(%s, 'pg_use_reserved_connections', "
            "'USAGE')",
            (service, service, owner, owner),
        )
        reserved, member, owner_reserved = await cur.fetchone()  # type: ignore[misc]
        cur = await admin.execute(
            "SELECT split_part(rolpassword, ':', 1) FROM pg_authid WHERE rolname = ANY(%s)",
            ([owner, service],),
        )
        # One SCRAM round: the passwords are random, stretching would only cost CPU.
        assert [row[0] for row in await cur.fetchall()] == ["SCRAM-SHA-256$1"] * 2
        if plane.embedded is not None:
            # The embedded server keeps the routers' budget (at most half of it) for them.
            cur = await admin.execute("SHOW reserved_connections")
            assert await cur.fetchone() == (str(reserved_connections(plane.settings)),)
    assert rows[owner][0] == 25  # the medium tier's connection limit
    assert set(rows[owner][1]) == {
        "statement_timeout=45000ms",
        "idle_in_transaction_session_timeout=60000ms",
        "search_path=app, public",
    }
    assert rows[service][0] == -1 and rows[service][1] is None
    assert not any(rows[r][2] or rows[r][3] for r in (owner, service))
    assert reserved and member and not owner_reserved
    # The owner's sessions start with the timeouts; objects the service role makes
    # are the service role's (the owner role reads and writes tenantvec's tables).
    dsn = await tenant_conninfo(plane, tenant_id)
    async with await psycopg.AsyncConnection.connect(dsn.dsn) as conn:
        cur = await conn.execute("SHOW statement_timeout")
        assert await cur.fetchone() == ("45s",)
    async with await psycopg.AsyncConnection.connect(
        plane.service_conninfo(tenant).dsn, autocommit=True
    ) as conn:
        await conn.execute("CREATE TABLE made_by_service (x int)")
        cur = await conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_service'"
        )
        assert await cur.fetchone() == (service,)
    await delete_tenant(plane, tenant_id, actor=ACTOR)
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as admin:
        cur = await admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", ([owner, service],)
        )
        assert await cur.fetchone() == (0,)


async def test_limits_are_changed_on_the_server_and_recorded(
    plane: ControlPlane, tenant_id: str, superuser_dsn: str
) -> None:
    from controlplane.lifecycle.limits import set_limits

    tenant = await create_tenant(plane, TenantRequest(id=tenant_id, dims=3), actor=ACTOR)
    changed = await set_limits(plane, tenant_id, {"connection_limit": 3}, tier="large", actor=ACTOR)
    limits = changed.placement["limits"]
    assert (limits["tier"], limits["connection_limit"], limits["statement_timeout_ms"]) == (
        "large",
        3,
        300_000,
    )
    async with await psycopg.AsyncConnection.connect(superuser_dsn) as admin:
        cur = await admin.execute(
            "SELECT rolconnlimit, rolconfig FROM pg_roles WHERE rolname = %s",
            (tenant.placement["role"],),
        )
        connlimit, config = await cur.fetchone()  # type: ignore[misc]
    assert connlimit == 3 and "statement_timeout=300000ms" in config
    with pytest.raises(InvalidRequest, match="connection_limit 0 is out of range"):
        await set_limits(plane, tenant_id, {"connection_limit": 0}, actor=ACTOR)
    ops = await plane.catalog.list_operations(tenant_id=tenant_id, limit=1)
    assert (ops[0].action, ops[0].outcome.value) == ("set-limits", "succeeded")
    await delete_tenant(plane, tenant_id, actor=ACTOR)
