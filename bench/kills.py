"""Killing ``tenantctl`` at random moments, then checking that ``reconcile`` repairs it all.

One kill: a tenant is set up for the operation (made ready, or suspended, first), then
``tenantctl tenants <operation>`` runs as a user runs it -- a subprocess in a session of
its own -- and is sent SIGKILL after a random delay: the command alone (what it started,
initdb or pg_ctl, goes on without it) or its whole process group. Then ``reconcile
--fix`` runs once, and the tenant must be in a state its backend agrees with:

* ``ready``: its database answers its owner's DSN and its service role's;
* ``suspended``: its compute is stopped (database closed, server down, endpoint idle);
* absent or deleted: nothing of it is left on the infrastructure;

with no operation left running, no orphan, nothing unattributed, no server of a tenant
listening outside ``TENANTVEC_INSTANCE_PORTS``. It is then deleted, which must work.

Used by ``make bench-faults`` (many kills, a table in docs/benchmarks.md) and by the
test suite (a few kills of every kind, all of which must be repaired).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psycopg

from bench.harness import clean_env
from controlplane.backends.ports import read_manifest
from controlplane.errors import TenantvecError
from controlplane.lifecycle.reconcile import reconcile, survey
from controlplane.lifecycle.suspend import suspend_tenant
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.localpg import EmbeddedServer
from controlplane.model.records import OperationOutcome, TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon

__all__ = ["OPERATIONS", "Kill", "KillPlan", "kill_once", "kills_table", "measure_kills"]

ACTOR = "bench-kills"
OPERATIONS = ("create", "delete", "suspend", "resume")
TENANTCTL = [sys.executable, "-c", "from tenantctl.main import run; run()"]
# How long each operation's own work takes after the CLI has started (seconds, roughly):
# kills land anywhere in [start-up, start-up + this].
WORK_SECONDS = {
    ("postgres", "create"): 0.25,
    ("postgres", "delete"): 0.2,
    ("postgres", "suspend"): 0.15,
    ("postgres", "resume"): 0.15,
    ("instance", "create"): 1.3,
    ("instance", "delete"): 0.6,
    ("instance", "suspend"): 0.5,
    ("instance", "resume"): 0.6,
    ("neon", "create"): 0.8,
    ("neon", "delete"): 0.4,
    ("neon", "suspend"): 0.4,
    ("neon", "resume"): 0.4,
}


@dataclass(frozen=True)
class KillPlan:
    backend: str
    operation: str
    group: bool  # kill the whole process group, or the CLI alone
    delay: float  # seconds after the start


@dataclass
class Kill:
    plan: KillPlan
    killed: bool = False  # False: the command finished before the kill came
    finished_after: float | None = None  # when it did finish, seconds after the start
    state: str = "?"  # the tenant's state after reconcile
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0  # reconcile's time

    @property
    def repaired(self) -> bool:
        return not self.problems


def startup_seconds(env: dict[str, str]) -> float:
    """How long ``tenantctl`` takes here before an operation's own work begins: its
    imports and opening the control plane (the median of three starts)."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run(
            [*TENANTCTL, "tenants", "list", "--json"], env=env, capture_output=True, check=True
        )
        times.append(time.monotonic() - started)
    return sorted(times)[1]


def plan_kills(
    backends: list[str],
    per_kind: int,
    startup: float,
    rng: random.Random,
    work_seconds: dict[tuple[str, str], float] | None = None,
) -> list[KillPlan]:
    """``per_kind`` kills of every operation of every backend, half of them of the whole
    process group. ``work_seconds``: measured by :func:`calibrate` (else estimates)."""
    plans = []
    for backend in backends:
        for operation in OPERATIONS:
            work = (work_seconds or WORK_SECONDS)[(backend, operation)]
            for _ in range(per_kind):
                plans.append(
                    KillPlan(
                        backend,
                        operation,
                        # Alternating over all plans: one kill per kind still mixes both.
                        group=len(plans) % 2 == 1,
                        # From just before its work begins to just after it should end.
                        delay=max(0.0, startup - 0.15) + rng.uniform(0, work + 0.25),
                    )
                )
    rng.shuffle(plans)
    return plans


