"""The catalog database: tenants, servers and operations."""

from controlplane.catalog.records import (
    LIVE_STATES,
    Operation,
    OperationOutcome,
    Server,
    ServerState,
    Tenant,
    TenantState,
    validate_tenant_id,
)
from controlplane.catalog.store import Catalog

__all__ = [
    "LIVE_STATES",
    "Catalog",
    "Operation",
    "OperationOutcome",
    "Server",
    "ServerState",
    "Tenant",
    "TenantState",
    "validate_tenant_id",
]
