"""``make bench-fleet``: the operator's commands as the fleet grows.

Small tenants (3 dimensions, empty) on one embedded server, grown in steps (default
1,000, 2,000, 5,000, 8,000, 10,000). Each tenant is created one schema version short of
the latest, so ``migrate --all`` has a real migration to apply to every tenant added
since the last step. At each size, the commands an operator runs, each as ``tenantctl ... --json``
in a process of its own (start-up included, as cron or a shell runs them), timed over
``--runs`` runs:

- ``tenants list`` (the catalog, every tenant), ``servers list`` (tenants and bytes),
- ``reconcile`` (every marked database and role on the server against the catalog),
- ``doctor`` (servers, instances, orphans, expiries),
- ``gc`` with nothing expired (the scan) and with ``--expired`` (50) expired tenants
  (their deletes),
- ``migrate --all``: once with the new tenants behind (a real migration each), then
  with every tenant current (the catalog's word for it), and ``--verify`` (every
  tenant's ledger checked in its database).

Each empty tenant database costs the server about 8 MB of disk: the step sizes stop
where the disk would run short (a free margin of 10 GB is kept), and say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness import clean_env, percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.embedding import EmbedderSpec
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tenantvec_schema.migrations import MigrationSet
from tenantvec_schema.runner import MigrationReport, migrate

TENANTCTL = [sys.executable, "-c", "from tenantctl.main import run; run()"]
DISK_MARGIN = 10 << 30
CREATE_CONCURRENCY = 4


@dataclass
class Step:
    tenants: int
    create_per_second: float = 0.0
    database_bytes: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)
    migrated: int = 0  # tenants the real migration ran on


def tenantctl(settings: Settings, *args: str) -> tuple[float, Any]:
    """Seconds and the JSON answer; exit 1 is an answer too (doctor found problems)."""
    env = clean_env()
    env.update(
        {"TENANTVEC_HOME": str(settings.home), "TENANTVEC_PG_PORT": str(settings.embedded.port)}
    )
    started = time.perf_counter()
    done = subprocess.run(
        [*TENANTCTL, *args, "--json"], env=env, capture_output=True, text=True, timeout=3600
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"tenantctl {' '.join(args)}: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def _behind(latest: int) -> Any:
    """A schema step that stops one migration short: what ``migrate --all`` then
    brings to the latest, as it would after an upgrade of tenantvec."""

    async def step(plane: PlaneContext, tenant: Tenant, conninfo: ConnInfo) -> MigrationReport:
        where = f"tenant {tenant.id!r}"
        async with connect(conninfo, where=where, timeout=10, autocommit=False) as conn:
            return await migrate(conn, tenant.schema, target=latest - 1)

    return step


async def grow(plane: ControlPlane, start: int, stop: int, prefix: str, **options: Any) -> float:
    """Create tenants ``start..stop-1``; tenants per second."""
    latest = MigrationSet.bundled().latest
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    hash_ = EmbedderSpec.parse("hash")

    async def one(n: int) -> None:
        async with gate:
            await create_tenant(
                plane,
                TenantRequest(id=f"{prefix}{n:05d}", dims=3, embedder=hash_, **options),
                actor="bench",
                schema_step=_behind(latest),
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(start, stop)))
    return (stop - start) / (time.perf_counter() - started)


async def database_bytes(plane: ControlPlane) -> int:
    assert plane.embedded is not None
    admin = plane.embedded.superuser_conninfo()
    async with connect(admin, where="bench", timeout=10) as conn:
        row = await (
            await conn.execute(
                "SELECT avg(pg_database_size(oid))::bigint FROM pg_database "
                "WHERE datname LIKE 'tv%%'"
            )
        ).fetchone()
    return int(row[0]) if row and row[0] else 0


def timed(settings: Settings, step: Step, name: str, runs: int, *args: str) -> Any:
    answer = None
    for _ in range(runs):
        seconds, answer = tenantctl(settings, *args)
        step.timings.setdefault(name, []).append(seconds)
    return answer


async def run(args: argparse.Namespace) -> tuple[list[Step], str | None]:
    sizes = [int(s) for s in args.sizes.split(",")]
    steps: list[Step] = []
    stopped: str | None = None
    with throwaway_server(durable=False, max_connections=300) as settings:
        have = 0
        per_database = 8 << 20
        for size in sizes:
            free = shutil.disk_usage(settings.home).free
            need = (size - have + args.expired) * per_database
            if free - need < DISK_MARGIN:
                stopped = (
                    f"stopped before {size:,} tenants: {size - have:,} more would need about "
                    f"{need >> 30} GB of the {free >> 30} GB free"
                )
                break
            step = Step(size)
            async with ControlPlane.open(settings) as plane:
                step.create_per_second = await grow(plane, have, size, "fleet-")
                step.database_bytes = await database_bytes(plane)
                per_database = max(per_database, step.database_bytes)
            migrated = timed(settings, step, "migrate --all (new tenants behind)", 1,
                             "migrate", "--all")  # fmt: skip
            step.migrated = sum(1 for r in migrated["results"] if r["applied"])
            timed(settings, step, "migrate --all (all current)", args.runs, "migrate", "--all")
            timed(settings, step, "migrate --all --verify (every ledger checked)", args.runs,
                  "migrate", "--all", "--verify")  # fmt: skip
            timed(settings, step, "tenants list", args.runs, "tenants", "list")
            timed(settings, step, "servers list", args.runs, "servers", "list")
            timed(settings, step, "reconcile", args.runs, "reconcile")
            timed(settings, step, "doctor", args.runs, "doctor")
            timed(settings, step, "gc (nothing expired)", args.runs, "gc")
            async with ControlPlane.open(settings) as plane:
                await grow(plane, 0, args.expired, f"expired-{size}-", ttl=timedelta(seconds=1))
            await asyncio.sleep(1.5)
            gone = timed(settings, step, f"gc ({args.expired} expired)", 1, "gc")
            assert len(gone["deleted"]) == args.expired, gone
            steps.append(step)
            have = size
            print(f"{size} tenants: {json.dumps(_medians(step))}", flush=True)
    return steps, stopped


def _medians(step: Step) -> dict[str, float]:
    return {k: round(statistics.median(v), 2) for k, v in step.timings.items()}


def report(steps: list[Step], stopped: str | None, args: argparse.Namespace) -> str:
    names = list(steps[0].timings) if steps else []
    lines = [
        "## The fleet as it grows (`make bench-fleet`)",
        "",
        f"Measured {today()} on {describe_machine()}; one embedded server, fsync off.",
        "",
        f"Command: `make bench-fleet` (`python -m bench.fleet --sizes {args.sizes} --runs "
        f"{args.runs}`). Empty tenants (3 dims) created {CREATE_CONCURRENCY} at a time, one "
        "schema version short; at each size every command runs as `tenantctl ... --json` "
        "in a process of its own (about 1 s of it is Python start-up and opening the "
        "control plane). Median / p95 of the runs; the first `migrate --all` applies a "
        "real migration to the tenants added since the step before.",
        "",
        "| command | " + " | ".join(f"{s.tenants:,} tenants" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for name in names:
        cells = []
        for s in steps:
            values = s.timings[name]
            cells.append(
                f"{statistics.median(values):.2f} s"
                if len(values) == 1
                else f"{statistics.median(values):.2f} / {percentile(values, 95):.2f} s"
            )
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append(
        "| tenants migrated by the first run | "
        + " | ".join(f"{s.migrated:,}" for s in steps)
        + " |"
    )
    lines.append(
        "| creates per second | " + " | ".join(f"{s.create_per_second:.1f}" for s in steps) + " |"
    )
    lines.append(
        "| disk per empty tenant | "
        + " | ".join(f"{s.database_bytes / 2**20:.1f} MiB" for s in steps)
        + " |"
    )
    if stopped:
        lines += ["", f"The run {stopped}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,2000,5000,8000,10000", help="fleet sizes, growing")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--expired", type=int, default=50, help="expired tenants gc deletes")
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    steps, stopped = asyncio.run(run(args))
    text = report(steps, stopped, args)
    print(text)
    if args.write:
        replace_section(args.write, "fleet", text)


if __name__ == "__main__":
    os.environ.setdefault("TENANTVEC_EMBEDDER", "hash")
    main()
