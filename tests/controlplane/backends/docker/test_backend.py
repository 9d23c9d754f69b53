"""The docker backend: a container per tenant from the pgvector image.

Its refusal without an engine runs everywhere (the engine address is pointed at a
socket nobody listens on). The container round trip needs a Docker engine that
answers and TENANTVEC_TEST_DOCKER=1 (it pulls the image); it skips otherwise.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from controlplane.errors import BackendUnavailable, NotConfigured
from controlplane.lifecycle.supervise import restart_if_down
from controlplane.lifecycle.suspend import resume_tenant, suspend_tenant
from controlplane.lifecycle.tenants import (
    TenantRequest,
    create_tenant,
    delete_tenant,
    tenant_conninfo,
)
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings

ACTOR = "test"


def _no_engine_reason() -> str | None:
    if os.environ.get("TENANTVEC_TEST_DOCKER") != "1":
        return "set TENANTVEC_TEST_DOCKER=1 (and run a Docker engine) to test docker tenants"
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as exc:  # any failure here means: no usable engine
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


async def test_without_an_engine_create_is_refused_and_nothing_is_written(
    pg_settings: Settings, tenant_id: str, tmp_path: Path
) -> None:
    # No socket at all: no engine on this machine, a request that cannot work (400).
    settings = pg_settings.replace(
        docker=pg_settings.docker.replace(host="unix:///nonexistent/docker.sock")
    )
    async with ControlPlane.open(settings) as plane:
        request = TenantRequest(id=tenant_id, dims=3, backend="docker")
        with pytest.raises(NotConfigured) as refused:
            await create_tenant(plane, request, actor=ACTOR)
        message = str(refused.value)
        assert "needs a Docker engine and none answers at unix:///nonexistent" in message
        assert "--backend instance" in message
        assert await plane.catalog.find_tenant(tenant_id) is None
        # Reconcile and doctor still work: no engine simply means no containers.
        assert await plane.backend("docker").list_resources() == []
    # A socket nobody answers on: an engine that is down, for now (503, retry).
    dead = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(dead))  # bound, never listening: connections are refused
        settings = pg_settings.replace(docker=pg_settings.docker.replace(host=f"unix://{dead}"))
        async with ControlPlane.open(settings) as plane:
            with pytest.raises(BackendUnavailable, match="none answers"):
                await create_tenant(plane, request, actor=ACTOR)
            assert await plane.catalog.find_tenant(tenant_id) is None


@pytest.mark.docker
async def test_a_docker_tenant_from_create_to_delete(plane: ControlPlane, tenant_id: str) -> None:
    reason = _no_engine_reason()
    if reason:
        pytest.skip(reason)
    request = TenantRequest(id=tenant_id, dims=3, backend="docker", resources={"work_mem": "8MB"})
    tenant = await create_tenant(plane, request, actor=ACTOR)
    try:
        assert tenant.state is TenantState.READY
        dsn = (await tenant_conninfo(plane, tenant_id)).dsn
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("INSERT INTO documents (id, title) VALUES ('d', 'x')")
            assert await (await conn.execute("SHOW work_mem")).fetchone() == ("8MB",)
        await suspend_tenant(plane, tenant_id, actor=ACTOR)
        assert not await plane.backend("docker").running(tenant)
        await resume_tenant(plane, tenant_id, actor=ACTOR)
        import docker

        client = docker.from_env()
        client.containers.get(tenant.placement["container"]).kill()
        client.close()
        assert await restart_if_down(plane, tenant_id, actor=ACTOR) is True
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cur = await conn.execute("SELECT id FROM documents")
            assert await cur.fetchall() == [("d",)]
    finally:
        await delete_tenant(plane, tenant_id, actor=ACTOR)
