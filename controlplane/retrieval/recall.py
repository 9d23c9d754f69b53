"""Each tenant's recall, measured on its own data, and the search setting that meets
its target (model/recall.py says why).

A measurement takes a random sample of the tenant's chunks as queries. For each, the
exact ten nearest other chunks (a sequential scan, index scans turned off) are the
truth; then the tenant's own search -- the statement ``search()`` runs, half
precision's re-ranking included -- is asked at rising ``ef_search`` (HNSW) or
``probes`` (IVFFlat) until the share of the truth it finds reaches the target. The
first setting that does is kept and its recall recorded; none does: the widest one is
kept and the miss reported (a denser graph, ``set-index --m``, is then the cure).

A found chunk counts when it is as near as the tenth true neighbour (ties at the
boundary are not misses), and the query's own chunk is left out of both lists.

The cost is bounded: the exact scans, the expensive part, get a budget of distance
arithmetic (``_WORK_PER_MEASUREMENT``, ~1-2 s of one core), which sets the sample size
between 10 and 50 queries; the keeper (:class:`RecallKeeper`) measures one tenant a
round, a tenant again only when its index changed, its target changed or its chunks
grew or shrank by a fifth, and at most once a ``TENANTVEC_RECALL_SECONDS`` round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql

from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import TenantBusy
from controlplane.lifecycle.change import TenantChange, run_change
from controlplane.model.recall import RecallTuning
from controlplane.model.records import Tenant, TenantState
from controlplane.pgconnect import connect
from controlplane.retrieval._validation import score_sql
from controlplane.retrieval.search import search_statement
from tenantvec_schema.spec import IndexKind, SchemaSpec

__all__ = [
    "EF_LADDER",
    "RecallKeeper",
    "RecallMeasurement",
    "TuneRecall",
    "measure_recall",
    "tune_recall",
]

logger = logging.getLogger(__name__)

ACTOR = "recall-keeper"

K = 10
EF_LADDER = (40, 60, 80, 120, 160, 240, 320, 480, 640, 1000)
_PROBES_LADDER = (1, 2, 3, 5, 8, 12, 20, 32, 50, 80, 128, 200, 320, 500, 800)
_WORK_PER_MEASUREMENT = 2e9  # dimensions compared by the exact scans, all queries together
_SAMPLE = (10, 50)
_REGROWTH = 0.2  # measure again when the chunks grew or shrank by this share
_SCORE_SLACK = 1e-6


@dataclass(frozen=True)
class RecallMeasurement:
    recall: float
    ef_search: int | None
    probes: int | None
    chunks: int
    sample: int


async def measure_recall(
    conn: psycopg.AsyncConnection[Any], schema: SchemaSpec, target: float
) -> RecallMeasurement | None:
    """The tenant's recall at the smallest setting that meets ``target`` (``conn``: a
    control-plane connection to its database, autocommit). None: nothing to measure --
    no approximate index, or fewer than ``K + 1`` embedded chunks."""
    kind = schema.index.kind
    if kind is IndexKind.NONE:
        return None
    await register_vector_async(conn)
    cur = await conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL")
    row = await cur.fetchone()
    chunks = int(row[0]) if row else 0
    if chunks <= K:
        return None
    size = int(_WORK_PER_MEASUREMENT / (chunks * schema.dims))
    sample_size = max(_SAMPLE[0], min(_SAMPLE[1], size))
    cur = await conn.execute(
        "SELECT document_id, ordinal, embedding::real[] FROM chunks WHERE embedding IS NOT NULL "
        "ORDER BY random() LIMIT %s",
        (sample_size,),
    )
    rows = await cur.fetchall()
    samples = [((str(d), int(o)), np.asarray(v, dtype=np.float32)) for d, o, v in rows]
    truths = [await _exact(conn, schema, vector, own) for own, vector in samples]
    ladder: tuple[int, ...]
    if kind is IndexKind.HNSW:
        name, ladder = "hnsw.ef_search", EF_LADDER
    else:
        name = "ivfflat.probes"
        ladder = tuple(p for p in _PROBES_LADDER if p < schema.index.lists) + (schema.index.lists,)
    statement = search_statement(schema, K + 1)
    recall = 0.0
    for value in ladder:
        found = 0
        for (own, vector), truth in zip(samples, truths, strict=True):
            found += await _found(conn, statement, name, value, vector, own, truth)
        recall = found / sum(len(truth) for truth in truths)
        if recall >= target:
            break
    return RecallMeasurement(
        recall=recall,
        ef_search=value if kind is IndexKind.HNSW else None,
        probes=value if kind is IndexKind.IVFFLAT else None,
        chunks=chunks,
        sample=len(samples),
    )


async def _exact(
    conn: psycopg.AsyncConnection[Any],
    schema: SchemaSpec,
    vector: np.ndarray,
    own: tuple[str, int],
) -> list[float]:
    """The scores of the query's K nearest other chunks, by exact search."""
    statement = sql.SQL(
        "SELECT document_id, ordinal, {score} FROM chunks WHERE embedding IS NOT NULL "
        "ORDER BY embedding {op} %(v)s LIMIT {limit}"
    ).format(
        score=sql.SQL(score_sql(schema.metric, f"(embedding {schema.metric.operator} %(v)s)")),
        op=sql.SQL(schema.metric.operator),
        limit=sql.Literal(K + 1),
    )
    async with conn.transaction():
        for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
            await conn.execute("SELECT set_config(%s, 'off', true)", (setting,))
        cur = await conn.execute(statement, {"v": Vector(vector)})
        rows = await cur.fetchall()
    return [float(score) for d, o, score in rows if (d, o) != own][:K]


