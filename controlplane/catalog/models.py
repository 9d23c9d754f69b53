"""The catalog's tables as the ORM maps them (SQLModel). Internal to the catalog package:
callers get ``model.records``. Their DDL -- tables, indexes, defaults -- is the
migrations' (``catalog/migrations/``); a test holds the two to the same columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiKeyRow",
    "CatalogMetaRow",
    "JobRow",
    "OperationRow",
    "ServerRow",
    "TenantRow",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    # The application always sets these (timestamps in UTC, from one clock: utcnow).
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class CatalogMetaRow(SQLModel, table=True):
    """Facts about the catalog itself; ``catalog_id`` names this control plane's catalog
    in the markers it writes on servers, so reconcile never mistakes another control
    plane's tenants (staging and production on one server) for its own orphans."""

    __tablename__ = "catalog_meta"

    key: str = Field(primary_key=True, max_length=63)
    value: str = Field(sa_column=Column(Text, nullable=False))


class TenantRow(SQLModel, table=True):
    __tablename__ = "tenants"
    uid: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    id: str = Field(max_length=63)
    state: str = Field(max_length=16)
    backend: str = Field(max_length=32)
    # No foreign key on purpose: deleted tenants keep naming the server they lived on
    # after it is unregistered (audit); unregister_server refuses while live ones do.
    server: str | None = Field(default=None, max_length=63)
    placement: dict[str, Any] = _json()
    # A move's second copy ({"backend", "server", "placement"}) while the tenant is in
    # one of the move states; NULL otherwise.
    other_copy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    dsn_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The service role's DSN (the control plane's own connections); NULL where the
    # backend has none (Neon) -- the owner's DSN serves then.
    service_dsn_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    dims: int
    metric: str = Field(max_length=16)
    index_kind: str = Field(max_length=16)
    index_params: dict[str, Any] = _json()
    text_config: str = Field(max_length=63)
    schema_version: int = 0
    labels: dict[str, Any] = _json()
    # {"provider", "model", "fallbacks"} and {"max_tokens", "overlap"}; {} on rows made
    # before tenants had them (read as the hash embedder and default chunking).
    embedder: dict[str, Any] = _json()
    chunking: dict[str, Any] = _json()
    # The recall target and what was measured and chosen for it (model/recall.py).
    recall: dict[str, Any] = _json()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    deleted_at: datetime | None = _ts(nullable=True)
    # Last request served (routers write it every few seconds; see catalog.activity).
    last_active_at: datetime | None = _ts(nullable=True)


class ServerRow(SQLModel, table=True):
    __tablename__ = "servers"

    name: str = Field(primary_key=True, max_length=63)
    kind: str = Field(max_length=16)
    state: str = Field(max_length=16)
    address: str = Field(max_length=255)
    admin_dsn_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    capacity: int | None = None
    capacity_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    server_version: str = Field(max_length=32)
    pgvector_version: str = Field(max_length=32)
    created_at: datetime = _ts()


class OperationRow(SQLModel, table=True):
    __tablename__ = "operations"
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=True), primary_key=True),
    )
    tenant_id: str | None = Field(default=None, max_length=63)
    tenant_uid: uuid.UUID | None = None
    action: str = Field(max_length=32)
    actor: str = Field(max_length=255)
    outcome: str = Field(max_length=16)
    started_at: datetime = _ts()
    ended_at: datetime | None = _ts(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    details: dict[str, Any] = _json()


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(primary_key=True, max_length=32)
    # A key belongs to one incarnation of a tenant: a tenant deleted and created again
    # under the same id does not inherit its predecessor's keys.
    tenant_uid: uuid.UUID
    tenant_id: str = Field(max_length=63)
    name: str | None = Field(default=None, max_length=255)
    # SHA-256 of the key's secret part; the secret itself is never stored.
    secret_hash: str = Field(max_length=64)
    created_by: str = Field(max_length=255)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class JobRow(SQLModel, table=True):
    """An ingestion job waiting for, or held by, an API process.

    The job itself -- its documents, progress and errors -- lives in the tenant's own
    database (``ingestion_jobs``); the catalog only schedules it, so that a process
    starting up finds unfinished jobs without visiting every tenant database.
    """

    __tablename__ = "job_queue"
    id: uuid.UUID = Field(primary_key=True)
    tenant_uid: uuid.UUID
    tenant_id: str = Field(max_length=63)
    created_at: datetime = _ts()
    # Who holds the job, until when: a holder that dies stops renewing its lease.
    lease_owner: str | None = Field(default=None, max_length=255)
    lease_expires_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
