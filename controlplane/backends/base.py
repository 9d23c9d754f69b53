"""The protocol every provisioning backend implements.

A backend knows how to make, remove, pause and describe one tenant's database on its
kind of infrastructure. It does not know about tenant states, operations or retries:
the lifecycle (``lifecycle.tenants``) owns those, and calls each method in a
retry loop, so every method must be idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from controlplane.dsn import ConnInfo
from controlplane.model.backends import BackendTraits
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import BackendPlacement
from controlplane.model.records import Server, Tenant
from controlplane.model.request import TenantRequest
from controlplane.model.views import ResourceView

__all__ = ["ApiProbe", "Backend", "Checkpoint", "OwnedResource", "ProbesItsApi", "ProvisionPlan"]


@dataclass(frozen=True)
class ProvisionPlan:
    """Where and how a tenant will live, decided before anything is created.

    The lifecycle writes it to the catalog first, so a crash at any later point leaves
    a record of every resource that may exist.
    """

    server: str | None
    # The backend's record of where the tenant lives (model/placement.py).
    placement: BackendPlacement
    # The owner role's DSN (the tenant's own clients'), password included -- or None
    # when the infrastructure chooses the password (Neon) or the names are chosen later
    # (a server of the tenant's own); the backend then records it during create.
    conninfo: ConnInfo | None
    # The service role's DSN: what the control plane connects as (see tenantdb). None:
    # the backend has no service role (Neon), or records it during create.
    service_conninfo: ConnInfo | None = None


SaveProgress = Callable[[dict[str, Any], ConnInfo | None, ConnInfo | None], Awaitable[Tenant]]


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
        catalog_id: str,
        service_conninfo: ConnInfo | None = None,
    ) -> None:
        self.tenant = tenant
        self.conninfo = conninfo
        self.service_conninfo = service_conninfo
        # The catalog the tenant's marker comments name (see tenantdb).
        self.catalog_id = catalog_id
        # True when an earlier attempt may have made resources whose ids were never
        # recorded (reconcile, a retry): look for them before making new ones.
        self.resuming = resuming
        self._save = save

    @property
    def placement(self) -> dict[str, Any]:
        """The tenant's placement as recorded so far (a backend reads its record with
        ``<its record type>.of(checkpoint.placement)``)."""
        return dict(self.tenant.placement)

    async def record(
        self,
        placement: BackendPlacement | None = None,
        conninfo: ConnInfo | None = None,
        service_conninfo: ConnInfo | None = None,
    ) -> None:
        """Store the backend's record of the tenant (``placement``, whole: a field it
        leaves unset is removed) and/or its DSNs, durably."""
        merged = (
            placement.merged_into(self.tenant.placement)
            if placement is not None
            else dict(self.tenant.placement)
        )
        self.tenant = await self._save(merged, conninfo, service_conninfo)
        if conninfo is not None:
            self.conninfo = conninfo
        if service_conninfo is not None:
            self.service_conninfo = service_conninfo


@dataclass(frozen=True)
class OwnedResource:
    """Something a backend created for a tenant, found on the infrastructure itself."""

    backend: str  # the backend that made it
    kind: str  # "database", "role", ...
    name: str
    location: str  # server name, project id...
    # Whose it is, as its own marker says: a tenant incarnation (uid) of a catalog, or
    # (older markers, Neon names) a tenant id. Both None: the marker does not parse,
    # and nothing may be concluded about the resource -- it is never removed.
    tenant_uid: str | None = None
    tenant_id: str | None = None
    catalog_id: str | None = None
    # The marker exactly as found: removal re-checks it, so nothing is removed that
    # changed hands since it was judged an orphan.
    marker: str | None = field(default=None, repr=False)

    def view(self) -> ResourceView:
        return ResourceView(
            backend=self.backend,
            kind=self.kind,
            name=self.name,
            location=self.location,
            tenant=self.tenant_id,
            tenant_uid=self.tenant_uid,
            catalog=self.catalog_id,
        )


class Backend(BackendTraits, Protocol):
    async def plan(self, request: TenantRequest, server: Server | None) -> ProvisionPlan:
        """Decide placement and credentials from the tenant's options; no side effects.

        Each backend reads the options it takes (a region, a tier and resources); the
        lifecycle has refused those it does not. ``server`` is the registered server
        chosen for backends that use servers, else None.
        """
        ...

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        """Create the tenant's database and role (or resume a half-done create).

        When it returns, ``checkpoint.conninfo`` is the tenant role's working DSN.
        """
        ...

    async def delete(self, tenant: Tenant) -> Erasure:
        """Remove everything the tenant has (what is already gone is not an error), and
        say what became of its data: gone now, or kept by the infrastructure until when."""
        ...

    async def conform(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        """Bring a tenant made by an older tenantvec to today's layout (opaque names, a
        service role, role limits), recording each step through ``checkpoint``; a no-op
        for a tenant already there. Run by ``migrate``."""
        ...

    async def set_limits(self, tenant: Tenant, limits: RoleLimits) -> None:
        """Apply ``limits`` to the tenant's owner role (the catalog is the caller's)."""
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


@dataclass(frozen=True)
class ApiProbe:
    """What a read-only probe of a backend's outside API found (``tenantctl doctor``)."""

    asked: list[str]  # the calls made, in order
    problems: list[str]  # answers tenantvec could not read: fix before a create fails
    notes: list[str]  # values it reads but does not know (new enum values, say)


@runtime_checkable
class ProbesItsApi(Protocol):
    """A backend driving an outside API that it can probe without changing anything."""

    async def probe_api(self) -> ApiProbe: ...
