"""What tenantvec shows of its records: one declaration per shape, used by the HTTP API
(typed responses, so the OpenAPI document has them) and by ``tenantctl --json``
(``public_dict``). No secrets: encrypted DSNs and key hashes have no field here.

Timestamps are ISO 8601 text as ``datetime.isoformat`` writes it, as they always were.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "ApiKeyView",
    "Identity",
    "IssuedKeyView",
    "Location",
    "MoveView",
    "OperationView",
    "TenantDetail",
    "TenantView",
]


class TenantView(Struct, kw_only=True):
    """A tenant as an operator sees it."""

    id: str
    state: str
    backend: str
    server: str | None
    placement: dict[str, Any]
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