async def _prepare(plane: ControlPlane, backend: str, operation: str) -> tuple[str, list[str]]:
    """A tenant ready for ``operation`` (made, or suspended, first) and the command."""
    tenant_id = f"kill-{operation[:3]}-{uuid.uuid4().hex[:8]}"
    if operation != "create":
        request = TenantRequest(id=tenant_id, dims=3, backend=backend)
        await create_tenant(plane, request, actor=ACTOR)
    if operation == "resume":
        await suspend_tenant(plane, tenant_id, actor=ACTOR)
    args = {
        "create": ["create", tenant_id, "--dims", "3", "--backend", backend],
        "delete": ["delete", tenant_id, "--yes"],
        "suspend": ["suspend", tenant_id],
        "resume": ["resume", tenant_id],
    }[operation]
    return tenant_id, [*TENANTCTL, "tenants", *args]


def _launch(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def calibrate(
    plane: ControlPlane, env: dict[str, str], backends: list[str], startup: float
) -> dict[tuple[str, str], float]:
    """How long each operation's own work takes through the CLI here (one run each)."""
    measured = {}
    for backend in backends:
        for operation in OPERATIONS:
            tenant_id, command = await _prepare(plane, backend, operation)
            started = time.monotonic()
            await asyncio.to_thread(_launch(command, env).wait)
            measured[(backend, operation)] = max(0.05, time.monotonic() - started - startup)
            if await plane.catalog.find_tenant(tenant_id) is not None:
                await delete_tenant(plane, tenant_id, actor=ACTOR)
    return measured


async def kill_once(plane: ControlPlane, env: dict[str, str], plan: KillPlan) -> Kill:
    result = Kill(plan)
    tenant_id, command = await _prepare(plane, plan.backend, plan.operation)
    started = time.monotonic()
    process = _launch(command, env)
    # Watch while waiting, so a command that ends first says when it ended (retarget).
    while (left := started + plan.delay - time.monotonic()) > 0 and process.poll() is None:
        await asyncio.sleep(min(left, 0.01))
    if process.poll() is not None:
        result.finished_after = time.monotonic() - started
    else:
        result.killed = True
        if plan.group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    await asyncio.to_thread(process.wait)

    started = time.monotonic()
    try:
        report = await reconcile(plane, fix=True, actor=ACTOR)
    except TenantvecError as exc:
        result.problems.append(f"reconcile failed: {exc}")
        return result
    result.seconds = time.monotonic() - started
    failed = [r for r in report.repairs if r.outcome != "ok"]
    if failed:
        result.problems.append(f"repairs failed: {[msgspec.to_builtins(r.view()) for r in failed]}")
    if report.ambiguous:
        result.problems.append(f"unattributed: {[o.name for o in report.ambiguous]}")
    await _check(plane, tenant_id, result)
    await _clean_up(plane, tenant_id, result)
    return result


async def _check(plane: ControlPlane, tenant_id: str, result: Kill) -> None:
    tenant = await plane.catalog.find_tenant(tenant_id)
    result.state = tenant.state.value if tenant else "absent"
    running = await plane.catalog.list_operations(
        tenant_id=tenant_id, outcome=OperationOutcome.RUNNING
    )
    if running:
        result.problems.append(f"operations still running: {[o.action for o in running]}")
    if tenant is None:
        pass
    elif tenant.state is TenantState.READY:
        for name, conninfo in (
            ("owner", plane.tenant_conninfo(tenant)),
            ("service", plane.service_conninfo(tenant)),
        ):
            problem = await _query(conninfo.dsn)
            if problem:
                result.problems.append(f"ready, but its {name} DSN fails: {problem}")
    elif tenant.state is TenantState.SUSPENDED:
        backend = plane.backend(tenant.backend)
        if tenant.backend == "postgres":
            if await _query(plane.tenant_conninfo(tenant).dsn) is None:
                result.problems.append("suspended, but its database still takes connections")
        elif backend.supervises and await backend.running(tenant):
            result.problems.append("suspended, but its server still runs")
    else:
        result.problems.append(f"left {tenant.state} after reconcile")
    found = await survey(plane)
    for resource in found.orphans:
        result.problems.append(f"orphan after reconcile --fix: {resource.kind} {resource.name}")
    result.problems.extend(_servers_outside_range(plane))


async def _query(dsn: str) -> str | None:
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=3) as conn:
            await conn.execute("SELECT count(*) FROM chunks")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[-1]
    return None


def _servers_outside_range(plane: ControlPlane) -> list[str]:
    """Running tenant servers (instances) whose port is not in TENANTVEC_INSTANCE_PORTS."""
    low, high = plane.settings.instance.ports
    problems = []
    instances = plane.settings.home / "instances"
    for root in instances.iterdir() if instances.is_dir() else ():
        for data in (root / "pg").glob("data*"):
            pidfile = data / "postmaster.pid"
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                continue
            if len(lines) > 3 and lines[3].strip().isdigit():
                port = int(lines[3])
                if not low <= port <= high:
                    problems.append(f"{root.name} runs on port {port}, outside {low}-{high}")
    return problems


