"""What tenantvec shows of its records and of what its operations did: one declaration
per shape, used by the HTTP API (typed responses, so the OpenAPI document has them) and
by ``tenantctl --json`` (the same struct, serialised the same way): an operation the
API and the CLI both offer answers in one shape. Records and reports make theirs with
``view()``. No secrets: encrypted DSNs and key hashes have no field here.

Timestamps are ISO 8601 text as ``datetime.isoformat`` writes it, as they always were.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "ApiKeyView",
    "BackupView",
    "CheckView",
    "DoctorView",
    "DrainMoveView",
    "DrainView",
    "GcView",
    "Identity",
    "IssuedKeyView",
    "Location",
    "MigrationView",
    "MigrationsView",
    "MoveView",
    "OperationView",
    "ReconcileView",
    "RepairView",
    "ResourceView",
    "RestoreView",
    "ServerView",
    "TenantDetail",
    "TenantView",
    "details_of",
]


class TenantView(Struct, kw_only=True):
    """A tenant as an operator sees it."""

    id: str
    state: str
    backend: str
    server: str | None
    placement: dict[str, Any]
    # While it moves (state moving, switched or rolling-back): where its other copy is
    # -- the one it moves to, or (switched) the one it left, still to drop.
    other_copy: Location | None = None
    dims: int
    metric: str
    # The index kind and its build parameters, e.g. {"kind": "hnsw", "m": 16, ...}.
    index: dict[str, str | int]
    text_config: str
    # provider, model, fallbacks; null: no embedder (the tenant stores callers' vectors).
    embedder: dict[str, Any] | None
    chunking: dict[str, int]
    # The recall target; the recall measured on samples of its chunks, the ef_search
    # (HNSW) or probes (IVFFlat) chosen to meet it, and when (null: not yet measured).
    recall: dict[str, Any]
    schema_version: int
    labels: dict[str, str]
    created_at: str
    updated_at: str
    expires_at: str | None
    deleted_at: str | None
    last_active_at: str | None
    error: str | None


class OperationView(Struct, kw_only=True):
    """One lifecycle action: who, what, when, and how it ended."""

    id: int
    action: str
    actor: str
    tenant: str | None
    outcome: str
    started_at: str
    ended_at: str | None
    error: str | None
    details: dict[str, Any]


class TenantDetail(TenantView, kw_only=True):
    """A tenant with live facts from its backend and its latest operations."""

    # What the backend says now (absent unless ready or suspended; {"error": ...} when
    # it could not be asked).
    live: dict[str, Any] | UnsetType = UNSET
    operations: list[OperationView] = []


class ApiKeyView(Struct, kw_only=True):
    """A tenant API key (never its secret)."""

    id: str
    tenant: str
    name: str | None
    created_by: str
    created_at: str
    revoked_at: str | None


class IssuedKeyView(ApiKeyView, kw_only=True):
    """A key just created, with its secret: shown this once."""

    key: str


class Identity(Struct):
    """What a credential opens (``GET /v1/whoami``)."""

    admin: bool
    tenant: str | None  # the key's tenant; None for the admin token


class Location(Struct, kw_only=True):
    """Where a tenant's database lives: its backend, and the registered server (if the
    backend uses servers)."""

    backend: str
    server: str | None = None


class MoveView(Struct, kw_only=True):
    """A tenant moved to another placement (``POST /v1/tenants/{id}/move``), verified."""

    tenant: TenantView
    moved_from: Location
    documents: int
    chunks: int
    # Documents written during the copy, brought over while writes were paused.
    caught_up: int
    verified: bool
    seconds: float
    writes_paused_seconds: float


class RestoreView(Struct, kw_only=True):
    """A tenant restored from a backup (``POST /v1/restores``), verified against it."""

    tenant: TenantView
    restored_from: str
    backup_schema_version: int
    documents: int
    chunks: int
    verified: bool
    seconds: float


class BackupView(Struct, kw_only=True):
    """A tenant written to a backup file (``tenantctl tenants backup``)."""

    path: str
    tenant: str
    bytes: int
    seconds: float
    schema_version: int
    documents: int
    chunks: int
    # A digest of every document and chunk row, vectors included (its fingerprint).
    digest: str


class ServerView(Struct, kw_only=True):
    """A registered Postgres server; with its load when listed."""

    name: str
    kind: str  # embedded | external
    state: str
    address: str
    capacity: int | None
    capacity_bytes: int | None
    server_version: str
    pgvector_version: str
    created_at: str
    tenants: int | UnsetType = UNSET  # live tenants placed on it
    bytes: int | UnsetType = UNSET  # the size of their databases


class CheckView(Struct, kw_only=True):
    name: str
    status: str  # ok | warn | fail
    detail: str


class DoctorView(Struct, kw_only=True):
    """``tenantctl doctor``: every check, and whether none failed."""

    healthy: bool
    checks: list[CheckView]


class ResourceView(Struct, kw_only=True):
    """A database, role, instance, container or Neon project a backend made, as its
    marker names its owner."""

    backend: str
    kind: str
    name: str
    location: str
    tenant: str | None
    tenant_uid: str | None
    catalog: str | None


class RepairView(Struct, kw_only=True):
    """An operation a crash interrupted, and what reconcile did about it."""

    tenant: str
    was: str
    action: str
    outcome: str  # ok | failed | skipped
    error: str | None


class ReconcileView(Struct, kw_only=True):
    """``tenantctl reconcile``: repairs, orphans (removed with --fix), what it left."""

    repairs: list[RepairView]
    orphans: list[ResourceView]
    ambiguous: list[ResourceView]
    removed: list[ResourceView]
    failed_tenants: list[str]
    scratch_removed: list[str]
    draining: dict[str, int]
    clean: bool


class MigrationView(Struct, kw_only=True):
    """One tenant upgraded (or not) by ``tenantctl migrate``."""

    tenant: str
    ok: bool
    from_version: int
    to_version: int
    applied: list[int]
    seconds: float
    error: str | None


class MigrationsView(Struct, kw_only=True):
    results: list[MigrationView]
    migrated: int
    failed: int


class DrainMoveView(Struct, kw_only=True):
    tenant: str
    ok: bool
    to: str | None  # the server (or backend) it moved to
    seconds: float
    error: str | None


class DrainView(Struct, kw_only=True):
    """``tenantctl servers drain``: each tenant's move, and what is left on it."""

    server: str
    moved: int
    failed: int
    moves: list[DrainMoveView]
    left: list[str]
    drained: bool


class GcView(Struct, kw_only=True):
    """``tenantctl gc``: expired tenants deleted, and those that could not be."""

    deleted: list[str]
    failed: dict[str, str]


def details_of(view: Struct, *leave_out: str) -> dict[str, Any]:
    """``view`` as the JSON an operation's ``details`` keep, without ``leave_out``
    (what the operation's row says already: its tenant)."""
    data = msgspec.to_builtins(view)
    assert isinstance(data, dict)
    return {key: value for key, value in data.items() if key not in leave_out}
