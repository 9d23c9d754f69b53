"""Scale to zero and supervision as an application sees them, through the real API.

These tests run on a Postgres of their own (not the session's): an API that suspends
idle tenants or sweeps for dead servers acts on every tenant in its catalog.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from controlplane.settings import Settings
from tests.fixtures.api import RunningApi, StartApi
from tests.fixtures.cli import TenantCtl
from tests.fixtures.postgres import private_server

BACKENDS = ["postgres", "instance"]


@pytest.fixture(scope="module")
def own_settings() -> Iterator[Settings]:
    yield from private_server()


@pytest.fixture
def own_api(start_api: StartApi, own_settings: Settings) -> Callable[..., RunningApi]:
    """Start an API on the module's own Postgres; stopped at teardown."""

    def start(**env: str) -> RunningApi:
        return start_api({"TENANTVEC_JOB_WORKERS": "0", **env}, settings=own_settings)

    return start


def _put(api: RunningApi, key: str, tenant_id: str, *doc_ids: str) -> None:
    docs = [
        {"id": d, "chunks": [{"content": d, "embedding": [1.0, n, 0.0]}]}
        for n, d in enumerate(doc_ids)
    ]
    with api.client(key) as client:
        put = client.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": docs})
        assert put.status_code == 200, put.text


def _search(api: RunningApi, key: str, tenant_id: str) -> httpx.Response:
    with api.client(key) as client:
        return client.post(f"/v1/tenants/{tenant_id}/search", json={"vector": [1, 0, 0], "k": 5})


def _shown(api: RunningApi, tenant_id: str) -> dict[str, Any]:
    with api.admin() as admin:
        shown = admin.get(f"/v1/tenants/{tenant_id}")
        assert shown.status_code == 200, shown.text
        return dict(shown.json())


def _operations(api: RunningApi, tenant_id: str, action: str) -> list[dict[str, Any]]:
    return [op for op in _shown(api, tenant_id)["operations"] if op["action"] == action]


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _kill_postmaster(api: RunningApi, tenant_id: str) -> None:
    data_dir = Path(_shown(api, tenant_id)["placement"]["data_dir"])
    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_first_request_resumes_a_suspended_tenant(
    own_api: Callable[..., RunningApi], tenant_id: str, backend: str
) -> None:
    api = own_api()
    key = api.new_tenant(tenant_id, backend=backend)
    _put(api, key, tenant_id, "a", "b")
    for cycle in range(3):
        with api.admin() as admin:
            suspended = admin.post(f"/v1/tenants/{tenant_id}/suspend")
            assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
        if backend == "instance":
            assert _shown(api, tenant_id)["live"]["running"] is False
        found = _search(api, key, tenant_id)
        assert found.status_code == 200, found.text
        assert {r["document_id"] for r in found.json()["results"]} == {"a", "b"}, cycle
        assert _shown(api, tenant_id)["state"] == "ready"
    resumes = _operations(api, tenant_id, "resume")
    assert len(resumes) == 3
    assert all(op["actor"] == "router" and op["outcome"] == "succeeded" for op in resumes)
    assert resumes[0]["details"]["trigger"] == "request"


def test_twenty_concurrent_first_requests_resume_a_tenant_once(
    own_api: Callable[..., RunningApi], tenant_id: str
) -> None:
    api = own_api()
    key = api.new_tenant(tenant_id, backend="instance")
    _put(api, key, tenant_id, "a")
    with api.admin() as admin:
        assert admin.post(f"/v1/tenants/{tenant_id}/suspend").status_code == 200

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(f"/v1/tenants/{tenant_id}/search", json={"vector": [1, 0, 0]})
                    for _ in range(20)
                )
            )

    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers[:3]]
    assert all(r.json()["results"][0]["document_id"] == "a" for r in answers)
    assert len(_operations(api, tenant_id, "resume")) == 1


