"""``make bench-neon``: Neon API calls per tenant create, and tenants per minute under 700 req/min.

Runs the neon backend against the fake Neon API (``tests/fakes/neon.py``) with
Neon-like timing: every request takes ``--latency`` (100 ms) and every operation
``--operation-seconds`` (0.5 s) to finish; the fake enforces Neon's rate limits (700
requests per minute, 40 per second per route) and its per-project lock (423 while an
operation runs). The databases it makes are real, on a throwaway embedded server, so
each create also applies the tenant schema as it would on Neon.

Two measurements per mode (project, branch):

1. ``--tenants`` creates one after another: requests per create (by route), and create
   latency p50 / p95; then requests per delete.
2. ``--concurrency`` creators for ``--seconds``: tenants per minute, the most requests
   the fake saw in any 60 s, how many it refused with 429, and how long the
   client-side limiter held requests back.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.backends.neon.backend import NeonBackend
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.localpg import EmbeddedServer
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon
from tests.fixtures.fakes import neon_settings

ACTOR = "bench"
MODES = ("project", "branch")


@dataclass
class ModeResult:
    mode: str
    calls_per_create: list[int] = field(default_factory=list)
    routes_per_create: Counter[str] = field(default_factory=Counter)
    create_ms: list[float] = field(default_factory=list)
    calls_per_delete: list[int] = field(default_factory=list)
    created_under_load: int = 0
    load_seconds: float = 0.0
    peak_per_minute: int = 0
    refused_429: int = 0
    answers: int = 0  # answers the fake gave
    off_spec: int = 0  # of them, answers Neon's published spec does not allow
    limiter_wait_seconds: float = 0.0

    @property
    def tenants_per_minute(self) -> float:
        return self.created_under_load / self.load_seconds * 60


async def run_mode(
    settings: Settings, admin_dsn: str, mode: str, args: argparse.Namespace
) -> ModeResult:
    fake = FakeNeon(
        admin_dsn, operation_seconds=args.operation_seconds, latency=args.latency
    ).start()
    result = ModeResult(mode)
    try:
        overrides: dict[str, object] = {  # fields of NeonSettings
            "mode": mode,
            "retry_seconds": 600.0,
            "operation_timeout": 600.0,
            "request_timeout": 30.0,
        }
        if mode == "branch":
            overrides["template_project"] = fake.create_template_project()
        async with ControlPlane.open(neon_settings(settings, fake, **overrides)) as plane:
            await sequential(plane, fake, result, args.tenants)
            await under_load(plane, fake, result, args.concurrency, args.seconds)
    finally:
        fake.stop()
        fake.remove_everything()
    result.answers = len(fake.answers)
    result.off_spec = len(fake.spec_problems())
    return result


async def sequential(plane: ControlPlane, fake: FakeNeon, result: ModeResult, n: int) -> None:
    ids = [f"seq-{result.mode}-{i:04d}" for i in range(n)]
    for tenant_id in ids:
        mark = len(fake.requests)
        started = time.perf_counter()
        await create_tenant(plane, TenantRequest(id=tenant_id, dims=8, backend="neon"), actor=ACTOR)
        result.create_ms.append((time.perf_counter() - started) * 1000)
        made = fake.requests[mark:]
        result.calls_per_create.append(len(made))
        result.routes_per_create.update(r.route for r in made)
    for tenant_id in ids:
        mark = len(fake.requests)
        await delete_tenant(plane, tenant_id, actor=ACTOR)
        result.calls_per_delete.append(len(fake.requests) - mark)


async def under_load(
    plane: ControlPlane, fake: FakeNeon, result: ModeResult, concurrency: int, seconds: float
) -> None:
    started = time.monotonic()
    deadline = started + seconds
    mark = len(fake.requests)
    counter = iter(range(10**6))

    async def creator() -> None:
        while time.monotonic() < deadline:
            tenant_id = f"load-{result.mode}-{next(counter):05d}"
            request = TenantRequest(id=tenant_id, dims=8, backend="neon")
            await create_tenant(plane, request, actor=ACTOR)
            if time.monotonic() <= deadline:
                result.created_under_load += 1

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    result.load_seconds = seconds
    window = fake.requests[mark:]
    times = sorted(r.at for r in window)
    result.peak_per_minute = max(
        (sum(1 for t in times[i:] if t < start + 60.0) for i, start in enumerate(times)),
        default=0,
    )
    result.refused_429 = sum(1 for r in window if r.status == 429)
    backend = plane.backend("neon")
    assert isinstance(backend, NeonBackend)
    result.limiter_wait_seconds = backend.client.limiter_wait_seconds


def render(results: list[ModeResult], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        "## Neon backend (`make bench-neon`)",
        "",
        f"Measured {today()} on {describe_machine()}, against the fake Neon API "
        f"(`tests/fakes/neon.py`) with {args.latency * 1000:.0f} ms per request and "
        f"{args.operation_seconds * 1000:.0f} ms per operation, Neon's limits (700 "
        "requests/min, 40/s per route, 423 while a project runs an operation) enforced by "
        "the fake and respected by tenantvec's limiter. Each tenant's database is real "
        f"(throwaway embedded Postgres, fsync off). Command: `make bench-neon` "
        f"(`python -m bench.neon --tenants {args.tenants} --concurrency {args.concurrency} "
        f"--seconds {args.seconds:.0f}`), {elapsed / 60:.1f} min.",
        "",
        "| mode | API requests per create (median / max) | create p50 / p95 | requests per delete "
        "| tenants/min under load | peak requests in any 60 s | 429s | limiter held back "
        "| answers outside Neon's spec |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {statistics.median(r.calls_per_create):.0f} / "
            f"{max(r.calls_per_create)} | {percentile(r.create_ms, 50):.0f} / "
            f"{percentile(r.create_ms, 95):.0f} ms | "
            f"{statistics.median(r.calls_per_delete):.0f} | {r.tenants_per_minute:.0f} "
            f"({r.created_under_load} in {r.load_seconds:.0f} s, {args.concurrency} creators) | "
            f"{r.peak_per_minute} | {r.refused_429} | {r.limiter_wait_seconds:.0f} s | "
            f"{r.off_spec} of {r.answers} |"
        )
    lines += ["", "Requests per create, by route (mean over the sequential creates):", ""]
    for r in results:
        n = len(r.calls_per_create)
        routes = ", ".join(
            f"`{route}` {count / n:.1f}" for route, count in r.routes_per_create.most_common()
        )
        lines.append(f"- {r.mode}: {routes}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20, help="sequential creates per mode")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="creators (each holds a catalog lock)"
    )
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the load run")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--operation-seconds", type=float, default=0.5)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    started = time.monotonic()
    results = []
    with throwaway_server(durable=False, max_connections=400) as settings:
        admin = EmbeddedServer(settings).superuser_conninfo().dsn
        for mode in args.modes.split(","):
            print(f"mode {mode}...", flush=True)
            results.append(asyncio.run(run_mode(settings, admin, mode, args)))
    text = render(results, args, time.monotonic() - started)
    print(text)
    if args.write:
        replace_section(args.write, "neon", text)


if __name__ == "__main__":
    main()
