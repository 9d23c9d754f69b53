"""Per-query index settings reach Postgres (pipelined with the search, one round trip,
no transaction), and each search sets the ones it needs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.models import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from tenantvec_schema.spec import IndexSpec, Precision

DIMS = 16


@pytest.mark.parametrize("precision", list(Precision))
async def test_ef_search_and_the_iterative_scan_apply_to_the_search_and_the_next_sets_its_own(
    plane: ControlPlane, tenant_id: str, precision: Precision
) -> None:
    rng = random.Random(7)
    # A sparse graph (m=4): a search as narrow as ef_search 1 misses nearest chunks
    # that a wide one finds, which shows the setting reached the search.
    index = IndexSpec(m=4, ef_construction=8, precision=precision)
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=DIMS, index=index), actor="test")
    try:
        async with TenantRouter.open(plane) as router:
            vectors = np.array([[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(600)])
            documents = [
                DocumentIn(
                    id=f"d{i}",
                    chunks=[
                        ChunkIn(
                            content=f"chunk {i}",
                            embedding=vectors[i].tolist(),
                            metadata={"rare": i % 50 == 0},  # 12 of 600
                        )
                    ],
                )
                for i in range(600)
            ]
            for start in range(0, len(documents), 200):
                await upsert_documents(
                    router, tenant_id, UpsertRequest(documents=documents[start : start + 200])
                )

            # Statistics, as autovacuum gathers them after a load: without any, the
            # planner sizes the table from its pages and may scan 600 rows instead.
            async def analyze(tc: object) -> None:
                await tc.conn.execute("ANALYZE chunks")  # type: ignore[attr-defined]

            await router.read(await router.route(tenant_id), analyze)
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            queries = [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(40)]
            found = {1: 0, 1000: 0}
            for query in queries:
                nearest = f"d{int(np.argmax(unit @ np.array(query)))}"
                for ef_search in found:
                    request = SearchRequest(vector=query, k=1, ef_search=ef_search)
                    hits = (await search(router, tenant_id, request)).results
                    found[ef_search] += hits[0].document_id == nearest
            assert found[1000] >= 38, found  # all but a near-tie or two
            assert found[1] <= found[1000] - 3, found

            # An HNSW scan yields at most ef_search rows (pgvector's default: 40): a
            # search for more widens it, whether ef_search was given or not.
            query = queries[0]
            plain = await search(router, tenant_id, SearchRequest(vector=query, k=60))
            assert len(plain.results) == 60
            narrow = await search(router, tenant_id, SearchRequest(vector=query, k=12, ef_search=5))
            assert len(narrow.results) == 12
            # A filter turns on the iterative scan: every match is found.
            filtered = await search(
                router,
                tenant_id,
                SearchRequest(vector=query, k=12, ef_search=10, filter={"rare": True}),
            )
            assert {h.document_id for h in filtered.results} == {f"d{i}" for i in range(0, 600, 50)}

            async def settings_after(tc: object) -> tuple[str, str]:
                cur = await tc.conn.execute(  # type: ignore[attr-defined]
                    "SELECT current_setting('hnsw.ef_search'), "
                    "current_setting('hnsw.iterative_scan')"
                )
                row = await cur.fetchone()
                return (str(row[0]), str(row[1]))

            # Settings are the session's, set only when they differ (no transaction per
            # search): what one search set, the next resets to what it needs.
            route = await router.route(tenant_id)
            widened = "24" if precision is Precision.HALF else "12"  # twice k from halfvec
            assert await router.read(route, settings_after) == (widened, "strict_order")
            await search(router, tenant_id, SearchRequest(vector=query, k=10))
            assert await router.read(route, settings_after) == ("40", "off")  # the defaults
    finally:
        await delete_tenant(plane, tenant_id, actor="test")


async def test_metadata_reads_back_whatever_numbers_jsonb_holds(
    plane: ControlPlane, tenant_id: str
) -> None:
    # The router reads jsonb with msgspec; jsonb numbers are arbitrary precision, and
    # one beyond float range (written by the tenant's own SQL) must not fail a search.
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=DIMS), actor="test")
    try:
        async with TenantRouter.open(plane) as router:
            vector = [1.0] * DIMS
            document = DocumentIn(id="d", chunks=[ChunkIn(content="c", embedding=vector)])
            await upsert_documents(router, tenant_id, UpsertRequest(documents=[document]))

            async def write(tc: object) -> None:
                await tc.conn.execute(  # type: ignore[attr-defined]
                    "UPDATE chunks SET metadata = jsonb_build_object('int', 1e400::numeric, "
                    "'decimal', 1e400::numeric + 0.5, 's', 'é')"
                )

            async with router.connection(tenant_id) as tc:
                await write(tc)
            found = await search(router, tenant_id, SearchRequest(vector=vector, k=1))
            metadata = found.results[0].metadata
            # Postgres writes 1e400 out in digits: an exact int; with a fraction no float
            # holds it, and it reads as the standard library reads it (inf).
            assert metadata == {"int": 10**400, "decimal": float("inf"), "s": "é"}
    finally:
        await delete_tenant(plane, tenant_id, actor="test")
