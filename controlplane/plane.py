"""The control plane object: settings, catalog, secrets, servers and backends, owned together.

Library functions (``create_tenant(plane, ...)``) take it first, the way alembic's
commands take a config. Open it with ``async with ControlPlane.open(settings) as plane``;
everything it opened is closed on exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql

from controlplane.catalog.store import Catalog
from controlplane.dsn import ConnInfo
from controlplane.embedding.registry import Embedders
from controlplane.errors import InvalidRequest, ProvisioningError
from controlplane.localpg.server import EmbeddedServer
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from controlplane.provisioning.backend import Backend
from controlplane.provisioning.docker import DockerBackend
from controlplane.provisioning.instance import InstanceBackend
from controlplane.provisioning.neon import NeonBackend
from controlplane.provisioning.postgres import PostgresBackend
from controlplane.provisioning.servers import ServerDirectory, register_server
from controlplane.secretbox import SecretBox
from controlplane.settings import Settings

__all__ = ["CATALOG_DB", "LOCAL_SERVER", "ControlPlane"]

logger = logging.getLogger("tenantvec")

TenantChangeListener = Callable[[str], Awaitable[None]]

CATALOG_DB = "tenantvec_catalog"
LOCAL_SERVER = "local"


class ControlPlane:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        box: SecretBox,
        embedded: EmbeddedServer | None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.box = box
        self.embedded = embedded
        self.servers = ServerDirectory(catalog, box)
        self.embedders = Embedders(settings)
        # Set when this process queues an ingestion job: its job runner wakes at once.
        self.jobs_waiting = asyncio.Event()
        self.backends: dict[str, Backend] = {
            "postgres": PostgresBackend(self.servers, settings, catalog_id=catalog.catalog_id),
            "neon": NeonBackend(settings),
            "instance": InstanceBackend(settings),
            "docker": DockerBackend(settings),
        }
        self._listeners: list[TenantChangeListener] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[ControlPlane]:
        """Connect to the catalog -- starting the embedded server first if it holds it."""
        box = SecretBox.from_config(settings.secret_key, settings.home)
        embedded: EmbeddedServer | None = None
        if settings.catalog_url:
            catalog_conninfo = ConnInfo.parse(settings.catalog_url)
        else:
            embedded = EmbeddedServer(settings)
            await asyncio.to_thread(embedded.ensure_running)
            catalog_conninfo = embedded.superuser_conninfo(CATALOG_DB)
            await _ensure_database(embedded.superuser_conninfo(), CATALOG_DB, settings)
        catalog = await Catalog.connect(catalog_conninfo, connect_timeout=settings.connect_timeout)
        try:
            plane = cls(settings, catalog, box, embedded)
            if embedded is not None:
                await plane._register_local_server(embedded)
            try:
                yield plane
            finally:
                await plane.embedders.aclose()
                for backend in plane.backends.values():
                    await backend.aclose()
        finally:
            await catalog.close()

    def backend(self, kind: str) -> Backend:
        try:
            return self.backends[kind]
        except KeyError:
            known = ", ".join(sorted(self.backends))
            raise InvalidRequest(f"unknown backend {kind!r}; available: {known}") from None

    def on_tenant_change(self, listener: TenantChangeListener) -> None:
        """Call ``listener(tenant_id)`` whenever this process changes a tenant's routing
        facts (deleted, suspended, moved, keys revoked) -- how a router in the same
        process drops its cached route and pool at once."""
        self._listeners.append(listener)

    async def tenant_changed(self, tenant_id: str) -> None:
        for listener in self._listeners:
            await listener(tenant_id)

    def tenant_conninfo(self, tenant: Tenant) -> ConnInfo:
        """The owner role's DSN (for the tenant's own clients), decrypted. Hand it to a
        driver or to the tenant, never to a log."""
        if tenant.dsn_encrypted is None:
            raise ProvisioningError(f"tenant {tenant.id!r} has no connection string")
        return ConnInfo.parse(self.box.decrypt(tenant.dsn_encrypted))

    def service_conninfo(self, tenant: Tenant) -> ConnInfo:
        """The DSN the control plane connects to the tenant as: its service role's, or
        the owner's where the backend has no service role (Neon, older tenants)."""
        if tenant.service_dsn_encrypted is not None:
            return ConnInfo.parse(self.box.decrypt(tenant.service_dsn_encrypted))
        return self.tenant_conninfo(tenant)

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
