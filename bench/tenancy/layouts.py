"""The same corpus in four layouts, and how each one answers a tenant's top-10 query.

- ``shared``: one table with a ``tenant_id`` column, one HNSW index over every tenant's
  vectors and a b-tree on ``tenant_id``; a query filters on its tenant. Searched three
  ways: as is (``hnsw.iterative_scan = off``) and with pgvector's iterative scans
  (``relaxed_order``, ``strict_order``).
- ``partitioned``: a table list-partitioned by ``tenant_id``, one HNSW index per
  partition; the planner prunes to the tenant's partition.
- ``db-per-tenant``: a database and role per tenant, created, loaded and indexed through
  tenantvec (``create_tenant``, ``upsert_documents``, ``set_index``) and searched through
  its router and ``search()`` -- the product path, overhead included.

Every layout uses the same HNSW build parameters (m=16, ef_construction=64, cosine),
is bulk-loaded first and indexed after (using both cores), and every query runs as one
transaction that sets ``hnsw.ef_search`` (and the iterative mode) with
``set_config(..., true)`` -- the same round trips as tenantvec's own search.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql

from bench.tenancy.data import Dataset, K
from controlplane.dsn import ConnInfo
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

# Full precision, as the other layouts' indexes: the same index everywhere.
HNSW = IndexSpec(kind=IndexKind.HNSW, m=16, ef_construction=64, precision=Precision.FULL)
HNSW_WITH = "WITH (m = 16, ef_construction = 64)"
ACTOR = "bench-tenancy"
BUILDERS = 2  # concurrent index builds / loads: one per core of the reference machine
LOAD_BATCH = 1_000

# A client answers (tenant, query vector, ef_search) with the ids it found, best first.
Search = Callable[[int, np.ndarray, int], Awaitable[list[int]]]


@dataclass
class Build:
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    index_bytes: int = 0
    total_bytes: int = 0  # everything the layout keeps on disk for the corpus

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def tenant_name(tenant: int) -> str:
    return f"bt-{tenant:05d}"


def tenant_of(name: str) -> int:
    return int(name.removeprefix("bt-"))


async def connect(conninfo: ConnInfo) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True)
    await register_vector_async(conn)
    return conn


async def copy_rows(
    conn: psycopg.AsyncConnection[Any], table: str, rows: Iterable[tuple[int, int, np.ndarray]]
) -> None:
    """Binary COPY of (id, tenant_id, vector) rows, with a short text like a chunk's."""
    statement = sql.SQL("COPY {} (id, tenant_id, content, embedding) FROM STDIN (FORMAT BINARY)")
    async with conn.cursor() as cur, cur.copy(statement.format(sql.Identifier(table))) as copy:
        copy.set_types(["int8", "int4", "text", "vector"])
        for gid, tenant, vector in rows:
            await copy.write_row((gid, tenant, f"chunk {gid}", Vector(vector)))


def dataset_rows(data: Dataset) -> Iterable[tuple[int, int, np.ndarray]]:
    for t in range(len(data.sizes)):
        first = int(data.offsets[t])
        for i, vector in enumerate(data.tenant_vectors(t)):
            yield first + i, t, vector


