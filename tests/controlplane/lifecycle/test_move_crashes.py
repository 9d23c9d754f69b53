"""Moves that die: killed at each step and at random moments (the CLI's whole process
group), a dead move's pause met by a write, a mover whose move was settled under it --
each leaves one copy that serves and takes writes, settled by ``reconcile`` or by the
next write, with nothing orphaned."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import subprocess
import time

import pytest

from controlplane.errors import (
    TenantChanged,
    TenantUnavailable,
    TenantvecError,
)
from controlplane.lifecycle._pause import pause_writes
from controlplane.lifecycle.change import set_state
from controlplane.lifecycle.move import move_tenant, settle_move
from controlplane.lifecycle.reconcile import reconcile
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.placement import TenantCopy
from controlplane.model.records import OperationOutcome, TenantState
from controlplane.plane import ControlPlane
from controlplane.retrieval import UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tests.controlplane.lifecycle.moving import (
    HASH,
    databases_on,
    load_tenant,
    served_from_one_copy,
    server_of,
)
from tests.controlplane.lifecycle.rows import documents, load
from tests.fixtures.cli import TENANTCTL, kill_group_after, settings_env


@pytest.mark.parametrize(
    ("failpoint", "settled"),
    [
        ("move.after_record", "rolled-back-move"),
        ("move.after_pause", "rolled-back-move"),
        ("move.after_copy", "rolled-back-move"),
        ("move.after_switch", "finished-move"),
    ],
)
def test_a_move_killed_at_each_step_is_settled_by_reconcile(
    fleet: Settings, tenant_id: str, failpoint: str, settled: str
) -> None:
    env = settings_env(fleet)

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TENANTCTL, *args], env={**env, **(extra or {})}, capture_output=True, text=True
        )

    assert run("tenants", "create", tenant_id, "--dims", "3", "--server", "local").returncode == 0
    asyncio.run(load_tenant(fleet, tenant_id, 50))
    crashed = run(
        "tenants", "move", tenant_id, "--to", "postgres:second",
        extra={"TENANTVEC_FAILPOINTS": failpoint},
    )  # fmt: skip
    assert crashed.returncode == 137, crashed.stderr
    fixed = run("reconcile", "--fix", "--json")
    assert fixed.returncode == 0, fixed.stderr
    repairs = {r["tenant"]: r["action"] for r in json.loads(fixed.stdout)["repairs"]}
    assert repairs.get(tenant_id) == settled, fixed.stdout
    asyncio.run(served_from_one_copy(fleet, tenant_id, 50))
    assert run("tenants", "delete", tenant_id, "--yes").returncode == 0


def test_moves_killed_at_random_moments_leave_one_copy_that_serves_and_writes(
    fleet: Settings, tenant_id: str
) -> None:
    """Real kills of the CLI's whole process group: afterwards reconcile leaves the
    tenant ready on exactly one of the two servers, writable, nothing orphaned."""
    env = settings_env(fleet)
    rng = random.Random(os.getpid())
    created = subprocess.run(
        [*TENANTCTL, "tenants", "create", tenant_id, "--dims", "3", "--server", "local"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    asyncio.run(load_tenant(fleet, tenant_id, 300))
    where = []
    for attempt in range(3):
        current = asyncio.run(server_of(fleet, tenant_id))
        other = "second" if current == "local" else "local"
        kill_group_after(
            ["tenants", "move", tenant_id, "--to", f"postgres:{other}", "--json"],
            env,
            rng.uniform(0.4, 2.5),
        )
        fixed = subprocess.run(
            [*TENANTCTL, "reconcile", "--fix", "--json"], env=env, capture_output=True, text=True
        )
        assert fixed.returncode == 0, (attempt, fixed.stderr)
        where.append(asyncio.run(served_from_one_copy(fleet, tenant_id, 300 + attempt)))
        asyncio.run(load_tenant(fleet, tenant_id, 1, start=5000 + attempt))  # writable again
    print("served from, after each kill:", where)
    deleted = subprocess.run(
        [*TENANTCTL, "tenants", "delete", tenant_id, "--yes"], env=env, capture_output=True
    )
    assert deleted.returncode == 0


def test_a_write_that_finds_a_dead_move_s_pause_rolls_the_move_back(
    fleet: Settings, tenant_id: str
) -> None:
    """No operator needed: the CLI moving the tenant is killed while its writes are
    paused; the next writes through a router (an API process) find the move's lock
    free, roll the move back as reconcile would, and go through."""
    env = settings_env(fleet)
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True)
    assert (
        run(
            [*TENANTCTL, "tenants", "create", tenant_id, "--dims", "3", "--server", "local"]
        ).returncode
        == 0
    )
    asyncio.run(load_tenant(fleet, tenant_id, 50))
    killed = run(
        [*TENANTCTL, "tenants", "move", tenant_id, "--to", "postgres:second"],
        env={**env, "TENANTVEC_FAILPOINTS": "move.after_pause"},
    )
    assert killed.returncode == 137, killed.stderr

    async def write_until_accepted() -> list[str]:
        refusals: list[str] = []
        async with ControlPlane.open(fleet) as plane, TenantRouter.open(plane) as router:
            marked = await plane.catalog.get_tenant(tenant_id)
            assert marked.other_copy is not None
            new_copy = marked.other_copy.where.database
            deadline = time.monotonic() + 20
            while True:
                try:
                    await upsert_documents(
                        router, tenant_id, UpsertRequest(documents=documents(1, start=700))
                    )
                    break
                except TenantUnavailable as exc:
                    refusals.append(str(exc))
                    assert time.monotonic() < deadline, refusals
                    await asyncio.sleep(0.3)
            tenant = await plane.catalog.get_tenant(tenant_id)
            assert tenant.server == "local" and tenant.other_copy is None
            assert not await databases_on("second", plane, new_copy)
            running = await plane.catalog.list_operations(
                tenant_id=tenant_id, outcome=OperationOutcome.RUNNING
            )
            assert running == []  # the dead move's operation is closed too
        return refusals

    refusals = asyncio.run(write_until_accepted())
    assert any("abandoned" in said for said in refusals), refusals
    asyncio.run(served_from_one_copy(fleet, tenant_id, 51))


async def test_a_mover_whose_move_was_settled_under_it_stops_and_undoes_what_it_made(
    fleet_plane: ControlPlane, tenant_id: str
) -> None:
    """A mover that lost its lock without dying looks dead: reconcile (or a router) may
    settle its move while it runs. Wherever that lands, the mover does not switch to a
    dropped copy or leave a pause or a copy behind: one copy serves, writable."""
    plane = fleet_plane
    await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"), actor="t"
    )
    await load(plane, tenant_id, 1500)
    outcomes = []
    for delay in (0.0, 0.6, 1.2):
        moving = asyncio.create_task(move_tenant(plane, tenant_id, backend="postgres", actor="t"))
        while not moving.done():
            marked = await plane.catalog.get_tenant(tenant_id)
            if marked.state is TenantState.MOVING:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(delay)
        # What reconcile does for a move whose lock it found free (here it is not:
        # the lock is this process's own, as for a mover whose connection dropped).
        with contextlib.suppress(TenantChanged):
            await settle_move(plane, await plane.catalog.get_tenant(tenant_id))
        try:
            await moving
            outcomes.append("moved")
        except TenantvecError as exc:  # any other error is a finding: the test fails
            outcomes.append(type(exc).__name__)
        await served_from_one_copy(plane.settings, tenant_id, 1500)
    print("the movers ended:", outcomes)
    await delete_tenant(plane, tenant_id, actor="t")


def test_deleting_a_tenant_a_dead_move_left_drops_both_of_its_copies(
    fleet: Settings, tenant_id: str
) -> None:
    """A move killed after its copy: the tenant is ``moving``, with a second database on
    the other server. Deleting it (GDPR: every copy) drops both, with no reconcile."""
    env = settings_env(fleet)
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True)
    created = run([*TENANTCTL, "tenants", "create", tenant_id, "--dims", "3", "--server", "local"])
    assert created.returncode == 0, created.stderr
    asyncio.run(load_tenant(fleet, tenant_id, 20))
    killed = run(
        [*TENANTCTL, "tenants", "move", tenant_id, "--to", "postgres:second"],
        env={**env, "TENANTVEC_FAILPOINTS": "move.after_copy"},
    )
    assert killed.returncode == 137, killed.stderr
    shown = run([*TENANTCTL, "tenants", "show", tenant_id, "--json"])
    assert json.loads(shown.stdout)["other_copy"] == {"backend": "postgres", "server": "second"}

    async def copies() -> tuple[str, str]:
        async with ControlPlane.open(fleet) as plane:
            tenant = await plane.catalog.get_tenant(tenant_id)
            assert tenant.state is TenantState.MOVING and tenant.other_copy is not None
            old, new = tenant.where.database, tenant.other_copy.where.database
            assert old and new
            assert await databases_on("local", plane, old)
            assert await databases_on("second", plane, new)
            return old, new

    old, new = asyncio.run(copies())
    deleted = run([*TENANTCTL, "tenants", "delete", tenant_id, "--yes"])
    assert deleted.returncode == 0, deleted.stderr

    async def gone() -> None:
        async with ControlPlane.open(fleet) as plane:
            assert not await databases_on("local", plane, old)
            assert not await databases_on("second", plane, new)

    asyncio.run(gone())


async def test_reconcile_settles_a_move_no_running_operation_explains(
    fleet_plane: ControlPlane, tenant_id: str
) -> None:
    """A move that failed and then could not clean up: its operation is closed, the
    tenant stays moving and paused. Reconcile still rolls it back."""
    plane = fleet_plane
    tenant = await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"), actor="t"
    )
    await pause_writes(plane, tenant, paused=True)
    never_made = {
        "database": "tv_nevermade0000000000000000",
        "role": "tv_nevermade0000000000000000",
    }
    await set_state(
        plane,
        tenant,
        TenantState.MOVING,
        other_copy=TenantCopy("postgres", "second", never_made),
    )
    with pytest.raises(TenantChanged):  # a writer that read it ready comes too late
        await set_state(plane, tenant, TenantState.SUSPENDED)
    report = await reconcile(plane, actor="t")
    assert [(r.tenant, r.action) for r in report.repairs if r.tenant == tenant_id] == [
        (tenant_id, "rolled-back-move")
    ]
    settled = await plane.catalog.get_tenant(tenant_id)
    assert settled.state is TenantState.READY and settled.other_copy is None
    await load(plane, tenant_id, 1)  # writable again
    await delete_tenant(plane, tenant_id, actor="t")


@pytest.mark.parametrize("command", ["move", "drain"])
def test_a_catalog_outage_mid_move_is_one_line_exit_5_and_reconcile_settles_it(
    fleet: Settings, tenant_id: str, command: str
) -> None:
    """The catalog goes away at a random moment of ``tenants move`` / ``servers drain``
    run as a user runs them: one line on stderr naming the catalog, exit 5 -- no driver
    error, no SQL -- and once it is back, ``reconcile --fix`` leaves one copy serving."""
    from bench.faults import catalog_reachable
    from controlplane.localpg import EmbeddedServer
    from controlplane.plane import CATALOG_DB
    from tests.fixtures.cli import TENANTCTL, settings_env

    async def make() -> None:
        async with ControlPlane.open(fleet) as plane:
            await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH, server="local"),
                actor="t",
            )  # fmt: skip
            await load_tenant(fleet, tenant_id, 150)

    asyncio.run(make())
    admin = EmbeddedServer(fleet).superuser_conninfo().dsn
    env = settings_env(fleet)
    args = (
        ["tenants", "move", tenant_id, "--to", "postgres:second"]
        if command == "move"
        else ["servers", "drain", "local", "--to", "postgres:second"]
    )
    process = subprocess.Popen(
        [*TENANTCTL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(random.Random(os.getpid()).uniform(1.0, 3.0))
    asyncio.run(catalog_reachable(admin, CATALOG_DB, reachable=False))
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        asyncio.run(catalog_reachable(admin, CATALOG_DB, reachable=True))
    said = [line for line in stderr.decode().splitlines() if line.strip()]
    if process.returncode == 0:
        pytest.skip("the command finished before the catalog went away (too fast to catch)")
    assert process.returncode == 5, said
    assert len(said) == 1 and "catalog" in said[0] and "Traceback" not in said[0], said
    assert "SELECT" not in said[0] and "OperationalError" not in said[0], said
    fixed = subprocess.run(
        [*TENANTCTL, "reconcile", "--fix"], env=env, capture_output=True, check=False
    )
    assert fixed.returncode == 0, fixed.stderr
    if command == "drain":
        subprocess.run([*TENANTCTL, "servers", "activate", "local"], env=env, check=False)
    asyncio.run(served_from_one_copy(fleet, tenant_id, 150))
