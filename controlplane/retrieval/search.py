"""Search in one tenant's database: by vector, by keyword, or both fused.

- ``vector``: the ``k`` chunks nearest the query vector. The ORDER BY uses the tenant's
  own distance operator, so its HNSW or IVFFlat index applies. With a metadata filter
  or a similarity floor, pgvector's iterative index scan is turned on: the index keeps
  producing candidates until ``k`` rows pass, instead of filtering a fixed
  ``ef_search`` candidates after the fact.
- ``keyword``: Postgres full-text search with the tenant's text search configuration:
  chunks holding any of the query's words (stemmed, stop words dropped), ranked by
  ``ts_rank_cd`` -- more of the words, closer together, first.
- ``hybrid``: the top candidates of both rankings fused by reciprocal rank (RRF,
  k = 60): ``(1 - w) / (60 + vector rank) + w / (60 + keyword rank)``, w being
  ``keyword_weight``.

A text query is embedded with the tenant's own embedder. ``min_similarity`` is a floor
on the vector similarity in every mode: below it nothing is returned, however well the
words match. An empty result is an empty list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pgvector import Vector
from psycopg import sql
from psycopg.types.json import Jsonb

from controlplane.embedding import Purpose
from controlplane.errors import InvalidRequest
from controlplane.inputs import check_json, check_text
from controlplane.retrieval._chunkids import chunk_id_sql
from controlplane.retrieval._filters import compile_filter
from controlplane.retrieval._validation import check_min_similarity, check_vector, score_sql
from controlplane.retrieval.models import SearchHit, SearchMode, SearchRequest, SearchResponse
from controlplane.routing import Route, TenantConnection, TenantRouter
from tenantvec_schema.spec import IndexKind, Metric, SchemaSpec

__all__ = ["RRF_K", "search", "search_mode", "search_statement"]

RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion
# The query's words as the tenant's configuration parses them (stemmed, stop words
# dropped), OR-ed: a question rarely shares every word with its answer, and ts_rank_cd
# ranks chunks holding more of them, closer together, first. The lexemes are already
# normalised, so they are quoted into the query with the 'simple' configuration.
_ANY_WORD = sql.SQL(
    "SELECT coalesce(to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')), "
    "''::tsquery) FROM unnest(tsvector_to_array(to_tsvector(%(cfg)s::regconfig, %(text)s))) "
    "AS lexeme"
)
# A hybrid search fuses 4 k candidates of each ranking (at least 50), up to 400 -- or
# 2 k for a k past 200, so that k hits are there to return whatever k is asked.
_MIN_CANDIDATES = 50
_MAX_CANDIDATES = 400
# pgvector's ceiling for hnsw.ef_search: a scan for more rows continues iteratively.
_MAX_EF_SEARCH = 1000
_HALF_OVERSAMPLING = 2
# pgvector's defaults: an HNSW scan returns at most ef_search rows unless told
# otherwise (iterative scans aside); an IVFFlat scan reads probes lists.
_DEFAULT_EF_SEARCH = 40
_DEFAULT_PROBES = 1


def search_mode(request: SearchRequest) -> SearchMode:
    if request.hybrid and request.mode not in (None, "hybrid"):
        raise InvalidRequest(f'"hybrid": true contradicts "mode": "{request.mode}"')
    mode: SearchMode = "hybrid" if request.hybrid else (request.mode or "vector")
    if mode == "vector" and request.text is None and request.vector is None:
        raise InvalidRequest("give a query: text, or a vector")
    if mode != "vector" and request.text is None:
        raise InvalidRequest(f"{mode} search needs the query as text")
    return mode


async def search(
    router: TenantRouter,
    tenant_id: str,
    request: SearchRequest,
    *,
    incarnation: str | None = None,
) -> SearchResponse:
    """The best ``k`` chunks for the query, best first.

    ``incarnation`` (a tenant uid, as an API key carries it) pins the search to that
    incarnation of the tenant: if it is gone, TenantNotFound, never its successor.
    """
    max_k = router.plane.settings.max_k
    if request.k > max_k:
        raise InvalidRequest(
            f"k: at most {max_k} hits per search here (TENANTVEC_MAX_K); ask for fewer, or "
            "page by narrowing the filter"
        )
    route = await router.route(tenant_id, incarnation=incarnation)
    mode = search_mode(request)
    if request.text is not None:
        check_text(request.text, "text")
    condition = None
    if request.filter is not None:
        check_json(request.filter, "filter")
        condition = compile_filter(request.filter)
    schema = route.schema
    max_distance = (
        check_min_similarity(request.min_similarity, schema.metric)
        if request.min_similarity is not None
        else None
    )
    vector: list[float] | np.ndarray | None = None
    if request.vector is not None:
        vector = check_vector(
            request.vector,
            tenant_id=tenant_id,
            dims=schema.dims,
            metric=schema.metric,
            where="vector",
        )
    elif mode != "keyword" or max_distance is not None:
        assert request.text is not None
        embedder = router.plane.embedders.for_tenant(tenant_id, route.embedder, "a text query")
        answer = await embedder.embed([request.text], dims=schema.dims, purpose=Purpose.QUERY)
        vector = answer.vectors[0]
    shape = _Shape(
        mode=mode,
        metric=schema.metric,
        k=int(request.k),
        include_content=request.include_content,
        include_metadata=request.include_metadata,
        include_embeddings=request.include_embeddings,
        has_vector=vector is not None,
        filtered=None if condition is None else condition.kind,
        floored=max_distance is not None,
        half_dims=schema.dims if schema.index.half else None,
    )
    statement = _statement(shape)
    params: dict[str, Any] = {}
    if mode != "vector":
        params.update(cfg=schema.text_config, text=request.text, w=request.keyword_weight)
    if vector is not None:
        params["v"] = Vector(vector)
    if condition is not None:
        params["filter"] = (
            Jsonb(condition.value) if condition.kind == "containment" else condition.value
        )
    if max_distance is not None:
        params["max_distance"] = max_distance
    filtered = shape.filtered is not None or shape.floored
    # Keyword search uses no vector index: nothing to tune.
    settings = (
        ()
        if mode == "keyword"
        else _index_settings(request, route, filtered=filtered, scanned=shape.index_limit)
    )

    async def run(tc: TenantConnection) -> list[tuple[Any, ...]]:
        # The index settings a search needs are session settings, set only when the
        # connection's session has other values (a request that passed its own
        # ef_search, a filtered search, a new connection): most searches are one
        # statement, and none needs a transaction of its own.
        known = tc.session_settings
        changes = [(name, value) for name, value in settings if known.get(name) != value]
        if not changes:
            cur = await tc.conn.execute(statement, params)
            return await cur.fetchall()
        async with tc.conn.pipeline():  # the settings and the search in one round trip
            for name, value in changes:
                await tc.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            cur = await tc.conn.execute(statement, params)
        known.update(changes)
        return await cur.fetchall()

    rows = await router.read(route, run)
    return SearchResponse(results=[_hit(shape, row) for row in rows])


@dataclass(frozen=True)
class _Shape:
    """What a search's SQL depends on -- never a value the caller sent, so the text of
    each shape is composed once (:func:`_statement`) and psycopg prepares it once per
    connection; the values travel as parameters."""

    mode: SearchMode
    metric: Metric
    k: int
    include_content: bool
    include_metadata: bool
    include_embeddings: bool
    has_vector: bool
    filtered: Literal["containment", "jsonpath"] | None  # a metadata filter, and its kind
    floored: bool  # a min_similarity floor
    # The tenant's dimensions when its index is half precision: the index is searched
    # by the halfvec form of the vectors, its candidates re-ranked by exact distance.
    half_dims: int | None = None

    @property
    def candidates(self) -> int:
        """How many nearest chunks a hybrid search fuses."""
        return min(max(4 * self.k, _MIN_CANDIDATES), max(_MAX_CANDIDATES, 2 * self.k))

    @property
    def nearest(self) -> int:
        """How many nearest chunks the search needs, by exact distance."""
        return self.k if self.mode == "vector" else self.candidates

    @property
    def index_limit(self) -> int:
        """How many rows the search asks of the vector index: twice what it needs from
        a half-precision index, whose near-ties the exact re-ranking then settles."""
        return self.nearest * _HALF_OVERSAMPLING if self.half_dims else self.nearest


@functools.lru_cache(maxsize=1024)
def _statement(shape: _Shape) -> bytes:
    return _Composer(shape).statement().as_bytes(None)


class _Composer:
    """The SQL of one search shape."""

    def __init__(self, shape: _Shape) -> None:
        self.shape = shape
        self.metric = shape.metric
        self.op = sql.SQL(self.metric.operator)
        # Limits are written into the SQL, not bound: Postgres plans a LIMIT it can see
        # better (and a prepared statement keeps that plan), ~0.6 ms of CPU per search.
        self.k = sql.Literal(shape.k)
        self.n = sql.Literal(shape.candidates)
        self.conditions: list[sql.Composable] = []
        if shape.filtered == "containment":
            self.conditions.append(sql.SQL("metadata @> %(filter)s"))
        elif shape.filtered == "jsonpath":
            self.conditions.append(sql.SQL("metadata @@ %(filter)s::jsonpath"))
        if shape.floored:
            self.conditions.append(
                sql.SQL("embedding {op} %(v)s <= %(max_distance)s").format(op=self.op)
            )
        # What a hit carries, as (expression over chunks c, name).
        columns = [
            ("c.document_id", "document_id"),
            ("c.ordinal", "ordinal"),
            (chunk_id_sql("c"), "chunk_id"),
        ]
        if shape.include_content:
            columns.append(("c.content", "content"))
        if shape.include_metadata:
            columns.append(("c.metadata", "metadata"))
        if shape.include_embeddings:
            # As real[]: psycopg reads arrays of floats itself, no vector type needed.
            columns.append(("c.embedding::real[]", "embedding"))
        self.columns = sql.SQL(", ").join(sql.SQL(expression) for expression, _ in columns)
        self.named_columns = sql.SQL(", ").join(
            sql.SQL(f"{expression} AS {name}") for expression, name in columns
        )
        self.names = sql.SQL(", ").join(sql.SQL(f"n.{name}") for _, name in columns)

    def statement(self) -> sql.Composed:
        return {"vector": self.vector_only, "keyword": self.keyword, "hybrid": self.hybrid}[
            self.shape.mode
        ]()

    def where(self, *extra: sql.Composable) -> sql.Composable:
        conditions = [*self.conditions, *extra]
        if not conditions:
            return sql.SQL("")
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)

    def similarity(self) -> sql.Composable:
        if not self.shape.has_vector:
            return sql.SQL("NULL::float8")
        distance = f"(c.embedding {self.metric.operator} %(v)s)"
        return sql.SQL(score_sql(self.metric, distance))

    def _nearest(self) -> sql.Composable:
        """The chunks nearest the query vector and their exact distances, nearest first."""
        limit = sql.Literal(self.shape.nearest)
        half_dims = self.shape.half_dims
        if half_dims is None:
            return sql.SQL(
                "SELECT id, embedding {op} %(v)s AS distance FROM chunks{where} "
                "ORDER BY embedding {op} %(v)s LIMIT {limit}"
            ).format(op=self.op, where=self.where(), limit=limit)
        # The ORDER BY spells the index's own expression (migrations.indexed_embedding).
        # The query vector is sent untyped (routing/_pools.py) and Postgres types it at
        # its first use, here the inner query: named a vector there, not a halfvec.
        return sql.SQL(
            "SELECT id, embedding {op} %(v)s AS distance FROM ("
            "SELECT id, embedding FROM chunks{where} "
            "ORDER BY (embedding::halfvec({dims})) {op} (%(v)s::vector)::halfvec({dims}) "
            "LIMIT {scanned}) AS candidate ORDER BY distance LIMIT {limit}"
        ).format(
            op=self.op,
            where=self.where(),
            dims=sql.Literal(half_dims),
            scanned=sql.Literal(self.shape.index_limit),
            limit=limit,
        )

    def _matching(self, limit: sql.Literal) -> sql.Composable:
        return sql.SQL(
            "SELECT id, ts_rank_cd(tsv, q, 32) AS rank FROM chunks, ({any_word}) AS query(q)"
            "{where} ORDER BY rank DESC, id LIMIT {limit}"
        ).format(any_word=_ANY_WORD, where=self.where(sql.SQL("tsv @@ q")), limit=limit)

    def vector_only(self) -> sql.Composed:
        if self.shape.half_dims is None:
            # At full precision the index scan reads each nearest row from the heap
            # anyway: the hit's columns come with it, not from a join back to chunks (k
            # primary-key probes more per search: 12 % of Postgres's CPU for k=10).
            return sql.SQL(
                "SELECT {names}, {score} AS score FROM (SELECT c.id, {columns}, "
                "c.embedding {op} %(v)s AS distance FROM chunks c{where} "
                "ORDER BY c.embedding {op} %(v)s LIMIT {limit}) AS n "
                "WHERE n.distance IS NOT NULL ORDER BY n.distance, n.id"
            ).format(
                names=self.names,
                score=sql.SQL(score_sql(self.metric, "n.distance")),
                columns=self.named_columns,
                op=self.op,
                where=self.where(),
                limit=sql.Literal(self.shape.nearest),
            )
        return sql.SQL(
            "SELECT {columns}, {score} AS score FROM ({nearest}) AS n "
            "JOIN chunks c ON c.id = n.id WHERE n.distance IS NOT NULL ORDER BY n.distance, c.id"
        ).format(
            columns=self.columns,
            score=sql.SQL(score_sql(self.metric, "n.distance")),
            nearest=self._nearest(),
        )

    def keyword(self) -> sql.Composed:
        return sql.SQL(
            "SELECT {columns}, m.rank AS score, {similarity} AS similarity "
            "FROM ({matching}) AS m JOIN chunks c ON c.id = m.id ORDER BY m.rank DESC, c.id"
        ).format(
            columns=self.columns, similarity=self.similarity(), matching=self._matching(self.k)
        )

    def hybrid(self) -> sql.Composed:
        return sql.SQL(
            "WITH vec AS (SELECT id, row_number() OVER (ORDER BY distance, id) AS rank "
            "FROM ({nearest}) AS n WHERE distance IS NOT NULL), "
            "kw AS (SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS rank "
            "FROM ({matching}) AS m), "
            "fused AS (SELECT coalesce(vec.id, kw.id) AS id, "
            "coalesce((1 - %(w)s) / ({rrf_k} + vec.rank), 0) "
            "+ coalesce(%(w)s / ({rrf_k} + kw.rank), 0) AS score "
            "FROM vec FULL OUTER JOIN kw ON vec.id = kw.id) "
            "SELECT {columns}, f.score, {similarity} AS similarity "
            "FROM fused f JOIN chunks c ON c.id = f.id WHERE f.score > 0 "
            "ORDER BY f.score DESC, c.id LIMIT {k}"
        ).format(
            rrf_k=sql.Literal(RRF_K),
            k=self.k,
            nearest=self._nearest(),
            matching=self._matching(self.n),
            columns=self.columns,
            similarity=self.similarity(),
        )


def _hit(shape: _Shape, row: tuple[Any, ...]) -> SearchHit:
    document_id, ordinal, chunk_id, *rest = row
    i = 0
    content = metadata = None
    if shape.include_content:
        content = rest[i]
        i += 1
    if shape.include_metadata:
        metadata = rest[i]
        i += 1
    embedding = None
    if shape.include_embeddings:
        embedding = rest[i]
        i += 1
    score = float(rest[i])
    similarity = rest[i + 1] if len(rest) > i + 1 else None
    return SearchHit(
        document_id=document_id,
        chunk=ordinal,
        chunk_id=chunk_id,
        score=score,
        similarity=float(similarity) if similarity is not None else None,
        content=content,
        metadata=metadata,
        embedding=embedding,
    )


def _index_settings(
    request: SearchRequest, route: Route, *, filtered: bool, scanned: int
) -> tuple[tuple[str, str], ...]:
    """The index settings of the search, every one spelled out (a session keeps what
    the search before it set): the request's ``ef_search`` / ``probes``, else the one
    chosen for the tenant's recall target (retrieval/recall.py), else pgvector's
    default; HNSW's iterative scan on for a filtered search (or one past ef_search's
    ceiling), IVFFlat's always.

    ``scanned``: the rows the search asks of the index. An HNSW scan yields at most
    ``ef_search`` of them, so a search for more widens it to as many -- up to pgvector's
    ceiling of 1000, past which the scan goes on iteratively (in order) until it has
    them.
    """
    kind = route.schema.index.kind
    if kind is IndexKind.HNSW:
        ef_search = request.ef_search or route.recall.ef_search or _DEFAULT_EF_SEARCH
        widened = max(ef_search, scanned)
        iterative = filtered or widened > _MAX_EF_SEARCH
        return (
            ("hnsw.ef_search", str(min(widened, _MAX_EF_SEARCH))),
            ("hnsw.iterative_scan", "strict_order" if iterative else "off"),
        )
    if kind is IndexKind.IVFFLAT:
        probes = request.probes or route.recall.probes or _DEFAULT_PROBES
        # Iterative: lists that hold fewer rows than the search needs (a filter passes
        # few, or k is large) make the scan probe more, instead of a short answer.
        # IVFFlat only scans relaxed; the outer ORDER BY restores the order.
        return (
            ("ivfflat.probes", str(probes)),
            ("ivfflat.iterative_scan", "relaxed_order"),
        )
    return ()


def search_statement(schema: SchemaSpec, k: int) -> bytes:
    """The statement of a plain vector search for ``k`` chunks in a tenant of
    ``schema`` (parameter ``v``; columns document_id, ordinal, chunk_id, score): what
    recall is measured with."""
    return _statement(
        _Shape(
            mode="vector",
            metric=schema.metric,
            k=k,
            include_content=False,
            include_metadata=False,
            include_embeddings=False,
            has_vector=True,
            filtered=None,
            floored=False,
            half_dims=schema.dims if schema.index.half else None,
        )
    )
