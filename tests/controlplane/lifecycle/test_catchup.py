"""Catching a copy up with its source (lifecycle/_catchup.py), on two real tenant
databases: new, changed and deleted documents, a chunk changed on its own, jobs, and
identity sequences -- the copy ends equal to the source, row for row."""

from __future__ import annotations

import psycopg

from controlplane.lifecycle._catchup import catch_up
from controlplane.lifecycle.backup import fingerprint
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.embedder import EmbedderSpec
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from tests.controlplane.lifecycle.rows import load

HASH = EmbedderSpec.parse("hash")


async def test_a_copy_catches_up_with_every_kind_of_change(
    plane: ControlPlane, tenant_id: str
) -> None:
    source_id, copy_id = f"{tenant_id}-src", f"{tenant_id}-dst"
    for name in (source_id, copy_id):
        await create_tenant(plane, TenantRequest(id=name, dims=3, embedder=HASH), actor="t")
    await load(plane, source_id, 40)
    source = plane.service_conninfo(await plane.catalog.get_tenant(source_id))
    copy = plane.service_conninfo(await plane.catalog.get_tenant(copy_id))

    async def sync() -> tuple[int, int]:
        async with (
            connect(source, where="source", timeout=5) as src,
            connect(copy, where="copy", timeout=5, autocommit=False) as dst,
        ):
            done = await catch_up(src, dst, where="test")
            assert done.fingerprint == await fingerprint(src)
            return done.copied, done.deleted

    assert await sync() == (40, 0)  # from empty: everything
    assert await sync() == (0, 0)  # nothing changed: nothing copied
    async with await psycopg.AsyncConnection.connect(source.dsn, autocommit=True) as conn:
        await conn.execute("DELETE FROM documents WHERE id IN ('doc-1', 'doc-2')")
        await conn.execute("UPDATE chunks SET content = 'edited' WHERE document_id = 'doc-5'")
        await conn.execute("UPDATE documents SET metadata = '{\"n\": -1}' WHERE id = 'doc-6'")
        await conn.execute(
            "INSERT INTO ingestion_jobs (state, total) VALUES ('pending', 3), ('running', 1)"
        )
    await load(plane, source_id, 3, start=100)
    assert await sync() == (5, 2)  # doc-5, doc-6 and three new; doc-1 and doc-2 gone
    async with await psycopg.AsyncConnection.connect(copy.dsn, autocommit=True) as conn:
        jobs = await (await conn.execute("SELECT count(*) FROM ingestion_jobs")).fetchone()
        assert jobs == (2,)
        # The copy's identity sequence is past every id the source gave: a new chunk
        # gets a fresh id, and the chunk ids copied are the source's own.
        top = await (await conn.execute("SELECT max(id) FROM chunks")).fetchone()
        await conn.execute(
            "INSERT INTO chunks (document_id, ordinal, content) VALUES ('doc-7', 99, 'new')"
        )
        fresh = await (await conn.execute("SELECT id FROM chunks WHERE ordinal = 99")).fetchone()
        assert top is not None and fresh is not None and fresh[0] > top[0]
    async with await psycopg.AsyncConnection.connect(source.dsn) as conn:
        ids = await (await conn.execute("SELECT id FROM chunks ORDER BY id")).fetchall()
    async with await psycopg.AsyncConnection.connect(copy.dsn) as conn:
        copied = await (
            await conn.execute("SELECT id FROM chunks WHERE ordinal <> 99 ORDER BY id")
        ).fetchall()
    assert copied == ids
    for name in (source_id, copy_id):
        await delete_tenant(plane, name, actor="t")
