"""Where a tenant lives, as the layers above its backend read it.

A tenant's catalog ``placement`` is its backend's own record (each backend owns its
keys: a Neon project id, an instance's port, a container's name...). What routing,
the lifecycle and doctor need of it -- whose connection budget the tenant counts
against, how many connections its own server takes, its role limits, its layout -- is
read here, once, into a typed :class:`Placement`; nothing above a backend reads the
dict's keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.model.limits import RoleLimits

__all__ = ["DEFAULT_OWN_MAX_CONNECTIONS", "Placement"]

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
        )

    @property
    def budget_key(self) -> str:
        """Whose connection budget the tenant's connections count against: the server it
        lives on, its own server, its Neon compute -- or else its backend."""
        return self.server or self.endpoint or self.own_server or self.backend
