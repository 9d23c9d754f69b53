"""tenantvec's control plane: a Postgres database per tenant, ready for vector search.

The public surface for Python users: settings, the control plane object, the lifecycle
and maintenance functions, tenant keys, the router with the retrieval functions that
use it (documents, search, ingestion jobs, backfill, imports), an HTTP client, the
records they return, and the error tree. The HTTP app is ``controlplane.api.create_app``.
Everything else is internal and may change.
"""

from controlplane.catalog.records import ApiKey, Operation, Server, Tenant, TenantState
from controlplane.client import ApiClient
from controlplane.doctor import DoctorReport, run_doctor
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    CatalogUnavailable,
    ConfigurationError,
    Conflict,
    DocumentNotFound,
    DocumentRejected,
    EmbeddedServerError,
    EmbedderUnavailable,
    EmbeddingFailed,
    InvalidRequest,
    JobNotFound,
    KeyNotFound,
    MigrationChecksumMismatch,
    MigrationError,
    NotConfigured,
    NotFound,
    OverCapacity,
    PermissionDenied,
    ProvisioningError,
    ServerExists,
    ServerNotFound,
    TenantBusy,
    TenantExists,
    TenantNotFound,
    TenantUnavailable,
    TenantvecError,
)
from controlplane.keys import IssuedKey, create_key, list_keys, revoke_key
from controlplane.plane import ControlPlane
from controlplane.provisioning.compute import ComputeSpec
from controlplane.provisioning.embedder import set_embedder
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
from controlplane.provisioning.supervise import restart_if_down, supervise
from controlplane.provisioning.suspend import resume_tenant, suspend_idle, suspend_tenant
from controlplane.retrieval import (
    ChunkIn,
    ChunkingSpec,
    Document,
    DocumentIn,
    EmbedderSpec,
    Job,
    SearchHit,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
    split_text,
)
from controlplane.retrieval.backfill import BackfillReport, backfill
from controlplane.retrieval.chroma import ChromaImportReport, import_chroma
from controlplane.retrieval.documents import delete_document, get_document, upsert_documents
from controlplane.retrieval.ingest import BatchOutcome, ingest_batch
from controlplane.retrieval.jobs import get_job, list_jobs, submit_job
from controlplane.retrieval.search import search
from controlplane.retrieval.stats import tenant_stats
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenant_schema.spec import IndexKind, IndexSpec, Metric

__all__ = [
    "ApiClient",
    "ApiKey",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BackfillReport",
    "BatchOutcome",
    "CatalogUnavailable",
    "ChromaImportReport",
    "ChunkIn",
    "ChunkingSpec",
    "ComputeSpec",
    "ConfigurationError",
    "Conflict",
    "ConnInfo",
    "ControlPlane",
    "DoctorReport",
    "Document",
    "DocumentIn",
    "DocumentNotFound",
    "DocumentRejected",
    "EmbeddedServerError",
    "EmbedderSpec",
    "EmbedderUnavailable",
    "EmbeddingFailed",
    "GcReport",
    "IndexKind",
    "IndexSpec",
    "InvalidRequest",
    "IssuedKey",
    "Job",
    "JobNotFound",
    "KeyNotFound",
    "Metric",
    "MigrationChecksumMismatch",
    "MigrationError",
    "NotConfigured",
    "NotFound",
    "Operation",
    "OverCapacity",
    "PermissionDenied",
    "ProvisioningError",
    "ReconcileReport",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
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
    "TenantRouter",
    "TenantState",
    "TenantStats",
    "TenantUnavailable",
    "TenantvecError",
    "UpsertRequest",
    "UpsertResponse",
    "backfill",
    "collect_expired",
    "create_key",
    "create_tenant",
    "delete_document",
    "delete_tenant",
    "describe_tenant",
    "get_document",
    "get_job",
    "import_chroma",
    "ingest_batch",
    "list_jobs",
    "list_keys",
    "list_tenants",
    "migrate_all",
    "migrate_tenant",
    "reconcile",
    "register_server",
    "restart_if_down",
    "resume_tenant",
    "revoke_key",
    "run_doctor",
    "search",
    "set_embedder",
    "split_text",
    "submit_job",
    "supervise",
    "suspend_idle",
    "suspend_tenant",
    "tenant_conninfo",
    "tenant_stats",
    "upsert_documents",
]
