"""``make bench-tenancy``: the same corpus as a shared table, partitions, and databases.

Builds the four layouts on one embedded Postgres, runs the same queries against each
over a sweep of ``hnsw.ef_search`` with 1 and 16 clients, measures operations (add,
delete, disk, cross-tenant counts), and writes docs/tenancy-benchmark.md's results
section, the PNG plots beside it and the raw numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import throwaway_server
from bench.machine import describe_machine, replace_section, today
from bench.tenancy import plots, report
from bench.tenancy.data import Dataset, Scale
from bench.tenancy.layouts import DatabasePerTenant, PartitionedTable, SharedTable, Way
from bench.tenancy.measure import Variant, sweep
from bench.tenancy.operations import (
    db_per_tenant_operations,
    delete_targets,
    partitioned_operations,
    shared_operations,
)
from controlplane.localpg import EmbeddedServer
from controlplane.plane import ControlPlane
from controlplane.routing import TenantRouter
from controlplane.settings import Settings

QUICK = Scale(tenants=12, vectors=4_000, dims=64, queries=20)
TABLES_DB = "bench_tables"
ROOMY_BUDGET = 250  # connections per server: more than the tenants a sweep queries


def server_settings() -> dict[str, str]:
    """Memory for a vector workload: the corpus in shared_buffers, graphs built in memory."""
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "shared_buffers": f"{min(4096, ram_mb // 4)}MB",
        "effective_cache_size": f"{ram_mb // 2}MB",
        "maintenance_work_mem": f"{min(2048, ram_mb // 8)}MB",
    }


def tune(settings: Settings, wanted: dict[str, str]) -> None:
    """ALTER SYSTEM on the throwaway server, then restart it so shared_buffers applies."""
    server = EmbeddedServer(settings)
    with psycopg.connect(server.superuser_conninfo().dsn, autocommit=True) as conn:
        for name, value in wanted.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    server.stop()
    server.ensure_running()


def say(message: str) -> None:
    print(message, flush=True)


async def run(args: argparse.Namespace, scale: Scale) -> dict[str, Any]:
    started = time.perf_counter()
    data = Dataset(scale)
    queries = data.queries
    elapsed = time.perf_counter() - started
    say(f"data: {scale.tenants} tenants, {scale.vectors:,} x {scale.dims} ({elapsed:.0f}s)")
    classes = {}
    for name, tenants in data.size_classes.items():
        sizes = [int(data.sizes[t]) for t in tenants]
        classes[name] = {
            "tenants": len(tenants),
            "min": min(sizes),
            "max": max(sizes),
            "share": sum(sizes) / scale.vectors,
            "own_share": data.own_share([q for q in queries if q.size_class == name]),
        }
    wanted = server_settings()
    # Room on the server for a router whose budget holds every queried tenant's pool.
    with throwaway_server(max_connections=ROOMY_BUDGET + 50) as settings:
        tune(settings, wanted)
        async with contextlib.AsyncExitStack() as stack:
            plane = await stack.enter_async_context(ControlPlane.open(settings))
            router = await stack.enter_async_context(TenantRouter.open(plane))
            assert plane.embedded is not None
            admin = plane.embedded.superuser_conninfo()
            async with await psycopg.AsyncConnection.connect(admin.dsn, autocommit=True) as c:
                await c.execute(f"CREATE DATABASE {TABLES_DB}")
                cur = await c.execute(
                    "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
                )
                pgvector = str((await cur.fetchone() or ("?",))[0])
            tables = dataclasses.replace(admin, dbname=TABLES_DB)
            async with await psycopg.AsyncConnection.connect(tables.dsn, autocommit=True) as c:
                await c.execute("CREATE EXTENSION vector")
            shared = SharedTable(tables)
            partitioned = PartitionedTable(tables)
            dbpt = DatabasePerTenant(plane, router)

            builds = {}
            for layout in (shared, partitioned, dbpt):
                t0 = time.perf_counter()
                build = await layout.build(data)
                builds[layout.name] = dataclasses.asdict(build)
                say(f"built {layout.name} in {time.perf_counter() - t0:.0f}s: {build.seconds}")

            roomy_settings = settings.replace(
                routing=settings.routing.replace(max_connections_per_server=ROOMY_BUDGET)
            )
            roomy_plane = await stack.enter_async_context(ControlPlane.open(roomy_settings))
            roomy_router = await stack.enter_async_context(TenantRouter.open(roomy_plane))
            variants = [
                Variant("shared, planner", shared),
                Variant("shared, HNSW", shared, Way(force_index=True)),
                Variant("shared, HNSW relaxed_order", shared, Way("relaxed_order", True)),
                Variant("shared, HNSW strict_order", shared, Way("strict_order", True)),
                Variant("partitioned", partitioned),
                Variant("db-per-tenant", dbpt),  # tenantvec's default settings
                Variant(f"db-per-tenant, budget {ROOMY_BUDGET}", dbpt.routed_by(roomy_router)),
            ]
            points = [
                p.as_dict()
                async for p in sweep(variants, queries, args.ef, args.clients, args.runs, say)
            ]
            operations = [
                (await shared_operations(shared, data, args.repeats)).as_dict(),
                (await partitioned_operations(partitioned, data, args.repeats)).as_dict(),
                (await db_per_tenant_operations(dbpt, data, args.repeats, admin)).as_dict(),
            ]
            say("operations measured")
            version = plane.embedded.binaries.version
    return {
        "measured": today(),
        "machine": describe_machine(),
        "command": args.command,
        "elapsed_minutes": (time.perf_counter() - started) / 60,
        "postgres": version,
        "pgvector": pgvector,
        "server_settings": wanted,
        "scale": dataclasses.asdict(scale),
        "ef_search": args.ef,
        "runs": args.runs,
        "repeats": args.repeats,
        "dataset": {"classes": classes},
        "delete_targets": {
            k: [int(data.sizes[t]) for t in ts] for k, ts in delete_targets(data).items()
        },
        "builds": builds,
        "points": points,
        "operations": operations,
    }


def write(results: dict[str, Any], doc: Path) -> None:
    """The doc's results section, with the plots and raw numbers in ``<doc stem>/``."""
    assets = doc.parent / doc.stem
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plots.recall_latency(
        results["points"], sorted(set(results_clients(results))), assets / "recall-latency.png"
    )
    plots.operations(results["operations"], assets / "operations.png")
    names = {"recall": f"{doc.stem}/recall-latency.png", "operations": f"{doc.stem}/operations.png"}
    replace_section(doc, "tenancy", report.render(results, names))


