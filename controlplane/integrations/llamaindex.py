"""A LlamaIndex vector store over one tenant of the tenantvec API.

::

    from llama_index.core import StorageContext, VectorStoreIndex
    from controlplane.integrations.llamaindex import TenantvecVectorStore

    store = TenantvecVectorStore(url="http://localhost:8080", key=tenant_key)
    index = VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=5).retrieve("...")

LlamaIndex documents are tenantvec documents and nodes are their chunks: a node's id is
its chunk id, its ``ref_doc_id`` the document, so nodes added in several calls all stay
and ``delete(ref_doc_id)`` drops the document with every node. A node without an
embedding is embedded by the tenant's own embedder. Query modes: ``default`` (dense),
``text_search`` / ``sparse`` (Postgres full text), ``hybrid`` (both, fused by rank;
``alpha`` is the dense share), ``mmr`` (``mmr_threshold`` is lambda). Metadata filters
(``==  !=  >  >=  <  <=  in  nin  is_empty``, nested, ``and``/``or``/``not``) become
tenantvec filters the tenant's metadata index answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, MetadataMode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the LlamaIndex store needs llama-index-core: pip install 'tenantvec[llamaindex]'"
    ) from exc

from controlplane.integrations._mmr import mmr_order
from controlplane.integrations._session import TenantSession, in_batches
from controlplane.retrieval.models import (
    ChunkWrite,
    SearchHit,
    SearchRequest,
    StoredChunk,
)

__all__ = ["TenantvecVectorStore", "to_filter"]

_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}
_CONDITIONS = {FilterCondition.AND: "$and", FilterCondition.OR: "$or"}
_MODES = {
    VectorStoreQueryMode.DEFAULT: "vector",
    VectorStoreQueryMode.MMR: "vector",
    VectorStoreQueryMode.TEXT_SEARCH: "keyword",
    VectorStoreQueryMode.SPARSE: "keyword",
    VectorStoreQueryMode.HYBRID: "hybrid",
}


def to_filter(filters: MetadataFilters) -> dict[str, Any]:
    """LlamaIndex metadata filters as a tenantvec filter (ValueError for the operators
    tenantvec has no equivalent of)."""
    parts: list[dict[str, Any]] = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            parts.append(to_filter(item))
        elif item.operator == FilterOperator.IS_EMPTY:
            parts.append({item.key: {"$exists": False}})
        elif item.operator in _OPERATORS:
            parts.append({item.key: {_OPERATORS[item.operator]: item.value}})
        else:
            raise ValueError(
                f"filter operator {item.operator.value!r} is not supported by tenantvec "
                f"(supported: {', '.join(o.value for o in _OPERATORS)}, is_empty)"
            )
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        inner = parts[0] if len(parts) == 1 else {"$and": parts}
        return {"$not": inner}
    if len(parts) == 1:
        return parts[0]
    return {_CONDITIONS[condition]: parts}


class TenantvecVectorStore(BasePydanticVectorStore):
    """One tenant as a LlamaIndex vector store: ``url`` of the API and a tenant ``key``."""

    stores_text: bool = True
    is_embedding_query: bool = True
    _session: TenantSession = PrivateAttr()

    def __init__(
        self, url: str, key: str, *, timeout: float = 30.0, retry_seconds: float = 10.0
    ) -> None:
        super().__init__(stores_text=True)
        self._session = TenantSession(url, key, timeout=timeout, retry_seconds=retry_seconds)

    def __repr__(self) -> str:
        return f"TenantvecVectorStore(url={self._session.url!r}, tenant={self.tenant!r})"

    @classmethod
    def class_name(cls) -> str:
        return "TenantvecVectorStore"

    @property
    def tenant(self) -> str:
        return self._session.tenant

    @property
    def client(self) -> Any:
        """The sync API client (``controlplane.client.Client``) the store sends with."""
        return self._session.client

    def close(self) -> None:
        self._session.close()

    async def aclose(self) -> None:
        await self._session.aclose()

    # -- writing --------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Write nodes as chunks of their source documents (made if missing); a node id
        written again replaces that chunk alone."""
        for batch in in_batches([_chunk(node) for node in nodes]):
            self._session.client.upsert_chunks(self.tenant, batch)
        return [node.node_id for node in nodes]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        async with self._session.aclient() as client:
            for batch in in_batches([_chunk(node) for node in nodes]):
                await client.upsert_chunks(self.tenant, batch)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete the document with every one of its nodes."""
        self._session.client.delete_documents(self.tenant, ids=[ref_doc_id])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        async with self._session.aclient() as client:
            await client.delete_documents(self.tenant, ids=[ref_doc_id])

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id; their documents' other nodes stay."""
        for batch in _id_batches(node_ids, filters):
            self._session.client.delete_chunks(self.tenant, batch)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        async with self._session.aclient() as client:
            for batch in _id_batches(node_ids, filters):
                await client.delete_chunks(self.tenant, batch)

    def clear(self) -> None:
        """Delete every document of the tenant (and so every node)."""
        client = self._session.client
        while ids := client.list_document_ids(self.tenant, limit=1000).ids:
            client.delete_documents(self.tenant, ids=ids)

    async def aclear(self) -> None:
        async with self._session.aclient() as client:
            while ids := (await client.list_document_ids(self.tenant, limit=1000)).ids:
                await client.delete_documents(self.tenant, ids=ids)

    # -- reading --------------------------------------------------------------------

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """The nodes of ``node_ids`` that exist, in the order asked."""
        found: list[BaseNode] = []
        for batch in _id_batches(node_ids, filters):
            answer = self._session.client.fetch_chunks(self.tenant, batch, include_embeddings=True)
            found += [_stored_node(c) for c in answer.chunks]
        return found

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        found: list[BaseNode] = []
        async with self._session.aclient() as client:
            for batch in _id_batches(node_ids, filters):
                answer = await client.fetch_chunks(self.tenant, batch, include_embeddings=True)
                found += [_stored_node(c) for c in answer.chunks]
        return found

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        request = _request(query)
        return _result(query, self._session.client.search(self.tenant, request).results)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        request = _request(query)
        async with self._session.aclient() as client:
            hits = (await client.search(self.tenant, request)).results
        return _result(query, hits)


