"""``make bench-serving``: what the serving path costs next to the database itself.

The shape of a production RAG system: ``--tenants`` tenants (default 50) holding
``--vectors`` chunks in all (default 200,000, ``--dims`` 1024), sized like customers are
(a few large, many small: Zipf), each with its own HNSW index; top-10 cosine searches,
each tenant asked in proportion to its size. The same searches run through the API
(``tenantctl serve``, httpx with keep-alive) and directly with psycopg (a pool per
tenant, as the tenant's own role), at 1 and at 8 clients, phase after phase in
alternating order for ``--rounds`` rounds: throughput, p50/p95, and CPU per search of
the API process, of Postgres (its postmaster and backends) and of the load generator
(this process), from ``/proc``. The API is called through a lean HTTP/1.1 client
(``bench.http1``): on a small machine the load generator shares the cores, and httpx
would cost as much CPU per request as the API does.

The direct query returns what the API's does (document id, ordinal, content, metadata,
score): the comparison is of the serving path, not of two different queries.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from bench.cpu import own_cpu, postgres_cpu, process_cpu
from bench.harness import api_server, copy_chunks, percentile, throwaway_server
from bench.http1 import Http1Connection
from bench.machine import describe_machine, replace_section, today
from controlplane.keys import create_key
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import create_tenant, tenant_conninfo
from controlplane.model.request import TenantRequest
from controlplane.plane import ControlPlane
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

FULL_HNSW = IndexSpec(kind=IndexKind.HNSW, precision=Precision.FULL)
ACTOR = "bench"
# What the API's vector search returns, asked of the tenant database directly.
_DIRECT = (
    "SELECT document_id, ordinal, content, metadata, 1 - (embedding <=> %(v)s) AS score "
    "FROM chunks ORDER BY embedding <=> %(v)s LIMIT 10"
)


@dataclass
class Tenant:
    id: str
    size: int
    dsn: str = field(repr=False, default="")
    key: str = field(repr=False, default="")


@dataclass
class Phase:
    path: str  # "api" | "direct"
    clients: int
    latencies: list[float]
    seconds: float
    api_cpu: float  # seconds of CPU the API process used during the phase
    pg_cpu: float  # and Postgres
    load_cpu: float  # and this process, the load generator (HTTP client or psycopg)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def zipf_sizes(tenants: int, total: int, s: float = 1.0) -> list[int]:
    weights = [1 / (rank**s) for rank in range(1, tenants + 1)]
    scale = total / sum(weights)
    return [max(50, round(w * scale)) for w in weights]


async def load(
    plane: ControlPlane, tenants: list[Tenant], dims: int, rng: np.random.Generator
) -> None:
    """Each tenant made with no index, filled with COPY, then indexed in one build (the
    fast path for a bulk load)."""
    for n, tenant in enumerate(tenants):
        request = TenantRequest(id=tenant.id, dims=dims, index=IndexSpec(kind=IndexKind.NONE))
        await create_tenant(plane, request, actor=ACTOR)
        tenant.dsn = (await tenant_conninfo(plane, tenant.id)).dsn
        vectors = rng.standard_normal((tenant.size, dims), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        await copy_chunks(tenant.dsn, vectors, f" of {tenant.id}")
        # Full precision: the direct path's SQL (DIRECT_SQL) orders by the column itself.
        await set_index(plane, tenant.id, FULL_HNSW, actor=ACTOR)
        tenant.key = (await create_key(plane, tenant.id, actor=ACTOR)).secret
        print(f"  {n + 1}/{len(tenants)} {tenant.id}: {tenant.size} chunks", flush=True)


class Workload:
    """Searches drawn ahead of time (the bench's own CPU is not the serving path's): a
    tenant in proportion to its size, and a random unit vector, as a list for the API's
    JSON and as an array for psycopg."""

    def __init__(self, tenants: list[Tenant], dims: int, seed: int, count: int = 2000) -> None:
        rng = random.Random(seed)
        chosen = rng.choices(tenants, weights=[t.size for t in tenants], k=count)
        vectors = np.random.default_rng(seed).standard_normal((count, dims), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self.searches = [
            (tenant, msgspec.json.encode({"vector": vector.tolist(), "k": 10}), vector)
            for tenant, vector in zip(chosen, vectors, strict=True)
        ]
        self._next = 0

    def next(self) -> tuple[Tenant, bytes, np.ndarray]:
        self._next = (self._next + 1) % len(self.searches)
        return self.searches[self._next]


async def run_phase(
    path: str,
    clients: int,
    seconds: float,
    workload: Workload,
    search: object,
    api_pid: int,
    data_dir: Path,
) -> Phase:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            tenant, body, vector = workload.next()
            started = time.perf_counter()
            await search(tenant, body, vector)  # type: ignore[operator]
            latencies.append(time.perf_counter() - started)

    api_before, pg_before = process_cpu(api_pid), postgres_cpu(data_dir)
    load_before = own_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return Phase(
        path,
        clients,
        latencies,
        elapsed,
        process_cpu(api_pid) - api_before,
        postgres_cpu(data_dir) - pg_before,
        own_cpu() - load_before,
    )


async def measure(args: argparse.Namespace) -> tuple[list[Phase], dict[str, object]]:
    rng = np.random.default_rng(args.seed)
    sizes = zipf_sizes(args.tenants, args.vectors)
    tenants = [Tenant(f"serve-{n:03d}", size) for n, size in enumerate(sizes)]
    token = secrets.token_urlsafe(24)
    # Room for both paths at once: every tenant's direct pool and the API's pools, so
    # that neither is measured queueing for the other's connections (the fan-out past
    # a connection budget is another measurement).
    with throwaway_server(durable=False, max_connections=600) as settings:
        started = time.perf_counter()
        async with ControlPlane.open(settings) as plane:
            await load(plane, tenants, args.dims, rng)
        load_seconds = time.perf_counter() - started
        data_dir = settings.home / "pg" / "data"
        budget = {
            "TENANTVEC_MAX_CONNECTIONS_PER_SERVER": str(4 * args.tenants),
            "TENANTVEC_MAX_POOLS": str(2 * args.tenants),
        }
        with api_server(settings, token, workers=args.workers, **budget) as (url, pid):
            pools = {
                t.id: AsyncConnectionPool(
                    t.dsn, min_size=1, max_size=4, open=False, configure=register_vector_async
                )
                for t in tenants
            }
            for pool in pools.values():
                await pool.open()
            # One keep-alive connection per client, from the lean client (bench.http1):
            # httpx would spend as much CPU per request as the API, on the same cores.
            idle: list[Http1Connection] = []

            async def call(method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
                conn = idle.pop() if idle else Http1Connection(url)
                try:
                    status, answer = await conn.request(method, path, body, headers)
                except BaseException:
                    await conn.close()
                    raise
                idle.append(conn)
                if status != 200:
                    raise RuntimeError(f"{method} {path}: {status} {answer[:200]!r}")

            async def via_api(tenant: Tenant, body: bytes, vector: np.ndarray) -> None:
                await call(
                    "POST",
                    f"/v1/tenants/{tenant.id}/search",
                    body,
                    {
                        "authorization": f"Bearer {tenant.key}",
                        "content-type": "application/json",
                    },
                )

            async def direct(tenant: Tenant, body: bytes, vector: np.ndarray) -> None:
                async with pools[tenant.id].connection() as conn:
                    cur = await conn.execute(_DIRECT, {"v": vector})
                    await cur.fetchall()

            async def floor(tenant: Tenant, body: bytes, vector: np.ndarray) -> None:
                await call("GET", "/healthz", b"", {})

            workload = Workload(tenants, args.dims, args.seed)
            # "floor": what any request costs through the same HTTP client and
            # server, with no database in it -- the part of the gap that is HTTP.
            paths = {"api": via_api, "direct": direct, "floor": floor}
            for name in ("api", "direct"):  # warm: every pool open, caches filled
                await run_phase(name, 8, args.warmup, workload, paths[name], pid, data_dir)
            phases = []
            for round_ in range(args.rounds):
                for clients in args.clients:
                    order = ["api", "direct"] if round_ % 2 == 0 else ["direct", "api"]
                    order.append("floor")
                    for name in order:
                        phase = await run_phase(
                            name, clients, args.seconds, workload, paths[name], pid, data_dir
                        )
                        phases.append(phase)
                        print(
                            f"  round {round_ + 1} {clients} client(s) {name:6}: "
                            f"{phase.rate:6.0f}/s p50 "
                            f"{percentile(phase.latencies, 50) * 1000:.2f} ms",
                            flush=True,
                        )
            for conn in idle:
                await conn.close()
            for pool in pools.values():
                await pool.close()
    facts = {"load_seconds": load_seconds, "sizes": sizes}
    return phases, facts


def render(phases: list[Phase], facts: dict[str, object], args: argparse.Namespace) -> str:
    sizes: list[int] = facts["sizes"]  # type: ignore[assignment]
    lines = [
        "## The serving path next to the database (`make bench-serving`)",
        "",
        f"{describe_machine()}; {today()}; `python -m bench.serving --tenants {args.tenants} "
        f"--vectors {args.vectors} --dims {args.dims} --rounds {args.rounds} --seconds "
        f"{args.seconds} --workers {args.workers}`. {args.tenants} tenants of "
        f"{min(sizes)}-{max(sizes)} chunks (Zipf), HNSW, top-10 cosine, each tenant asked in "
        "proportion to its size; the API and direct psycopg (a pool per tenant, the same "
        "columns) phase after phase in alternating order. Medians over rounds; CPU from "
        "/proc.",
        "",
        "| clients | path | searches/s | p50 ms | p95 ms | CPU ms/search: API | Postgres | "
        "load generator |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    labels = {"api": "api", "direct": "direct", "floor": "API `GET /healthz` (HTTP floor)"}
    for clients in args.clients:
        row = {}
        for path in ("api", "direct", "floor"):
            mine = [p for p in phases if p.clients == clients and p.path == path]
            rate = statistics.median(p.rate for p in mine)
            p50 = statistics.median(percentile(p.latencies, 50) for p in mine) * 1000
            p95 = statistics.median(percentile(p.latencies, 95) for p in mine) * 1000
            n = [len(p.latencies) for p in mine]
            api_ms = statistics.median(p.api_cpu / k * 1000 for p, k in zip(mine, n, strict=True))
            pg_ms = statistics.median(p.pg_cpu / k * 1000 for p, k in zip(mine, n, strict=True))
            load_ms = statistics.median(p.load_cpu / k * 1000 for p, k in zip(mine, n, strict=True))
            api_cell = f"{api_ms:.2f}" if path != "direct" else "–"
            pg_cell = f"{pg_ms:.2f}" if path != "floor" else "–"
            row[path] = (rate, p50, api_ms, (api_ms if path != "direct" else 0) + pg_ms + load_ms)
            lines.append(
                f"| {clients} | {labels[path]} | {rate:.0f} | {p50:.2f} | {p95:.2f} | "
                f"{api_cell} | {pg_cell} | {load_ms:.2f} |"
            )
        api, direct, floor = row["api"], row["direct"], row["floor"]
        summary.append(
            f"- **{clients} client(s)**: the API serves **{api[0] / direct[0]:.0%}** of direct "
            f"psycopg's searches/s (target >= 85 % at 8), p50 **{api[1] - direct[1]:+.2f} ms** "
            f"(target within 0.5 ms at 1), **{api[2]:.2f} ms** of API CPU per search (target "
            f"<= 0.3), of which {floor[2]:.2f} ms an HTTP request costs with no search in it; "
            f"all processes together spend {api[3]:.2f} ms of CPU per search through the API, "
            f"{direct[3]:.2f} ms direct (where the cores are the limit, the ratio cannot pass "
            f"{direct[3] / api[3]:.0%})"
        )
    header = lines[:3]
    return "\n".join([*header, "", *summary, *lines[3:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--vectors", type=int, default=200_000, help="chunks in all tenants")
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=lambda t: [int(n) for n in t.split(",")], default=[1, 8])
    parser.add_argument("--workers", type=int, default=1, help="tenantctl serve --workers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", type=Path, help="update this markdown file's bench:serving")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (medians of rounds)")
    phases, facts = asyncio.run(measure(args))
    report = render(phases, facts, args)
    print(report)
    if args.write:
        replace_section(args.write, "serving", report)


if __name__ == "__main__":
    main()
