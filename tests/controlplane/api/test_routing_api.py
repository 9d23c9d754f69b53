"""Routing behaviour seen through HTTP: budgets, outages, invalidation across processes."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import psycopg
import pytest

from controlplane.dsn import ConnInfo
from tests.fixtures.api import RunningApi, StartApi
from tests.fixtures.cli import TenantCtl
from tests.fixtures.postgres import TenantNames

SEARCH = {"vector": [1, 0, 0], "k": 1}


def _router_connections(superuser_dsn: str, tenants: list[str]) -> int:
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'tenantvec-router' AND usename = ANY(%s)",
            (tenants,),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_requests_over_the_budget_get_503_instead_of_hanging(
    start_api: StartApi, superuser_dsn: str, tenant_names: TenantNames
) -> None:
    api = start_api(
        {
            "TENANTVEC_MAX_CONNECTIONS_PER_SERVER": "2",
            "TENANTVEC_POOL_MAX_SIZE": "2",
            "TENANTVEC_POOL_WAIT_SECONDS": "0.5",
        }
    )
    busy, other = f"busy-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    api.new_tenant(busy)
    api.new_tenant(other)
    (busy_db, _, busy_role), (_, _, other_role) = tenant_names(busy), tenant_names(other)
    routers = lambda *roles: _router_connections(superuser_dsn, [str(r) for r in roles])  # noqa: E731
    headers = {"Authorization": f"Bearer {api.admin_token}"}
    # Hold the busy tenant's table so its searches keep their connections.
    with psycopg.connect(ConnInfo.parse(superuser_dsn).with_(dbname=busy_db).dsn) as locker:
        locker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as client:
            stuck = [
                asyncio.create_task(client.post(f"/v1/tenants/{busy}/search", json=SEARCH))
                for _ in range(2)
            ]
            for _ in range(100):
                if routers(busy_role) == 2:
                    break
                await asyncio.sleep(0.05)
            refused = await client.post(f"/v1/tenants/{other}/search", json=SEARCH)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "connections to server 'local' are in use" in refused.json()["detail"]
            assert routers(busy_role, other_role) <= 2
            locker.rollback()  # release the lock
            answered = await asyncio.gather(*stuck)
        assert [r.status_code for r in answered] == [200, 200]


def test_a_tenant_refusing_connections_gets_503_alone(
    api: RunningApi, superuser_dsn: str, tenant_names: TenantNames
) -> None:
    healthy, broken = f"ok-{uuid.uuid4().hex[:8]}", f"down-{uuid.uuid4().hex[:8]}"
    healthy_key, broken_key = api.new_tenant(healthy), api.new_tenant(broken)
    broken_db = tenant_names(broken)[0]
    with api.client(broken_key) as client:
        assert client.post(f"/v1/tenants/{broken}/search", json=SEARCH).status_code == 200
    with psycopg.connect(superuser_dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{broken_db}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (broken_db,),
        )
    try:
        with api.client(broken_key) as client:
            down = client.post(f"/v1/tenants/{broken}/search", json=SEARCH)
        assert down.status_code == 503, down.text
        problem = down.json()
        assert problem["tenant"] == broken and problem["tenant_state"] == "ready"
        assert "ready" in problem["detail"] and "Retry-After".lower() in down.headers
        with api.client(healthy_key) as client:
            assert client.post(f"/v1/tenants/{healthy}/search", json=SEARCH).status_code == 200
    finally:
        with psycopg.connect(superuser_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{broken_db}" ALLOW_CONNECTIONS true')
    # it recovers by itself once the database takes connections again
    deadline = time.monotonic() + 10
    while True:
        with api.client(broken_key) as client:
            status = client.post(f"/v1/tenants/{broken}/search", json=SEARCH).status_code
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200


def test_deleting_through_the_api_stops_routing_at_once(api: RunningApi, tenant_id: str) -> None:
    key = api.new_tenant(tenant_id)
    with api.client(key) as client:
        assert client.post(f"/v1/tenants/{tenant_id}/search", json=SEARCH).status_code == 200
    with api.admin() as admin:
        deleted = admin.delete(f"/v1/tenants/{tenant_id}")
        assert deleted.status_code == 200 and deleted.json()["state"] == "deleted"
        assert admin.post(f"/v1/tenants/{tenant_id}/search", json=SEARCH).status_code == 404
    with api.client(key) as client:
        # the key died with its tenant
        assert client.post(f"/v1/tenants/{tenant_id}/search", json=SEARCH).status_code == 401


def _poll(api: RunningApi, token: str, path: str, until: int, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        with api.client(token) as client:
            status = client.post(path, json=SEARCH).status_code
        if status == until or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_changes_made_by_another_process_reach_the_api_within_the_ttl(
    api: RunningApi, tenantctl: TenantCtl, tenant_id: str
) -> None:
    """Default TENANTVEC_ROUTE_TTL_SECONDS is 2: changes show within 3 s (+ slack)."""
    key = api.new_tenant(tenant_id)
    path = f"/v1/tenants/{tenant_id}/search"
    assert _poll(api, key, path, 200, 0) == 200  # warm: route, key and pool cached

    other_key = api.new_tenant(f"{tenant_id}-2")
    with api.admin() as admin:
        key_id = admin.get(f"/v1/tenants/{tenant_id}-2/keys").json()[0]["id"]
    assert _poll(api, other_key, f"/v1/tenants/{tenant_id}-2/search", 200, 0) == 200
    revoked = tenantctl("keys", "revoke", f"{tenant_id}-2", key_id)
    assert revoked.code == 0, revoked.stderr
    assert _poll(api, other_key, f"/v1/tenants/{tenant_id}-2/search", 401, 4.0) == 401

    result = tenantctl("tenants", "delete", tenant_id, "--yes")
    assert result.code == 0, result.stderr
    assert _poll(api, api.admin_token, path, 404, 4.0) == 404


@pytest.mark.parametrize("workers", [2])
def test_workers_split_the_budget(start_api: StartApi, tenant_id: str, workers: int) -> None:
    api = start_api({"TENANTVEC_MAX_CONNECTIONS_PER_SERVER": "10"}, workers=workers)
    key = api.new_tenant(tenant_id)
    with api.client(key) as client:
        assert client.post(f"/v1/tenants/{tenant_id}/search", json=SEARCH).status_code == 200
    metrics = httpx.get(f"{api.url}/metrics").text
    # each worker answers for itself; every one of them got half
    assert "tenantvec_connection_budget 5.0" in metrics