def test_a_killed_instance_comes_back_at_its_next_request(
    own_api: Callable[..., RunningApi], tenant_id: str
) -> None:
    api = own_api(TENANTVEC_SUPERVISE_SECONDS="3600")  # only the request may notice
    key = api.new_tenant(tenant_id, backend="instance")
    _put(api, key, tenant_id, "a")
    assert _search(api, key, tenant_id).status_code == 200  # the pool holds a connection

    _kill_postmaster(api, tenant_id)
    found = _search(api, key, tenant_id)
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["document_id"] == "a"
    (restart,) = _operations(api, tenant_id, "restart")
    assert (restart["actor"], restart["outcome"]) == ("router", "succeeded")


def test_requests_to_a_killed_instance_wait_for_its_restart_instead_of_failing(
    own_api: Callable[..., RunningApi], tenant_id: str
) -> None:
    """Every request that arrives while the server is down waits for the one restart the
    first of them started -- none is answered 503 in the meantime."""
    api = own_api(TENANTVEC_SUPERVISE_SECONDS="3600")
    key = api.new_tenant(tenant_id, backend="instance")
    _put(api, key, tenant_id, "a")
    assert _search(api, key, tenant_id).status_code == 200
    _kill_postmaster(api, tenant_id)

    def search_once(_: int) -> int:
        return _search(api, key, tenant_id).status_code

    with ThreadPoolExecutor(8) as pool:
        first_wave = list(pool.map(search_once, range(8)))
        second_wave = list(pool.map(search_once, range(16)))
    assert first_wave == [200] * 8 and second_wave == [200] * 16
    restarts = _operations(api, tenant_id, "restart")
    assert [(r["actor"], r["outcome"]) for r in restarts] == [("router", "succeeded")]


def test_the_supervisor_restarts_a_dead_instance_without_requests(
    own_api: Callable[..., RunningApi], tenant_id: str
) -> None:
    api = own_api(TENANTVEC_SUPERVISE_SECONDS="0.3")
    api.new_tenant(tenant_id, backend="instance")
    started = _shown(api, tenant_id)["live"]["pid"]

    _kill_postmaster(api, tenant_id)
    # The new server answers a moment before its restart operation is closed.
    _wait_for(
        lambda: (
            [op["outcome"] for op in _operations(api, tenant_id, "restart")] != ["running"]
            and bool(_operations(api, tenant_id, "restart"))
        ),
        20,
        "the supervisor to restart the server",
    )
    # A server fresh from crash recovery reports its pid once it takes connections.
    _wait_for(
        lambda: _shown(api, tenant_id)["live"].get("pid") not in (None, started),
        10,
        "the restarted server to answer",
    )
    (restart,) = _operations(api, tenant_id, "restart")
    assert (restart["actor"], restart["outcome"]) == ("supervisor", "succeeded")


def test_idle_tenants_are_suspended_and_busy_ones_are_not(
    own_api: Callable[..., RunningApi],
    own_settings: Settings,
    tenantctl: TenantCtl,
    tenant_id: str,
) -> None:
    api = own_api(TENANTVEC_SUSPEND_AFTER="2s")
    idle, busy, direct = f"{tenant_id}-idle", f"{tenant_id}-busy", f"{tenant_id}-direct"
    idle_key = api.new_tenant(idle, backend="instance")
    busy_key = api.new_tenant(busy)
    api.new_tenant(direct)
    _put(api, idle_key, idle, "a")
    dsn = tenantctl("tenants", "dsn", direct, settings=own_settings).stdout.strip()

    # busy: requests all along, for longer than 2 s; direct: a client holding its DSN.
    with psycopg.connect(dsn, application_name="ci-job") as client:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert _search(api, busy_key, busy).status_code == 200
            time.sleep(0.2)
        _wait_for(lambda: _shown(api, idle)["state"] == "suspended", 10, "idle suspension")
        assert _shown(api, direct)["state"] == "ready"
        assert client.execute("SELECT 1").fetchone() == (1,)
    assert _shown(api, busy)["state"] == "ready"
    assert _shown(api, busy)["last_active_at"] is not None
    (suspend,) = _operations(api, idle, "suspend")
    assert suspend["actor"] == "idle-suspender"
    assert _shown(api, idle)["live"]["running"] is False

    # Its next request wakes it, data intact.
    found = _search(api, idle_key, idle)
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["document_id"] == "a"
