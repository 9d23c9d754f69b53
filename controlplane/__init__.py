"""tenantvec's control plane: a Postgres database per tenant, ready for vector search.

The public surface for Python users: settings, the control plane object, the lifecycle
and maintenance functions, the records they return, and the error tree. Everything else
is internal and may change.
"""

from controlplane.catalog.records import Operation, Server, Tenant, TenantState
from controlplane.doctor import DoctorReport, run_doctor
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    BackendUnavailable,
    ConfigurationError,
    Conflict,
    EmbeddedServerError,
    InvalidRequest,
    MigrationChecksumMismatch,
    MigrationError,
    NotFound,
    OverCapacity,
    ProvisioningError,
    ServerExists,
    ServerNotFound,
    TenantBusy,
    TenantExists,
    TenantNotFound,
    TenantvecError,
)
from controlplane.plane import ControlPlane
from controlplane.provisioning.lifecycle import (
    TenantRequest,
    create_tenant,
    delete_tenant,
    describe_tenant,
    list_tenants,
    tenant_conninfo,
)
from controlplane.provisioning.migrate import TenantMigration, migrate_all, migrate_tenant
from controlplane.provisioning.reconcile import (
    GcReport,
    ReconcileReport,
    collect_expired,
    reconcile,
)
from controlplane.provisioning.servers import register_server
from controlplane.settings import Settings
from tenant_schema.spec import IndexKind, IndexSpec, Metric

__all__ = [
    "BackendUnavailable",
    "ConfigurationError",
    "Conflict",
    "ConnInfo",
    "ControlPlane",
    "DoctorReport",
    "EmbeddedServerError",
    "GcReport",
    "IndexKind",
    "IndexSpec",
    "InvalidRequest",
    "Metric",
    "MigrationChecksumMismatch",
    "MigrationError",
    "NotFound",
    "Operation",
    "OverCapacity",
    "ProvisioningError",
    "ReconcileReport",
    "Server",
    "ServerExists",
    "ServerNotFound",
    "Settings",
    "Tenant",
    "TenantBusy",
    "TenantExists",
    "TenantMigration",
    "TenantNotFound",
    "TenantRequest",
    "TenantState",
    "TenantvecError",
    "collect_expired",
    "create_tenant",
    "delete_tenant",
    "describe_tenant",
    "list_tenants",
    "migrate_all",
    "migrate_tenant",
    "reconcile",
    "register_server",
    "run_doctor",
    "tenant_conninfo",
]
