"""Importing a ChromaDB collection into a tenant: ids, documents, metadatas, embeddings.

Each Chroma record becomes a document with one chunk carrying the record's vector
as is. The copy goes in batches, each committed together with the import's progress
(an ``ingestion_jobs`` row of kind ``chroma-import`` in the tenant database), so an
interrupted import started again goes on from the last batch it finished. A tenant
that does not exist is created with the collection's dimensions and distance, whatever
they are, and -- unless told otherwise -- no embedder: its vectors stay the collection's,
searched by the vectors callers send. The report names the embedding function the
collection records and the tenantvec embedder that matches it, if there is one, for
text queries (``set-embedder``). At the end the copy is verified: the counts, and a
random sample of records whose vectors and documents must be identical on both sides.

``chromadb`` is an optional dependency (``pip install tenantvec[chroma]``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.context import PlaneContext
from controlplane.errors import ConfigurationError, InvalidRequest
from controlplane.failpoints import failpoint
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.model.embedder import NO_EMBEDDER, EmbedderSpec, describe_embedder
from controlplane.retrieval.bulk import bulk_load, chunk_count, wants_bulk
from controlplane.retrieval.documents import prepare_documents, validate_document, write_documents
from controlplane.retrieval.models import ChunkIn, DocumentIn
from controlplane.routing import TenantRouter, use_vector_types
from tenantvec_schema.spec import MAX_HALF_INDEXED_DIMS, IndexKind, IndexSpec, Metric

__all__ = ["ChromaImportReport", "import_chroma"]

KIND = "chroma-import"
SAMPLE = 20
# Chroma's spaces and ours order results alike: its "l2" is the squared distance, its
# "ip" is 1 - dot product.
_METRICS = {"l2": Metric.L2, "cosine": Metric.COSINE, "ip": Metric.IP}
# Chroma's embedding functions that a tenantvec provider speaks for: their name in a
# collection's configuration, and ours.
_PROVIDERS = {"openai": "openai", "voyageai": "voyage"}


@dataclass
class ChromaImportReport:
    tenant: str
    collection: str
    created_tenant: bool
    resumed_from: int
    records: int  # in the collection
    copied: int  # documents of the tenant that came from the collection
    dims: int = 0
    # The tenant's embedder, as describe_embedder says it ("none (...)" for none).
    embedder: str = ""
    # The embedding function the collection records ("openai:text-embedding-3-small",
    # "chroma:default"), and the tenantvec embedder that makes the same vectors.
    source_embedding: str | None = None
    matching_embedder: str | None = None
    sampled: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return self.records == self.copied and not self.mismatched


def _chromadb() -> Any:
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError:
        raise ConfigurationError(
            "importing from ChromaDB needs the chromadb package: pip install 'tenantvec[chroma]'"
        ) from None
    return chromadb, ChromaSettings


def _open_collection(path: Path, name: str | None) -> Any:
    if not path.is_dir():
        raise InvalidRequest(f"{path} is not a directory holding a Chroma store")
    chromadb, chroma_settings = _chromadb()
    client = chromadb.PersistentClient(
        path=str(path), settings=chroma_settings(anonymized_telemetry=False)
    )
    names = sorted(c.name for c in client.list_collections())
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise InvalidRequest(
                f"the store holds collections {listed}; choose one with --collection"
            )
        name = names[0]
    if name not in names:
        raise InvalidRequest(f"no collection {name!r} in {path} (it holds: {', '.join(names)})")
    return client.get_collection(name)


def _configuration(collection: Any) -> dict[str, Any]:
    """The collection's configuration as Chroma stored it. Not ``.configuration``: that
    builds the collection's embedding function, which fails where its package or key is
    missing (a store made with OpenAI's function, read where ``openai`` is not installed)
    -- and tenantvec needs none of it."""
    stored = getattr(collection, "configuration_json", None)
    return stored if isinstance(stored, dict) else {}


def _metric(collection: Any) -> Metric:
    space = (_configuration(collection).get("hnsw") or {}).get("space")
    space = space or (collection.metadata or {}).get("hnsw:space") or "l2"
    if space not in _METRICS:
        raise InvalidRequest(f"Chroma distance {space!r} has no pgvector counterpart")
    return _METRICS[space]


async def import_chroma(
    plane: PlaneContext,
    router: TenantRouter,
    *,
    path: Path,
    tenant_id: str,
    collection_name: str | None = None,
    embedder: EmbedderSpec | None = None,
    batch: int = 500,
    actor: str,
    on_start: Callable[[int, int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ChromaImportReport:
    """Copy the collection into the tenant (created if missing, with ``embedder`` or
    none); resumable; verified."""
    loop_started = asyncio.get_running_loop().time()
    collection = await asyncio.to_thread(_open_collection, path, collection_name)
    name = collection.name
    records = await asyncio.to_thread(collection.count)
    first = await asyncio.to_thread(collection.get, limit=1, include=["embeddings"])
    if not first["ids"]:
        raise InvalidRequest(f"collection {name!r} is empty: nothing to import")
    dims = len(first["embeddings"][0])
    metric = _metric(collection)

    source_embedding, matching = _embedding_function(collection, dims)

    created = False
    tenant = await plane.catalog.find_tenant(tenant_id)
    if tenant is None:
        # Chroma indexes any size; pgvector up to 4,000 dimensions (at half precision).
        index = IndexSpec(kind=IndexKind.HNSW if dims <= MAX_HALF_INDEXED_DIMS else IndexKind.NONE)
        request = TenantRequest(
            id=tenant_id,
            dims=dims,
            metric=metric,
            index=index,
            embedder=embedder if embedder is not None else NO_EMBEDDER,
        )
        tenant = await create_tenant(plane, request, actor=actor)
        created = True
    elif tenant.dims != dims:
        raise InvalidRequest(
            f"tenant {tenant_id} has {tenant.dims} dimensions, collection {name!r} has {dims}"
        )
    elif embedder is not None and embedder != tenant.embedder:
        raise InvalidRequest(
            f"tenant {tenant_id} exists with embedder {describe_embedder(tenant.embedder)}: "
            "--embedder only applies to a tenant the import creates (change it with "
            "tenantctl tenants set-embedder)"
        )
    route = await router.route(tenant_id)
    source = f"chroma:{name}"
    job_id, done = await _job(router, tenant_id, str(path.resolve()), name, records)
    report = ChromaImportReport(
        tenant_id,
        name,
        created,
        done,
        records,
        0,
        dims=dims,
        embedder=describe_embedder(tenant.embedder),
        source_embedding=source_embedding,
        matching_embedder=matching,
    )
    if on_start is not None:
        on_start(records, done)

    async def copy_pages() -> None:
        offset = done
        while True:
            page = await asyncio.to_thread(
                collection.get,
                limit=batch,
                offset=offset,
                include=["embeddings", "documents", "metadatas"],
            )
            if not page["ids"]:
                break
            docs = [
                _document(record_id, vector, text, metadata, source)
                for record_id, vector, text, metadata in zip(
                    page["ids"],
                    page["embeddings"],
                    page["documents"],
                    page["metadatas"],
                    strict=True,
                )
            ]
            for doc in docs:
                validate_document(route, doc, f"record {doc.id!r}")
            prepared = await prepare_documents(router, route, docs)
            async with router.connection(route) as tc, tc.conn.transaction():
                await write_documents(tc.conn, route, prepared)
                await tc.conn.execute(
                    "UPDATE ingestion_jobs SET processed = processed + %s, updated_at = now() "
                    "WHERE id = %s",
                    (len(docs), job_id),
                )
            offset += len(docs)
            if on_batch is not None:
                on_batch(len(docs))
            failpoint(plane.settings, "chroma.after_batch")

    # A large import into a small tenant builds its vector index once (retrieval/bulk.py).
    if wants_bulk(tenant, records - done, await chunk_count(plane, tenant)):
        async with bulk_load(plane, tenant_id, rows=records - done, actor=actor):
            await copy_pages()
    else:
        await copy_pages()

    async with router.connection(route) as tc:
        await tc.conn.execute(
            "UPDATE ingestion_jobs SET state = 'completed', finished_at = now(), "
            "updated_at = now() WHERE id = %s",
            (job_id,),
        )
        cur = await tc.conn.execute("SELECT count(*) FROM documents WHERE source = %s", (source,))
        row = await cur.fetchone()
    report.copied = int(row[0]) if row else 0
    report.sampled, report.mismatched = await _verify(router, tenant_id, collection)
    report.seconds = round(asyncio.get_running_loop().time() - loop_started, 3)
    return report


def _embedding_function(collection: Any, dims: int) -> tuple[str | None, str | None]:
    """What the collection says made its vectors, and the tenantvec embedder that makes
    the same ones (None where there is none: Chroma's default ONNX model, a custom one)."""
    function = _configuration(collection).get("embedding_function")
    if not isinstance(function, dict) or function.get("type") != "known":
        return None, None
    name = str(function.get("name") or "")
    config = function.get("config") if isinstance(function.get("config"), dict) else {}
    model = config.get("model_name") if isinstance(config, dict) else None
    if name == "default":
        return "chroma:default (all-MiniLM-L6-v2)", None
    provider = _PROVIDERS.get(name)
    if provider is None or not isinstance(model, str):
        return f"chroma:{name}", None
    try:
        spec = EmbedderSpec(provider=provider, model=model)
        spec.check_dims(dims)
    except InvalidRequest:
        return f"{name}:{model}", None
    return f"{name}:{model}", spec.identity


def _document(
    record_id: str, vector: Any, text: str | None, metadata: dict[str, Any] | None, source: str
) -> DocumentIn:
    values = vector.tolist() if hasattr(vector, "tolist") else list(vector)
    meta = dict(metadata or {})
    return DocumentIn(
        id=record_id,
        source=source,
        metadata=meta,
        chunks=[ChunkIn(content=text or "", embedding=values)],
    )


async def _job(
    router: TenantRouter, tenant_id: str, path: str, collection: str, records: int
) -> tuple[str, int]:
    """The unfinished import of this collection to resume, or a new one: (id, done)."""
    payload = {"path": path, "collection": collection}
    async with router.connection(tenant_id) as tc:
        cur = await tc.conn.execute(
            "SELECT id, processed FROM ingestion_jobs WHERE kind = %s AND payload = %s "
            "AND state IN ('pending', 'running') ORDER BY created_at DESC LIMIT 1",
            (KIND, Jsonb(payload)),
        )
        row = await cur.fetchone()
        if row is not None:
            return str(row[0]), int(row[1])
        cur = await tc.conn.execute(
            "INSERT INTO ingestion_jobs (kind, state, total, payload, started_at) "
            "VALUES (%s, 'running', %s, %s, now()) RETURNING id",
            (KIND, records, Jsonb(payload)),
        )
        created = await cur.fetchone()
    assert created is not None
    return str(created[0]), 0


async def _verify(
    router: TenantRouter, tenant_id: str, collection: Any
) -> tuple[list[str], list[str]]:
    """A random sample of ids, and those whose vector or document differ in the tenant."""
    ids = (await asyncio.to_thread(collection.get, include=[]))["ids"]
    sample = sorted(random.sample(list(ids), min(SAMPLE, len(ids))))
    theirs = await asyncio.to_thread(
        collection.get, ids=sample, include=["embeddings", "documents"]
    )
    expected = {
        record_id: (
            [float(x) for x in (v.tolist() if hasattr(v, "tolist") else v)],
            text or "",
        )
        for record_id, v, text in zip(
            theirs["ids"], theirs["embeddings"], theirs["documents"], strict=True
        )
    }
    async with router.connection(tenant_id) as tc:
        await use_vector_types(tc.conn)  # vectors read back
        cur = await tc.conn.execute(
            "SELECT document_id, embedding, content FROM chunks "
            "WHERE document_id = ANY(%s) AND ordinal = 0",
            (sample,),
        )
        ours = {doc_id: (vec.to_list(), content) for doc_id, vec, content in await cur.fetchall()}
    # Both sides store float32: equal values compare equal exactly.
    mismatched = [
        record_id for record_id in sample if ours.get(record_id) != expected.get(record_id)
    ]
    return sample, mismatched
