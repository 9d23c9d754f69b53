"""The protocol every provisioning backend implements.

A backend knows how to make, remove, pause and describe one tenant's database on its
kind of infrastructure. It does not know about tenant states, operations or retries:
the lifecycle (``provisioning.lifecycle``) owns those, and calls each method in a
retry loop, so every method must be idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.catalog.records import Server, Tenant
from controlplane.dsn import ConnInfo
from controlplane.provisioning.compute import ComputeSpec

__all__ = ["Backend", "Checkpoint", "OwnedResource", "ProvisionPlan"]


@dataclass(frozen=True)
class ProvisionPlan:
    """Where and how a tenant will live, decided before anything is created.

    The lifecycle writes it to the catalog first, so a crash at any later point leaves
    a record of every resource that may exist.
    """

    server: str | None
    placement: dict[str, Any]
    # The tenant role's DSN, password included -- or None when the infrastructure
    # chooses the password (Neon); the backend then records it during create.
    conninfo: ConnInfo | None


SaveProgress = Callable[[dict[str, Any], ConnInfo | None], Awaitable[Tenant]]


class Checkpoint:
    """A create in progress: what it has made so far, written through to the catalog.

    A backend whose resources get their ids (and credentials) from the infrastructure
    records each as soon as it is known, *before* waiting on it, so that a process that
    dies mid-create leaves ids that ``reconcile`` can resume from or clean up.
    """

    def __init__(
        self,
        tenant: Tenant,
        conninfo: ConnInfo | None,
        save: SaveProgress,
        *,
        resuming: bool,
    ) -> None:
        self.tenant = tenant
        self.conninfo = conninfo
        # True when an earlier attempt may have made resources whose ids were never
        # recorded (reconcile, a retry): look for them before making new ones.
        self.resuming = resuming
        self._save = save

    @property
    def placement(self) -> dict[str, Any]:
        return dict(self.tenant.placement)

    async def record(
        self, placement: dict[str, Any] | None = None, conninfo: ConnInfo | None = None
    ) -> None:
        """Merge ``placement`` into the tenant's and/or store its DSN, durably."""
        merged = {**self.tenant.placement, **(placement or {})}
        self.tenant = await self._save(merged, conninfo)
        if conninfo is not None:
            self.conninfo = conninfo


@dataclass(frozen=True)
class OwnedResource:
    """Something a backend created for a tenant, found on the infrastructure itself."""

    backend: str  # the backend that made it
    kind: str  # "database", "role", ...
    name: str
    location: str  # server name, project id...
    tenant_id: str | None  # as recorded in the resource's own marker

    def public_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "kind": self.kind,
            "name": self.name,
            "location": self.location,
            "tenant": self.tenant_id,
        }


class Backend(Protocol):
    kind: str
    # Whether tenants are placed on registered servers (the catalog's servers table).
    uses_servers: bool
    # Whether tenants are placed in a region the caller names (--region).
    regional: bool
    # Whether each tenant gets a server of its own, sized by a ComputeSpec (--tier).
    sized: bool
    # Whether tenantvec runs the tenant's server itself, and so must notice when it
    # dies and restart it (see provisioning.supervise).
    supervises: bool

    async def plan(
        self,
        tenant_id: str,
        server: Server | None,
        *,
        region: str | None,
        compute: ComputeSpec | None,
    ) -> ProvisionPlan:
        """Decide placement and credentials; no side effects.

        ``compute`` is given to sized backends only (and always to them).
        """
        ...

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        """Create the tenant's database and role (or resume a half-done create).

        When it returns, ``checkpoint.conninfo`` is the tenant role's working DSN.
        """
        ...

    async def delete(self, tenant: Tenant) -> None:
        """Remove everything the tenant has; a no-op for what is already gone."""
        ...

    async def suspend(self, tenant: Tenant) -> None: ...

    async def resume(self, tenant: Tenant) -> None:
        """Make the tenant's database serve again; once it returns, connections succeed."""
        ...

    async def running(self, tenant: Tenant) -> bool:
        """Whether the tenant's server runs (supervised backends; others say True)."""
        ...

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        """Live facts about the tenant's database (exists, size, connections...)."""
        ...

    async def list_resources(self) -> list[OwnedResource]:
        """Every resource carrying tenantvec's marker, wherever this backend places them."""
        ...

    async def remove_resource(self, resource: OwnedResource) -> None: ...

    async def aclose(self) -> None:
        """Release what the backend holds open (HTTP sessions); called once at exit."""
        ...
