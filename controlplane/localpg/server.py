"""The embedded Postgres server: the local cluster under ``TENANTVEC_HOME`` itself.

It holds the catalog (unless ``TENANTVEC_CATALOG_URL`` points elsewhere) and is
registered as server ``local`` for ``postgres`` tenants. Next to its cluster files
(see ``localpg.cluster``), ``TENANTVEC_HOME`` keeps ``secret.key`` (DSN encryption,
see ``controlplane.secretbox``) and ``instances/`` (one cluster per ``instance``
tenant).
"""

from __future__ import annotations

from pathlib import Path

from controlplane.localpg.cluster import LocalCluster
from controlplane.settings import Settings

__all__ = ["EmbeddedServer", "reserved_connections"]


def reserved_connections(settings: Settings) -> int:
    """How many of the embedded server's connections are kept for the routers: their
    whole budget, but never more than half the server."""
    return min(settings.routing.max_connections_per_server, settings.embedded.max_connections // 2)


class EmbeddedServer(LocalCluster):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings,
            root=settings.home,
            port=settings.embedded.port,
            name="the embedded server",
            conf={
                "max_connections": str(settings.embedded.max_connections),
                "shared_buffers": settings.embedded.shared_buffers,
                # Slots only roles with pg_use_reserved_connections (tenants' service
                # roles, i.e. the routers) may take: however many connections tenants'
                # own clients open, the API's connections fit (see backends.tenantdb).
                "reserved_connections": str(reserved_connections(settings)),
            },
            port_setting="TENANTVEC_PG_PORT",
        )

    @property
    def home(self) -> Path:
        return self.root
