"""Routes: what the router needs to know about a tenant, read from the catalog and cached.

A route is valid for ``ttl`` seconds. Changes made in this process (delete, suspend,
move) drop the entry at once through :meth:`RouteTable.forget`; changes made by other
processes are seen when the entry expires, or sooner when the router's maintenance
task revalidates it (``TenantRouter``). While the catalog cannot be reached, an entry
verified within the grace keeps serving (``routing.grace``).

A route names one incarnation of a tenant (its catalog ``uid``). When a re-read finds
another incarnation under the same id (deleted and created again elsewhere), the
table's incarnation listeners hear of it -- the key verifier drops that tenant's keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from controlplane.dsn import ConnInfo
from controlplane.errors import TenantNotFound
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import DEFAULT_OWN_MAX_CONNECTIONS, Placement
from controlplane.model.recall import RecallTuning
from controlplane.model.records import Tenant, TenantState, validate_tenant_id
from controlplane.routing._grace import CatalogGrace
from controlplane.routing._sources import RoutingPlane
from tenantvec_schema.spec import SchemaSpec

__all__ = ["Route", "RouteTable"]


@dataclass(frozen=True)
class Route:
    tenant_id: str
    uid: str
    state: TenantState
    backend: str
    # Whose connection budget the tenant's connections count against: the server it
    # lives on, its own server (instance, container), its Neon compute (endpoint), or
    # else its backend -- and that budget's limit, when the server is the tenant's own.
    budget_key: str
    budget_limit: int | None
    schema: SchemaSpec
    schema_version: int
    updated_at: datetime
    error: str | None
    fetched_at: float
    embedder: EmbedderSpec | None  # None: the tenant has none
    chunking: ChunkingSpec
    # The tenant's statement timeouts, which its pool's connections set at start
    # (when its backend lets them: None otherwise).
    limits: RoleLimits | None
    # Its recall target and the search setting chosen to meet it (model/recall.py).
    recall: RecallTuning = field(default_factory=RecallTuning)
    conninfo: ConnInfo | None = field(default=None, repr=False)

    @classmethod
    def of(cls, plane: RoutingPlane, tenant: Tenant, now: float) -> Route:
        usable = tenant.state.usable
        where = tenant.where
        return cls(
            tenant_id=tenant.id,
            uid=tenant.uid,
            state=tenant.state,
            backend=tenant.backend,
            budget_key=where.budget_key,
            budget_limit=_own_server_share(plane, where) if where.own_server else None,
            schema=tenant.schema,
            schema_version=tenant.schema_version,
            updated_at=tenant.updated_at,
            error=tenant.error,
            fetched_at=now,
            embedder=tenant.embedder,
            chunking=tenant.chunking,
            limits=where.limits if plane.backend(tenant.backend).session_options else None,
            recall=tenant.recall,
            conninfo=plane.service_conninfo(tenant) if usable else None,
        )

    def same_target(self, other: Route) -> bool:
        """Whether a pool opened for ``other`` may serve this route."""
        return (
            self.uid == other.uid
            and self.conninfo == other.conninfo
            and self.limits == other.limits
        )


def _own_server_share(plane: RoutingPlane, where: Placement) -> int:
    """This process's share of a tenant's own server's connections.

    Leaves room for the superuser (reserved connections, the control plane's checks).
    """
    max_connections = where.own_max_connections or DEFAULT_OWN_MAX_CONNECTIONS
    # The owner role's clients may hold their connection limit; the rest is ours.
    usable = max(1, max_connections - _SUPERUSER_HEADROOM - where.limits.connection_limit)
    return max(1, usable // plane.settings.routing.api_workers)


# superuser_reserved_connections (3) plus two for the control plane's own connections.
_SUPERUSER_HEADROOM = 5


IncarnationListener = Callable[[str], None]


class RouteTable:
    def __init__(self, plane: RoutingPlane, *, ttl: float, grace: CatalogGrace) -> None:
        self._plane = plane
        self._ttl = ttl
        self._grace = grace
        self._routes: dict[str, Route] = {}
        self._listeners: list[IncarnationListener] = []

    def on_incarnation_change(self, listener: IncarnationListener) -> None:
        """Call ``listener(tenant_id)`` when the incarnation cached for an id is gone."""
        self._listeners.append(listener)

    async def get(self, tenant_id: str) -> Route:
        """The tenant's route, from the cache while fresh. TenantNotFound if none is live."""
        now = time.monotonic()
        route = self._routes.get(tenant_id)
        if route is not None and now - route.fetched_at <= self._ttl:
            return route
        validate_tenant_id(tenant_id)
        fresh_read, tenant = await self._grace.read(
            lambda: self._plane.catalog.find_tenant(tenant_id),
            verified_at=route.fetched_at if route is not None else None,
        )
        if not fresh_read:
            assert route is not None
            return route  # the catalog is down; this was verified within the grace
        if tenant is None:
            self._drop(tenant_id)
            raise TenantNotFound(tenant_id)
        fresh = Route.of(self._plane, tenant, now)
        if route is not None and route.uid != fresh.uid:
            self._drop(tenant_id)
        self._routes[tenant_id] = fresh
        return fresh

    def holds(self, route: Route) -> bool:
        """Whether ``route`` is the table's current, unexpired entry for its tenant."""
        return (
            self._routes.get(route.tenant_id) is route
            and time.monotonic() - route.fetched_at <= self._ttl
        )

    def stale(self, tenant_ids: list[str], *, older_than: float) -> list[str]:
        now = time.monotonic()
        return [
            tid
            for tid in tenant_ids
            if (route := self._routes.get(tid)) is None or now - route.fetched_at > older_than
        ]

    def confirm(self, tenant_id: str, uid: str, updated_at: datetime) -> bool:
        """Extend a cached route that the catalog says is unchanged; False if it changed."""
        route = self._routes.get(tenant_id)
        if route is None or route.uid != uid or route.updated_at != updated_at:
            if route is not None and route.uid != uid:
                self._drop(tenant_id)
            self._routes.pop(tenant_id, None)
            return False
        self._routes[tenant_id] = replace(route, fetched_at=time.monotonic())
        return True

    def forget(self, tenant_id: str) -> None:
        self._routes.pop(tenant_id, None)

    def gone(self, tenant_id: str) -> None:
        """The cached incarnation of ``tenant_id`` no longer exists (not in the catalog)."""
        self._drop(tenant_id)

    def _drop(self, tenant_id: str) -> None:
        self._routes.pop(tenant_id, None)
        for listener in self._listeners:
            listener(tenant_id)
