"""What the move tests share: a tenant's documents loaded from outside, where it is
served from, and the check that one copy -- and only one -- serves it."""

from __future__ import annotations

import psycopg

from controlplane.lifecycle.reconcile import find_orphans, reconcile
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.records import TenantState
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.controlplane.lifecycle.rows import load

HASH = EmbedderSpec.parse("hash")


async def databases_on(server: str, plane: ControlPlane, name: str) -> bool:
    admin = plane.servers.admin_conninfo(await plane.catalog.get_server(server))
    async with await psycopg.AsyncConnection.connect(admin.dsn) as conn:
        row = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        ).fetchone()
    return row is not None


async def load_tenant(settings: Settings, tenant_id: str, n: int, start: int = 0) -> None:
    async with ControlPlane.open(settings) as plane:
        await load(plane, tenant_id, n, start)


async def server_of(settings: Settings, tenant_id: str) -> str | None:
    async with ControlPlane.open(settings) as plane:
        return (await plane.catalog.get_tenant(tenant_id)).server


async def served_from_one_copy(settings: Settings, tenant_id: str, documents_: int) -> str:
    """The tenant is ready, unmarked, holds its documents, and exactly one database of
    its incarnation exists across the servers."""
    async with ControlPlane.open(settings) as plane:
        tenant = await plane.catalog.get_tenant(tenant_id)
        assert tenant.state is TenantState.READY and tenant.other_copy is None
        async with connect(plane.service_conninfo(tenant), where="t", timeout=5) as conn:
            count = await (await conn.execute("SELECT count(*) FROM documents")).fetchone()
            writable = await (await conn.execute("SHOW default_transaction_read_only")).fetchone()
        assert count == (documents_,) and writable == ("off",)
        mine = [
            r
            for r in await plane.backend("postgres").list_resources()
            if r.tenant_uid == tenant.uid and r.kind == "database"
        ]
        assert [(r.location, r.name) for r in mine] == [
            (tenant.server, tenant.placement["database"])
        ]
        assert [o for o in await find_orphans(plane) if o.tenant_uid == tenant.uid] == []
        assert (await reconcile(plane, actor="t")).clean
        return str(tenant.server)
