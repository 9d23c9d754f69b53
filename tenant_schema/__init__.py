"""The schema of a tenant database: versioned SQL migrations rendered per tenant, and
the runner that applies them."""

from tenant_schema.migrations import Migration, MigrationSet, render_migration
from tenant_schema.runner import MigrationReport, applied_version, migrate
from tenant_schema.spec import IndexKind, IndexSpec, Metric, SchemaSpec

__all__ = [
    "IndexKind",
    "IndexSpec",
    "Metric",
    "Migration",
    "MigrationReport",
    "MigrationSet",
    "SchemaSpec",
    "applied_version",
    "migrate",
    "render_migration",
]