async def _clean_up(plane: ControlPlane, tenant_id: str, result: Kill) -> None:
    tenant = await plane.catalog.find_tenant(tenant_id)
    root: Path | None = None
    if tenant is not None and tenant.backend == "instance":
        root = plane.settings.home / "instances" / str(tenant.placement.get("instance", ""))
    if tenant is not None:
        try:
            await delete_tenant(plane, tenant_id, actor=ACTOR)
        except TenantvecError as exc:
            result.problems.append(f"delete after reconcile failed: {exc}")
            return
    if root is not None and read_manifest(root) is not None:
        result.problems.append(f"{root} is left after the delete")


def retarget(results: list[Kill], startup: float, rng: random.Random) -> list[KillPlan]:
    """New plans for the kills that came too late: each command that finished before its
    kill is tried again with a delay inside the time it was seen to take -- so a machine
    faster than the estimates still gets its kills mid-work."""
    plans = []
    for result in results:
        took = result.finished_after
        if result.killed or took is None:
            continue
        low = min(max(0.0, startup - 0.15), took * 0.8)
        plans.append(dataclasses.replace(result.plan, delay=rng.uniform(low, took * 0.95)))
    return plans


async def run_kills(
    plane: ControlPlane,
    env: dict[str, str],
    plans: list[KillPlan],
    on_result: Callable[[Kill], None] | None = None,
) -> list[Kill]:
    results = []
    for plan in plans:
        result = await kill_once(plane, env, plan)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


# -- a campaign, as make bench-faults runs it ------------------------------------------


def _cli_env(settings: Settings) -> dict[str, str]:
    env = clean_env()
    env.update(
        {
            "TENANTVEC_HOME": str(settings.home),
            "TENANTVEC_PG_PORT": str(settings.embedded.port),
            "TENANTVEC_PG_FSYNC": "true" if settings.embedded.fsync else "false",
        }
    )
    return env


async def measure_kills(settings: Settings, per_kind: int, seed: int) -> list[Kill]:
    admin = EmbeddedServer(settings).superuser_conninfo().dsn
    fake = FakeNeon(admin).start()
    try:
        neon = {
            "TENANTVEC_NEON_API_KEY": fake.api_key,
            "TENANTVEC_NEON_API_URL": fake.url,
            "TENANTVEC_NEON_REQUEST_TIMEOUT": "2",
        }
        env = {**_cli_env(settings), **neon}
        rng = random.Random(seed)
        backends = ["postgres", "instance", "neon"]
        startup = startup_seconds(env)
        overrides = settings.replace(
            neon=settings.neon.replace(api_key=fake.api_key, api_url=fake.url, request_timeout=2.0)
        )
        async with ControlPlane.open(overrides) as plane:
            work = await calibrate(plane, env, backends, startup) if per_kind else {}
            print(f"  start-up {startup:.2f} s; work: " + ", ".join(
                f"{b} {o} {s:.2f} s" for (b, o), s in work.items()
            ), flush=True)  # fmt: skip
            plans = plan_kills(backends, per_kind, startup, rng, work)

            def progress(kill: Kill) -> None:
                mark = "ok" if kill.repaired else f"NOT REPAIRED: {kill.problems}"
                print(f"  {kill.plan.backend:8} {kill.plan.operation:7} "
                      f"{'group' if kill.plan.group else 'cli':5} {kill.plan.delay:5.2f}s "
                      f"-> {kill.state:9} {mark}", flush=True)  # fmt: skip

            return await run_kills(plane, env, plans, progress)
    finally:
        fake.stop()
        fake.remove_everything()


def kills_table(kills: list[Kill]) -> str:
    rows = [
        "| backend | operation | kills (CLI / group) | killed mid-way | repaired | "
        "states after reconcile | reconcile p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in ("postgres", "instance", "neon"):
        for operation in OPERATIONS:
            mine = [k for k in kills if (k.plan.backend, k.plan.operation) == (backend, operation)]
            if not mine:
                continue
            group = sum(k.plan.group for k in mine)
            states: dict[str, int] = {}
            for k in mine:
                states[k.state] = states.get(k.state, 0) + 1
            shown = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            rows.append(
                f"| {backend} | {operation} | {len(mine)} ({len(mine) - group} / {group}) | "
                f"{sum(k.killed for k in mine)} | {sum(k.repaired for k in mine)} | {shown} | "
                f"{statistics.median(k.seconds for k in mine) * 1000:.0f} |"
            )
    return "\n".join(rows)
