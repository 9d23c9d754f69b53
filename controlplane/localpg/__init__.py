"""Local Postgres 18 + pgvector clusters that tenantvec runs by itself."""

from controlplane.localpg._binaries import PgBinaries
from controlplane.localpg._service_user import ServiceUser
from controlplane.localpg.cluster import SUPERUSER, LocalCluster, ServerStatus
from controlplane.localpg.server import EmbeddedServer

__all__ = [
    "SUPERUSER",
    "EmbeddedServer",
    "LocalCluster",
    "PgBinaries",
    "ServerStatus",
    "ServiceUser",
]
