"""``make bench-api``: what the routing API costs, and how it behaves fanned out.

1. Routing overhead: the same k=10 search over 10,000 vectors of 768 dimensions (one
   tenant, HNSW) run directly with psycopg against the tenant database and through the
   API (``tenantctl serve``, keep-alive), alternating query by query so both see the
   same caches. p50/p95 per run; medians across runs.
2. Fan-out: 100 tenants x 2,000 vectors (384 dimensions), 32 concurrent clients picking
   random tenants, a budget of 40 connections: throughput, p50/p95/p99, the cost of a
   cold pool's first request, CPU per request of the API process, of Postgres and of
   the load generator (``/proc``), and the peak tenant connections the server reports
   (pg_stat_activity, sampled every 10 ms on one connection).

The API is called through the lean HTTP/1.1 client of ``bench.http1``: httpx spends
about as much CPU per request as the API, on the same two cores.

Everything runs on a throwaway embedded server (fsync on) in a temporary home.
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
import psycopg
from pgvector.psycopg import register_vector_async

from bench.cpu import own_cpu, postgres_cpu, process_cpu
from bench.harness import api_server, percentile, throwaway_server
from bench.http1 import Http1Connection
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
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

ACTOR = "bench"
# Full precision: the direct path's SQL (DIRECT_SQL) orders by the column itself.
FULL_HNSW = IndexSpec(kind=IndexKind.HNSW, precision=Precision.FULL)
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
class Runs:
    """One traffic shape's fan-out runs: a value per run for each measure."""

    throughput: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p95: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    over_budget: list[int] = field(default_factory=list)  # 503 answers
    pools_opened: list[int] = field(default_factory=list)  # requests finding no pool
    connections_opened: list[int] = field(default_factory=list)  # connections made
    # CPU ms per request: the API process, Postgres, the load generator (this process)
    api_cpu: list[float] = field(default_factory=list)
    pg_cpu: list[float] = field(default_factory=list)
    load_cpu: list[float] = field(default_factory=list)


@dataclass
class FanOut:
    runs: dict[str, Runs]  # by traffic: "uniform", "zipf"
    cold_ms: float  # a tenant's first search through the API (no pool open)
    raw_ms: float  # psycopg.connect + the same search, as the tenant's role, interleaved
    warm_ms: float
    peak_connections: int
    budget_peak: int


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
    await create_tenant(plane, TenantRequest(id=tenant, dims=768, index=FULL_HNSW), actor=ACTOR)
    async with TenantRouter.open(plane) as router:
        print("seeding 10,000 x 768 ...", flush=True)
        await _seed(router, tenant, _vectors(rng, 10_000, 768), batch=500)
    conninfo = await tenant_conninfo(plane, tenant)
    result = Overhead([], [], [], [])
    http = Http1Connection(url)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    path = f"/v1/tenants/{tenant}/search"
    async with await psycopg.AsyncConnection.connect(conninfo.dsn, autocommit=True) as conn:
        await register_vector_async(conn)
        qs = _vectors(rng, queries, 768)
        for _ in range(20):  # warm both paths
            await conn.execute(DIRECT_SQL, {"v": qs[0]})
            await http.request("POST", path, _search_body(qs[0]), headers)
        for r in range(rounds):
            direct, api = [], []
            for q in qs:
                started = time.perf_counter()
                cur = await conn.execute(DIRECT_SQL, {"v": q})
                rows = await cur.fetchall()
                direct.append((time.perf_counter() - started) * 1000)
                body = _search_body(q)
                started = time.perf_counter()
                status, answer = await http.request("POST", path, body, headers)
                hits = msgspec.json.decode(answer)["results"]
                api.append((time.perf_counter() - started) * 1000)
                assert status == 200 and len(hits) == len(rows) == 10
            result.direct_p50.append(statistics.median(direct))
            result.direct_p95.append(percentile(direct, 95))
            result.api_p50.append(statistics.median(api))
            result.api_p95.append(percentile(api, 95))
            print(
                f"overhead run {r + 1}/{rounds}: direct p50 {result.direct_p50[-1]:.2f} ms, "
                f"API p50 {result.api_p50[-1]:.2f} ms",
                flush=True,
            )
    await http.close()
    return result


def _search_body(vector: np.ndarray) -> bytes:
    return msgspec.json.encode({"vector": vector.tolist(), "k": 10})


