"""The embedded Postgres 18 + pgvector server that tenantvec manages by itself."""

from controlplane.localpg.binaries import PgBinaries
from controlplane.localpg.server import SUPERUSER, EmbeddedServer, ServerStatus
from controlplane.localpg.service_user import ServiceUser

__all__ = ["SUPERUSER", "EmbeddedServer", "PgBinaries", "ServerStatus", "ServiceUser"]
