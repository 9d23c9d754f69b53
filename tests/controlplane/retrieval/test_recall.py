"""A recall target per tenant: measured on the tenant's own chunks, met by the
ef_search chosen for it, which its searches then use."""

from __future__ import annotations

import numpy as np

from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.models import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.recall import RecallKeeper, tune_recall
from controlplane.retrieval.search import search
from controlplane.routing import TenantConnection, TenantRouter
from tenantvec_schema.spec import IndexSpec

DIMS = 32
ROWS = 3000


async def _recall(
    router: TenantRouter, tenant_id: str, vectors: np.ndarray, queries: np.ndarray
) -> float:
    """Recall@10 of the tenant's searches (no ef_search given) against exact search."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    found = 0
    for query in queries:
        truth = {f"d{i}" for i in np.argsort(-(unit @ query))[:10]}
        hits = (await search(router, tenant_id, SearchRequest(vector=query.tolist(), k=10))).results
        found += len(truth & {h.document_id for h in hits})
    return found / (10 * len(queries))


async def _rounds_until(keeper: RecallKeeper, tenant_id: str, rounds: int = 30) -> bool:
    """Whether the keeper measures the tenant within ``rounds`` rounds."""
    for _ in range(rounds):
        measured = await keeper.round()
        if measured == tenant_id:
            return True
    return False


async def test_a_tenant_whose_data_defeats_ef_40_gets_the_ef_that_meets_its_target(
    plane: ControlPlane, tenant_id: str
) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((ROWS, DIMS)).astype(np.float32)
    queries = rng.standard_normal((60, DIMS)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # Random vectors in a sparse graph (m=4): pgvector's default ef_search 40 finds
    # well under 95 % of the true ten nearest.
    index = IndexSpec(m=4, ef_construction=8)
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=DIMS, index=index), actor="test")
    try:
        async with TenantRouter.open(plane) as router:
            documents = [
                DocumentIn(id=f"d{i}", chunks=[ChunkIn(content=f"c{i}", embedding=v.tolist())])
                for i, v in enumerate(vectors)
            ]
            for start in range(0, ROWS, 500):
                batch = documents[start : start + 500]
                await upsert_documents(router, tenant_id, UpsertRequest(documents=batch))

            async def analyze(tc: TenantConnection) -> None:
                await tc.conn.execute("ANALYZE chunks")

            await router.read(await router.route(tenant_id), analyze)
            before = await _recall(router, tenant_id, vectors, queries)
            assert before < 0.9, before

            # Never measured: due. (Other tests' tenants may be due too: one a round.)
            keeper = RecallKeeper(plane)
            assert await _rounds_until(keeper, tenant_id)
            tenant = await plane.catalog.get_tenant(tenant_id)
            tuning = tenant.recall
            assert tuning.target == 0.95 and tuning.measured is not None
            assert tuning.measured >= 0.95 and tuning.reached
            assert tuning.ef_search is not None and tuning.ef_search > 40
            assert tuning.chunks == ROWS and tuning.sample is not None and tuning.sample >= 10
            # Measured, unchanged: not due again.
            assert not await _rounds_until(keeper, tenant_id, rounds=5)

            # The router searches with it; checked on queries the measurement never saw.
            after = await _recall(router, tenant_id, vectors, queries)
            assert after >= 0.92 and after >= before + 0.1, (before, after)
            # A request's own ef_search still wins, and is not kept for the next search.
            narrow = SearchRequest(vector=queries[0].tolist(), k=10, ef_search=10)
            assert len((await search(router, tenant_id, narrow)).results) == 10
            assert await _recall(router, tenant_id, vectors, queries) == after

            # A higher target: a wider search; a new index: measured again from scratch.
            higher = await tune_recall(plane, tenant_id, target=0.99, actor="test")
            assert higher.recall.target == 0.99
            assert higher.recall.ef_search is not None
            assert higher.recall.ef_search >= tuning.ef_search
            rebuilt = await set_index(plane, tenant_id, IndexSpec(m=16), actor="test")
            assert rebuilt.recall.target == 0.99 and rebuilt.recall.measured is None
            assert await _rounds_until(keeper, tenant_id)
    finally:
        await delete_tenant(plane, tenant_id, actor="test")
