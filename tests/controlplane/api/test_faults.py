"""Faults stay contained: a catalog outage is not a tenant outage; recovery is automatic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from bench.faults import catalog_reachable, separate_catalog
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi, StartApi, tenant_dsn

SEARCH = {"vector": [1, 0, 0], "k": 1}


@pytest.fixture
def own_catalog(pg_settings: Settings) -> Iterator[tuple[Settings, str]]:
    """Settings whose catalog is a database of its own on the session server (which
    stays registered as ``local``), so that the catalog can fail while tenants do not."""
    with separate_catalog(pg_settings) as own:
        yield own


def _catalog_reachable(superuser_dsn: str, name: str, reachable: bool) -> None:
    asyncio.run(catalog_reachable(superuser_dsn, name, reachable))


def _search(api: RunningApi, key: str, tenant: str) -> httpx.Response:
    with api.client(key) as client:
        return client.post(f"/v1/tenants/{tenant}/search", json=SEARCH)


def test_tenants_keep_serving_through_a_catalog_outage_and_the_api_recovers(
    start_api: StartApi, own_catalog: tuple[Settings, str], superuser_dsn: str
) -> None:
    settings, catalog_db = own_catalog
    # A short TTL: without the grace, every route and key would expire mid-outage.
    api = start_api(
        {"TENANTVEC_ROUTE_TTL_SECONDS": "0.5", "TENANTVEC_CATALOG_GRACE_SECONDS": "60"},
        settings=settings,
    )
    served, other = f"served-{uuid.uuid4().hex[:6]}", f"unseen-{uuid.uuid4().hex[:6]}"
    key = api.new_tenant(served)
    other_key = api.new_tenant(other)  # made, but never used through this API yet
    assert _search(api, key, served).status_code == 200

    _catalog_reachable(superuser_dsn, catalog_db, reachable=False)
    try:
        answers = []
        deadline = time.monotonic() + 4  # eight TTLs
        while time.monotonic() < deadline:
            answers.append(_search(api, key, served).status_code)
            time.sleep(0.1)
        assert set(answers) == {200}, answers
        # What was never verified cannot be, while the catalog is away: 503, not 500.
        unseen = _search(api, other_key, other)
        assert unseen.status_code == 503, unseen.text
        assert unseen.headers["retry-after"]
        assert httpx.get(f"{api.url}/readyz").json()["status"] == "degraded"
        with api.admin() as admin:
            down = admin.get("/v1/tenants")
        assert down.status_code == 503 and "catalog" in down.json()["detail"]
    finally:
        _catalog_reachable(superuser_dsn, catalog_db, reachable=True)

    deadline = time.monotonic() + 15
    while _search(api, other_key, other).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover by itself"
        time.sleep(0.2)
    assert httpx.get(f"{api.url}/readyz").json()["status"] == "ready"


def test_without_a_grace_an_outage_fails_requests_cleanly(
    start_api: StartApi, own_catalog: tuple[Settings, str], superuser_dsn: str
) -> None:
    settings, catalog_db = own_catalog
    api = start_api(
        {"TENANTVEC_ROUTE_TTL_SECONDS": "0.5", "TENANTVEC_CATALOG_GRACE_SECONDS": "0"},
        settings=settings,
    )
    tenant = f"nograce-{uuid.uuid4().hex[:6]}"
    key = api.new_tenant(tenant)
    assert _search(api, key, tenant).status_code == 200
    _catalog_reachable(superuser_dsn, catalog_db, reachable=False)
    try:
        time.sleep(1.2)  # past the TTL
        failed = _search(api, key, tenant)
        assert failed.status_code == 503, failed.text
        assert failed.headers["content-type"].startswith("application/problem+json")
        ready = httpx.get(f"{api.url}/readyz")
        assert ready.status_code == 503
    finally:
        _catalog_reachable(superuser_dsn, catalog_db, reachable=True)


def test_a_tenant_grabbing_connections_cannot_starve_its_neighbour(
    api: RunningApi, pg_settings: Settings
) -> None:
    """One tenant opens connections with its own DSN as fast as it can and keeps them:
    it gets its role's limit (the small tier's 10) and no more, its own API requests
    still go through (its router uses its service role), and so do a neighbour's."""
    greedy, calm = f"greedy-{uuid.uuid4().hex[:6]}", f"calm-{uuid.uuid4().hex[:6]}"
    greedy_key, calm_key = api.new_tenant(greedy), api.new_tenant(calm)

    greedy_dsn = tenant_dsn(pg_settings, greedy)
    held: list[psycopg.Connection[Any]] = []
    refused = 0
    try:
        for _ in range(60):
            try:
                held.append(psycopg.connect(greedy_dsn, connect_timeout=3))
            except psycopg.OperationalError as exc:
                assert "too many connections for role" in str(exc)
                refused += 1
        assert len(held) == 10 and refused == 50
        for tenant, key in ((calm, calm_key), (greedy, greedy_key)):
            answers = [_search(api, key, tenant).status_code for _ in range(10)]
            assert answers == [200] * 10, (tenant, answers)
    finally:
        for conn in held:
            conn.close()


def test_limits_are_changed_through_the_api(api: RunningApi, pg_settings: Settings) -> None:
    tenant = f"limits-{uuid.uuid4().hex[:6]}"
    key = api.new_tenant(tenant)
    with api.admin() as admin:
        changed = admin.put(f"/v1/tenants/{tenant}/limits", json={"connection_limit": 2})
        assert changed.status_code == 200, changed.text
        assert changed.json()["placement"]["limits"]["connection_limit"] == 2
        bad = admin.put(f"/v1/tenants/{tenant}/limits", json={"connection_limit": "2"})
        assert bad.status_code == 400 and "Expected `int | null`" in bad.json()["detail"]
        empty = admin.put(f"/v1/tenants/{tenant}/limits", json={})
        assert empty.status_code == 400 and "say what to change" in empty.json()["detail"]
    with api.client(key) as client:
        assert client.put(f"/v1/tenants/{tenant}/limits", json={"tier": "large"}).status_code == 403

    owner = tenant_dsn(pg_settings, tenant)
    held = [psycopg.connect(owner), psycopg.connect(owner)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(owner)
        assert _search(api, key, tenant).status_code == 200  # the API is not held back
    finally:
        for conn in held:
            conn.close()
