"""Rows for the lifecycle tests: documents of a small 3-d tenant, loaded through the
library, and what a tenant holds (its fingerprint and its HNSW indexes) read back."""

from __future__ import annotations

from controlplane.lifecycle.backup import fingerprint
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.routing import TenantRouter

__all__ = ["documents", "load", "rows_of"]


def documents(n: int, start: int = 0) -> list[DocumentIn]:
    return [
        DocumentIn(
            id=f"doc-{i}",
            title=None if i % 3 else f"Title {i}",
            metadata={"n": i, "lang": "en" if i % 2 else "fr"},
            chunks=[
                ChunkIn(content=f"document {i} chunk {c}", embedding=[1.0, i / 10, c / 10])
                for c in range(1 + i % 3)
            ],
        )
        for i in range(start, start + n)
    ]


async def load(plane: ControlPlane, tenant_id: str, n: int, start: int = 0) -> None:
    async with TenantRouter.open(plane) as router:
        await upsert_documents(router, tenant_id, UpsertRequest(documents=documents(n, start)))


async def rows_of(plane: ControlPlane, tenant_id: str) -> tuple[object, ...]:
    tenant = await plane.catalog.get_tenant(tenant_id)
    async with connect(plane.service_conninfo(tenant), where="test", timeout=5) as conn:
        found = await fingerprint(conn)
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'chunks' "
                "AND indexdef ILIKE '%USING hnsw%'"
            )
        ).fetchone()
    return found, row[0] if row else 0
