"""Searches for up to TENANTVEC_MAX_K hits (1000 by default): every index kind and
precision returns all k, hybrid fuses enough candidates of each ranking to fill k, and
a k past the setting is refused with the limit -- never a short answer in silence."""

from __future__ import annotations

import numpy as np
import pytest

from controlplane.errors import InvalidRequest
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.models import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

DIMS = 8
CHUNKS = 1_500


@pytest.mark.parametrize(
    "index",
    [
        IndexSpec(precision=Precision.FULL),
        IndexSpec(precision=Precision.HALF),  # twice as many rows asked of the index
        IndexSpec(kind=IndexKind.IVFFLAT, lists=64),  # lists of ~23 rows, probes 1
    ],
    ids=["hnsw-full", "hnsw-half", "ivfflat"],
)
async def test_a_search_for_1000_hits_returns_1000_in_every_mode(
    plane: ControlPlane, tenant_id: str, index: IndexSpec
) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((CHUNKS, DIMS))
    await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=DIMS, index=index, embedder=None), actor="t"
    )
    try:
        async with TenantRouter.open(plane) as router:
            documents = [
                DocumentIn(
                    id=f"d{i}",
                    chunks=[ChunkIn(content=f"shared words {i}", embedding=v.tolist())],
                )
                for i, v in enumerate(vectors)
            ]
            await upsert_documents(router, tenant_id, UpsertRequest(documents=documents))
            query = rng.standard_normal(DIMS).tolist()
            for mode in ("vector", "hybrid", "keyword"):
                request = SearchRequest(
                    vector=query if mode != "keyword" else None,
                    text="shared words" if mode != "vector" else None,
                    mode=mode,
                    k=1000,
                    include_content=False,
                    include_metadata=False,
                )
                hits = (await search(router, tenant_id, request)).results
                assert len(hits) == 1000, (mode, len(hits))
                assert len({h.document_id for h in hits}) == 1000
                if mode != "keyword":
                    scores = [h.score for h in hits]
                    assert scores == sorted(scores, reverse=True), mode
            # The vector hits are the 1000 nearest by exact distance (cosine) -- an
            # exact scan's answer, bar the index's own misses at the edge.
            exact = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            q = np.asarray(query) / np.linalg.norm(query)
            nearest = {f"d{i}" for i in np.argsort(-(exact @ q))[:1000]}
            vector_hits = (
                await search(router, tenant_id, SearchRequest(vector=query, k=1000))
            ).results
            assert len(nearest & {h.document_id for h in vector_hits}) >= 950
    finally:
        await delete_tenant(plane, tenant_id, actor="t")


async def test_k_past_the_setting_is_refused_with_the_limit(
    pg_settings: Settings, tenant_id: str
) -> None:
    async with ControlPlane.open(pg_settings.replace(max_k=50)) as plane:
        await create_tenant(plane, TenantRequest(id=tenant_id, dims=3, embedder=None), actor="t")
        try:
            async with TenantRouter.open(plane) as router:
                with pytest.raises(InvalidRequest, match=r"k: at most 50 .*TENANTVEC_MAX_K"):
                    await search(router, tenant_id, SearchRequest(vector=[1, 0, 0], k=51))
                found = await search(router, tenant_id, SearchRequest(vector=[1, 0, 0], k=50))
                assert found.results == []  # 50 is allowed: an empty tenant, no hits
        finally:
            await delete_tenant(plane, tenant_id, actor="t")
