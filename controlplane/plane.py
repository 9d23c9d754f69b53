"""The composition root: ``ControlPlane.open(settings)`` builds everything a control
plane is made of -- the catalog (starting the embedded server that holds it), secrets,
registered servers, backends (each on first use), embedders, the lifecycle's wake-up
for routers -- hands them to a :class:`PlaneContext`, and closes them on exit.

Nothing below imports this module: services take the context they are given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql

from controlplane.backends.base import Backend
from controlplane.backends.registry import Backends
from controlplane.backends.servers import ServerDirectory, register_server
from controlplane.catalog.store import Catalog
from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.embedding.registry import Embedders
from controlplane.lifecycle.wake import Waker
from controlplane.localpg.server import EmbeddedServer
from controlplane.model.backends import BackendKind
from controlplane.pgconnect import connect
from controlplane.secretbox import SecretBox
from controlplane.settings import Settings

__all__ = ["CATALOG_DB", "LOCAL_SERVER", "ControlPlane"]

logger = logging.getLogger(__name__)

CATALOG_DB = "tenantvec_catalog"
LOCAL_SERVER = "local"


class ControlPlane(PlaneContext):
    """A :class:`PlaneContext` built from settings: open it with
    ``async with ControlPlane.open(settings) as plane``."""

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[ControlPlane]:
        """Connect to the catalog -- starting the embedded server first if it holds it."""
        box = SecretBox.from_config(settings.secret_key, settings.home)
        embedded: EmbeddedServer | None = None
        if settings.catalog.url:
            catalog_conninfo = ConnInfo.parse(settings.catalog.url)
        else:
            embedded = EmbeddedServer(settings)
            await asyncio.to_thread(embedded.ensure_running)
            catalog_conninfo = embedded.superuser_conninfo(CATALOG_DB)
            await _ensure_database(embedded.superuser_conninfo(), CATALOG_DB, settings)
        catalog = await Catalog.connect(catalog_conninfo, connect_timeout=settings.connect_timeout)
        try:
            servers = ServerDirectory(catalog, box)
            plane = cls(
                settings,
                catalog,
                box,
                embedded=embedded,
                servers=servers,
                backends=Backends(_backend_factories(settings, servers, catalog.catalog_id)),
                embedders=Embedders(settings),
            )
            waker = Waker(plane, timeout=settings.retry_seconds)
            plane.wake, plane.resume_writes = waker.wake, waker.resume_writes
            plane.upgrade = waker.upgrade
            if embedded is not None:
                await plane._register_local_server(embedded)
            try:
                yield plane
            finally:
                await plane.embedders.aclose()
                await plane.backends.aclose()
        finally:
            await catalog.close()

    async def _register_local_server(self, embedded: EmbeddedServer) -> None:
        admin = embedded.superuser_conninfo()
        existing = await self.catalog.find_server(LOCAL_SERVER)
        if existing is not None and self.box.decrypt(existing.admin_dsn_encrypted) == admin.dsn:
            return
        await register_server(
            self.catalog,
            self.box,
            LOCAL_SERVER,
            admin,
            kind="embedded",
            timeout=self.settings.connect_timeout,
            replace=existing is not None,
        )
        logger.info("registered the embedded server as %r", LOCAL_SERVER)


def _backend_factories(
    settings: Settings, servers: ServerDirectory, catalog_id: str
) -> dict[str, Callable[[], Backend]]:
    # Imported when built: a command that needs one backend loads no other's code.
    def postgres() -> Backend:
        from controlplane.backends.postgres import PostgresBackend

        return PostgresBackend(servers, settings, catalog_id=catalog_id)

    def instance() -> Backend:
        from controlplane.backends.instance import InstanceBackend

        return InstanceBackend(settings)

    def docker() -> Backend:
        from controlplane.backends.docker import DockerBackend

        return DockerBackend(settings)

    def neon() -> Backend:
        from controlplane.backends.neon import NeonBackend

        return NeonBackend(settings)

    return {
        BackendKind.POSTGRES: postgres,
        BackendKind.INSTANCE: instance,
        BackendKind.DOCKER: docker,
        BackendKind.NEON: neon,
    }


async def _ensure_database(admin: ConnInfo, name: str, settings: Settings) -> None:
    where = "the embedded server"
    async with connect(admin, where=where, timeout=settings.connect_timeout) as conn:
        cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if await cur.fetchone() is None:
            try:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                return  # another process made it a moment ago
            await conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
            )