def _chunk(node: BaseNode) -> ChunkWrite:
    metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    embedding = node.embedding
    return ChunkWrite(
        id=node.node_id,
        document_id=node.ref_doc_id or node.node_id,
        content=node.get_content(metadata_mode=MetadataMode.NONE) or " ",
        embedding=[float(x) for x in embedding] if embedding is not None else None,
        metadata=metadata,
    )


def _id_batches(node_ids: list[str] | None, filters: MetadataFilters | None) -> list[list[str]]:
    if filters is not None or node_ids is None:
        raise ValueError(
            "tenantvec addresses nodes by id: give node_ids (filters select nodes in a "
            "query, and delete(ref_doc_id) removes a document's nodes)"
        )
    return in_batches(list(dict.fromkeys(node_ids)))


def _node(chunk_id: str, content: str, metadata: dict[str, Any] | None) -> BaseNode:
    meta = dict(metadata or {})
    if "_node_content" in meta:
        node = metadata_dict_to_node(meta, text=content)
    else:  # a chunk written without LlamaIndex (by the documents API, say)
        from llama_index.core.schema import TextNode

        node = TextNode(text=content, metadata=meta)
    node.id_ = chunk_id
    return node


def _stored_node(chunk: StoredChunk) -> BaseNode:
    node = _node(chunk.id, chunk.content, chunk.metadata)
    node.embedding = chunk.embedding
    return node


def _request(query: VectorStoreQuery) -> SearchRequest:
    mode = _MODES.get(query.mode)
    if mode is None:
        raise ValueError(
            f"query mode {query.mode.value!r} is not one tenantvec runs "
            f"(supported: {', '.join(m.value for m in _MODES)})"
        )
    if query.node_ids:
        raise ValueError("tenantvec does not restrict a query to node ids; use filters")
    spec: dict[str, Any] | None = to_filter(query.filters) if query.filters else None
    if query.doc_ids:
        by_document = {"ref_doc_id": {"$in": list(query.doc_ids)}}
        spec = {"$and": [spec, by_document]} if spec else by_document
    is_mmr = query.mode == VectorStoreQueryMode.MMR
    k = query.similarity_top_k
    if is_mmr:
        # Candidates to choose from: 4 k (at least 20), at most 1000 (the server's
        # default TENANTVEC_MAX_K) unless k itself asks for more.
        k = max(k, min(max(k * 4, 20), 1000))
    vector = [float(x) for x in query.query_embedding] if query.query_embedding else None
    text = query.query_str if (mode != "vector" or vector is None) else None
    return SearchRequest(
        text=text,
        vector=vector if mode != "keyword" else None,
        mode=mode,  # type: ignore[arg-type]
        k=k,
        # LlamaIndex's alpha is the dense share; tenantvec weighs the keyword ranking.
        keyword_weight=1 - query.alpha if query.alpha is not None else 0.5,
        filter=spec,
        include_embeddings=is_mmr,
    )


def _result(query: VectorStoreQuery, hits: list[SearchHit]) -> VectorStoreQueryResult:
    if query.mode == VectorStoreQueryMode.MMR:
        lambda_mult = query.mmr_threshold if query.mmr_threshold is not None else 0.5
        order = mmr_order(
            [h.score for h in hits],
            [h.embedding or [] for h in hits],
            k=query.similarity_top_k,
            lambda_mult=lambda_mult,
        )
        hits = [hits[i] for i in order]
    return VectorStoreQueryResult(
        nodes=[_node(h.chunk_id, h.content or "", h.metadata) for h in hits],
        similarities=[h.score for h in hits],
        ids=[h.chunk_id for h in hits],
    )
