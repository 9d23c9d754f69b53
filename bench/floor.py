"""``make bench-floor``: what a 1,024-d search costs the API process, beside the floor of
the stack it is built on.

One tenant (N random unit vectors x 1,024, cosine, HNSW at full precision, ef_search 40)
searched for k=10 with content and metadata by 8 clients, five ways in interleaved
rounds (the order rotates):

- **direct**: psycopg in this process, one connection per client: the physical limit;
- **API**: ``tenantctl serve`` (one worker), the lean HTTP/1.1 client of ``bench.http1``;
- **API without the lane**: the same app with every search answered by Litestar's
  handler instead of the search lane (api/_lane.py) -- what the lane saves;
- **floor**: ``bench.floor_app`` on the same uvicorn (httptools) -- msgspec in, the same
  statement on eight psycopg connections, msgspec out, nothing else: the least any
  service on uvicorn + psycopg spends;
- **HTTP only**: the same app answering ten canned hits without Postgres: uvicorn's share.

Per way: searches per second, p50, CPU per search of the serving process, of Postgres
and of this process (``/proc``). Then, in this process, one connection, one statement
at a time: psycopg's own CPU per ``execute`` of ``SELECT 1`` and of the search. The
differences are the arithmetic: API - floor is tenantvec's layers (the lane, auth,
routing, checks, metrics); floor - HTTP only is psycopg's share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector_async

from bench.cpu import own_cpu, postgres_cpu, process_cpu
from bench.harness import (
    api_env,
    api_server,
    clean_env,
    copy_chunks,
    free_port,
    percentile,
    throwaway_server,
)
from bench.http1 import Http1Connection
from bench.machine import describe_machine, load_average, replace_section, today
from controlplane.keys import create_key
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import create_tenant, tenant_conninfo
from controlplane.model.request import TenantRequest
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tenantvec_schema.spec import IndexKind, IndexSpec, Precision

DIMS = 1024
K = 10
EF = 40
ACTOR = "bench"
TENANT = "floor"
# What the API reads for a search with content and metadata, at full precision.
SQL = (
    "SELECT document_id, ordinal, content, metadata, 1 - (embedding <=> %(v)s) AS score "
    f"FROM chunks ORDER BY embedding <=> %(v)s LIMIT {K}"
)
WAYS = ("direct", "API", "API without the lane", "floor", "HTTP only")

Search = Callable[[int], Awaitable[None]]


@dataclass
class Phase:
    rate: float
    p50_ms: float
    server_ms: float  # CPU per search of the serving process (0 for direct)
    postgres_ms: float
    bench_ms: float


@dataclass
class Results:
    phases: dict[str, list[Phase]] = field(default_factory=lambda: {w: [] for w in WAYS})
    execute_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"SELECT 1": [], "search": []}
    )


@contextlib.contextmanager
def floor_app(dsn: str, *, canned: bool) -> Iterator[tuple[str, int]]:
    """``bench.floor_app`` on uvicorn in a process of its own; yields its URL and pid."""
    env = clean_env()
    env.update(FLOOR_DSN=dsn, FLOOR_SQL=SQL, FLOOR_CANNED="1" if canned else "0")
    with _uvicorn(["bench.floor_app:app"], env, "/search") as served:
        yield served


@contextlib.contextmanager
def litestar_only(settings: Settings, token: str) -> Iterator[tuple[str, int]]:
    """The API's Litestar app without its search lane, on uvicorn like ``tenantctl
    serve``; yields its URL and pid."""
    env = api_env(settings, token, TENANTVEC_RECALL_SECONDS="86400")
    with _uvicorn(["--factory", "bench.floor_app:litestar_only"], env, "/readyz") as served:
        yield served


@contextlib.contextmanager
def _uvicorn(app: list[str], env: dict[str, str], probe: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", *app, "--port", str(port), "--http", "httptools"]
    command += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_answering(url, process, probe))
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _wait_answering(url: str, process: subprocess.Popen[bytes], probe: str) -> None:
    body = msgspec.json.encode({"vector": [1.0] * DIMS})
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            conn = Http1Connection(url)
            if probe == "/readyz":
                status, _ = await conn.request("GET", probe)
            else:
                status, _ = await conn.request("POST", probe, body)
            await conn.close()
            if status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        await asyncio.sleep(0.1)


class Rig:
    def __init__(
        self, *, dsn: str, data_dir: Path, queries: np.ndarray, key: str, pids: dict[str, int]
    ) -> None:
        self.dsn = dsn
        self.data_dir = data_dir
        self.queries = queries
        self.key = key
        self.pids = pids  # serving process of each way but direct
        self.urls: dict[str, str] = {}

    async def searchers(self, way: str, clients: int) -> list[Search]:
        if way == "direct":
            return [await self._direct() for _ in range(clients)]
        path = f"/v1/tenants/{TENANT}/search" if way.startswith("API") else "/search"
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        bodies = [
            msgspec.json.encode({"vector": q.tolist(), "k": K, "ef_search": EF})
            for q in self.queries
        ]
        result = []
        for _ in range(clients):
            http = Http1Connection(self.urls[way])

            async def one(n: int, http: Http1Connection = http) -> None:
                status, body = await http.request("POST", path, bodies[n], headers)
                if status != 200:
                    raise RuntimeError(f"{way}: {status} {body[:200]!r}")

            result.append(one)
        return result

    async def _direct(self) -> Search:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await register_vector_async(conn)
        await conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(EF),))

        async def one(n: int) -> None:
            cur = await conn.execute(SQL, {"v": Vector(self.queries[n].tolist())})
            await cur.fetchall()

        return one

    async def phase(self, way: str, searchers: list[Search], seconds: float) -> Phase:
        latencies: list[float] = []
        count = len(self.queries)
        deadline = time.perf_counter() + seconds

        async def client(search: Search, n: int) -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                await search(n % count)
                latencies.append(time.perf_counter() - began)
                n += len(searchers)

        pid = self.pids.get(way)
        before = (process_cpu(pid) if pid else 0.0, postgres_cpu(self.data_dir), own_cpu())
        began = time.perf_counter()
        await asyncio.gather(*(client(s, i) for i, s in enumerate(searchers)))
        elapsed = time.perf_counter() - began
        after = (process_cpu(pid) if pid else 0.0, postgres_cpu(self.data_dir), own_cpu())
        server, pg, bench = (
            1000 * (b - a) / len(latencies) for a, b in zip(before, after, strict=True)
        )
        return Phase(len(latencies) / elapsed, 1000 * percentile(latencies, 50), server, pg, bench)

    async def execute_cpu(self, statement: str, repeat: int) -> float:
        """psycopg's CPU (this process's) per ``execute`` + ``fetchall``, one at a time."""
        takes_vector = "%(v)s" in statement

        def params(n: int) -> dict[str, Vector] | None:
            vector = self.queries[n % len(self.queries)].tolist()
            return {"v": Vector(vector)} if takes_vector else None

        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await register_vector_async(conn)
            for n in range(20):  # prepared and warm before the count starts
                await (await conn.execute(statement, params(n))).fetchall()
            began = own_cpu()
            for n in range(repeat):
                await (await conn.execute(statement, params(n))).fetchall()
            return 1000 * (own_cpu() - began) / repeat


async def measure(rig: Rig, args: argparse.Namespace) -> Results:
    results = Results()
    searchers = {way: await rig.searchers(way, args.clients) for way in WAYS}
    for round_ in range(args.rounds):
        order = WAYS[round_ % len(WAYS) :] + WAYS[: round_ % len(WAYS)]
        for way in order:
            phase = await rig.phase(way, searchers[way], args.seconds)
            results.phases[way].append(phase)
            print(f"  round {round_ + 1} {way}: {phase}", flush=True)
        results.execute_ms["SELECT 1"].append(await rig.execute_cpu("SELECT 1", args.executes))
        results.execute_ms["search"].append(await rig.execute_cpu(SQL, args.executes))
    return results


async def _tenant(settings: Any, vectors: np.ndarray) -> tuple[str, str]:
    async with ControlPlane.open(settings) as plane:
        request = TenantRequest(
            id=TENANT,
            dims=DIMS,
            index=IndexSpec(kind=IndexKind.NONE),
            # direct, the floor app and the API each hold a connection per client
            limits={"connection_limit": 64},
        )
        await create_tenant(plane, request, actor=ACTOR)
        dsn = (await tenant_conninfo(plane, TENANT)).dsn
        await copy_chunks(dsn, vectors)
        full = IndexSpec(kind=IndexKind.HNSW, precision=Precision.FULL)
        await set_index(plane, TENANT, full, actor=ACTOR)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("VACUUM ANALYZE chunks")
        return dsn, (await create_key(plane, TENANT, actor=ACTOR)).secret


def run(args: argparse.Namespace) -> tuple[Results, tuple[str, str]]:
    rng = np.random.default_rng(7)
    vectors = _unit(rng.standard_normal((args.rows, DIMS), dtype=np.float32))
    queries = _unit(rng.standard_normal((args.queries, DIMS), dtype=np.float32))
    before = load_average()
    with throwaway_server(max_connections=100) as settings:
        dsn, key = asyncio.run(_tenant(settings, vectors))
        token = secrets.token_urlsafe(24)
        with (
            # Every search names its ef: the recall keeper would only add CPU to a phase.
            api_server(settings, token, TENANTVEC_RECALL_SECONDS="86400") as (api_url, api),
            litestar_only(settings, token) as (plain_url, plain),
            floor_app(dsn, canned=False) as (floor_url, floor),
            floor_app(dsn, canned=True) as (canned_url, canned),
        ):
            pids = {"API": api, "API without the lane": plain, "floor": floor, "HTTP only": canned}
            rig = Rig(
                dsn=dsn,
                data_dir=settings.home / "pg" / "data",
                queries=queries,
                key=key,
                pids=pids,
            )
            rig.urls = {
                "API": api_url,
                "API without the lane": plain_url,
                "floor": floor_url,
                "HTTP only": canned_url,
            }
            results = asyncio.run(measure(rig, args))
    return results, (before, load_average())


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _median(phases: list[Phase], attribute: str) -> float:
    return statistics.median(getattr(p, attribute) for p in phases)


def report(results: Results, args: argparse.Namespace, loads: tuple[str, str]) -> str:
    phases = results.phases
    api = _median(phases["API"], "server_ms")
    plain = _median(phases["API without the lane"], "server_ms")
    floor = _median(phases["floor"], "server_ms")
    http = _median(phases["HTTP only"], "server_ms")
    select1 = statistics.median(results.execute_ms["SELECT 1"])
    execute = statistics.median(results.execute_ms["search"])
    direct_rate = _median(phases["direct"], "rate")
    lines = [
        "## The API's CPU per search beside its stack's floor",
        "",
        f"{describe_machine()}; {today()}; load average {loads[0]} before, {loads[1]} after.",
        f"Command: `make bench-floor` (`python -m bench.floor --rows {args.rows} --clients "
        f"{args.clients} --seconds {args.seconds:g} --rounds {args.rounds}`). One tenant of "
        f"{args.rows:,} random unit vectors x {DIMS} (HNSW, full precision, ef_search {EF}), "
        f"k={K} with content and metadata, {args.clients} clients; the {len(WAYS)} ways in "
        "interleaved rounds, medians. *API without the lane*: the same app with searches "
        "answered by its Litestar handler, not the search lane (api/_lane.py). "
        "*floor*: an ASGI app on the same uvicorn doing only "
        "msgspec in, the statement on psycopg, msgspec out (bench/floor_app.py); *HTTP "
        "only*: that app answering canned hits without Postgres.",
        "",
        f"**The API process spends {api:.2f} ms of CPU per search; the floor of uvicorn + "
        f"psycopg is {floor:.2f} ms** ({http:.2f} ms of it uvicorn and HTTP, "
        f"{floor - http:.2f} ms psycopg and the query's encoding), so tenantvec's own "
        f"layers (the search lane, authentication, routing, checks, metrics) cost "
        f"{api - floor:.2f} ms; through Litestar's handler instead of the lane the API "
        f"spends {plain:.2f} ms. psycopg alone, one statement at a time in this process: "
        f"{select1:.2f} ms per "
        f"`SELECT 1`, {execute:.2f} ms per search. A budget of 0.3 ms per search is below "
        "what this stack's floor spends on this machine.",
        "",
        "| way | searches/s | vs direct | p50 ms | serving process CPU ms/search "
        "| Postgres CPU ms/search | load generator CPU ms/search |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for way in WAYS:
        rate = _median(phases[way], "rate")
        server = "-" if way == "direct" else f"{_median(phases[way], 'server_ms'):.3f}"
        lines.append(
            f"| {way} | {rate:,.0f} | {rate / direct_rate:.2f}x "
            f"| {_median(phases[way], 'p50_ms'):.2f} | {server} "
            f"| {_median(phases[way], 'postgres_ms'):.3f} "
            f"| {_median(phases[way], 'bench_ms'):.3f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executes", type=int, default=1000, help="one-at-a-time executes")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    results, loads = run(args)
    body = report(results, args, loads)
    print(body)
    replace_section(args.output, "floor", body)


if __name__ == "__main__":
    main()
