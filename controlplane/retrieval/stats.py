"""What a tenant's database holds: counts and sizes."""

from __future__ import annotations

from typing import Any

from controlplane.retrieval.models import TenantStats
from controlplane.routing import TenantConnection, TenantRouter

__all__ = ["tenant_stats"]

_STATS = """
SELECT
    (SELECT count(*) FROM documents),
    (SELECT count(*) FROM chunks),
    coalesce((SELECT max(version) FROM schema_migrations), 0),
    coalesce(pg_relation_size(to_regclass('chunks_embedding_idx')), 0),
    pg_total_relation_size('chunks') + pg_total_relation_size('documents'),
    pg_database_size(current_database())
"""


async def tenant_stats(
    router: TenantRouter, tenant_id: str, *, incarnation: str | None = None
) -> TenantStats:
    route = await router.route(tenant_id, incarnation=incarnation)

    async def run(tc: TenantConnection) -> Any:
        return await (await tc.conn.execute(_STATS)).fetchone()

    row = await router.read(route, run)
    assert row is not None
    schema = route.schema
    documents, chunks, version, index_bytes, table_bytes, database_bytes = row
    return TenantStats(
        tenant=tenant_id,
        documents=documents,
        chunks=chunks,
        dims=schema.dims,
        metric=schema.metric.value,
        index=schema.index.kind.value,
        schema_version=version,
        index_bytes=index_bytes,
        table_bytes=table_bytes,
        database_bytes=database_bytes,
    )
