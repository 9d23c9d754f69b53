"""Writing a batch of documents while isolating the ones that fail.

An upsert (``documents.upsert_documents``) is all or nothing, which is what an API
caller wants. Bulk ingestion -- ``tenantctl ingest``, ingestion jobs -- wants the
opposite: a document the provider refuses, or that is malformed, is reported and the
rest goes in. Each batch still commits atomically.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.errors import ChunkIdTaken, DocumentRejected, EmbeddingFailed, InvalidRequest
from controlplane.retrieval.documents import (
    PreparedDocument,
    prepare_documents,
    validate_document,
    write_documents,
)
from controlplane.retrieval.models import DocumentIn, DocumentResult
from controlplane.routing import Route, TenantRouter

__all__ = ["BatchOutcome", "ingest_batch", "prepare_isolating_failures"]


@dataclass
class BatchOutcome:
    results: list[DocumentResult] = field(default_factory=list)
    # (document id, why it was left out)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.results if r.status != "unchanged")


async def ingest_batch(
    router: TenantRouter, tenant_id: str, docs: Sequence[DocumentIn]
) -> BatchOutcome:
    """Write what can be written of ``docs`` in one transaction; report the rest."""
    route = await router.route(tenant_id)
    outcome = BatchOutcome()
    valid: dict[str, DocumentIn] = {}
    for doc in docs:
        try:
            validate_document(route, doc, f"document {doc.id!r}")
        except InvalidRequest as exc:
            outcome.failures.append((doc.id, str(exc)))
            continue
        valid[doc.id] = doc  # a later duplicate id wins, as it would in two batches
    prepared, failures = await prepare_isolating_failures(router, route, list(valid.values()))
    outcome.failures.extend(failures)
    while prepared:
        try:
            async with router.connection(route) as tc, tc.conn.transaction():
                written = await write_documents(tc.conn, route, prepared)
        except (DocumentRejected, ChunkIdTaken) as exc:
            if exc.document_id is None:
                raise
            # The database refused one document: report it, write the others.
            outcome.failures.append((exc.document_id, str(exc)))
            prepared = [p for p in prepared if p.doc.id != exc.document_id]
            continue
        outcome.results = list(written.values())
        break
    return outcome


async def prepare_isolating_failures(
    router: TenantRouter, route: Route, docs: list[DocumentIn]
) -> tuple[list[PreparedDocument], list[tuple[str, str]]]:
    """Prepare a batch; if the provider refuses it, find the documents it refuses.

    When it refuses every one of them, the fault is not in the documents (a wrong
    model, a revoked key): the error goes up and stops the caller.
    """
    if not docs:
        return [], []
    try:
        return await prepare_documents(router, route, docs), []
    except EmbeddingFailed as exc:
        last: EmbeddingFailed = exc
    prepared: list[PreparedDocument] = []
    failures: list[tuple[str, str]] = []
    for doc in docs:
        try:
            prepared.extend(await prepare_documents(router, route, [doc]))
        except EmbeddingFailed as exc:
            last = exc
            failures.append((doc.id, str(exc)))
    if not prepared:
        raise last
    return prepared, failures