async def run_all(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Run the jobs, ``concurrency`` at a time, in order."""
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await (queue.get_nowait())()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@dataclass(frozen=True)
class Way:
    """How a query is run: pgvector's iterative scan mode, and whether the HNSW index is
    forced on the planner (``enable_sort = off``: the exact plan must sort, the index
    scan need not), as an application would to get index speed on a filtered query."""

    iterative: str = "off"
    force_index: bool = False

    def settings(self, ef: int) -> list[tuple[str, str]]:
        settings = [("hnsw.ef_search", str(ef)), ("hnsw.iterative_scan", self.iterative)]
        if self.force_index:
            settings.append(("enable_sort", "off"))
        return settings


async def configure(conn: psycopg.AsyncConnection[Any], settings: list[tuple[str, str]]) -> None:
    """Apply settings for the current transaction, in one round trip."""
    calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in settings)
    await conn.execute(sql.SQL("SELECT ") + calls, [x for pair in settings for x in pair])


class _SqlLayout:
    """A layout in one database of the bench server, searched with plain SQL."""

    name = ""
    index_prefix = ""

    def __init__(self, conninfo: ConnInfo) -> None:
        self.conninfo = conninfo

    def query_sql(self, iterative: str) -> sql.Composable:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def client(self, way: Way) -> AsyncIterator[Search]:
        conn = await connect(self.conninfo)
        statement = self.query_sql(way.iterative)

        async def run(tenant: int, vector: np.ndarray, ef: int) -> list[int]:
            async with conn.transaction():
                await configure(conn, way.settings(ef))
                cur = await conn.execute(statement, {"t": tenant, "v": Vector(vector)})
                return [row[0] for row in await cur.fetchall()]

        try:
            yield run
        finally:
            await conn.close()

    async def uses_index(self, tenant: int, vector: np.ndarray, ef: int, way: Way) -> bool:
        """Whether the planner answers this query from the HNSW index (not exactly)."""
        async with await connect(self.conninfo) as conn, conn.transaction():
            await configure(conn, way.settings(ef))
            explain = sql.SQL("EXPLAIN (FORMAT JSON) ") + self.query_sql(way.iterative)
            cur = await conn.execute(explain, {"t": tenant, "v": Vector(vector)})
            row = await cur.fetchone()
            assert row is not None
        return self.index_prefix in str(row[0])

    def connections_opened(self) -> int:
        return 0  # each client connects once, before its first query

    async def _sizes(self, conn: psycopg.AsyncConnection[Any], tables: list[str]) -> Build:
        cur = await conn.execute(
            "SELECT sum(pg_total_relation_size(t::regclass)), "
            "sum((SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i "
            "     JOIN pg_class c ON c.oid = i.indexrelid "
            "     JOIN pg_am a ON a.oid = c.relam "
            "     WHERE i.indrelid = t::regclass AND a.amname = 'hnsw')) "
            "FROM unnest(%s::text[]) AS t",
            (tables,),
        )
        total, index = await cur.fetchone() or (0, 0)
        return Build(index_bytes=int(index), total_bytes=int(total))


def _nearest(table: sql.Composable, iterative: str) -> sql.Composable:
    query = sql.SQL(
        "SELECT id, content, embedding <=> %(v)s AS distance FROM {} WHERE tenant_id = %(t)s "
        "ORDER BY embedding <=> %(v)s LIMIT {}"
    ).format(table, sql.Literal(K))
    if iterative == "relaxed_order":
        # pgvector's advice: relaxed results may come slightly out of order; sort again.
        return sql.SQL(
            "WITH relaxed AS MATERIALIZED ({}) SELECT id, content FROM relaxed ORDER BY distance"
        ).format(query)
    return query


class SharedTable(_SqlLayout):
    name = "shared"
    index_prefix = "shared_chunks_hnsw"

    def query_sql(self, iterative: str) -> sql.Composable:
        return _nearest(sql.Identifier("shared_chunks"), iterative)

    async def build(self, data: Dataset) -> Build:
        seconds: dict[str, float] = {}
        async with await connect(self.conninfo) as conn:
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE shared_chunks (id bigint PRIMARY KEY, tenant_id int NOT NULL, "
                    "content text NOT NULL, embedding vector({}) NOT NULL)"
                ).format(sql.Literal(data.scale.dims))
            )
            started = time.perf_counter()
            await copy_rows(conn, "shared_chunks", dataset_rows(data))
            await conn.execute("CREATE INDEX shared_chunks_tenant ON shared_chunks (tenant_id)")
            seconds["load"] = time.perf_counter() - started
            started = time.perf_counter()
            await conn.execute(
                "CREATE INDEX shared_chunks_hnsw ON shared_chunks "
                f"USING hnsw (embedding vector_cosine_ops) {HNSW_WITH}"
            )
            seconds["index"] = time.perf_counter() - started
            await conn.execute("VACUUM ANALYZE shared_chunks")
            build = await self._sizes(conn, ["shared_chunks"])
        build.seconds = seconds
        return build


class PartitionedTable(_SqlLayout):
    name = "partitioned"
    index_prefix = "_hnsw"

    @staticmethod
    def partition(tenant: int) -> str:
        return f"part_chunks_{tenant}"

    def query_sql(self, iterative: str) -> sql.Composable:
        return _nearest(sql.Identifier("part_chunks"), iterative)

    async def add_partition(self, conn: psycopg.AsyncConnection[Any], tenant: int) -> None:
        await conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF part_chunks FOR VALUES IN ({})").format(
                sql.Identifier(self.partition(tenant)), sql.Literal(tenant)
            )
        )

    async def index_partition(self, conn: psycopg.AsyncConnection[Any], tenant: int) -> None:
        name = self.partition(tenant)
        await conn.execute(
            sql.SQL(
                "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) " + HNSW_WITH
            ).format(sql.Identifier(f"{name}_hnsw"), sql.Identifier(name))
        )

    async def build(self, data: Dataset) -> Build:
        seconds: dict[str, float] = {}
        tenants = range(len(data.sizes))
        async with await connect(self.conninfo) as conn:
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE part_chunks (id bigint NOT NULL, tenant_id int NOT NULL, "
                    "content text NOT NULL, embedding vector({}) NOT NULL, "
                    "PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id)"
                ).format(sql.Literal(data.scale.dims))
            )
            started = time.perf_counter()
            for t in tenants:
                await self.add_partition(conn, t)
            seconds["create"] = time.perf_counter() - started
            started = time.perf_counter()
            await copy_rows(conn, "part_chunks", dataset_rows(data))
            seconds["load"] = time.perf_counter() - started

        async def index(tenant: int) -> None:
            async with await connect(self.conninfo) as c:
                await self.index_partition(c, tenant)

        started = time.perf_counter()
        largest_first = sorted(tenants, key=lambda t: -int(data.sizes[t]))
        await run_all([partial(index, t) for t in largest_first], BUILDERS)
        seconds["index"] = time.perf_counter() - started
        async with await connect(self.conninfo) as conn:
            await conn.execute("VACUUM ANALYZE part_chunks")
            build = await self._sizes(conn, [self.partition(t) for t in tenants])
        build.seconds = seconds
        return build


class DatabasePerTenant:
    """Tenants created, loaded, indexed and searched through tenantvec itself."""

    name = "db-per-tenant"

    def __init__(self, plane: ControlPlane, router: TenantRouter) -> None:
        self.plane = plane
        self.router = router

    def routed_by(self, router: TenantRouter) -> DatabasePerTenant:
        """The same tenants, searched through another router (other pool settings)."""
        return DatabasePerTenant(self.plane, router)

    async def create(self, tenant: int, dims: int, index: IndexSpec) -> None:
        request = TenantRequest(id=tenant_name(tenant), dims=dims, index=index)
        await create_tenant(self.plane, request, actor=ACTOR)

    async def database_of(self, tenant: int) -> str:
        """The tenant's database name (opaque: the catalog records it)."""
        found = await self.plane.catalog.get_tenant(tenant_name(tenant))
        return str(found.placement["database"])

    async def load(self, tenant: int, first_id: int, vectors: np.ndarray) -> None:
        for start in range(0, len(vectors), LOAD_BATCH):
            block = vectors[start : start + LOAD_BATCH]
            documents = [
                DocumentIn(
                    id=str(first_id + start + i),
                    chunks=[ChunkIn(content=f"chunk {first_id + start + i}", embedding=v)],
                )
                for i, v in enumerate(block.tolist())
            ]
            await upsert_documents(self.router, tenant_name(tenant), UpsertRequest(documents))

    async def build(self, data: Dataset) -> Build:
        seconds: dict[str, float] = {}
        tenants = list(range(len(data.sizes)))
        dims = data.scale.dims
        none = IndexSpec(kind=IndexKind.NONE)

        started = time.perf_counter()
        await run_all([partial(self.create, t, dims, none) for t in tenants], 4)
        seconds["create"] = time.perf_counter() - started

        started = time.perf_counter()
        jobs = [
            partial(self.load, t, int(data.offsets[t]), data.tenant_vectors(t)) for t in tenants
        ]
        await run_all(jobs, BUILDERS)
        seconds["load"] = time.perf_counter() - started

        started = time.perf_counter()
        largest_first = sorted(tenants, key=lambda t: -int(data.sizes[t]))
        await run_all(
            [partial(self._index, t) for t in largest_first],
            BUILDERS,
        )
        seconds["index"] = time.perf_counter() - started

        build = Build(seconds=seconds)
        for t in tenants:
            async with self.router.connection(tenant_name(t)) as tc:
                await tc.conn.execute("ANALYZE")
                cur = await tc.conn.execute(
                    "SELECT pg_relation_size('chunks_embedding_idx'), "
                    "pg_database_size(current_database())"
                )
                index, total = await cur.fetchone() or (0, 0)
                build.index_bytes += int(index)
                build.total_bytes += int(total)
        return build

    def connections_opened(self) -> int:
        """Tenant pools the router had to open cold (evicted or never open)."""
        return self.router.stats().pools_opened

    async def _index(self, tenant: int) -> None:
        await set_index(self.plane, tenant_name(tenant), HNSW, actor=ACTOR)

    @contextlib.asynccontextmanager
    async def client(self, way: Way) -> AsyncIterator[Search]:
        # tenantvec's search: the planner's choice, ef_search per request.
        async def run(tenant: int, vector: np.ndarray, ef: int) -> list[int]:
            request = SearchRequest(
                vector=vector.tolist(), k=K, ef_search=ef, include_metadata=False
            )
            response = await search(self.router, tenant_name(tenant), request)
            return [int(hit.document_id) for hit in response.results]

        yield run

    async def uses_index(self, tenant: int, vector: np.ndarray, ef: int, way: Way) -> bool:
        async with self.router.connection(tenant_name(tenant)) as tc, tc.conn.transaction():
            await tc.conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            cur = await tc.conn.execute(
                "EXPLAIN (FORMAT JSON) SELECT id FROM chunks ORDER BY embedding <=> %s LIMIT 10",
                (Vector(vector),),
            )
            row = await cur.fetchone()
            assert row is not None
        return "chunks_embedding_idx" in str(row[0])