def results_clients(results: dict[str, Any]) -> list[int]:
    return [p["clients"] for p in results["points"]]


def int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, not {text!r}"
        ) from None


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, Scale]:
    default = Scale()
    parser = argparse.ArgumentParser(
        prog="python -m bench.tenancy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a CI-sized run: {QUICK.tenants} tenants, {QUICK.vectors:,} vectors of "
        f"{QUICK.dims} dims, {QUICK.queries} queries per class, 1 timed pass",
    )
    parser.add_argument("--tenants", type=int, help=f"default {default.tenants}")
    parser.add_argument(
        "--vectors", type=int, help=f"all tenants together; default {default.vectors:,}"
    )
    parser.add_argument("--dims", type=int, help=f"default {default.dims}")
    parser.add_argument("--queries", type=int, help=f"per size class; default {default.queries}")
    parser.add_argument("--zipf", type=float, help=f"size skew exponent; default {default.zipf}")
    parser.add_argument("--seed", type=int, help=f"default {default.seed}")
    parser.add_argument(
        "--ef",
        type=int_list,
        default=[20, 40, 100, 200],
        help="hnsw.ef_search values, comma-separated; default 20,40,100,200",
    )
    parser.add_argument(
        "--clients",
        type=int_list,
        default=[1, 16],
        help="concurrent client counts, comma-separated; default 1,16",
    )
    parser.add_argument("--runs", type=int, help="timed passes per point; default 3 (quick: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of add / count; default 3")
    parser.add_argument(
        "--write", type=Path, help="markdown file whose bench:tenancy section to replace"
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else default
    overrides = {
        k: getattr(args, k)
        for k in ("tenants", "vectors", "dims", "queries", "zipf", "seed")
        if getattr(args, k) is not None
    }
    try:
        scale = dataclasses.replace(base, **overrides)
    except ValueError as exc:
        parser.error(str(exc))
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if min(args.ef) < 1 or max(args.ef) > 1000:
        parser.error("--ef values must be between 1 and 1000")
    args.command = "python -m bench.tenancy " + shlex.join(argv)
    return args, scale


def main(argv: list[str] | None = None) -> None:
    args, scale = parse_args(sys.argv[1:] if argv is None else argv)
    # Stopped by a signal, unwind as for Ctrl-C: the throwaway server is stopped, removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = asyncio.run(run(args, scale))
    text = report.render(results, {"recall": "recall-latency.png", "operations": "operations.png"})
    print(text)
    if args.write:
        write(results, args.write)
        say(f"wrote {args.write} and {args.write.parent / args.write.stem}/")


if __name__ == "__main__":
    main()
