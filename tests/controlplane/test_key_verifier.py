"""The key verifier on a real catalog: checks off the request path, bounded refusals.

The catalog is the real one; ``CountingCatalog`` only counts the key lookups that reach
it (each call still runs its query), which is what "off the request path" means.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from controlplane import keys as keys_module
from controlplane.errors import AuthenticationFailed
from controlplane.keys import KeyVerifier, create_key
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane
from controlplane.routing import TenantRouter
from controlplane.settings import Settings

TTL = 0.6


@pytest.fixture
async def short_ttl(pg_settings: Settings) -> AsyncIterator[ControlPlane]:
    settings = pg_settings.replace(routing=pg_settings.routing.replace(route_ttl_seconds=TTL))
    async with ControlPlane.open(settings) as plane:
        yield plane


class CountingCatalog:
    """Counts ``live_keys`` calls on the plane's real catalog: which keys each asked
    for, and from which task (the router's maintenance task is "tenantvec-router")."""

    def __init__(self, plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        self.tasks: list[str] = []
        real = plane.catalog.live_keys

        async def live_keys(key_ids: list[str]) -> object:
            self.calls.append(list(key_ids))
            task = asyncio.current_task()
            self.tasks.append(task.get_name() if task is not None else "")
            return await real(key_ids)

        monkeypatch.setattr(plane.catalog, "live_keys", live_keys)


async def _tenant_with_keys(plane: ControlPlane, n: int) -> tuple[str, list[str]]:
    tenant = f"k-{uuid.uuid4().hex[:10]}"
    await create_tenant(plane, TenantRequest(id=tenant, dims=3), actor="test")
    return tenant, [(await create_key(plane, tenant, actor="test")).secret for _ in range(n)]


async def test_keys_in_use_are_rechecked_in_one_background_query(
    short_ttl: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    plane = short_ttl
    tenant, secrets = await _tenant_with_keys(plane, 3)
    counting = CountingCatalog(plane, monkeypatch)
    async with TenantRouter.open(plane) as router:
        verifier = KeyVerifier(router, ttl=TTL)
        for secret in secrets:  # first sight: one lookup each, on the request
            assert (await verifier.verify(secret)).tenant_id == tenant
        assert len(counting.calls) == 3
        counting.calls.clear()
        counting.tasks.clear()
        # Long past the TTL, with requests all along: the maintenance tick re-checks
        # the three keys together, and no request waits for the catalog.
        for _ in range(8):
            await asyncio.sleep(TTL / 2)
            for secret in secrets:
                await verifier.verify(secret)
        assert counting.calls, "the keys were never re-checked"
        assert set(counting.tasks) == {"tenantvec-router"}, "a request waited for the catalog"
        ids = sorted(s.split("_")[1] for s in secrets)
        assert {k for call in counting.calls for k in call} == set(ids)
        assert max(len(call) for call in counting.calls) == 3, "never batched"


async def test_a_revocation_elsewhere_is_seen_by_the_background_check(
    short_ttl: ControlPlane,
) -> None:
    plane = short_ttl
    _, (secret,) = await _tenant_with_keys(plane, 1)
    key_id = secret.split("_")[1]
    async with TenantRouter.open(plane) as router:
        verifier = KeyVerifier(router, ttl=TTL)
        await verifier.verify(secret)
        # Another process revokes it: straight in the catalog, no notice to this one.
        await plane.catalog.revoke_key(key_id)
        await asyncio.sleep(TTL + 1.2)  # the TTL plus a maintenance tick
        with pytest.raises(AuthenticationFailed):
            await verifier.verify(secret)


async def test_refused_keys_are_remembered_apart_and_bounded(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (good,) = await _tenant_with_keys(plane, 1)
    monkeypatch.setattr(keys_module, "_MAX_REFUSED", 5)
    counting = CountingCatalog(plane, monkeypatch)
    guesses = [f"tvk_{n:012d}_{'x' * 43}" for n in range(20)]
    async with TenantRouter.open(plane) as router:
        verifier = KeyVerifier(router, ttl=60)
        await verifier.verify(good)
        for guess in guesses:
            with pytest.raises(AuthenticationFailed):
                await verifier.verify(guess)
        asked = len(counting.calls)
        with pytest.raises(AuthenticationFailed):
            await verifier.verify(guesses[-1])  # refused a moment ago: not asked again
        assert len(counting.calls) == asked
        assert len(verifier._refused) == 5  # noqa: SLF001 -- the bound itself
        await verifier.verify(good)  # the flood did not push the good key out
        assert len(counting.calls) == asked
