"""``make bench-api``: what the routing API costs, and how it behaves fanned out.

1. Routing overhead: the same k=10 search over 10,000 vectors of 768 dimensions (one
   tenant, HNSW) run directly with psycopg against the tenant database and through the
   API (``tenantctl serve``, httpx with keep-alive), alternating query by query so both
   see the same caches. p50/p95 per run; medians across runs.
2. Fan-out: 100 tenants x 2,000 vectors (384 dimensions), 32 concurrent clients picking
   random tenants, a budget of 40 connections: throughput, p50/p95/p99, the cost of a
   cold pool's first request, and the peak tenant connections the server reports
   (pg_stat_activity, sampled every 10 ms).

Everything runs on a throwaway embedded server (fsync on) in a temporary home.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async

from bench.harness import api_process, percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.lifecycle.tenants import (
    TenantRequest,
    create_tenant,
    tenant_conninfo,
)
from controlplane.localpg import EmbeddedServer
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.routing import TenantRouter
from controlplane.settings import Settings

ACTOR = "bench"
DIRECT_SQL = (
    "SELECT document_id, ordinal, content, metadata, 1 - (embedding <=> %(v)s) AS score "
    "FROM chunks ORDER BY embedding <=> %(v)s LIMIT 10"
)


@dataclass
class Overhead:
    direct_p50: list[float]
    direct_p95: list[float]
    api_p50: list[float]
    api_p95: list[float]


@dataclass
class FanOut:
    throughput: list[float]
    p50: list[float]
    p95: list[float]
    p99: list[float]
    over_budget: list[int]  # 503 answers per run
    cold_ms: float
    warm_ms: float
    peak_connections: int
    budget_peak: int
    pools_opened: list[int]  # per run: requests that found no open pool for their tenant


def _vectors(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    data = rng.standard_normal((n, dims)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


async def _seed(router: TenantRouter, tenant_id: str, vectors: np.ndarray, batch: int) -> None:
    for start in range(0, len(vectors), batch):
        docs = [
            DocumentIn(
                id=f"doc-{start + i}",
                chunks=[ChunkIn(content=f"chunk {start + i}", embedding=v.tolist())],
            )
            for i, v in enumerate(vectors[start : start + batch])
        ]
        await upsert_documents(router, tenant_id, UpsertRequest(documents=docs))


async def overhead(
    plane: ControlPlane, url: str, token: str, rounds: int, queries: int
) -> Overhead:
    rng = np.random.default_rng(7)
    tenant = "bench-overhead"
    await create_tenant(plane, TenantRequest(id=tenant, dims=768), actor=ACTOR)
    async with TenantRouter.open(plane) as router:
        print("seeding 10,000 x 768 ...", flush=True)
        await _seed(router, tenant, _vectors(rng, 10_000, 768), batch=500)
    conninfo = await tenant_conninfo(plane, tenant)
    result = Overhead([], [], [], [])
    async with (
        await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        await register_vector_async(conn)
        qs = _vectors(rng, queries, 768)
        for _ in range(20):  # warm both paths
            await conn.execute(DIRECT_SQL, {"v": qs[0]})
            await http.post(f"/v1/tenants/{tenant}/search", json={"vector": qs[0].tolist()})
        for r in range(rounds):
            direct, api = [], []
            for q in qs:
                started = time.perf_counter()
                cur = await conn.execute(DIRECT_SQL, {"v": q})
                rows = await cur.fetchall()
                direct.append((time.perf_counter() - started) * 1000)
                body = msgspec.json.encode({"vector": q.tolist(), "k": 10})
                started = time.perf_counter()
                response = await http.post(
                    f"/v1/tenants/{tenant}/search",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                hits = msgspec.json.decode(response.content)["results"]
                api.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and len(hits) == len(rows) == 10
            result.direct_p50.append(statistics.median(direct))
            result.direct_p95.append(percentile(direct, 95))
            result.api_p50.append(statistics.median(api))
            result.api_p95.append(percentile(api, 95))
            print(
                f"overhead run {r + 1}/{rounds}: direct p50 {result.direct_p50[-1]:.2f} ms, "
                f"API p50 {result.api_p50[-1]:.2f} ms",
                flush=True,
            )
    return result


async def _router_connections(admin_dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenantvec-router'"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def fan_out(
    plane: ControlPlane,
    settings: Settings,
    url: str,
    token: str,
    *,
    tenants: int,
    rounds: int,
    requests: int,
    clients: int,
    budget: int,
) -> FanOut:
    rng = np.random.default_rng(11)
    ids = [f"bench-fan-{i:03d}" for i in range(tenants)]
    print(f"provisioning and seeding {tenants} tenants x 2,000 x 384 ...", flush=True)
    limit = asyncio.Semaphore(4)

    async def make(tenant: str) -> None:
        async with limit:
            await create_tenant(plane, TenantRequest(id=tenant, dims=384), actor=ACTOR)
            await _seed(router, tenant, _vectors(rng, 2_000, 384), batch=1_000)

    async with TenantRouter.open(plane) as router:
        await asyncio.gather(*(make(t) for t in ids))
    admin_dsn = EmbeddedServer(settings).superuser_conninfo().dsn
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    queries = [msgspec.json.encode({"vector": v.tolist(), "k": 10}) for v in _vectors(rng, 64, 384)]
    result = FanOut([], [], [], [], [], 0.0, 0.0, 0, 0, [])

    async def pools_opened() -> int:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith("tenantvec_pools_opened_total "):
                return int(float(line.split()[-1]))
        raise RuntimeError("no tenantvec_pools_opened_total in /metrics")

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def search(tenant: str) -> tuple[float, int]:
            started = time.perf_counter()
            response = await http.post(
                f"/v1/tenants/{tenant}/search",
                content=random.choice(queries),
                headers={"Content-Type": "application/json"},
            )
            return (time.perf_counter() - started) * 1000, response.status_code

        # Cold pools: the first request to a tenant opens its pool; the second reuses it.
        sample = ids[: _cold_sample(budget)]
        cold = [(await search(t))[0] for t in sample]
        warm = [(await search(t))[0] for t in sample]
        result.cold_ms, result.warm_ms = statistics.median(cold), statistics.median(warm)

        peak = 0
        sampling = True

        async def sampler() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, await _router_connections(admin_dsn))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(sampler())
        for r in range(rounds):
            latencies: list[float] = []
            refused = 0
            remaining = requests

            async def client(latencies: list[float]) -> None:
                nonlocal remaining, refused
                while remaining > 0:
                    remaining -= 1
                    ms, status = await search(random.choice(ids))
                    if status == 200:
                        latencies.append(ms)
                    elif status == 503:
                        refused += 1
                    else:
                        raise RuntimeError(f"unexpected status {status}")

            opened_before = await pools_opened()
            started = time.perf_counter()
            await asyncio.gather(*(client(latencies) for _ in range(clients)))
            elapsed = time.perf_counter() - started
            result.pools_opened.append(await pools_opened() - opened_before)
            result.throughput.append(len(latencies) / elapsed)
            result.p50.append(statistics.median(latencies))
            result.p95.append(percentile(latencies, 95))
            result.p99.append(percentile(latencies, 99))
            result.over_budget.append(refused)
            print(
                f"fan-out run {r + 1}/{rounds}: {result.throughput[-1]:.0f} req/s, "
                f"p50 {result.p50[-1]:.1f} ms, p99 {result.p99[-1]:.1f} ms, 503s {refused}",
                flush=True,
            )
        sampling = False
        await watcher
        result.peak_connections = peak
        metrics = (await http.get("/metrics")).text
        for line in metrics.splitlines():
            if line.startswith('tenantvec_server_peak{server="local"}'):
                result.budget_peak = int(float(line.split()[-1]))
    return result


async def run(args: argparse.Namespace) -> tuple[Overhead, FanOut, str]:
    token = secrets.token_urlsafe(24)
    with throwaway_server() as settings:
        env = {
            "TENANTVEC_MAX_CONNECTIONS_PER_SERVER": str(args.budget),
            "TENANTVEC_POOL_WAIT_SECONDS": "10",
        }
        async with ControlPlane.open(settings) as plane:
            assert plane.embedded is not None
            version = plane.embedded.binaries.version
            with api_process(settings, token, **env) as url:
                over = await overhead(plane, url, token, args.rounds, args.queries)
                fan = await fan_out(
                    plane,
                    settings,
                    url,
                    token,
                    tenants=args.tenants,
                    rounds=args.rounds,
                    requests=args.requests,
                    clients=args.clients,
                    budget=args.budget,
                )
    return over, fan, version


def _cold_sample(budget: int) -> int:
    # Fewer tenants than the budget, so none is evicted between the cold and warm pass.
    return max(1, min(30, budget - 2))


def report(over: Overhead, fan: FanOut, args: argparse.Namespace, version: str) -> str:
    med = statistics.median

    def row(name: str, values: list[float], unit: str = "ms") -> str:
        runs = ", ".join(f"{v:.2f}" for v in values)
        return f"| {name} | {med(values):.2f} {unit} | {runs} |"

    diff50 = [a - d for a, d in zip(over.api_p50, over.direct_p50, strict=True)]
    diff95 = [a - d for a, d in zip(over.api_p95, over.direct_p95, strict=True)]
    return "\n".join(
        [
            f"Measured {today()} on {describe_machine()}; Postgres {version}, pgvector, "
            "fsync on; API: one `tenantctl serve` worker on loopback.",
            "",
            f"Command: `make bench-api` (`python -m bench.api --rounds {args.rounds} "
            f"--queries {args.queries} --tenants {args.tenants} --requests {args.requests} "
            f"--clients {args.clients} --budget {args.budget}`)",
            "",
            f"**Routing overhead** -- k=10 over 10,000 x 768 (HNSW, cosine), {args.queries} "
            "queries per run, direct psycopg and API alternating query by query:",
            "",
            "| measure | median of runs | per run |",
            "|---|---|---|",
            row("direct p50", over.direct_p50),
            row("API p50", over.api_p50),
            row("**API - direct, p50**", diff50),
            row("direct p95", over.direct_p95),
            row("API p95", over.api_p95),
            row("API - direct, p95", diff95),
            "",
            f"**Fan-out** -- {args.tenants} tenants x 2,000 x 384 (HNSW), {args.clients} "
            f"concurrent clients on random tenants, budget {args.budget} connections, "
            f"{args.requests} requests per run:",
            "",
            "| measure | median of runs | per run |",
            "|---|---|---|",
            row("throughput", fan.throughput, "req/s"),
            row("p50", fan.p50),
            row("p95", fan.p95),
            row("p99", fan.p99),
            f"| cold pools opened (of {args.requests} requests) | "
            f"{med(fan.pools_opened):.0f} | " + ", ".join(str(v) for v in fan.pools_opened) + " |",
            f"| 503 (over budget) | {med(fan.over_budget):.0f} | "
            + ", ".join(str(v) for v in fan.over_budget)
            + " |",
            "",
            f"Cold pool, first request (median of {_cold_sample(args.budget)} tenants, one at a "
            f"time): {fan.cold_ms:.2f} ms; the "
            f"same tenants warm: {fan.warm_ms:.2f} ms -- a cold pool costs "
            f"{fan.cold_ms - fan.warm_ms:.2f} ms (connect + SCRAM + pgvector type lookup).",
            "",
            f"Peak tenant connections seen by the server (pg_stat_activity every 10 ms): "
            f"{fan.peak_connections}; peak budget slots held (router): {fan.budget_peak}; "
            f"budget: {args.budget}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=300, help="overhead queries per run")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000, help="fan-out requests per run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    over, fan, version = asyncio.run(run(args))
    text = report(over, fan, args, version)
    print(text)
    if args.write:
        replace_section(args.write, "api", text)


if __name__ == "__main__":
    main()
