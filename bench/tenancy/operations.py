"""What each layout costs to run: adding a tenant, deleting one, disk, cross-tenant reads."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from bench.tenancy.data import Dataset
from bench.tenancy.layouts import (
    ACTOR,
    HNSW,
    DatabasePerTenant,
    PartitionedTable,
    SharedTable,
    connect,
    copy_rows,
    run_all,
    tenant_name,
)
from controlplane.dsn import ConnInfo
from controlplane.lifecycle.tenants import delete_tenant

NEWCOMER_VECTORS = 1_000
FAN_OUT = 16  # concurrent tenants a cross-tenant read visits at once


@dataclass
class Operations:
    layout: str
    add_empty_s: float  # a new tenant, ready to take writes (median of the repeats)
    add_loaded_s: float  # ... and its first NEWCOMER_VECTORS vectors written, indexed
    empty_bytes: int  # disk a new, empty tenant takes
    delete: dict[str, dict[str, float]]  # "small"/"large" -> phase -> seconds
    count_all_s: float  # count every tenant's chunks: cross-tenant analytics

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_repeats(
        cls,
        layout: str,
        empty: list[float],
        loaded: list[float],
        sizes: list[int],
        delete: dict[str, dict[str, float]],
        count_s: float,
    ) -> Operations:
        """Medians of the repeated measurements."""
        return cls(
            layout,
            statistics.median(empty),
            statistics.median(loaded),
            int(statistics.median(sizes)),
            delete,
            count_s,
        )


def delete_targets(data: Dataset) -> dict[str, list[int]]:
    """Typical small tenants (around the median of the small class) and the largest one."""
    small = sorted(data.size_classes["small"], key=lambda t: int(data.sizes[t]))
    middle = len(small) // 2
    largest = max(data.size_classes["large"], key=lambda t: int(data.sizes[t]))
    return {"small": small[middle - 1 : middle + 2] or small[:1], "large": [largest]}


def newcomers(data: Dataset, repeats: int) -> list[tuple[int, int, np.ndarray]]:
    """(tenant, first id, vectors) of the tenants that sign up after the load."""
    return [
        (
            len(data.sizes) + r,
            int(data.offsets[-1]) + r * NEWCOMER_VECTORS,
            data.newcomer(NEWCOMER_VECTORS, seed=len(data.sizes) + r),
        )
        for r in range(repeats)
    ]


async def timed_deletes(
    data: Dataset, delete_one: Callable[[int], Awaitable[dict[str, float]]]
) -> dict[str, dict[str, float]]:
    """Per size class, the median phase times of deleting its target tenants."""
    return {
        size_class: median_phases([await delete_one(t) for t in tenants])
        for size_class, tenants in delete_targets(data).items()
    }


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}


async def shared_operations(layout: SharedTable, data: Dataset, repeats: int) -> Operations:
    added = []
    async with await connect(layout.conninfo) as conn:
        for tenant, first, vectors in newcomers(data, repeats):
            started = time.perf_counter()
            rows = ((first + i, tenant, v) for i, v in enumerate(vectors))
            await copy_rows(conn, "shared_chunks", rows)
            added.append(time.perf_counter() - started)
        count = await _timed_count(conn, "shared_chunks", repeats)

        async def delete_one(tenant: int) -> dict[str, float]:
            started = time.perf_counter()
            await conn.execute("DELETE FROM shared_chunks WHERE tenant_id = %s", (tenant,))
            deleted = time.perf_counter() - started
            started = time.perf_counter()
            await conn.execute("VACUUM shared_chunks")
            return {"delete": deleted, "vacuum": time.perf_counter() - started}

        delete = await timed_deletes(data, delete_one)
    return Operations.of_repeats(layout.name, [0.0], added, [0], delete, count)


async def partitioned_operations(
    layout: PartitionedTable, data: Dataset, repeats: int
) -> Operations:
    empty, loaded, sizes = [], [], []
    async with await connect(layout.conninfo) as conn:
        for tenant, first, vectors in newcomers(data, repeats):
            started = time.perf_counter()
            await layout.add_partition(conn, tenant)
            await layout.index_partition(conn, tenant)
            empty.append(time.perf_counter() - started)
            cur = await conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (layout.partition(tenant),)
            )
            sizes.append(int((await cur.fetchone() or (0,))[0]))
            rows = ((first + i, tenant, v) for i, v in enumerate(vectors))
            await copy_rows(conn, "part_chunks", rows)
            loaded.append(time.perf_counter() - started)
        count = await _timed_count(conn, "part_chunks", repeats)

        async def drop_one(tenant: int) -> dict[str, float]:
            started = time.perf_counter()
            table = sql.Identifier(layout.partition(tenant))
            await conn.execute(sql.SQL("DROP TABLE {}").format(table))
            return {"drop partition": time.perf_counter() - started}

        delete = await timed_deletes(data, drop_one)
    return Operations.of_repeats(layout.name, empty, loaded, sizes, delete, count)


async def db_per_tenant_operations(
    layout: DatabasePerTenant, data: Dataset, repeats: int, admin: ConnInfo
) -> Operations:
    """``admin``: the server's superuser, to read a new database's size."""
    empty, loaded, sizes = [], [], []
    for tenant, first, vectors in newcomers(data, repeats):
        started = time.perf_counter()
        await layout.create(tenant, data.scale.dims, HNSW)
        empty.append(time.perf_counter() - started)
        async with await psycopg.AsyncConnection.connect(admin.dsn, autocommit=True) as conn:
            database = await layout.database_of(tenant)
            cur = await conn.execute("SELECT pg_database_size(%s)", (database,))
            sizes.append(int((await cur.fetchone() or (0,))[0]))
        await layout.load(tenant, first, vectors)
        loaded.append(time.perf_counter() - started)

    async def count(name: str) -> None:
        async with layout.router.connection(name) as tc:
            await tc.conn.execute("SELECT count(*) FROM chunks")

    counts = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run_all([partial(count, tenant_name(t)) for t in range(len(data.sizes))], FAN_OUT)
        counts.append(time.perf_counter() - started)

    async def delete_one(tenant: int) -> dict[str, float]:
        started = time.perf_counter()
        await delete_tenant(layout.plane, tenant_name(tenant), actor=ACTOR)
        return {"delete tenant": time.perf_counter() - started}

    delete = await timed_deletes(data, delete_one)
    return Operations.of_repeats(
        layout.name, empty, loaded, sizes, delete, statistics.median(counts)
    )


async def _timed_count(conn: Any, table: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await conn.execute(
            sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY tenant_id").format(
                sql.Identifier(table)
            )
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)
