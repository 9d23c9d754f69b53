"""``make bench-scale-to-zero``: what an idle tenant costs, and how fast it wakes.

Three measurements on a throwaway embedded server (durable, fsync on):

1. **Idle memory.** ``--tenants`` instance tenants (small tier, and a few medium) each
   serve one query and are left idle; their servers' memory is summed over every
   process as proportional set size (PSS: shared pages split between the processes
   mapping them, so nothing is counted twice). The same number of ``postgres``
   (database) tenants is measured as the growth of the shared server's PSS -- with
   their connections closed (an idle pool closes them) and with one left open each.
2. **Cold start.** Through the real API: a tenant is suspended, then one search is
   timed from request to answer (the router resumes it on the way). ``--runs`` times
   per backend, next to the same search on the warm tenant.
3. **A neighbour waking.** One client searches tenant A in a loop while another
   suspends and wakes tenant B, again and again; A's latency while B's resume is in
   flight is compared with A's latency alone, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.harness import api_process, percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.lifecycle.tenants import (
    TenantRequest,
    create_tenant,
    delete_tenant,
    tenant_conninfo,
)
from controlplane.localpg import EmbeddedServer
from controlplane.localpg.cluster import process_tree_memory
from controlplane.plane import ControlPlane
from controlplane.settings import Settings

ACTOR = "bench"
MB = 2**20
QUERY = "SELECT count(*) FROM chunks WHERE embedding IS NOT NULL"


# -- 1. idle memory ----------------------------------------------------------------------


@dataclass
class MemoryResult:
    instance_small_mb: list[float]
    instance_medium_mb: list[float]
    database_closed_mb: float  # per tenant, connections closed
    database_open_mb: float  # per tenant, one idle connection held open each
    tenants: int


async def measure_memory(
    settings: Settings, tenants: int, medium: int, settle: float
) -> MemoryResult:
    async with ControlPlane.open(settings) as plane:
        server_pid = EmbeddedServer(settings).status().pid
        assert server_pid is not None

        async def make(ids: list[str], **options: Any) -> None:
            for start in range(0, len(ids), 4):
                await asyncio.gather(
                    *(
                        create_tenant(plane, TenantRequest(id=tid, dims=3, **options), actor=ACTOR)
                        for tid in ids[start : start + 4]
                    )
                )

        async def touch(tenant_id: str, keep: list[psycopg.AsyncConnection[Any]]) -> None:
            dsn = (await tenant_conninfo(plane, tenant_id)).dsn
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            await conn.execute(QUERY)
            keep.append(conn)

        async def pss_of(tenant_ids: list[str]) -> list[float]:
            await asyncio.sleep(settle)  # let the servers settle after their first query
            sizes = []
            for tid in tenant_ids:
                tenant = await plane.catalog.get_tenant(tid)
                pidfile = Path(tenant.placement["data_dir"]) / "postmaster.pid"
                pid = int(pidfile.read_text().splitlines()[0])
                sizes.append((process_tree_memory(pid) or 0) / MB)
            return sizes

        small = [f"idle-small-{n:03d}" for n in range(tenants)]
        mediums = [f"idle-medium-{n:03d}" for n in range(medium)]
        databases = [f"idle-db-{n:03d}" for n in range(tenants)]
        try:
            await make(small, backend="instance", tier="small")
            await make(mediums, backend="instance", tier="medium")
            conns: list[psycopg.AsyncConnection[Any]] = []
            for tid in small + mediums:
                await touch(tid, conns)
            for conn in conns:
                await conn.close()
            small_mb, medium_mb = await pss_of(small), await pss_of(mediums)

            await asyncio.sleep(settle)
            before = (process_tree_memory(server_pid) or 0) / MB
            await make(databases)
            conns = []
            for tid in databases:
                await touch(tid, conns)
            await asyncio.sleep(settle)
            with_open = (process_tree_memory(server_pid) or 0) / MB
            for conn in conns:
                await conn.close()
            await asyncio.sleep(settle)
            closed = (process_tree_memory(server_pid) or 0) / MB
        finally:
            for tid in small + mediums + databases:
                try:
                    await delete_tenant(plane, tid, actor=ACTOR)
                except Exception as exc:  # noqa: BLE001 -- clean up what we can, say what failed
                    print(f"could not delete {tid}: {exc}")
    return MemoryResult(
        instance_small_mb=small_mb,
        instance_medium_mb=medium_mb,
        database_closed_mb=(closed - before) / tenants,
        database_open_mb=(with_open - before) / tenants,
        tenants=tenants,
    )


# -- 2 and 3. through the API --------------------------------------------------------------


@dataclass
class ColdStart:
    backend: str
    cold_ms: list[float]
    warm_ms: list[float]


@dataclass
class Neighbour:
    alone_ms: list[float]
    during_resume_ms: list[float]
    resume_ms: list[float]


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.admin = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.url = url
        self.keys: dict[str, httpx.AsyncClient] = {}

    async def tenant(self, tenant_id: str, backend: str) -> httpx.AsyncClient:
        created = await self.admin.post(
            "/v1/tenants", json={"id": tenant_id, "dims": 3, "backend": backend}
        )
        assert created.status_code == 201, created.text
        key = (await self.admin.post(f"/v1/tenants/{tenant_id}/keys", json={})).json()["key"]
        client = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        docs = [
            {"id": f"d{n}", "chunks": [{"content": f"doc {n}", "embedding": [1, n / 10, 0]}]}
            for n in range(20)
        ]
        put = await client.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": docs})
        assert put.status_code == 200, put.text
        self.keys[tenant_id] = client
        return client

    async def search_ms(self, tenant_id: str) -> float:
        started = time.perf_counter()
        found = await self.keys[tenant_id].post(
            f"/v1/tenants/{tenant_id}/search", json={"vector": [1, 0, 0], "k": 5}
        )
        assert found.status_code == 200, found.text
        return (time.perf_counter() - started) * 1000

    async def suspend(self, tenant_id: str) -> None:
        done = await self.admin.post(f"/v1/tenants/{tenant_id}/suspend")
        assert done.status_code == 200 and done.json()["state"] == "suspended", done.text

    async def close(self) -> None:
        for client in [self.admin, *self.keys.values()]:
            await client.aclose()


async def measure_cold_starts(api: Api, runs: int) -> list[ColdStart]:
    results = []
    for backend in ("postgres", "instance"):
        tenant_id = f"cold-{backend}"
        await api.tenant(tenant_id, backend)
        warm = [await api.search_ms(tenant_id) for _ in range(runs)]
        cold = []
        for _ in range(runs):
            await api.suspend(tenant_id)
            cold.append(await api.search_ms(tenant_id))
            warm.append(await api.search_ms(tenant_id))
        results.append(ColdStart(backend, cold, warm))
    return results


async def measure_neighbour(api: Api, runs: int, seconds: float) -> Neighbour:
    await api.tenant("steady", "instance")
    await api.tenant("neighbour", "instance")
    alone = [await api.search_ms("steady") for _ in range(int(seconds * 50))]

    windows: list[tuple[float, float]] = []
    samples: list[tuple[float, float, float]] = []  # (start, end, ms)
    stop = asyncio.Event()

    async def steady() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            ms = await api.search_ms("steady")
            samples.append((started, time.perf_counter(), ms))

    async def wake_neighbour() -> None:
        for _ in range(runs):
            await api.suspend("neighbour")
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            await api.search_ms("neighbour")
            windows.append((started, time.perf_counter()))
            await asyncio.sleep(0.2)
        stop.set()

    await asyncio.gather(steady(), wake_neighbour())
    during = [ms for start, end, ms in samples if any(s < end and start < e for s, e in windows)]
    return Neighbour(
        alone_ms=alone,
        during_resume_ms=during,
        resume_ms=[(e - s) * 1000 for s, e in windows],
    )


async def measure_api(settings: Settings, runs: int, seconds: float) -> tuple[Any, Any]:
    token = secrets.token_urlsafe(24)
    # No background sweeps: only requests and the benchmark change tenants here.
    with api_process(settings, token, TENANTVEC_SUPERVISE_SECONDS="3600") as url:
        api = Api(url, token)
        try:
            cold = await measure_cold_starts(api, runs)
            neighbour = await measure_neighbour(api, runs, seconds)
        finally:
            for tenant_id in list(api.keys):
                await api.admin.delete(f"/v1/tenants/{tenant_id}")
            await api.close()
    return cold, neighbour


# -- report ---------------------------------------------------------------------------------


def _p(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {percentile(values, 95):.0f}"


def render(
    memory: MemoryResult,
    cold: list[ColdStart],
    neighbour: Neighbour,
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    small = statistics.mean(memory.instance_small_mb)
    medium = statistics.mean(memory.instance_medium_mb) if memory.instance_medium_mb else 0.0
    lines = [
        "## Scale to zero and instance tenants (`make bench-scale-to-zero`)",
        "",
        f"Machine: {describe_machine()}. Run: {today()}, {elapsed:.0f} s. Command: "
        f"`python -m bench.scale_to_zero --tenants {args.tenants} --runs {args.runs}`. "
        "Embedded Postgres 18.4, fsync on.",
        "",
        f"**Idle memory** ({memory.tenants} tenants of each kind, each having served one "
        "query; proportional set size, so shared pages count once):",
        "",
        "| tenant | idle memory each (mean; median / p95) | tenants per GB of RAM |",
        "|---|---|---|",
        f"| instance, small tier (shared_buffers 16MB) | {small:.1f} MB; "
        f"{_p(memory.instance_small_mb)} MB | {1024 / small:.0f} |",
    ]
    if memory.instance_medium_mb:
        lines.append(
            f"| instance, medium tier (shared_buffers 128MB) | {medium:.1f} MB; "
            f"{_p(memory.instance_medium_mb)} MB | {1024 / medium:.0f} |"
        )
    lines += [
        f"| database on the shared server, connection closed | "
        f"{memory.database_closed_mb:.2f} MB | "
        f"{_per_gb(memory.database_closed_mb)} |",
        f"| database on the shared server, one idle connection open | "
        f"{memory.database_open_mb:.2f} MB | {_per_gb(memory.database_open_mb)} |",
        "| any tenant, suspended (instance: server stopped) | 0 MB of compute | - |",
        "",
        "An instance's figure is its own processes (postmaster, one I/O worker, "
        "checkpointer, writers, launchers) plus the buffers it touched. The database rows "
        f"are the shared server's growth divided by {memory.tenants}: mostly shared_buffers "
        "pages the new databases touched -- a cache bounded by the server's shared_buffers, "
        "not a reservation per tenant -- and, with a connection open, its backend process "
        "(which an idle pool closes after TENANTVEC_POOL_IDLE_SECONDS).",
        "",
        f"**Cold start**, request to answer through the API ({args.runs} runs each; "
        "milliseconds, median / p95):",
        "",
        "| backend | warm search | first search after suspend (resume included) |",
        "|---|---|---|",
    ]
    for result in cold:
        lines.append(f"| {result.backend} | {_p(result.warm_ms)} | {_p(result.cold_ms)} |")
    lines += [
        "",
        "**A neighbour waking.** Searches of an instance tenant while another instance "
        f"tenant is resumed {args.runs} times (ms, median / p95; same run):",
        "",
        "| searches of tenant A | samples | latency |",
        "|---|---|---|",
        f"| alone | {len(neighbour.alone_ms)} | {_p(neighbour.alone_ms)} |",
        f"| while tenant B's resume is in flight | {len(neighbour.during_resume_ms)} | "
        f"{_p(neighbour.during_resume_ms) if neighbour.during_resume_ms else '-'} |",
        f"| (tenant B's waking request itself) | {len(neighbour.resume_ms)} | "
        f"{_p(neighbour.resume_ms)} |",
    ]
    return "\n".join(lines)


def _per_gb(megabytes: float) -> str:
    return f"{1024 / megabytes:.0f}" if megabytes > 0.01 else "thousands (below measurement)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--tenants", type=int, default=20, help="idle tenants of each kind")
    parser.add_argument("--medium", type=int, default=5, help="medium-tier instances")
    parser.add_argument("--runs", type=int, default=30, help="cold starts per backend")
    parser.add_argument("--seconds", type=float, default=3.0, help="baseline duration")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds servers rest before measuring"
    )
    parser.add_argument("--write", type=Path, help="update this benchmarks.md")
    args = parser.parse_args()
    started = time.monotonic()
    with throwaway_server() as settings:
        try:
            memory = asyncio.run(measure_memory(settings, args.tenants, args.medium, args.settle))
            cold, neighbour = asyncio.run(measure_api(settings, args.runs, args.seconds))
        finally:
            from controlplane.backends.instance.backend import InstanceBackend

            InstanceBackend(settings).stop_all()
    report = render(memory, cold, neighbour, args, time.monotonic() - started)
    print(report)
    if args.write:
        replace_section(args.write, "scale-to-zero", report)


if __name__ == "__main__":
    main()