async def _found(
    conn: psycopg.AsyncConnection[Any],
    statement: bytes,
    name: str,
    value: int,
    vector: np.ndarray,
    own: tuple[str, int],
    truth: list[float],
) -> int:
    """How many of the truth the tenant's search finds with ``name`` set to ``value``."""
    async with conn.transaction():
        await conn.execute("SELECT set_config(%s, %s, true)", (name, str(value)))
        cur = await conn.execute(statement, {"v": Vector(vector)})
        rows = await cur.fetchall()
    # Rows: document_id, ordinal, chunk_id, score (search_statement's columns).
    scores = [float(row[3]) for row in rows if (row[0], row[1]) != own][: len(truth)]
    boundary = truth[-1] - _SCORE_SLACK
    return sum(score >= boundary for score in scores)


async def tune_recall(
    plane: PlaneContext, tenant_id: str, *, target: float | None = None, actor: str
) -> Tenant:
    """Measure the tenant's recall now (with ``target``, a new target first) and keep
    the setting that meets it; its routers then search with it. Recorded as a
    ``tune-recall`` operation, under the tenant's lock."""
    return await run_change(plane, tenant_id, TuneRecall(target), actor=actor)


class TuneRecall(TenantChange):
    action = "tune-recall"

    def __init__(self, target: float | None) -> None:
        self.target = target

    def details(self, tenant: Tenant) -> dict[str, Any]:
        return {"target": tenant.recall.retargeted(self.target).target}

    async def apply(self, plane: PlaneContext, tenant: Tenant) -> Tenant:
        tuning = tenant.recall.retargeted(self.target)
        measured = await _measure(plane, tenant, tuning.target)
        if measured is not None:
            tuning = tuning.measured_as(
                measured.recall,
                ef_search=measured.ef_search,
                probes=measured.probes,
                chunks=measured.chunks,
                sample=measured.sample,
                at=utcnow(),
            )
        return await plane.catalog.update_tenant(tenant.uid, recall=tuning.to_json())


async def _measure(plane: PlaneContext, tenant: Tenant, target: float) -> RecallMeasurement | None:
    settings = plane.settings
    async with connect(
        plane.service_conninfo(tenant),
        where=f"tenant {tenant.id!r}",
        timeout=settings.connect_timeout,
    ) as conn:
        started = time.perf_counter()
        measured = await measure_recall(conn, tenant.schema, target)
    if measured is not None:
        logger.info(
            "tenant %s: recall %.3f at %s (target %.2f; %d samples of %d chunks; %.1fs)",
            tenant.id,
            measured.recall,
            f"ef_search {measured.ef_search}"
            if measured.ef_search is not None
            else f"probes {measured.probes}",
            target,
            measured.sample,
            measured.chunks,
            time.perf_counter() - started,
        )
    return measured


def _due(tenant: Tenant, chunks: int | None = None) -> bool:
    if tenant.state is not TenantState.READY or tenant.index.kind is IndexKind.NONE:
        return False
    tuning = tenant.recall
    if tuning.measured_at is None:
        return True
    if chunks is not None and tuning.chunks:
        return abs(chunks - tuning.chunks) > _REGROWTH * tuning.chunks
    return False


class RecallKeeper:
    """Measures, in the background of each API process, one tenant a round whose
    recall is due (never measured since its index or target changed, or its chunks
    changed by a fifth). Several processes may run it: the tenant's lock makes one
    measure."""

    def __init__(self, plane: PlaneContext) -> None:
        self._plane = plane
        self._every = plane.settings.recall_seconds
        self._cursor = 0  # round-robin over the tenants whose growth is checked

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # noqa: BLE001 -- the loop must outlive a catalog outage
                logger.warning("recall round failed; retrying", exc_info=True)
            await asyncio.sleep(self._every)

    async def round(self) -> str | None:
        """Measure one due tenant; its id, or None if none was due."""
        tenants = await self._plane.catalog.list_tenants(states=[TenantState.READY])
        # The tenants in use first: their searches are the ones the setting serves.
        tenants.sort(key=lambda t: t.last_active_at or t.created_at, reverse=True)
        candidates = [t for t in tenants if _due(t)]
        if not candidates:
            # Nothing unmeasured: check one measured tenant's growth, in turn.
            measured = [
                t
                for t in tenants
                if t.recall.measured_at is not None and t.index.kind is not IndexKind.NONE
            ]
            if not measured:
                return None
            tenant = measured[self._cursor % len(measured)]
            self._cursor += 1
            if not _due(tenant, await self._chunks(tenant)):
                return None
            candidates = [tenant]
        tenant = candidates[0]
        try:
            await run_change(self._plane, tenant.id, _DueTuning(tenant.recall), actor=ACTOR)
        except TenantBusy:
            return None  # another process is measuring it, or changing it
        except Exception:  # noqa: BLE001 -- one tenant's failure must not stop the others
            logger.warning("tenant %s: measuring recall failed", tenant.id, exc_info=True)
            return None
        return tenant.id

    async def _chunks(self, tenant: Tenant) -> int:
        """The planner's estimate of the tenant's chunks: no scan."""
        async with connect(
            self._plane.service_conninfo(tenant),
            where=f"tenant {tenant.id!r}",
            timeout=self._plane.settings.connect_timeout,
        ) as conn:
            cur = await conn.execute(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                "WHERE oid = 'public.chunks'::regclass"
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0


class _DueTuning(TuneRecall):
    """The keeper's measurement: declined if, under the lock, the tuning is no longer
    the one found due (another process measured it meanwhile, or the index changed)."""

    def __init__(self, seen: RecallTuning) -> None:
        super().__init__(None)
        self.seen = seen

    async def applies(self, plane: PlaneContext, tenant: Tenant) -> bool:
        return tenant.recall == self.seen
