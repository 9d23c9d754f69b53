"""The catalog database: tenants, servers and operations."""

from controlplane.catalog.store import Catalog
from controlplane.model.records import (
    LIVE_STATES,
    Operation,
    OperationOutcome,
    Server,
    ServerState,
    Tenant,
    TenantState,
    validate_tenant_id,
)

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
