"""Data-plane endpoints: documents, search and stats of one tenant.

Every handler first checks that the caller may reach the tenant in the path (its own
key, or the admin token); the library call that follows touches only that tenant's
database, through the router, as that tenant's role.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import Body, Parameter

from controlplane.api import examples as ex
from controlplane.api.auth import Caller
from controlplane.api.state import ApiState
from controlplane.retrieval import (
    Document,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
)
from controlplane.retrieval.documents import delete_document, get_document, upsert_documents
from controlplane.retrieval.search import search
from controlplane.retrieval.stats import tenant_stats

__all__ = ["DataController"]

TenantIdParam = Annotated[str, Parameter(description="Tenant id.")]
DocumentIdParam = Annotated[str, Parameter(description="The caller's document id.")]


class DataController(Controller):
    path = "/v1/tenants/{tenant_id:str}"
    tags = ["data"]

    @put(
        "/documents",
        operation_id="upsertDocuments",
        summary="Upsert documents with their chunks",
        description="Atomic per request: on any error nothing of the batch is written. A "
        "document's chunks are replaced as a whole; an unchanged document is left alone.",
        responses=ex.ok(
            UpsertResponse,
            {"documents": [{"id": "doc-1", "status": "created", "chunks": 1}]},
            "What happened to each document, in request order.",
        ),
    )
    async def upsert(
        self,
        api: ApiState,
        caller: Caller,
        tenant_id: TenantIdParam,
        data: Annotated[UpsertRequest, Body(examples=ex.example(ex.UPSERT))],
    ) -> UpsertResponse:
        caller.require_tenant(tenant_id)
        return await upsert_documents(api.router, tenant_id, data)

    @get(
        "/documents/{document_id:str}",
        operation_id="getDocument",
        summary="Read a document and its chunks",
        responses=ex.ok(Document, ex.DOCUMENT, "The document."),
    )
    async def get_(
        self,
        api: ApiState,
        caller: Caller,
        tenant_id: TenantIdParam,
        document_id: DocumentIdParam,
        include_embeddings: bool = False,
    ) -> Document:
        caller.require_tenant(tenant_id)
        return await get_document(
            api.router, tenant_id, document_id, include_embeddings=include_embeddings
        )

    @delete(
        "/documents/{document_id:str}",
        operation_id="deleteDocument",
        responses=ex.problems(),
        summary="Delete a document and its chunks",
    )
    async def delete_(
        self, api: ApiState, caller: Caller, tenant_id: TenantIdParam, document_id: DocumentIdParam
    ) -> None:
        caller.require_tenant(tenant_id)
        await delete_document(api.router, tenant_id, document_id)

    @post(
        "/search",
        operation_id="search",
        summary="Nearest chunks to a vector",
        description="k 1-100; filter is JSON containment on chunk metadata (a chunk carries "
        "its document's metadata); min_similarity is on the score: cosine similarity, inner "
        "product, or 1/(1+distance) for l2. ef_search (HNSW, 1-1000) and probes (IVFFlat) "
        "trade speed for recall per request.",
        status_code=200,
        responses=ex.ok(SearchResponse, ex.SEARCH_RESULTS, "Hits, best first."),
    )
    async def search(
        self,
        api: ApiState,
        caller: Caller,
        tenant_id: TenantIdParam,
        data: Annotated[SearchRequest, Body(examples=ex.example(ex.SEARCH))],
    ) -> SearchResponse:
        caller.require_tenant(tenant_id)
        return await search(api.router, tenant_id, data)

    @get(
        "/stats",
        operation_id="tenantStats",
        summary="What the tenant's database holds",
        responses=ex.ok(TenantStats, ex.STATS, "Counts and sizes."),
    )
    async def stats(self, api: ApiState, caller: Caller, tenant_id: TenantIdParam) -> TenantStats:
        caller.require_tenant(tenant_id)
        return await tenant_stats(api.router, tenant_id)
