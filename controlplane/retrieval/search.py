"""Vector search in one tenant's database.

The ORDER BY uses the tenant's own distance operator, so its HNSW or IVFFlat index
applies. With a metadata filter or a similarity floor, pgvector's iterative index scan
is turned on for the query: the index keeps producing candidates until ``k`` rows pass
the filter, instead of filtering a fixed ``ef_search`` candidates after the fact.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pgvector import Vector
from psycopg import sql
from psycopg.types.json import Jsonb

from controlplane.retrieval.models import SearchHit, SearchRequest, SearchResponse
from controlplane.retrieval.validation import check_min_similarity, check_vector, score_sql
from controlplane.routing import TenantRouter
from tenant_schema.spec import IndexKind

__all__ = ["search"]


async def search(router: TenantRouter, tenant_id: str, request: SearchRequest) -> SearchResponse:
    """The ``k`` chunks nearest to ``request.vector``, best first."""
    route = await router.route(tenant_id)
    schema = route.schema
    check_vector(
        request.vector,
        tenant_id=tenant_id,
        dims=schema.dims,
        metric=schema.metric,
        where="vector",
    )
    params: dict[str, Any] = {"v": Vector(request.vector), "k": request.k}
    conditions: list[sql.Composable] = []
    if request.filter is not None:
        conditions.append(sql.SQL("metadata @> %(filter)s"))
        params["filter"] = Jsonb(request.filter)
    if request.min_similarity is not None:
        params["max_distance"] = check_min_similarity(request.min_similarity, schema.metric)
        conditions.append(
            sql.SQL("embedding {op} %(v)s <= %(max_distance)s").format(
                op=sql.SQL(schema.metric.operator)
            )
        )
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    columns = [sql.SQL("document_id"), sql.SQL("ordinal")]
    if request.include_content:
        columns.append(sql.SQL("content"))
    if request.include_metadata:
        columns.append(sql.SQL("metadata"))
    query = sql.SQL(
        "SELECT {columns}, {score} AS score FROM ("
        "SELECT {columns}, embedding {op} %(v)s AS distance FROM chunks{where} "
        "ORDER BY embedding {op} %(v)s LIMIT %(k)s) AS nearest ORDER BY distance"
    ).format(
        columns=sql.SQL(", ").join(columns),
        score=sql.SQL(score_sql(schema.metric)),
        where=where,
        op=sql.SQL(schema.metric.operator),
    )
    settings = _index_settings(request, schema.index.kind, filtered=bool(conditions))
    async with router.connection(tenant_id) as tc:
        # set_config(..., true) lasts for a transaction; without settings, a bare
        # statement saves the BEGIN/COMMIT round trips.
        block = tc.conn.transaction() if settings else contextlib.nullcontext()
        async with block:
            for name, value in settings:
                await tc.conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            cur = await tc.conn.execute(query, params)
            rows = await cur.fetchall()
    hits = []
    for row in rows:
        document_id, ordinal, *rest = row
        hit = SearchHit(document_id=document_id, chunk=ordinal, score=float(rest[-1]))
        i = 0
        if request.include_content:
            hit.content = rest[i]
            i += 1
        if request.include_metadata:
            hit.metadata = rest[i]
        hits.append(hit)
    return SearchResponse(results=hits)


def _index_settings(
    request: SearchRequest, kind: IndexKind, *, filtered: bool
) -> list[tuple[str, str]]:
    """Per-query index parameters, applied with set_config(..., is_local => true)."""
    settings: list[tuple[str, str]] = []
    if kind is IndexKind.HNSW:
        if request.ef_search is not None:
            settings.append(("hnsw.ef_search", str(request.ef_search)))
        if filtered:
            settings.append(("hnsw.iterative_scan", "strict_order"))
    elif kind is IndexKind.IVFFLAT:
        if request.probes is not None:
            settings.append(("ivfflat.probes", str(request.probes)))
        if filtered:
            # IVFFlat only scans relaxed; the outer ORDER BY restores the order.
            settings.append(("ivfflat.iterative_scan", "relaxed_order"))
    return settings
