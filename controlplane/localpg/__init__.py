"""Local Postgres 18 + pgvector clusters that tenantvec runs by itself."""

from controlplane.localpg.binaries import PgBinaries
from controlplane.localpg.cluster import SUPERUSER, LocalCluster, ServerStatus
from controlplane.localpg.server import EmbeddedServer
from controlplane.localpg.service_user import ServiceUser

__all__ = [
    "SUPERUSER",
    "EmbeddedServer",
    "LocalCluster",
    "PgBinaries",
    "ServerStatus",
    "ServiceUser",
]
