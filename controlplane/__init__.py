"""tenantvec's control plane: a Postgres database per tenant, ready for vector search.

The public surface for Python users: settings, the control plane object, the lifecycle
and maintenance functions, tenant keys, the router with the retrieval functions that
use it (documents, search, ingestion jobs, backfill, imports), an HTTP client, the
records they return, and the error tree. The HTTP app is ``controlplane.api.create_app``.
Everything else is internal and may change.

Names load on first use (PEP 562), so ``import controlplane.errors`` -- or the CLI's
``--help`` -- does not import the whole library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controlplane.backends.servers import register_server, unregister_server
    from controlplane.client import ApiClient, AsyncClient, Client
    from controlplane.dsn import ConnInfo
    from controlplane.errors import (
        AuthenticationFailed,
        BackendUnavailable,
        BackupInvalid,
        CatalogUnavailable,
        ChunkIdTaken,
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
        TenantChanged,
        TenantExists,
        TenantHasNoEmbedder,
        TenantNotFound,
        TenantUnavailable,
        TenantvecError,
    )
    from controlplane.keys import IssuedKey, create_key, list_keys, revoke_key
    from controlplane.lifecycle.backup import BackupReport, backup_tenant
    from controlplane.lifecycle.doctor import DoctorReport, run_doctor
    from controlplane.lifecycle.drain import DrainReport, drain_server
    from controlplane.lifecycle.embedder import set_embedder
    from controlplane.lifecycle.gc import GcReport, collect_expired
    from controlplane.lifecycle.index import set_index
    from controlplane.lifecycle.limits import set_limits
    from controlplane.lifecycle.migrate import TenantMigration, migrate_all, migrate_tenant
    from controlplane.lifecycle.move import MoveReport, move_tenant
    from controlplane.lifecycle.reconcile import ReconcileReport, reconcile
    from controlplane.lifecycle.restore import RestoreReport, restore_tenant
    from controlplane.lifecycle.supervise import restart_if_down
    from controlplane.lifecycle.suspend import resume_tenant, suspend_tenant
    from controlplane.lifecycle.tenants import (
        create_tenant,
        delete_tenant,
        delete_tenant_by_uid,
        describe_tenant,
        list_tenants,
        tenant_conninfo,
    )
    from controlplane.model.compute import ComputeSpec
    from controlplane.model.records import ApiKey, Operation, Server, Tenant, TenantState
    from controlplane.model.request import TenantRequest
    from controlplane.plane import ControlPlane
    from controlplane.retrieval import (
        ChunkIn,
        ChunkingSpec,
        ChunkWrite,
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
    )
    from controlplane.retrieval.backfill import BackfillReport, backfill
    from controlplane.retrieval.bulk import bulk_load
    from controlplane.retrieval.chroma import ChromaImportReport, import_chroma
    from controlplane.retrieval.chunks import delete_chunks, fetch_chunks, upsert_chunks
    from controlplane.retrieval.collection import (
        count_documents,
        delete_documents,
        fetch_documents,
        list_document_ids,
    )
    from controlplane.retrieval.documents import delete_document, get_document, upsert_documents
    from controlplane.retrieval.ingest import BatchOutcome, ingest_batch
    from controlplane.retrieval.jobs import get_job, list_jobs, submit_job
    from controlplane.retrieval.recall import tune_recall
    from controlplane.retrieval.search import search
    from controlplane.retrieval.stats import tenant_stats
    from controlplane.routing import TenantRouter
    from controlplane.settings import Settings
    from tenantvec_schema.spec import IndexKind, IndexSpec, Metric

# Where each name lives, for the lazy loader (as in pydantic's __init__). The imports
# above are for type checkers; a test holds both to __all__.
_EXPORTS: dict[str, str] = {
    "ApiClient": "controlplane.client",
    "ApiKey": "controlplane.model.records",
    "AsyncClient": "controlplane.client",
    "AuthenticationFailed": "controlplane.errors",
    "BackendUnavailable": "controlplane.errors",
    "BackfillReport": "controlplane.retrieval.backfill",
    "BackupInvalid": "controlplane.errors",
    "BackupReport": "controlplane.lifecycle.backup",
    "BatchOutcome": "controlplane.retrieval.ingest",
    "CatalogUnavailable": "controlplane.errors",
    "ChromaImportReport": "controlplane.retrieval.chroma",
    "ChunkIdTaken": "controlplane.errors",
    "ChunkIn": "controlplane.retrieval",
    "ChunkWrite": "controlplane.retrieval",
    "ChunkingSpec": "controlplane.retrieval",
    "Client": "controlplane.client",
    "ComputeSpec": "controlplane.model.compute",
    "ConfigurationError": "controlplane.errors",
    "Conflict": "controlplane.errors",
    "ConnInfo": "controlplane.dsn",
    "ControlPlane": "controlplane.plane",
    "DoctorReport": "controlplane.lifecycle.doctor",
    "Document": "controlplane.retrieval",
    "DocumentIn": "controlplane.retrieval",
    "DocumentNotFound": "controlplane.errors",
    "DocumentRejected": "controlplane.errors",
    "DrainReport": "controlplane.lifecycle.drain",
    "EmbeddedServerError": "controlplane.errors",
    "EmbedderSpec": "controlplane.retrieval",
    "EmbedderUnavailable": "controlplane.errors",
    "EmbeddingFailed": "controlplane.errors",
    "GcReport": "controlplane.lifecycle.gc",
    "IndexKind": "tenantvec_schema.spec",
    "IndexSpec": "tenantvec_schema.spec",
    "InvalidRequest": "controlplane.errors",
    "IssuedKey": "controlplane.keys",
    "Job": "controlplane.retrieval",
    "JobNotFound": "controlplane.errors",
    "KeyNotFound": "controlplane.errors",
    "Metric": "tenantvec_schema.spec",
    "MigrationChecksumMismatch": "controlplane.errors",
    "MigrationError": "controlplane.errors",
    "MoveReport": "controlplane.lifecycle.move",
    "NotConfigured": "controlplane.errors",
    "NotFound": "controlplane.errors",
    "Operation": "controlplane.model.records",
    "OverCapacity": "controlplane.errors",
    "PermissionDenied": "controlplane.errors",
    "ProvisioningError": "controlplane.errors",
    "ReconcileReport": "controlplane.lifecycle.reconcile",
    "RestoreReport": "controlplane.lifecycle.restore",
    "SearchHit": "controlplane.retrieval",
    "SearchRequest": "controlplane.retrieval",
    "SearchResponse": "controlplane.retrieval",
    "Server": "controlplane.model.records",
    "ServerExists": "controlplane.errors",
    "ServerNotFound": "controlplane.errors",
    "Settings": "controlplane.settings",
    "Tenant": "controlplane.model.records",
    "TenantBusy": "controlplane.errors",
    "TenantChanged": "controlplane.errors",
    "TenantExists": "controlplane.errors",
    "TenantHasNoEmbedder": "controlplane.errors",
    "TenantMigration": "controlplane.lifecycle.migrate",
    "TenantNotFound": "controlplane.errors",
    "TenantRequest": "controlplane.model.request",
    "TenantRouter": "controlplane.routing",
    "TenantState": "controlplane.model.records",
    "TenantStats": "controlplane.retrieval",
    "TenantUnavailable": "controlplane.errors",
    "TenantvecError": "controlplane.errors",
    "UpsertRequest": "controlplane.retrieval",
    "UpsertResponse": "controlplane.retrieval",
    "backfill": "controlplane.retrieval.backfill",
    "backup_tenant": "controlplane.lifecycle.backup",
    "bulk_load": "controlplane.retrieval.bulk",
    "collect_expired": "controlplane.lifecycle.gc",
    "count_documents": "controlplane.retrieval.collection",
    "create_key": "controlplane.keys",
    "create_tenant": "controlplane.lifecycle.tenants",
    "delete_chunks": "controlplane.retrieval.chunks",
    "delete_document": "controlplane.retrieval.documents",
    "delete_documents": "controlplane.retrieval.collection",
    "delete_tenant": "controlplane.lifecycle.tenants",
    "delete_tenant_by_uid": "controlplane.lifecycle.tenants",
    "describe_tenant": "controlplane.lifecycle.tenants",
    "drain_server": "controlplane.lifecycle.drain",
    "fetch_chunks": "controlplane.retrieval.chunks",
    "fetch_documents": "controlplane.retrieval.collection",
    "get_document": "controlplane.retrieval.documents",
    "get_job": "controlplane.retrieval.jobs",
    "import_chroma": "controlplane.retrieval.chroma",
    "ingest_batch": "controlplane.retrieval.ingest",
    "list_document_ids": "controlplane.retrieval.collection",
    "list_jobs": "controlplane.retrieval.jobs",
    "list_keys": "controlplane.keys",
    "list_tenants": "controlplane.lifecycle.tenants",
    "migrate_all": "controlplane.lifecycle.migrate",
    "migrate_tenant": "controlplane.lifecycle.migrate",
    "move_tenant": "controlplane.lifecycle.move",
    "reconcile": "controlplane.lifecycle.reconcile",
    "register_server": "controlplane.backends.servers",
    "restart_if_down": "controlplane.lifecycle.supervise",
    "restore_tenant": "controlplane.lifecycle.restore",
    "resume_tenant": "controlplane.lifecycle.suspend",
    "revoke_key": "controlplane.keys",
    "run_doctor": "controlplane.lifecycle.doctor",
    "search": "controlplane.retrieval.search",
    "set_embedder": "controlplane.lifecycle.embedder",
    "set_index": "controlplane.lifecycle.index",
    "set_limits": "controlplane.lifecycle.limits",
    "submit_job": "controlplane.retrieval.jobs",
    "suspend_tenant": "controlplane.lifecycle.suspend",
    "tenant_conninfo": "controlplane.lifecycle.tenants",
    "tenant_stats": "controlplane.retrieval.stats",
    "tune_recall": "controlplane.retrieval.recall",
    "unregister_server": "controlplane.backends.servers",
    "upsert_chunks": "controlplane.retrieval.chunks",
    "upsert_documents": "controlplane.retrieval.documents",
}

__all__ = [
    "ApiClient",
    "ApiKey",
    "AsyncClient",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BackfillReport",
    "BackupInvalid",
    "BackupReport",
    "BatchOutcome",
    "CatalogUnavailable",
    "ChromaImportReport",
    "ChunkIdTaken",
    "ChunkIn",
    "ChunkWrite",
    "ChunkingSpec",
    "Client",
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
    "DrainReport",
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
    "MoveReport",
    "NotConfigured",
    "NotFound",
    "Operation",
    "OverCapacity",
    "PermissionDenied",
    "ProvisioningError",
    "ReconcileReport",
    "RestoreReport",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "Server",
    "ServerExists",
    "ServerNotFound",
    "Settings",
    "Tenant",
    "TenantBusy",
    "TenantChanged",
    "TenantExists",
    "TenantHasNoEmbedder",
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
    "backup_tenant",
    "bulk_load",
    "collect_expired",
    "count_documents",
    "create_key",
    "create_tenant",
    "delete_chunks",
    "delete_document",
    "delete_documents",
    "delete_tenant",
    "delete_tenant_by_uid",
    "describe_tenant",
    "drain_server",
    "fetch_chunks",
    "fetch_documents",
    "get_document",
    "get_job",
    "import_chroma",
    "ingest_batch",
    "list_document_ids",
    "list_jobs",
    "list_keys",
    "list_tenants",
    "migrate_all",
    "migrate_tenant",
    "move_tenant",
    "reconcile",
    "register_server",
    "restart_if_down",
    "restore_tenant",
    "resume_tenant",
    "revoke_key",
    "run_doctor",
    "search",
    "set_embedder",
    "set_index",
    "set_limits",
    "submit_job",
    "suspend_tenant",
    "tenant_conninfo",
    "tenant_stats",
    "tune_recall",
    "unregister_server",
    "upsert_chunks",
    "upsert_documents",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'controlplane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
