"""An external server from the pgvector Docker image (testcontainers).

Runs only with TENANTVEC_TEST_DOCKER=1 and a Docker engine that answers; everything it
covers is also covered on the embedded server, which the rest of the suite uses.
"""

from __future__ import annotations

import os

import pytest

from controlplane.backends.servers import register_server
from controlplane.dsn import ConnInfo
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane


def _docker_answers() -> str | None:
    if os.environ.get("TENANTVEC_TEST_DOCKER") != "1":
        return "set TENANTVEC_TEST_DOCKER=1 to run tests against a pgvector container"
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure here means: no usable engine
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


pytestmark = pytest.mark.docker


async def test_tenant_on_pgvector_container(plane: ControlPlane, tenant_id: str) -> None:
    reason = _docker_answers()
    if reason:
        pytest.skip(reason)
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("pgvector/pgvector:pg18", driver=None) as container:
        admin = ConnInfo.parse(container.get_connection_url())
        server = await register_server(plane.catalog, plane.box, "docker-pg", admin)
        try:
            tenant = await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, server=server.name), actor="test"
            )
            assert tenant.state is TenantState.READY and tenant.server == "docker-pg"
            await delete_tenant(plane, tenant_id, actor="test")
        finally:
            await plane.catalog.remove_server("docker-pg")
