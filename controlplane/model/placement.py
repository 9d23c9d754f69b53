"""Where a tenant lives, as the layers above its backend read it.

A tenant's catalog ``placement`` is its backend's own record (each backend owns its
keys: a Neon project id, an instance's port, a container's name...). What routing,
the lifecycle and doctor need of it -- whose connection budget the tenant counts
against, how many connections its own server takes, its role limits, its layout -- is
read here, once, into a typed :class:`Placement` (``Tenant.where``); nothing above a
backend reads the dict's keys (tests/test_conventions.py keeps it so). A move's second
copy is a :class:`TenantCopy` of its own, beside the placement; where a move stands is
the tenant's state (model/records.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.views import Location

__all__ = [
    "DEFAULT_OWN_MAX_CONNECTIONS",
    "Placement",
    "TenantCopy",
    "with_erasure",
    "with_limits",
]

# An own server's max_connections when its placement does not say (small tier).
DEFAULT_OWN_MAX_CONNECTIONS = 25


@dataclass(frozen=True)
class Placement:
    backend: str
    # The registered server it lives on (postgres backend), or None.
    server: str | None
    # The name of its server of its own (an instance, a container), or None.
    own_server: str | None
    # Its Neon compute endpoint, or None.
    endpoint: str | None
    # Its own server's max_connections (own servers only).
    own_max_connections: int | None
    limits: RoleLimits
    # Which generation of tenantvec's layout it has (opaque names, service role: 2).
    layout: int
    # postgres backend: whether its service role may use the reserved connection slots
    # (False: the server refused; None: not recorded).
    reserved_slots: bool | None
    # Whether the control plane reaches it as a service role of its own (layout 2), not
    # as the tenant's owner role.
    service_role: bool = False
    # Where it lives, in words: "on server local", "on its own server at 127.0.0.1:26001
    # (small)", "on Neon project p-1 in aws-eu-central-1".
    described: str = ""
    # Its database and owner role on its server (Postgres-based backends).
    database: str | None = None
    role: str | None = None
    # A deleted tenant's erasure: what became of its data, in words (None: not deleted).
    erasure: str | None = None

    @classmethod
    def parse(cls, backend: str, server: str | None, raw: Mapping[str, Any]) -> Placement:
        own = raw.get("instance") or raw.get("container")
        compute = raw.get("compute") or {}
        reserved = raw.get("reserved_slots")
        return cls(
            backend=backend,
            server=server,
            own_server=str(own) if own else None,
            endpoint=str(raw["endpoint_id"]) if raw.get("endpoint_id") else None,
            own_max_connections=int(compute.get("max_connections", DEFAULT_OWN_MAX_CONNECTIONS))
            if own
            else None,
            limits=RoleLimits.from_json(raw.get("limits")),
            layout=int(raw.get("layout", 1)),
            reserved_slots=reserved if isinstance(reserved, bool) else None,
            service_role=bool(raw.get("service_role")),
            described=_described(backend, server, raw),
            database=str(raw["database"]) if raw.get("database") else None,
            role=str(raw["role"]) if raw.get("role") else None,
            erasure=_erasure(raw.get("erasure")),
        )

    @property
    def budget_key(self) -> str:
        """Whose connection budget the tenant's connections count against: the server it
        lives on, its own server, its Neon compute -- or else its backend."""
        return self.server or self.endpoint or self.own_server or self.backend


def with_limits(placement: Mapping[str, Any], limits: RoleLimits) -> dict[str, Any]:
    """``placement`` recording the tenant's role limits (``Placement.limits``)."""
    return {**placement, "limits": limits.to_json()}


def with_erasure(placement: Mapping[str, Any], erasure: Erasure) -> dict[str, Any]:
    """A deleted tenant's ``placement`` recording what became of its data
    (``Placement.erasure``)."""
    return {**placement, "erasure": erasure.to_json()}


def _described(backend: str, server: str | None, raw: Mapping[str, Any]) -> str:
    if server is not None:
        return f"on server {server}"
    if backend == "neon":
        mode = str(raw.get("mode", "project"))
        return f"on Neon {mode} {raw.get(mode + '_id')} in {raw.get('region')}"
    if backend in ("instance", "docker") and "port" in raw:
        tier = (raw.get("compute") or {}).get("tier", "?")
        kind = "its own server" if backend == "instance" else "its own container"
        return f"on {kind} at 127.0.0.1:{raw['port']} ({tier})"
    return f"on the {backend} backend"


def _erasure(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    detail = raw.get("detail")
    return str(detail) if detail else None


@dataclass(frozen=True)
class TenantCopy:
    """One copy of a tenant's database: its backend, server and that backend's placement
    record -- the second copy a move keeps (``Tenant.other_copy``), in the catalog's
    ``other_copy`` column."""

    backend: str
    server: str | None
    placement: dict[str, Any]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TenantCopy:
        placement = raw.get("placement")
        return cls(
            backend=str(raw["backend"]),
            server=str(raw["server"]) if raw.get("server") is not None else None,
            placement=dict(placement) if isinstance(placement, Mapping) else {},
        )

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "server": self.server, "placement": self.placement}

    @property
    def where(self) -> Placement:
        return Placement.parse(self.backend, self.server, self.placement)

    @property
    def resource_names(self) -> frozenset[str]:
        """The names its placement gives the copy's resources (database, roles, a Neon
        project or branch, an instance or container): how reconcile knows them."""
        return frozenset(str(v) for v in self.placement.values() if not isinstance(v, dict))

    def location(self) -> Location:
        return Location(backend=self.backend, server=self.server)
