"""Moving a tenant between placements on real servers: server to server, to a server of
its own, to Neon (the fake) and back; reads and writes while it moves; moves killed at
random moments and settled by ``reconcile``."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from controlplane.errors import (
    InvalidRequest,
    ServerNotFound,
    TenantUnavailable,
)
from controlplane.keys import create_key, list_keys
from controlplane.lifecycle.backup import fingerprint
from controlplane.lifecycle.move import move_tenant
from controlplane.lifecycle.reconcile import find_orphans
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.records import Tenant, TenantState
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.retrieval import SearchRequest, UpsertRequest
from controlplane.retrieval.documents import delete_document, upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenantvec_schema.spec import IndexKind, IndexSpec
from tests.controlplane.lifecycle.moving import HASH, databases_on
from tests.controlplane.lifecycle.rows import documents, load
from tests.fakes.neon import FakeNeon
from tests.fixtures.cli import TenantCtl, one_line_error
from tests.fixtures.fakes import neon_settings


async def _state(plane: ControlPlane, tenant: Tenant) -> dict[str, Any]:
    """What must survive a move: the rows (digest), schema, settings, labels."""
    async with connect(
        plane.service_conninfo(tenant), where="test", timeout=5, autocommit=True
    ) as conn:
        found = await fingerprint(conn)
        index = await (
            await conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'chunks' AND indexdef LIKE "
                "'%hnsw%'"
            )
        ).fetchall()
    return {
        "fingerprint": found,
        "index": [row[0].split(" USING ")[1] for row in index],
        "schema_version": tenant.schema_version,
        "settings": (tenant.dims, tenant.index, tenant.embedder, tenant.chunking, tenant.labels),
        "limits": tenant.placement.get("limits"),
        "uid": tenant.uid,
    }


async def test_a_tenant_moves_round_every_placement_and_keeps_everything(
    fleet: Settings, fake_neon: FakeNeon, tenant_id: str
) -> None:
    settings = neon_settings(fleet, fake_neon)
    async with ControlPlane.open(settings) as plane:
        await create_tenant(
            plane,
            TenantRequest(
                id=tenant_id,
                dims=3,
                embedder=HASH,
                index=IndexSpec(kind=IndexKind.HNSW, m=8, ef_construction=32),
                chunking=ChunkingSpec(max_tokens=64, overlap=8),
                labels={"plan": "pro"},
                server="local",
            ),
            actor="t",
        )
        await load(plane, tenant_id, 200)
        issued = await create_key(plane, tenant_id, name="app", actor="t")
        before = await _state(plane, await plane.catalog.get_tenant(tenant_id))
        query = SearchRequest(vector=[1.0, 0.5, 0.1], k=5)
        async with TenantRouter.open(plane) as router:
            expected = [h.chunk_id for h in (await search(router, tenant_id, query)).results]
        trail = [("postgres", "second"), ("instance", None), ("neon", None), ("postgres", "local")]
        for backend, server in trail:
            old = await plane.catalog.get_tenant(tenant_id)
            report = await move_tenant(plane, tenant_id, backend=backend, server=server, actor="t")
            moved = report.tenant
            assert (moved.backend, moved.server) == (backend, server), report.view()
            assert (report.documents, report.chunks) == (200, before["fingerprint"].chunks)
            assert moved.other_copy is None and moved.state is TenantState.READY
            now = await _state(plane, moved)
            assert now == before, (backend, server)
            # The key is still the tenant's; search answers the same, from the new copy.
            keys = await list_keys(plane, tenant_id)
            assert [(k.id, k.tenant_uid, k.revoked_at) for k in keys] == [
                (issued.key.id, moved.uid, None)
            ]
            async with TenantRouter.open(plane) as router:
                hits = [h.chunk_id for h in (await search(router, tenant_id, query)).results]
            assert hits == expected, (backend, server)
            # The old copy is gone.
            if old.server is not None:
                assert not await databases_on(old.server, plane, old.placement["database"])
        assert [o for o in await find_orphans(plane) if o.tenant_id == tenant_id] == []
        operations = await plane.catalog.list_operations(tenant_id=tenant_id, limit=20)
        moves = [op for op in operations if op.action == "move"]
        assert len(moves) == 4 and all(op.outcome.value == "succeeded" for op in moves)
        await delete_tenant(plane, tenant_id, actor="t")


async def test_reads_go_on_and_writes_wait_while_a_tenant_moves(
    fleet_plane: ControlPlane, tenant_id: str
) -> None:
    """Every acknowledged write is in the moved tenant; refused ones say why and when
    to come back; no read fails."""
    plane = fleet_plane
    await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"), actor="t"
    )
    await load(plane, tenant_id, 2000)
    acknowledged: list[str] = []
    deleted: list[str] = []
    retitled: dict[str, str] = {}
    refused: list[TenantUnavailable] = []
    reads = 0

    written = 0  # writes attempted, over every move: each its own document ids
    reports = []

    async with TenantRouter.open(plane) as router:

        async def writer(moving: asyncio.Task[Any]) -> None:
            # New documents, changed ones (doc-N again, other text) and deletions: what
            # the catch-up must bring over.
            nonlocal written
            while not moving.done():
                written += 1
                n = written
                try:
                    if n % 3 == 0:
                        await delete_document(router, tenant_id, f"doc-{n}")
                        deleted.append(f"doc-{n}")
                    elif n % 3 == 1:
                        doc = documents(1, start=10_000 + n)[0]
                        await upsert_documents(router, tenant_id, UpsertRequest(documents=[doc]))
                        acknowledged.append(doc.id)
                    else:
                        doc = msgspec.structs.replace(documents(1, start=n)[0], title=f"new {n}")
                        await upsert_documents(router, tenant_id, UpsertRequest(documents=[doc]))
                        retitled[doc.id] = f"new {n}"
                        acknowledged.append(doc.id)
                except TenantUnavailable as exc:
                    refused.append(exc)
                await asyncio.sleep(0.002)

        async def reader(moving: asyncio.Task[Any]) -> None:
            nonlocal reads
            while not moving.done():
                found = await search(router, tenant_id, SearchRequest(vector=[1.0, 0.1, 0.2], k=3))
                assert len(found.results) == 3
                reads += 1
                await asyncio.sleep(0.005)

        # The pause lasts as long as the catch-up (tens of ms on a quiet machine): a
        # write may miss it. The tenant moves back and forth until one met it.
        for server in ("second", "local", "second", "local"):
            moving = asyncio.create_task(
                move_tenant(plane, tenant_id, backend="postgres", server=server, actor="t")
            )
            await asyncio.gather(writer(moving), reader(moving), moving)
            reports.append(moving.result())
            if refused:
                break
        # Writes after the move go to the new copy.
        await upsert_documents(
            router, tenant_id, UpsertRequest(documents=documents(1, start=99_999))
        )
        acknowledged.append("doc-99999")
    moved = await plane.catalog.get_tenant(tenant_id)
    async with connect(plane.service_conninfo(moved), where="t", timeout=5) as conn:
        rows = await (
            await conn.execute("SELECT id FROM documents WHERE id = ANY(%s)", (acknowledged,))
        ).fetchall()
        titles = dict(
            await (
                await conn.execute(
                    "SELECT id, title FROM documents WHERE id = ANY(%s)", (list(retitled),)
                )
            ).fetchall()
        )
        still = await (
            await conn.execute("SELECT id FROM documents WHERE id = ANY(%s)", (deleted,))
        ).fetchall()
    assert {r[0] for r in rows} == set(acknowledged), "an acknowledged write was lost"
    assert titles == retitled and still == [], "a change or a delete was lost"
    caught_up = sum(report.caught_up for report in reports)
    assert caught_up > 0, "nothing was written during the copy: the test proves less"
    assert refused, "no write came during the pause: the test proves nothing"
    # Refused because paused -- or, for a write in flight when the pause began, because
    # its session was ended (rolled back, so retrying it is safe).
    assert all(("moving" in str(e) or e.lost) and e.retry_after > 0 for e in refused), {
        str(e) for e in refused
    }
    assert any("moving" in str(e) for e in refused)
    assert reads > 10 and all(report.writes_paused_seconds > 0 for report in reports)
    print(
        f"reads {reads}, writes {len(acknowledged)} ok / {len(refused)} refused in "
        f"{len(reports)} move(s), paused {reports[-1].writes_paused_seconds:.2f} s of "
        f"{reports[-1].seconds:.2f} s"
    )
    await delete_tenant(plane, tenant_id, actor="t")


async def test_a_router_whose_cached_route_outlived_the_switch_follows_the_move(
    fleet: Settings, fleet_plane: ControlPlane, tenant_id: str
) -> None:
    """Another API process caches routes longer than the mover waits (a slow catalog
    read, a longer TTL): its next request finds the old copy gone and follows the
    catalog to the new one instead of failing."""
    await create_tenant(
        fleet_plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"), actor="t"
    )
    await load(fleet_plane, tenant_id, 20)
    query = SearchRequest(vector=[1.0, 0.1, 0.2], k=3)
    slow = fleet.replace(routing=fleet.routing.replace(route_ttl_seconds=600))
    async with ControlPlane.open(slow) as other, TenantRouter.open(other) as router:
        before = await search(router, tenant_id, query)  # route cached, pool open
        cached = await router.route(tenant_id)
        assert cached.conninfo is not None
        database = cached.conninfo.dbname
        await move_tenant(fleet_plane, tenant_id, backend="postgres", server="second", actor="t")
        assert not await databases_on("local", fleet_plane, database)  # the old copy
        after = await search(router, tenant_id, query)
        assert [hit.chunk_id for hit in after.results] == [h.chunk_id for h in before.results]
        await upsert_documents(router, tenant_id, UpsertRequest(documents=documents(1, 500)))
    await delete_tenant(fleet_plane, tenant_id, actor="t")


async def test_bad_destinations_are_refused_before_anything_is_made(
    fleet_plane: ControlPlane, tenant_id: str
) -> None:
    plane = fleet_plane
    await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"), actor="t"
    )
    for backend, server, error, says in (
        ("postgres", "local", InvalidRequest, "already"),
        ("instance", "second", InvalidRequest, "registered servers"),
        ("postgres", "nowhere", ServerNotFound, "nowhere"),
    ):
        with pytest.raises(error, match=says):
            await move_tenant(plane, tenant_id, backend=backend, server=server, actor="t")
    tenant = await plane.catalog.get_tenant(tenant_id)
    assert tenant.server == "local" and tenant.other_copy is None
    await delete_tenant(plane, tenant_id, actor="t")


def test_the_cli_refuses_a_bad_destination_in_one_line(
    tenantctl: TenantCtl, tenant_id: str
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    for to, says in (
        ("postgres:local", "already"),
        ("postgres:", "BACKEND or BACKEND:SERVER"),
        (":local", "BACKEND or BACKEND:SERVER"),
        ("bogus", "bogus"),
        ("instance:local", "registered servers"),
        ("postgres:Bad_Name", "server name"),
    ):
        result = tenantctl("tenants", "move", tenant_id, "--to", to)
        assert result.code == 2, (to, result.stderr)
        assert says in one_line_error(result.stderr), (to, result.stderr)
    missing = tenantctl("tenants", "move", f"{tenant_id}-gone", "--to", "instance")
    assert missing.code != 0 and "not found" in one_line_error(missing.stderr)
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["server"] == "local" and "move" not in shown["placement"]
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0
