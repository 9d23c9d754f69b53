"""A LangChain ``VectorStore`` over one tenant of the tenantvec API.

::

    from controlplane.integrations.langchain import TenantvecVectorStore

    store = TenantvecVectorStore(url="http://localhost:8080", key=tenant_key)
    store.add_documents(docs)                       # LangChain Documents, ids kept
    store.similarity_search("refund policy", k=4, filter={"lang": "en"})
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 5})

A LangChain document is a tenantvec document of one chunk: its ``id`` is the document
id, its ``metadata`` the document's. Without ``embedding`` the tenant's own embedder
embeds texts and queries on the server; with a LangChain ``Embeddings`` they are
embedded here and sent as vectors (as many dimensions as the tenant has).

Filters are tenantvec's (``{"lang": "en"}``, ``{"year": {"$gte": 2020}}``, ``$and``,
``$or``, ``$not``, ...: docs/api.md); ``mode="hybrid"`` or ``"keyword"`` searches full
text as well. Every method has its native async twin (``aadd_documents``,
``asimilarity_search``, ...), sent with the async client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the LangChain store needs langchain-core: pip install 'tenantvec[langchain]'"
    ) from exc

from controlplane.integrations._mmr import mmr_order
from controlplane.integrations._session import TenantSession, in_batches
from controlplane.retrieval.models import (
    ChunkIn,
    DocumentIn,
    SearchHit,
    SearchRequest,
    UpsertRequest,
)

__all__ = ["TenantvecVectorStore"]

# What a search takes besides the query and k, passed through to SearchRequest.
_SEARCH_OPTIONS = ("filter", "mode", "keyword_weight", "min_similarity", "ef_search", "probes")


class TenantvecVectorStore(VectorStore):
    """One tenant as a LangChain vector store: ``url`` of the API and a tenant ``key``."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        embedding: Embeddings | None = None,
        timeout: float = 30.0,
        retry_seconds: float = 10.0,
    ) -> None:
        self._session = TenantSession(url, key, timeout=timeout, retry_seconds=retry_seconds)
        self._embedding = embedding

    def __repr__(self) -> str:
        return f"TenantvecVectorStore(url={self._session.url!r}, tenant={self.tenant!r})"

    @property
    def tenant(self) -> str:
        """The tenant the key opens."""
        return self._session.tenant

    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> TenantvecVectorStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def __aenter__(self) -> TenantvecVectorStore:
        """``async with store:`` keeps one async client (and its connections) open."""
        await self._session.open_async()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
        self.close()

    async def aclose(self) -> None:
        await self._session.aclose()

    # -- writing --------------------------------------------------------------------

    def _batches(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None,
        ids: list[str] | None,
        vectors: list[list[float]] | None,
    ) -> tuple[list[str], list[UpsertRequest]]:
        texts = list(texts)
        given = list(ids) if ids is not None else [None] * len(texts)
        if len(given) != len(texts) or (metadatas is not None and len(metadatas) != len(texts)):
            raise ValueError("texts, metadatas and ids must be as many")
        document_ids = [i if i is not None else str(uuid.uuid4()) for i in given]
        documents = [
            DocumentIn(
                id=document_id,
                metadata=dict(metadatas[n]) if metadatas else {},
                chunks=[ChunkIn(content=text, embedding=vectors[n] if vectors else None)],
            )
            for n, (document_id, text) in enumerate(zip(document_ids, texts, strict=True))
        ]
        batches = [UpsertRequest(documents=batch) for batch in in_batches(documents)]
        return document_ids, batches

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert one document per text (an id given again replaces that document)."""
        texts = list(texts)
        vectors = _floats(self._embedding.embed_documents(texts)) if self._embedding else None
        document_ids, batches = self._batches(texts, metadatas, ids, vectors)
        for batch in batches:
            self._session.upsert(batch)
        return document_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        vectors = (
            _floats(await self._embedding.aembed_documents(texts)) if self._embedding else None
        )
        document_ids, batches = self._batches(texts, metadatas, ids, vectors)
        for batch in batches:
            await self._session.aupsert(batch)
        return document_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (ids not there are no error); ``filter=`` instead
        deletes every document it matches."""
        for request in _deletions(ids, kwargs.get("filter")):
            self._session.client.delete_documents(self.tenant, **request)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        async with self._session.aclient() as client:
            for request in _deletions(ids, kwargs.get("filter")):
                await client.delete_documents(self.tenant, **request)
        return True

    # -- reading --------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of ``ids`` that exist, in the order asked."""
        found: list[Document] = []
        for batch in _chunked(list(ids)):
            answer = self._session.client.fetch_documents(self.tenant, batch)
            found += [_document(d.id, d.chunks, d.metadata) for d in answer.documents]
        return found

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        found: list[Document] = []
        async with self._session.aclient() as client:
            for batch in _chunked(list(ids)):
                answer = await client.fetch_documents(self.tenant, batch)
                found += [_document(d.id, d.chunks, d.metadata) for d in answer.documents]
        return found

    def _request(
        self, query: str | None, vector: list[float] | None, k: int, **kwargs: Any
    ) -> SearchRequest:
        options = {name: kwargs[name] for name in _SEARCH_OPTIONS if kwargs.get(name) is not None}
        mode = options.get("mode", "vector")
        return SearchRequest(
            # Keyword and hybrid modes search the query's words, vector mode its vector.
            text=query if (vector is None or mode != "vector") else None,
            vector=vector,
            k=k,
            include_embeddings=bool(kwargs.get("include_embeddings", False)),
            **options,
        )

    def _query_vector(self, query: str) -> list[float] | None:
        return _floats([self._embedding.embed_query(query)])[0] if self._embedding else None

    async def _aquery_vector(self, query: str) -> list[float] | None:
        if self._embedding is None:
            return None
        return _floats([await self._embedding.aembed_query(query)])[0]

    def _search(self, request: SearchRequest) -> list[SearchHit]:
        return self._session.client.search(self.tenant, request).results

    async def _asearch(self, request: SearchRequest) -> list[SearchHit]:
        async with self._session.aclient() as client:
            return (await client.search(self.tenant, request)).results

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and scores, best first: the similarity in vector mode, the fused
        rank score in hybrid mode, ts_rank_cd in keyword mode."""
        request = self._request(query, self._query_vector(query), k, **kwargs)
        return [(_hit_document(h), h.score) for h in self._search(request)]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        request = self._request(query, await self._aquery_vector(query), k, **kwargs)
        return [(_hit_document(h), h.score) for h in await self._asearch(request)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [_hit_document(h) for h in self._search(self._request(None, embedding, k, **kwargs))]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        request = self._request(None, embedding, k, **kwargs)
        return [_hit_document(h) for h in await self._asearch(request)]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """``fetch_k`` nearest chunks (with their vectors), then ``k`` of them chosen
        for relevance and diversity; works with the tenant's embedder too (the hits'
        similarities are the relevance)."""
        kwargs = {**kwargs, "include_embeddings": True, "mode": "vector"}
        hits = self._search(self._request(query, self._query_vector(query), fetch_k, **kwargs))
        return [_hit_document(h) for h in _diverse(hits, k, lambda_mult)]

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        kwargs = {**kwargs, "include_embeddings": True, "mode": "vector"}
        vector = await self._aquery_vector(query)
        hits = await self._asearch(self._request(query, vector, fetch_k, **kwargs))
        return [_hit_document(h) for h in _diverse(hits, k, lambda_mult)]

    def _select_relevance_score_fn(self) -> Any:
        # Vector-mode scores are similarities already (1 is the same direction).
        return lambda score: score

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        url: str | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> TenantvecVectorStore:
        """A store for ``url`` and ``key`` with ``texts`` added."""
        if url is None or key is None:
            raise ValueError("from_texts needs url= and key= (a tenant key)")
        store = cls(url, key, embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _floats(vectors: Sequence[Sequence[Any]]) -> list[list[float]]:
    """Plain floats: embedders often hand back numpy numbers, which JSON does not take."""
    return [[float(x) for x in vector] for vector in vectors]


def _chunked(ids: list[str]) -> list[list[str]]:
    return in_batches(list(dict.fromkeys(ids)))


def _deletions(ids: list[str] | None, spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    if (ids is None) == (spec is None):
        raise ValueError("delete takes ids, or filter= (one of the two)")
    if spec is not None:
        return [{"filter": spec}]
    return [{"ids": batch} for batch in _chunked(ids or [])]


def _document(document_id: str, chunks: Sequence[Any], metadata: dict[str, Any]) -> Document:
    return Document(
        id=document_id, page_content="\n\n".join(c.content for c in chunks), metadata=metadata
    )


def _hit_document(hit: SearchHit) -> Document:
    return Document(id=hit.document_id, page_content=hit.content or "", metadata=hit.metadata or {})


def _diverse(hits: list[SearchHit], k: int, lambda_mult: float) -> list[SearchHit]:
    order = mmr_order(
        [h.score for h in hits], [h.embedding or [] for h in hits], k=k, lambda_mult=lambda_mult
    )
    return [hits[i] for i in order]
