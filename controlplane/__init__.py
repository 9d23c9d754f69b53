"""tenantvec's control plane: a Postgres database per tenant, ready for vector search.

The public surface for Python users: settings, the control plane object, the lifecycle
and maintenance functions, tenant keys, the router with the retrieval functions that
use it (documents, search, ingestion jobs, backfill, imports), an HTTP client, the
records they return, and the error tree. The HTTP app is ``controlplane.api.create_app``.
Everything else is internal and may change.

Names load on first use (PEP 562), so ``import controlplane.errors`` -- or the CLI's
``--help`` -- does not import the whole library. Each name is declared once, in the
imports below (``__all__`` and the loader read them).
"""

from __future__ import annotations

import functools
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


@functools.cache
def _exports() -> dict[str, str]:
    """Each public name and the module it lives in, read from the imports above -- the
    one place the names are declared (type checkers read them there; this reads them
    for the lazy loader and ``__all__``)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.asname or alias.name: str(node.module)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in sorted(node.names, key=lambda a: a.name)
    }


def __getattr__(name: str) -> Any:
    if name == "__all__":  # star-imports and tools that read it
        return sorted(_exports())
    module = _exports().get(name)
    if module is None:
        raise AttributeError(f"module 'controlplane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_exports()})
