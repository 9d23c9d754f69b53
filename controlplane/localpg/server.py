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

__all__ = ["EmbeddedServer"]


class EmbeddedServer(LocalCluster):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings,
            root=settings.home,
            port=settings.pg_port,
            name="the embedded server",
            conf={"max_connections": str(settings.pg_max_connections)},
            port_setting="TENANTVEC_PG_PORT",
        )

    @property
    def home(self) -> Path:
        return self.root
