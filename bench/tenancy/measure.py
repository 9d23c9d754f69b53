"""Run the query set against a layout and turn the answers into recall, rows and latency."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from bench.harness import percentile
from bench.tenancy.data import K, Query
from bench.tenancy.layouts import Search, Way


class Searchable(Protocol):
    name: str

    def client(self, way: Way) -> AbstractAsyncContextManager[Search]: ...

    async def uses_index(self, tenant: int, vector: np.ndarray, ef: int, way: Way) -> bool: ...

    def connections_opened(self) -> int: ...


@dataclass(frozen=True)
class Variant:
    """A layout searched one way: the lines of every table and plot."""

    label: str
    layout: Searchable
    way: Way = Way()


@dataclass
class Point:
    """One variant at one ef_search, one client count, one size class."""

    variant: str
    ef_search: int
    clients: int
    size_class: str
    recall: float  # mean recall@10 against brute force
    rows: float  # mean rows returned for LIMIT 10
    short: float  # share of queries that returned fewer than 10 rows
    p50_ms: float
    p95_ms: float
    p99_ms: float
    via_index: float  # share of the class's tenants whose plan used the HNSW index
    samples: int
    cold_per_1k: float  # connections opened during the timed passes, per 1,000 queries

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def one_pass(
    clients: list[Search], queries: list[Query], ef: int
) -> list[tuple[float, list[int]]]:
    """Every query once, spread over the concurrent clients: (seconds, ids) for each."""
    answers: list[tuple[float, list[int]]] = [(0.0, [])] * len(queries)
    next_query = iter(range(len(queries)))

    async def client(run: Search) -> None:
        for i in next_query:  # shared iterator: each query is taken once
            q = queries[i]
            started = time.perf_counter()
            ids = await run(q.tenant, q.vector, ef)
            answers[i] = (time.perf_counter() - started, ids)

    await asyncio.gather(*(client(run) for run in clients))
    return answers


async def measure(
    variant: Variant,
    queries: list[Query],
    ef: int,
    clients: int,
    runs: int,
    via_index: dict[str, float],
) -> list[Point]:
    """``runs`` timed passes after one warm-up pass; recall from the first timed pass.

    The clients connect before the warm-up and stay connected: connection set-up is
    not part of a query's latency.
    """
    async with contextlib.AsyncExitStack() as stack:
        searches = [
            await stack.enter_async_context(variant.layout.client(variant.way))
            for _ in range(clients)
        ]
        await one_pass(searches, queries, ef)
        opened = variant.layout.connections_opened()
        passes = [await one_pass(searches, queries, ef) for _ in range(runs)]
        cold = (variant.layout.connections_opened() - opened) * 1000 / (runs * len(queries))
    points = []
    for size_class in sorted({q.size_class for q in queries}):
        chosen = [i for i, q in enumerate(queries) if q.size_class == size_class]
        first = passes[0]
        recalls = [len(queries[i].truth & set(first[i][1])) / K for i in chosen]
        rows = [len(first[i][1]) for i in chosen]
        latencies = [p[i][0] * 1000 for p in passes for i in chosen]
        points.append(
            Point(
                variant=variant.label,
                ef_search=ef,
                clients=clients,
                size_class=size_class,
                recall=statistics.fmean(recalls),
                rows=statistics.fmean(rows),
                short=sum(r < K for r in rows) / len(rows),
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                p99_ms=percentile(latencies, 99),
                via_index=via_index[size_class],
                samples=len(latencies),
                cold_per_1k=cold,
            )
        )
    return points


async def index_use(variant: Variant, queries: list[Query], ef: int) -> dict[str, float]:
    """Per size class, the share of query tenants whose plan goes through the HNSW index."""
    first_query: dict[int, Query] = {}
    for q in queries:
        first_query.setdefault(q.tenant, q)
    share: dict[str, list[bool]] = {}
    for q in first_query.values():
        used = await variant.layout.uses_index(q.tenant, q.vector, ef, variant.way)
        share.setdefault(q.size_class, []).append(used)
    return {size_class: sum(v) / len(v) for size_class, v in share.items()}


async def sweep(
    variants: list[Variant],
    queries: list[Query],
    efs: list[int],
    client_counts: list[int],
    runs: int,
    progress: Callable[[str], None],
) -> AsyncIterator[Point]:
    for variant in variants:
        for ef in efs:
            via_index = await index_use(variant, queries, ef)
            for clients in client_counts:
                started = time.perf_counter()
                points = await measure(variant, queries, ef, clients, runs, via_index)
                progress(
                    f"{variant.label:<24} ef_search={ef:<4} clients={clients:<3} "
                    + "  ".join(
                        f"{p.size_class}: recall {p.recall:.3f} p50 {p.p50_ms:.2f} ms"
                        for p in points
                    )
                    + f"  ({time.perf_counter() - started:.0f}s)"
                )
                for point in points:
                    yield point
