"""Real SIGKILLs at random moments: every create, delete, suspend and resume of every
backend (postgres, instance, neon against the fake), the CLI alone and its whole process
group -- and one ``reconcile --fix`` repairs each without a manual step."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from bench.kills import Kill, plan_kills, retarget, run_kills, startup_seconds
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon
from tests.fixtures.cli import settings_env
from tests.fixtures.fakes import neon_env, neon_settings
from tests.fixtures.postgres import private_server


@pytest.fixture(scope="module")
def own_settings() -> Iterator[Settings]:
    # reconcile --fix acts on a whole catalog: this one holds only these tenants.
    yield from private_server()


@pytest.fixture
def own_neon(own_settings: Settings) -> Iterator[FakeNeon]:
    from controlplane.localpg import EmbeddedServer

    fake = FakeNeon(EmbeddedServer(own_settings).superuser_conninfo().dsn).start()
    try:
        yield fake
    finally:
        fake.stop()
        fake.remove_everything()


async def test_every_kill_is_repaired_by_one_reconcile(
    own_settings: Settings, own_neon: FakeNeon
) -> None:
    env = {**settings_env(own_settings), **neon_env(own_neon)}
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    startup = startup_seconds(env)
    # One kill of every operation of every backend, the CLI alone or its whole group in
    # turn (make bench-faults runs 8 of each).
    plans = plan_kills(["postgres", "instance", "neon"], 1, startup, rng)
    assert {p.group for p in plans} == {True, False}
    async with ControlPlane.open(neon_settings(own_settings, own_neon)) as plane:
        results = await run_kills(plane, env, plans)
        # The estimates are a guess about this machine: kills that came after the command
        # had finished are tried again inside the time it was seen to take.
        retried = await run_kills(plane, env, retarget(results, startup, rng))
    broken: list[Kill] = [r for r in results + retried if not r.repaired]
    assert not broken, (seed, [(r.plan, r.problems) for r in broken])
    # The kills were real: most landed while the command was at work.
    landed = sum(r.killed for r in results + retried)
    assert landed >= len(plans) // 2, (seed, [(r.plan, r.finished_after) for r in retried])
