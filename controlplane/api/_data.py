"""Data-plane endpoints: documents, search and stats of one tenant.

The ``tenant_access`` guard has checked that the caller may reach the tenant in the
path (its own key, or the admin token) before anything else; the library call that
follows touches only that tenant's database -- the very incarnation the key was
issued for -- through the router, as that tenant's service role.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Body, FromQuery, PathParameter, QueryParameter

from controlplane.api import _examples as ex
from controlplane.api._auth import tenant_access
from controlplane.api._body import StrictBody
from controlplane.api._caller import CallerDep
from controlplane.api._state import ApiDep
from controlplane.errors import InvalidRequest
from controlplane.retrieval import (
    Document,
    DocumentIn,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
)
from controlplane.retrieval.collection import (
    count_documents,
    delete_documents,
    fetch_documents,
    list_document_ids,
)
from controlplane.retrieval.documents import delete_document, get_document, upsert_documents
from controlplane.retrieval.jobs import get_job, list_jobs, submit_job
from controlplane.retrieval.models import (
    CountRequest,
    DeleteRequest,
    DeleteResponse,
    DocumentCount,
    DocumentIds,
    FetchRequest,
    FetchResponse,
    Job,
)
from controlplane.retrieval.search import search
from controlplane.retrieval.stats import tenant_stats

__all__ = ["DataController"]

TenantIdParam = Annotated[str, PathParameter(description="Tenant id.")]
DocumentIdParam = Annotated[
    str,
    PathParameter(
        description="The caller's document id, percent-encoded where needed; it may contain "
        "'/' (e.g. docs/intro.md)."
    ),
]


class DataController(Controller):
    path = "/v1/tenants/{tenant_id:str}"
    tags = ["data"]
    guards = [tenant_access]

    @put(
        "/documents",
        operation_id="upsertDocuments",
        summary="Upsert documents, as text or as chunks with vectors",
        description="A document is either `text` (chunked and embedded with the tenant's "
        "settings) or `chunks` (with `embedding`, or without to have them embedded). "
        "Atomic per request: on any error nothing of the batch is written. A document's "
        "chunks are replaced as a whole; an unchanged document (same content hash) is "
        "skipped without calling the embedder. With `?async=true`, or more documents to "
        "embed than TENANTVEC_INLINE_INGEST_DOCUMENTS, the batch becomes an ingestion job: "
        "202 with the job, and its URL in Location.",
        status_code=200,
        dto=StrictBody[UpsertRequest],
        return_dto=None,
        responses={
            **ex.ok(
                UpsertResponse,
                {"documents": [{"id": "doc-1", "status": "created", "chunks": 1}]},
                "What happened to each document, in request order.",
                errors=ex.EMBEDS,
            ),
            **ex.ok(Job, ex.JOB, "Queued as an ingestion job.", status=202, errors=()),
        },
    )
    async def upsert(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            UpsertRequest,
            Body(
                examples=[
                    *ex.example(ex.UPSERT_TEXT, "documents as text"),
                    *ex.example(ex.UPSERT, "chunks with vectors"),
                ]
            ),
        ],
        run_async: Annotated[
            bool, QueryParameter(name="async", description="Run as an ingestion job (202).")
        ] = False,
    ) -> Response[UpsertResponse | Job]:
        to_embed = sum(1 for doc in data.documents if _needs_embedding(doc))
        incarnation = caller.incarnation
        if run_async or to_embed > api.plane.settings.api.inline_ingest_documents:
            job = await submit_job(api.router, tenant_id, data, incarnation=incarnation)
            location = f"/v1/tenants/{tenant_id}/jobs/{job.id}"
            return Response(job, status_code=202, headers={"Location": location})
        return Response(
            await upsert_documents(api.router, tenant_id, data, incarnation=incarnation)
        )

    @get(
        "/jobs/{job_id:str}",
        operation_id="getJob",
        summary="An ingestion job's state and progress",
        responses=ex.ok(Job, ex.JOB, "The job."),
    )
    async def job(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        job_id: Annotated[str, PathParameter(description="Job id (from the 202 answer).")],
    ) -> Job:
        return await get_job(api.router, tenant_id, job_id, incarnation=caller.incarnation)

    @get(
        "/jobs",
        operation_id="listJobs",
        summary="Recent ingestion jobs, newest first",
        responses=ex.ok(list[Job], [ex.JOB], "Up to `limit` jobs."),
    )
    async def jobs(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[Job]:
        return await list_jobs(api.router, tenant_id, limit=limit, incarnation=caller.incarnation)

    @get(
        "/documents/{document_id:path}",
        operation_id="getDocument",
        summary="Read a document and its chunks",
        responses=ex.ok(Document, ex.DOCUMENT, "The document."),
    )
    async def get_(
        self,
        request: Request[Any, Any, Any],
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        document_id: DocumentIdParam,
        include_embeddings: FromQuery[bool] = False,
    ) -> Document:
        return await get_document(
            api.router,
            tenant_id,
            _document_id(request, tenant_id, document_id),
            include_embeddings=include_embeddings,
            incarnation=caller.incarnation,
        )

    @delete(
        "/documents/{document_id:path}",
        operation_id="deleteDocument",
        responses=ex.problems(),
        summary="Delete a document and its chunks",
    )
    async def delete_(
        self,
        request: Request[Any, Any, Any],
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        document_id: DocumentIdParam,
    ) -> None:
        await delete_document(
            api.router,
            tenant_id,
            _document_id(request, tenant_id, document_id),
            incarnation=caller.incarnation,
        )

    @post(
        "/search",
        operation_id="search",
        summary="Search: by vector, by keyword, or hybrid",
        description="The query is `text` (embedded with the tenant's embedder) and/or a "
        "`vector`. mode: vector (default), keyword (full text in the tenant's language), or "
        'hybrid (`"hybrid": true`): both rankings fused by reciprocal rank, '
        "keyword_weight being the full-text share. k 1-1000 (TENANTVEC_MAX_K); filter is "
        "JSON containment on chunk metadata (a chunk carries its document's metadata); "
        "min_similarity is a floor on the vector similarity in every mode: cosine "
        "similarity, inner product, or 1/(1+distance) for l2. ef_search (HNSW, 1-1000) "
        "and probes (IVFFlat) trade speed for recall per request. No match is an empty "
        "list.",
        status_code=200,
        dto=StrictBody[SearchRequest],
        return_dto=None,
        responses=ex.ok(SearchResponse, ex.SEARCH_RESULTS, "Hits, best first.", errors=ex.EMBEDS),
    )
    async def search(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            SearchRequest,
            Body(
                examples=[
                    *ex.example(ex.SEARCH_TEXT, "hybrid text query"),
                    *ex.example(ex.SEARCH, "vector query"),
                ]
            ),
        ],
    ) -> SearchResponse:
        return await search(api.router, tenant_id, data, incarnation=caller.incarnation)

    @get(
        "/ids",
        operation_id="listDocumentIds",
        summary="The tenant's document ids, a page at a time",
        description="In id order, up to `limit` (1-1000, default 100) after `cursor`; pass the "
        "answer's `next_cursor` to get the next page (null: that was the last). A page costs "
        "the same however far into the collection it is (keyset on the id).",
        responses=ex.ok(
            DocumentIds, {"ids": ["doc-1", "doc-2"], "next_cursor": "ZG9jLTI"}, "A page of ids."
        ),
    )
    async def ids(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        cursor: Annotated[str | None, QueryParameter(max_length=2000)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> DocumentIds:
        return await list_document_ids(
            api.router, tenant_id, cursor=cursor, limit=limit, incarnation=caller.incarnation
        )

    @post(
        "/count",
        operation_id="countDocuments",
        summary="How many documents (and chunks) there are, or match a filter",
        description="`filter` is on document metadata, in the language of search filters.",
        status_code=200,
        dto=StrictBody[CountRequest],
        return_dto=None,
        responses=ex.ok(DocumentCount, {"documents": 12, "chunks": 40}, "The counts."),
    )
    async def count(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            CountRequest, Body(examples=ex.example({"filter": {"year": {"$gte": 2020}}}))
        ],
    ) -> DocumentCount:
        return await count_documents(
            api.router, tenant_id, data.filter, incarnation=caller.incarnation
        )

    @post(
        "/fetch",
        operation_id="fetchDocuments",
        summary="Read many documents by id, in one request",
        description="1-1000 ids; the answer holds the documents found, in the order asked, "
        "and the ids there is no document for (`missing`).",
        status_code=200,
        dto=StrictBody[FetchRequest],
        return_dto=None,
        responses=ex.ok(
            FetchResponse, {"documents": [ex.DOCUMENT], "missing": ["gone"]}, "What was found."
        ),
    )
    async def fetch(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[FetchRequest, Body(examples=ex.example({"ids": ["doc-1", "gone"]}))],
    ) -> FetchResponse:
        return await fetch_documents(
            api.router,
            tenant_id,
            data.ids,
            include_embeddings=data.include_embeddings,
            incarnation=caller.incarnation,
        )

    @post(
        "/delete",
        operation_id="deleteDocuments",
        summary="Delete many documents: by id, or all a filter matches",
        description="Exactly one of `ids` (1-1000) and `filter` (on document metadata, in the "
        "language of search filters; an empty filter is refused). One statement: all of it "
        "or none. The answer counts what was deleted and lists the ids that were not there.",
        status_code=200,
        dto=StrictBody[DeleteRequest],
        return_dto=None,
        responses=ex.ok(DeleteResponse, {"deleted": 2, "missing": []}, "What was deleted."),
    )
    async def delete_many(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            DeleteRequest,
            Body(
                examples=[
                    *ex.example({"ids": ["doc-1", "doc-2"]}, "by id"),
                    *ex.example({"filter": {"source": {"$eq": "crawler"}}}, "by filter"),
                ]
            ),
        ],
    ) -> DeleteResponse:
        return await delete_documents(
            api.router, tenant_id, ids=data.ids, spec=data.filter, incarnation=caller.incarnation
        )

    @get(
        "/stats",
        operation_id="tenantStats",
        summary="What the tenant's database holds",
        responses=ex.ok(TenantStats, ex.STATS, "Counts and sizes."),
    )
    async def stats(self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam) -> TenantStats:
        return await tenant_stats(api.router, tenant_id, incarnation=caller.incarnation)


def _document_id(request: Request[Any, Any, Any], tenant_id: str, path_value: str) -> str:
    """The document id exactly as the client sent it, percent-decoded once.

    Routing has collapsed "//" and dropped a trailing "/" in the path value, so ids like
    "/intro" or "a//b" are read from the raw path instead.
    """
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    prefix = f"/v1/tenants/{tenant_id}/documents/"
    if raw.startswith(prefix):
        try:
            return unquote(raw[len(prefix) :], errors="strict")
        except UnicodeDecodeError:
            raise InvalidRequest("the document id is not valid UTF-8") from None
    return path_value.removeprefix("/")


def _needs_embedding(doc: DocumentIn) -> bool:
    return doc.text is not None or any(c.embedding is None for c in doc.chunks or ())