async def _router_connections(conn: psycopg.AsyncConnection[tuple[int]]) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenantvec-router'"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def fan_out(
    plane: ControlPlane,
    settings: Settings,
    url: str,
    api_pid: int,
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
            await create_tenant(
                plane, TenantRequest(id=tenant, dims=384, index=FULL_HNSW), actor=ACTOR
            )
            await _seed(router, tenant, _vectors(rng, 2_000, 384), batch=1_000)

    async with TenantRouter.open(plane) as router:
        await asyncio.gather(*(make(t) for t in ids))
    admin_dsn = EmbeddedServer(settings).superuser_conninfo().dsn
    data_dir = settings.home / "pg" / "data"
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    queries = [_search_body(v) for v in _vectors(rng, 64, 384)]
    # One keep-alive connection per client (and one for the bench's own calls).
    own = Http1Connection(url)

    async def search(tenant: str, http: Http1Connection) -> tuple[float, int]:
        started = time.perf_counter()
        status, _ = await http.request(
            "POST", f"/v1/tenants/{tenant}/search", random.choice(queries), headers
        )
        return (time.perf_counter() - started) * 1000, status

    async def metrics() -> list[str]:
        status, text = await own.request("GET", "/metrics", headers=headers)
        if status != 200:
            raise RuntimeError(f"GET /metrics: {status}")
        return text.decode().splitlines()

    async def counter(name: str) -> int:
        for line in await metrics():
            if line.startswith(f"tenantvec_{name}_total "):
                return int(float(line.split()[-1]))
        raise RuntimeError(f"no tenantvec_{name}_total in /metrics")

    async def raw(tenant: str) -> float:
        """What a client without tenantvec pays: connect as the tenant, search, close."""
        dsn = (await tenant_conninfo(plane, tenant)).dsn
        vector = random.choice(raw_vectors)
        started = time.perf_counter()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await register_vector_async(conn)
            await (await conn.execute(DIRECT_SQL, {"v": vector})).fetchall()
        return (time.perf_counter() - started) * 1000

    # Cold tenants: the first request to a tenant opens its pool; a raw connect and
    # the same search, tenant by tenant in turn, is what it is held to; the second
    # request through the API reuses the pool.
    raw_vectors = list(_vectors(rng, 16, 384))
    sample = ids[: _cold_sample(budget)]
    cold, raws = [], []
    for t in sample:
        raws.append(await raw(t))
        cold.append((await search(t, own))[0])
    warm = [(await search(t, own))[0] for t in sample]
    cold_ms, raw_ms, warm_ms = (statistics.median(x) for x in (cold, raws, warm))

    peak = 0
    sampling = True

    async def sampler() -> None:
        nonlocal peak
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            while sampling:
                peak = max(peak, await _router_connections(conn))
                await asyncio.sleep(0.01)

    # Zipf (s=1): tenant k of n asked in proportion to 1/k, as real traffic is.
    zipf = [1 / rank for rank in range(1, len(ids) + 1)]
    shapes = {"uniform": [1.0] * len(ids), "zipf": zipf}
    runs = {name: Runs() for name in shapes}
    watcher = asyncio.create_task(sampler())
    for r in range(rounds):
        for name, weights in shapes.items():
            latencies: list[float] = []
            refused = 0
            targets = random.choices(ids, weights=weights, k=requests)

            async def client(latencies: list[float], targets: list[str]) -> None:
                nonlocal refused
                http = Http1Connection(url)
                try:
                    while targets:
                        ms, status = await search(targets.pop(), http)
                        if status == 200:
                            latencies.append(ms)
                        elif status == 503:
                            refused += 1
                        else:
                            raise RuntimeError(f"unexpected status {status}")
                finally:
                    await http.close()

            pools_before = await counter("pools_opened")
            connections_before = await counter("connections_opened")
            cpu_before = process_cpu(api_pid), postgres_cpu(data_dir), own_cpu()
            started = time.perf_counter()
            await asyncio.gather(*(client(latencies, targets) for _ in range(clients)))
            elapsed = time.perf_counter() - started
            cpu_after = process_cpu(api_pid), postgres_cpu(data_dir), own_cpu()
            run = runs[name]
            run.pools_opened.append(await counter("pools_opened") - pools_before)
            run.connections_opened.append(await counter("connections_opened") - connections_before)
            run.throughput.append(len(latencies) / elapsed)
            run.p50.append(statistics.median(latencies))
            run.p95.append(percentile(latencies, 95))
            run.p99.append(percentile(latencies, 99))
            run.over_budget.append(refused)
            api_s, pg_s, load_s = (b - a for a, b in zip(cpu_before, cpu_after, strict=True))
            run.api_cpu.append(1000 * api_s / requests)
            run.pg_cpu.append(1000 * pg_s / requests)
            run.load_cpu.append(1000 * load_s / requests)
            print(
                f"fan-out {name} run {r + 1}/{rounds}: {run.throughput[-1]:.0f} req/s, "
                f"p50 {run.p50[-1]:.1f} ms, p95 {run.p95[-1]:.1f} ms, "
                f"{run.pools_opened[-1]} pools opened, {run.connections_opened[-1]} connections "
                f"made, 503s {refused}, "
                f"CPU ms/request API {run.api_cpu[-1]:.2f} Postgres {run.pg_cpu[-1]:.2f} "
                f"load {run.load_cpu[-1]:.2f}",
                flush=True,
            )
    sampling = False
    await watcher
    budget_peak = 0
    for line in await metrics():
        if line.startswith('tenantvec_server_peak{server="local"}'):
            budget_peak = int(float(line.split()[-1]))
    await own.close()
    return FanOut(runs, cold_ms, raw_ms, warm_ms, peak, budget_peak)


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
            with api_server(settings, token, **env) as (url, pid):
                over = await overhead(plane, url, token, args.rounds, args.queries)
                fan = await fan_out(
                    plane,
                    settings,
                    url,
                    pid,
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


# Fan-out before issue 17's work, uniform traffic, on the machine of docs/benchmarks.md
# (the same command at commit 7a4f765, 2026-12-02): req/s, p95 ms.
BASELINE_FAN_OUT = (66.7, 1647.0)


def report(over: Overhead, fan: FanOut, args: argparse.Namespace, version: str) -> str:
    med = statistics.median

    def row(name: str, values: list[float], unit: str = "ms") -> str:
        runs = ", ".join(f"{v:.2f}" for v in values)
        return f"| {name} | {med(values):.2f} {unit} | {runs} |"

    def counts(name: str, values: list[int]) -> str:
        return f"| {name} | {med(values):.0f} | " + ", ".join(str(v) for v in values) + " |"

    diff50 = [a - d for a, d in zip(over.api_p50, over.direct_p50, strict=True)]
    diff95 = [a - d for a, d in zip(over.api_p95, over.direct_p95, strict=True)]
    base_rate, base_p95 = BASELINE_FAN_OUT
    ratios = [
        f"- **cold tenant**: first search through the API {fan.cold_ms:.2f} ms = "
        f"**{fan.cold_ms / fan.raw_ms:.2f}x** a raw `psycopg.connect` + the same search "
        f"({fan.raw_ms:.2f} ms; target <= 1.5x)",
    ]
    for name, run in fan.runs.items():
        per_1000 = 1000 * med(run.connections_opened) / args.requests
        # Only uniform traffic was measured before issue 17 (with httpx as the load).
        before = (
            f"**{med(run.throughput) / base_rate:.1f}x** the {base_rate:.0f} req/s before issue "
            f"17, p95 {med(run.p95):.0f} ms (was {base_p95:.0f}; target <= 150)"
            if name == "uniform"
            else f"**{med(run.throughput) / base_rate:.1f}x** the uniform {base_rate:.0f} req/s "
            f"before issue 17 (Zipf was not measured then), p95 {med(run.p95):.0f} ms "
            "(target <= 150)"
        )
        ratios.append(
            f"- **fan-out, {name} traffic**: {med(run.throughput):.0f} req/s = {before}, "
            f"{per_1000:.0f} connections made per 1,000 requests"
        )
    ratios.append(
        f"- **routing overhead** (one warm tenant, one client): API p50 - direct p50 = "
        f"{med(diff50):.2f} ms"
    )
    lines = [
        f"Measured {today()} on {describe_machine()}; Postgres {version}, pgvector, "
        "fsync on; API: one `tenantctl serve` worker on loopback.",
        "",
        f"Command: `make bench-api` (`python -m bench.api --rounds {args.rounds} "
        f"--queries {args.queries} --tenants {args.tenants} --requests {args.requests} "
        f"--clients {args.clients} --budget {args.budget}`)",
        "",
        *ratios,
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
    ]
    for name, run in fan.runs.items():
        lines += [
            "",
            f"**Fan-out, {name} traffic** -- {args.tenants} tenants x 2,000 x 384 (HNSW), "
            f"{args.clients} concurrent clients, budget {args.budget} connections, "
            f"{args.requests} requests per run"
            + (" (tenant k asked in proportion to 1/k)" if name == "zipf" else "")
            + ":",
            "",
            "| measure | median of runs | per run |",
            "|---|---|---|",
            row("throughput", run.throughput, "req/s"),
            row("p50", run.p50),
            row("p95", run.p95),
            row("p99", run.p99),
            counts(f"cold pools opened (of {args.requests} requests)", run.pools_opened),
            counts("connections made", run.connections_opened),
            counts("503 (over budget)", run.over_budget),
            row("CPU per request: API process", run.api_cpu),
            row("CPU per request: Postgres", run.pg_cpu),
            row("CPU per request: load generator", run.load_cpu),
        ]
    lines += [
        "",
        f"Cold tenant, first request (median of {_cold_sample(args.budget)} tenants, one at a "
        f"time): {fan.cold_ms:.2f} ms through the API; a raw connect + the same search as "
        f"the tenant's role, interleaved: {fan.raw_ms:.2f} ms; the same tenants warm: "
        f"{fan.warm_ms:.2f} ms.",
        "",
        f"Peak tenant connections seen by the server (pg_stat_activity every 10 ms): "
        f"{fan.peak_connections}; peak budget slots held (router): {fan.budget_peak}; "
        f"budget: {args.budget}.",
    ]
    return "\n".join(lines)


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
