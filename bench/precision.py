"""``make bench-precision``: a tenant's index at full precision (vector) and at half
(halfvec), on the same rows, in the same run.

For each data set (bench/datasets.py: random unit vectors, and docstring embeddings;
N x 1,024, cosine, HNSW m=16 ef_construction=64) one tenant is loaded once (COPY) and
its index rebuilt at each precision in turn, rounds alternating the order. Per build:
its seconds (``tenantctl tenants set-index``'s own path: one pass, the configured
maintenance_work_mem and parallel workers) and its size. Per precision and ef_search:
recall@10 against exact search, and the latency of a search through the library's
``search()`` -- the SQL tenantvec runs, half precision's re-ranking included -- one
client, Postgres's and this process's CPU per search.

Medians over the rounds; the load average before and after beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from bench.cpu import own_cpu, postgres_cpu
from bench.datasets import DIMS, DataSet, load
from bench.harness import copy_chunks, percentile, throwaway_server
from bench.machine import describe_machine, load_average, replace_section, today
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import create_tenant, tenant_conninfo
from controlplane.model.request import TenantRequest
from controlplane.plane import ControlPlane
from controlplane.retrieval.models import SearchRequest
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

ACTOR = "bench"
K = 10


@dataclass
class Build:
    precision: Precision
    seconds: float
    mib: float


@dataclass
class Searches:
    precision: Precision
    ef_search: int
    recall: float
    latencies: list[float]
    pg_cpu_ms: float  # Postgres CPU per search
    own_cpu_ms: float  # this process (library + psycopg) per search


async def _load_rows(dsn: str, data: DataSet) -> None:
    await copy_chunks(dsn, data.vectors)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE chunks")


async def _index_mib(dsn: str) -> float:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT pg_relation_size('chunks_embedding_idx')")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]) / 2**20


async def _searches(
    router: TenantRouter,
    tenant_id: str,
    data: DataSet,
    truth: np.ndarray,
    precision: Precision,
    ef_search: int,
    data_dir: Path,
) -> Searches:
    found = 0
    latencies: list[float] = []
    pg_before, own_before = postgres_cpu(data_dir), own_cpu()
    for query, expected in zip(data.queries, truth, strict=True):
        request = SearchRequest(vector=query.tolist(), k=K, ef_search=ef_search)
        started = time.perf_counter()
        hits = (await search(router, tenant_id, request)).results
        latencies.append(time.perf_counter() - started)
        found += len({int(h.document_id[1:]) for h in hits} & set(expected.tolist()))
    count = len(data.queries)
    return Searches(
        precision,
        ef_search,
        found / (K * count),
        latencies,
        1000 * (postgres_cpu(data_dir) - pg_before) / count,
        1000 * (own_cpu() - own_before) / count,
    )


async def measure(data: DataSet, rounds: int, efs: list[int]) -> tuple[list[Build], list[Searches]]:
    truth = data.exact_top(K)
    builds: list[Build] = []
    searches: list[Searches] = []
    with throwaway_server(durable=False) as settings:
        data_dir = settings.home / "pg" / "data"
        async with ControlPlane.open(settings) as plane:
            tenant_id = f"precision-{data.name}"
            request = TenantRequest(id=tenant_id, dims=DIMS, index=IndexSpec(kind=IndexKind.NONE))
            await create_tenant(plane, request, actor=ACTOR)
            dsn = (await tenant_conninfo(plane, tenant_id)).dsn
            await _load_rows(dsn, data)
            print(f"  {data.name}: {len(data.vectors)} rows loaded", flush=True)
            async with TenantRouter.open(plane) as router:
                for n in range(rounds):
                    order = list(Precision) if n % 2 == 0 else list(reversed(Precision))
                    for precision in order:
                        started = time.perf_counter()
                        spec = IndexSpec(kind=IndexKind.HNSW, precision=precision)
                        await set_index(plane, tenant_id, spec, actor=ACTOR)
                        seconds = time.perf_counter() - started
                        builds.append(Build(precision, seconds, await _index_mib(dsn)))
                        for ef in efs:
                            searches.append(
                                await _searches(
                                    router, tenant_id, data, truth, precision, ef, data_dir
                                )
                            )
                        print(
                            f"  round {n + 1} {precision}: built in {seconds:.1f}s, "
                            + ", ".join(
                                f"ef {s.ef_search} recall {s.recall:.3f}"
                                for s in searches[-len(efs) :]
                            ),
                            flush=True,
                        )
    return builds, searches


def report(
    results: list[tuple[DataSet, list[Build], list[Searches]]],
    args: argparse.Namespace,
    loads: tuple[str, str],
) -> str:
    lines = [
        "## Index precision: full (vector) vs half (halfvec)",
        "",
        f"{describe_machine()}; {today()}; load average {loads[0]} before, {loads[1]} after.",
        f"Command: `make bench-precision` (`python -m bench.precision --rows {args.rows} "
        f"--queries {args.queries} --rounds {args.rounds}`). One tenant per data set, "
        f"{args.rows:,} x {DIMS} (cosine, HNSW m=16 ef_construction=64), its index rebuilt "
        "at each precision in turn (rounds alternate the order); searches through the "
        f"library's `search()` (k={K}, one client, half precision re-ranking twice k "
        "candidates by exact distance). Recall@10 against exact search. Medians of the "
        "rounds.",
        "",
    ]
    for data, builds, searches in results:
        full = [b for b in builds if b.precision is Precision.FULL]
        half = [b for b in builds if b.precision is Precision.HALF]
        build_full = statistics.median(b.seconds for b in full)
        build_half = statistics.median(b.seconds for b in half)
        size_full = statistics.median(b.mib for b in full)
        size_half = statistics.median(b.mib for b in half)
        lines += [
            f"**{data.name}** ({len(data.vectors):,} rows, {len(data.queries)} queries): "
            f"the half index is **{size_full / size_half:.1f}x smaller** "
            f"({size_half:.0f} vs {size_full:.0f} MiB) and built **"
            f"{build_full / build_half:.2f}x faster** ({build_half:.1f} vs {build_full:.1f} s).",
            "",
            "| precision | ef_search | recall@10 | p50 ms | p95 ms | Postgres CPU ms/search "
            "| library CPU ms/search |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for ef in args.ef:
            for precision in Precision:
                runs = [s for s in searches if s.precision is precision and s.ef_search == ef]
                latencies = [x for s in runs for x in s.latencies]
                lines.append(
                    f"| {precision} | {ef} | {statistics.median(s.recall for s in runs):.3f} "
                    f"| {1000 * percentile(latencies, 50):.2f} "
                    f"| {1000 * percentile(latencies, 95):.2f} "
                    f"| {statistics.median(s.pg_cpu_ms for s in runs):.2f} "
                    f"| {statistics.median(s.own_cpu_ms for s in runs):.2f} |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 100])
    parser.add_argument("--data", nargs="+", default=["random", "docstrings"])
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    before = load_average()
    results = []
    for name in args.data:
        data = load(name, args.rows, args.queries)
        builds, searches = asyncio.run(measure(data, args.rounds, args.ef))
        results.append((data, builds, searches))
    body = report(results, args, (before, load_average()))
    print(body)
    replace_section(args.output, "precision", body)


if __name__ == "__main__":
    main()
