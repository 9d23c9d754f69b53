"""What every service is handed: the settings, the catalog, the secrets, the servers,
the backends and the embedders of one control plane -- built elsewhere, held here.

``PlaneContext`` builds nothing and opens nothing: ``controlplane.plane`` (the
composition root) builds one from settings and closes what it opened. Library
functions take it first (``create_tenant(plane, ...)``), the way alembic's commands
take a config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from controlplane.backends.base import Backend
from controlplane.backends.registry import Backends
from controlplane.backends.servers import ServerDirectory
from controlplane.catalog.store import Catalog
from controlplane.dsn import ConnInfo
from controlplane.embedding.registry import Embedders
from controlplane.errors import ProvisioningError
from controlplane.localpg.server import EmbeddedServer
from controlplane.model.records import Tenant
from controlplane.secretbox import SecretBox
from controlplane.settings import Settings

__all__ = ["PlaneContext", "ResumeWrites", "TenantChangeListener", "Wake"]

TenantChangeListener = Callable[[str], Awaitable[None]]
# Bring a tenant back to serving (resume it, restart its server); False: nothing to do.
Wake = Callable[[str], Awaitable[bool]]
# Lift a pause of the tenant's writes that a dead move left; False: nothing to do.
ResumeWrites = Callable[[str], Awaitable[bool]]
Upgrade = Callable[[str], Awaitable[bool]]


async def _nothing_to_do(tenant_id: str) -> bool:
    return False


class PlaneContext:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        box: SecretBox,
        *,
        embedded: EmbeddedServer | None,
        servers: ServerDirectory,
        backends: Backends,
        embedders: Embedders,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.box = box
        self.embedded = embedded
        self.servers = servers
        self.backends = backends
        self.embedders = embedders
        # How a router wakes a tenant for a request: the lifecycle's, installed by the
        # composition root (routing sits below the lifecycle and cannot import it).
        self.wake: Wake = _nothing_to_do
        self.resume_writes: ResumeWrites = _nothing_to_do
        # Migrate a tenant an upgrade has not reached yet, before a request reaches it.
        self.upgrade: Upgrade = _nothing_to_do
        # Set when this process queues an ingestion job: its job runner wakes at once.
        self.jobs_waiting = asyncio.Event()
        self._listeners: list[TenantChangeListener] = []

    def backend(self, kind: str) -> Backend:
        return self.backends.get(kind)

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
