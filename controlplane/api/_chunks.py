"""Data-plane endpoints for chunks one at a time: write, read and delete by chunk id.

Guarded like the document endpoints (``tenant_access``): the caller's own tenant only,
through the router, as that tenant's role.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, post, put
from litestar.params import Body

from controlplane.api import _examples as ex
from controlplane.api._auth import tenant_access
from controlplane.api._body import StrictBody
from controlplane.api._caller import CallerDep
from controlplane.api._data import TenantIdParam
from controlplane.api._state import ApiDep
from controlplane.retrieval.chunks import delete_chunks, fetch_chunks, upsert_chunks
from controlplane.retrieval.models import (
    ChunkDeleteRequest,
    ChunkFetchRequest,
    ChunkFetchResponse,
    ChunkUpsertRequest,
    ChunkUpsertResponse,
    DeleteResponse,
)

__all__ = ["ChunksController"]


class ChunksController(Controller):
    path = "/v1/tenants/{tenant_id:str}/chunks"
    tags = ["data"]
    guards = [tenant_access]

    @put(
        "",
        operation_id="upsertChunks",
        summary="Write chunks one at a time, leaving their documents' other chunks",
        description="Each chunk replaces the chunk of its `id` or joins its document after "
        "the last chunk; a document that does not exist yet is made (no title, empty "
        "metadata). Chunk ids are unique in the tenant: an id that a chunk of another "
        "document has is a 409. Atomic: on any error nothing of the batch is written.",
        status_code=200,
        dto=StrictBody[ChunkUpsertRequest],
        return_dto=None,
        responses=ex.ok(
            ChunkUpsertResponse,
            {
                "chunks": [
                    {"id": "node-7f3a", "document_id": "doc-1", "ordinal": 1, "status": "created"}
                ]
            },
            "What happened to each chunk, in request order.",
            errors=(*ex.EMBEDS, 409),
        ),
    )
    async def upsert(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[ChunkUpsertRequest, Body(examples=ex.example(ex.CHUNK_WRITES))],
    ) -> ChunkUpsertResponse:
        return await upsert_chunks(
            api.router, tenant_id, data.chunks, incarnation=caller.incarnation
        )

    @post(
        "/fetch",
        operation_id="fetchChunks",
        summary="Read chunks by id",
        description="1-1000 chunk ids; the answer holds the chunks found, in the order asked, "
        "and the ids there is no chunk for (`missing`).",
        status_code=200,
        dto=StrictBody[ChunkFetchRequest],
        return_dto=None,
        responses=ex.ok(
            ChunkFetchResponse,
            {"chunks": [ex.STORED_CHUNK], "missing": ["doc-9#0"]},
            "What was found.",
        ),
    )
    async def fetch(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            ChunkFetchRequest, Body(examples=ex.example({"ids": ["node-7f3a", "doc-9#0"]}))
        ],
    ) -> ChunkFetchResponse:
        return await fetch_chunks(
            api.router,
            tenant_id,
            data.ids,
            include_embeddings=data.include_embeddings,
            incarnation=caller.incarnation,
        )

    @post(
        "/delete",
        operation_id="deleteChunks",
        summary="Delete chunks by id, leaving their documents' other chunks",
        description="1-1000 chunk ids, in one statement. Their documents stay, with the "
        "chunks they have left.",
        status_code=200,
        dto=StrictBody[ChunkDeleteRequest],
        return_dto=None,
        responses=ex.ok(DeleteResponse, {"deleted": 1, "missing": []}, "What was deleted."),
    )
    async def delete_many(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[ChunkDeleteRequest, Body(examples=ex.example({"ids": ["node-7f3a"]}))],
    ) -> DeleteResponse:
        return await delete_chunks(api.router, tenant_id, data.ids, incarnation=caller.incarnation)
