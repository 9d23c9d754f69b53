"""Embedding the chunks that need it: ``tenantctl backfill``.

A chunk needs embedding when it has no vector (its tenant's dimensions changed, or an
earlier run was interrupted) or when its vector was made by a model other than the
tenant's current one (the model changed, or a fallback embedder stood in). Vectors the
caller sent are left alone unless ``all_chunks`` is asked for. The work goes in id
order, batch by batch, each batch committed on its own: an interrupted backfill
resumes where it stopped when run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pgvector import Vector

from controlplane.embedding import Purpose
from controlplane.routing import TenantRouter

__all__ = ["BackfillReport", "backfill"]

_STALE = "(embedding IS NULL OR (embedder IS NOT NULL AND embedder <> %(target)s))"
_ANY_OTHER = "(embedding IS NULL OR embedder IS DISTINCT FROM %(target)s)"


@dataclass(frozen=True)
class BackfillReport:
    tenant: str
    embedder: str
    embedded: int
    seconds: float


async def backfill(
    router: TenantRouter,
    tenant_id: str,
    *,
    all_chunks: bool = False,
    batch: int = 64,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Embed every chunk that needs it with the tenant's current embedder."""
    route = await router.route(tenant_id)
    embedder = router.plane.embedders.for_tenant(tenant_id, route.embedder, "a backfill")
    assert route.embedder is not None  # for_tenant refused a tenant without one
    target = route.embedder.identity
    condition = _ANY_OTHER if all_chunks else _STALE
    started = time.monotonic()
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            f"SELECT count(*) FROM chunks WHERE {condition}", {"target": target}
        )
        row = await cur.fetchone()
    if on_start is not None:
        on_start(int(row[0]) if row else 0)
    embedded, after = 0, 0
    while True:
        async with router.connection(route) as tc:
            cur = await tc.conn.execute(
                f"SELECT id, content FROM chunks WHERE id > %(after)s AND {condition} "
                "ORDER BY id LIMIT %(batch)s",
                {"after": after, "target": target, "batch": batch},
            )
            rows = await cur.fetchall()
        if not rows:
            break
        result = await embedder.embed(
            [content for _, content in rows], dims=route.schema.dims, purpose=Purpose.DOCUMENT
        )
        async with (
            router.connection(route) as tc,
            tc.conn.transaction(),
            tc.conn.cursor() as cur,
        ):
            await cur.executemany(
                "UPDATE chunks SET embedding = %s, embedder = %s WHERE id = %s",
                [
                    (Vector(vector), result.identity, chunk_id)
                    for (chunk_id, _), vector in zip(rows, result.vectors, strict=True)
                ],
            )
        embedded += len(rows)
        after = rows[-1][0]
        if on_batch is not None:
            on_batch(len(rows))
    return BackfillReport(tenant_id, target, embedded, round(time.monotonic() - started, 3))
