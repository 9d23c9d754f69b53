"""``make bench-provision``: create-to-ready latency, throughput and delete time.

Runs on a throwaway embedded server (durable settings, fsync on) in a temporary home,
so it never touches your own tenants. Several rounds; medians and p95 across them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane

ACTOR = "bench"


@dataclass
class Round:
    create_ms: list[float]
    delete_ms: list[float]
    concurrent_rate: float  # tenants per second with `concurrency` creates in flight
    concurrent_delete_rate: float


async def one_round(plane: ControlPlane, n: int, concurrency: int, dims: int, tag: str) -> Round:
    create_ms, delete_ms = [], []
    ids = [f"bench-{tag}-{i:05d}" for i in range(n)]
    for tenant_id in ids:  # one at a time: the latency a single caller sees
        started = time.perf_counter()
        await create_tenant(plane, TenantRequest(id=tenant_id, dims=dims), actor=ACTOR)
        create_ms.append((time.perf_counter() - started) * 1000)
    for tenant_id in ids:
        started = time.perf_counter()
        await delete_tenant(plane, tenant_id, actor=ACTOR)
        delete_ms.append((time.perf_counter() - started) * 1000)

    limit = asyncio.Semaphore(concurrency)
    ids = [f"bench-{tag}-c{i:05d}" for i in range(n)]

    async def create(tenant_id: str) -> None:
        async with limit:
            await create_tenant(plane, TenantRequest(id=tenant_id, dims=dims), actor=ACTOR)

    async def delete(tenant_id: str) -> None:
        async with limit:
            await delete_tenant(plane, tenant_id, actor=ACTOR)

    started = time.perf_counter()
    await asyncio.gather(*(create(t) for t in ids))
    rate = n / (time.perf_counter() - started)
    started = time.perf_counter()
    await asyncio.gather(*(delete(t) for t in ids))
    delete_rate = n / (time.perf_counter() - started)
    return Round(create_ms, delete_ms, rate, delete_rate)


async def run(n: int, rounds: int, concurrency: int, dims: int) -> tuple[list[Round], str]:
    with throwaway_server() as settings:
        async with ControlPlane.open(settings) as plane:
            assert plane.embedded is not None
            version = plane.embedded.binaries.version
            # Warm up: the first create also prepares the template database.
            await create_tenant(plane, TenantRequest(id="bench-warmup", dims=dims), actor=ACTOR)
            await delete_tenant(plane, "bench-warmup", actor=ACTOR)
            results = []
            for r in range(rounds):
                results.append(await one_round(plane, n, concurrency, dims, f"r{r}"))
                print(
                    f"round {r + 1}/{rounds}: create p50 "
                    f"{statistics.median(results[-1].create_ms):.1f} ms, "
                    f"{results[-1].concurrent_rate:.1f} tenants/s",
                    flush=True,
                )
        return results, version


def report(results: list[Round], n: int, concurrency: int, dims: int, version: str) -> str:
    all_create = [v for r in results for v in r.create_ms]
    all_delete = [v for r in results for v in r.delete_ms]
    rows = []
    for i, r in enumerate(results, 1):
        rows.append(
            f"| {i} | {statistics.median(r.create_ms):.1f} | {percentile(r.create_ms, 95):.1f} | "
            f"{statistics.median(r.delete_ms):.1f} | {percentile(r.delete_ms, 95):.1f} | "
            f"{r.concurrent_rate:.1f} | {r.concurrent_delete_rate:.1f} |"
        )
    rates = [r.concurrent_rate for r in results]
    header = (
        f"| round | create p50 ms | create p95 ms | delete p50 ms | delete p95 ms "
        f"| creates/s ({concurrency} at once) | deletes/s |"
    )
    summary = (
        f"**All rounds ({len(all_create)} creates):** create-to-ready p50 "
        f"**{statistics.median(all_create):.1f} ms**, p95 {percentile(all_create, 95):.1f} ms; "
        f"delete p50 {statistics.median(all_delete):.1f} ms, "
        f"p95 {percentile(all_delete, 95):.1f} ms; "
        f"throughput median **{statistics.median(rates):.1f} tenants/s**."
    )
    return f"""## Provisioning (`make bench-provision`)

- Date: {today()}
- Machine: {describe_machine()}
- Server: embedded Postgres {version}, durable settings (fsync on), a fresh server per run
- Command: `make bench-provision N={n}` (`python -m bench.provision --tenants {n} \
--rounds {len(results)} --concurrency {concurrency} --dims {dims}`)
- What: create-to-ready is `create_tenant()` end to end -- catalog rows, role, database copied
  from the template, schema applied over the tenant's own connection, state `ready` --
  one at a time; throughput runs {concurrency} creates (then deletes) at once.

{header}
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{summary}
Target: p50 <= 100 ms and >= 10 tenants/s (Neon publishes about 1-2 s for a new database).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=200, help="tenants per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    results, version = asyncio.run(run(args.tenants, args.rounds, args.concurrency, args.dims))
    text = report(results, args.tenants, args.concurrency, args.dims, version)
    print(text)
    if args.write:
        replace_section(args.write, "provision", text)


if __name__ == "__main__":
    main()
