"""What a router needs of the control plane it serves, as a protocol: the catalog, the
tenants' service DSNs, two facts about each backend, a way to wake a tenant, and news
of tenant changes. ``context.PlaneContext`` provides all of it; routing imports nothing
above the catalog and the backends' traits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from controlplane.catalog.store import Catalog
from controlplane.dsn import ConnInfo
from controlplane.embedding.registry import Embedders
from controlplane.model.backends import BackendTraits
from controlplane.model.records import Tenant
from controlplane.settings import Settings

__all__ = ["RoutingPlane"]


class RoutingPlane(Protocol):
    settings: Settings
    catalog: Catalog
    # For the retrieval functions that take a router (``router.plane``).
    embedders: Embedders
    jobs_waiting: asyncio.Event
    # Resume a suspended tenant, restart a dead server: True once it serves again.
    wake: Callable[[str], Awaitable[bool]]
    # Roll back a dead move that left the tenant's writes paused: True if it did.
    resume_writes: Callable[[str], Awaitable[bool]]
    # Migrate a tenant at an older schema version to the latest: True if it was behind.
    upgrade: Callable[[str], Awaitable[bool]]

    def backend(self, kind: str) -> BackendTraits: ...

    def service_conninfo(self, tenant: Tenant) -> ConnInfo: ...

    def on_tenant_change(self, listener: Callable[[str], Awaitable[None]]) -> None: ...
