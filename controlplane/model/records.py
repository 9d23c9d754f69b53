"""The catalog's records as the rest of tenantvec sees them: frozen, detached, typed.

Rows (``catalog.models``) stay inside the catalog package; callers get these records,
so no SQLAlchemy session state or lazy loading escapes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from msgspec import UNSET

from controlplane.errors import Conflict, InvalidRequest
from controlplane.inputs import check_identifier
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.placement import Placement, TenantCopy
from controlplane.model.recall import RecallTuning
from controlplane.model.views import ApiKeyView, OperationView, ServerView, TenantView
from tenantvec_schema.spec import IndexSpec, Metric, SchemaSpec

__all__ = [
    "LIVE_STATES",
    "MOVE_STATES",
    "TRANSITIONS",
    "ApiKey",
    "Operation",
    "OperationOutcome",
    "Server",
    "ServerState",
    "Tenant",
    "TenantState",
    "check_transition",
    "validate_server_name",
    "validate_tenant_id",
]

TENANT_ID_RE = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")  # whole string: re.fullmatch
# Names a tenant may not take because its database and role carry the tenant id, and
# these already mean something on every Postgres server (or to tenantvec itself).
_RESERVED_IDS = {"postgres", "template0", "template1", "public", "none", "all"}


def validate_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` if it is a valid tenant id; raise InvalidRequest otherwise."""
    check_identifier(
        tenant_id,
        TENANT_ID_RE,
        "tenant id",
        "use 3-63 characters, lowercase letters, digits and '-', starting with a letter and "
        "not ending with '-'",
    )
    if tenant_id in _RESERVED_IDS or tenant_id.startswith("tenantvec"):
        raise InvalidRequest(f"tenant id {tenant_id!r} is reserved; choose another")
    return tenant_id


_SERVER_NAME_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")  # whole string


def validate_server_name(name: str) -> None:
    check_identifier(
        name,
        _SERVER_NAME_RE,
        "server name",
        "use lowercase letters, digits and '-', starting with a letter",
    )


class TenantState(StrEnum):
    PROVISIONING = "provisioning"
    # Being made from a backup: never served until its copy is verified.
    RESTORING = "restoring"
    READY = "ready"
    # The three phases of a move (lifecycle/move.py). Served all along, from one copy:
    # ``moving`` -- copied to its new place, served from the old one (whose writes the
    # move pauses at the end of the copy); ``switched`` -- served from its new place, the
    # old copy still to drop; ``rolling-back`` -- a move given up, its new copy to drop
    # and the pause on the old one to lift.
    MOVING = "moving"
    SWITCHED = "switched"
    ROLLING_BACK = "rolling-back"
    SUSPENDED = "suspended"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"

    @property
    def serves(self) -> bool:
        """Whether requests are routed to it: ready, or ready and moving."""
        return self is TenantState.READY or self in MOVE_STATES

    @property
    def usable(self) -> bool:
        """Whether its database is whole and can serve: serving, or suspended."""
        return self.serves or self is TenantState.SUSPENDED


# A move in progress: the tenant has a second copy (``Tenant.other_copy``).
MOVE_STATES = frozenset({TenantState.MOVING, TenantState.SWITCHED, TenantState.ROLLING_BACK})

# Every state but DELETED holds the tenant id: at most one such row per id.
LIVE_STATES = frozenset(TenantState) - {TenantState.DELETED}

# The lifecycle, as data (``lifecycle.change.set_state`` holds every write to it)::
#
#     create ──> provisioning ─┐            ┌──> moving ──> switched ──┐
#                              ├──> ready <─┤      └─> rolling-back ───┤
#     restore ─> restoring ────┘     ^ │    └──────────────────────────┘
#                  │       │         │ v
#                  │       │      suspended
#                  v       v
#                failed ──────────> deleting ──> deleted
#
# A create or a restore that fails leaves the tenant ``failed``; from there it can only
# be deleted (a create of its id does that first). A move leaves ``ready`` and comes back
# to it, forward (``switched``) or back (``rolling-back``). Any tenant but a deleted one
# can be deleted -- a moving one's two copies both go.
TRANSITIONS: dict[TenantState, frozenset[TenantState]] = {
    TenantState.PROVISIONING: frozenset(
        {TenantState.READY, TenantState.FAILED, TenantState.DELETING}
    ),
    TenantState.RESTORING: frozenset({TenantState.READY, TenantState.FAILED, TenantState.DELETING}),
    TenantState.READY: frozenset({TenantState.SUSPENDED, TenantState.MOVING, TenantState.DELETING}),
    TenantState.MOVING: frozenset(
        {TenantState.SWITCHED, TenantState.ROLLING_BACK, TenantState.DELETING}
    ),
    TenantState.SWITCHED: frozenset({TenantState.READY, TenantState.DELETING}),
    TenantState.ROLLING_BACK: frozenset({TenantState.READY, TenantState.DELETING}),
    TenantState.SUSPENDED: frozenset({TenantState.READY, TenantState.DELETING}),
    TenantState.FAILED: frozenset({TenantState.DELETING}),
    TenantState.DELETING: frozenset({TenantState.DELETED, TenantState.FAILED}),
    TenantState.DELETED: frozenset(),
}


def check_transition(current: TenantState, target: TenantState) -> None:
    """Raise Conflict unless the lifecycle lets a ``current`` tenant become ``target``."""
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a {current} tenant cannot become {target}")


class ServerState(StrEnum):
    ACTIVE = "active"  # takes new tenants
    DRAINING = "draining"  # keeps its tenants, takes no new ones


class OperationOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Tenant:
    uid: str
    id: str
    state: TenantState
    backend: str
    server: str | None
    placement: dict[str, Any]
    dims: int
    metric: Metric
    index: IndexSpec
    text_config: str
    schema_version: int
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    deleted_at: datetime | None = None
    last_active_at: datetime | None = None
    error: str | None = None
    # None: the tenant has no embedder; it stores the vectors its callers send.
    embedder: EmbedderSpec | None = field(default_factory=lambda: EmbedderSpec.parse("hash"))
    chunking: ChunkingSpec = field(default_factory=ChunkingSpec)
    recall: RecallTuning = field(default_factory=RecallTuning)
    # Encrypted DSNs; decrypt with the control plane's SecretBox, never log. The
    # owner role's (handed to the tenant's own clients) and the service role's (the
    # control plane's own connections; None where the backend has none).
    dsn_encrypted: str | None = field(default=None, repr=False)
    service_dsn_encrypted: str | None = field(default=None, repr=False)
    # During a move (MOVE_STATES): the copy that does not serve -- the new one while
    # ``moving`` or ``rolling-back``, the old one once ``switched``. None otherwise.
    other_copy: TenantCopy | None = None

    @property
    def where(self) -> Placement:
        """Its placement, typed: what the layers above its backend may read of it."""
        return Placement.parse(self.backend, self.server, self.placement)

    @property
    def serving_copy(self) -> TenantCopy:
        """The copy of its database that serves it (the catalog's backend and placement)."""
        return TenantCopy(self.backend, self.server, self.placement)

    @property
    def copies(self) -> list[TenantCopy]:
        """Every copy of its database: the serving one, and a move's other one."""
        if self.other_copy is None:
            return [self.serving_copy]
        return [self.serving_copy, self.other_copy]

    def in_copy(self, copy: TenantCopy) -> Tenant:
        """The tenant as it lives in ``copy`` (a move's other one), to hand its backend:
        no DSNs (a backend makes its own), no second copy."""
        return dataclasses.replace(
            self,
            backend=copy.backend,
            server=copy.server,
            placement=dict(copy.placement),
            dsn_encrypted=None,
            service_dsn_encrypted=None,
            other_copy=None,
        )

    @property
    def schema(self) -> SchemaSpec:
        return SchemaSpec(
            dims=self.dims, metric=self.metric, index=self.index, text_config=self.text_config
        )

    def view(self) -> TenantView:
        """Everything about the tenant that may be shown to an operator: no secrets."""
        return TenantView(
            id=self.id,
            state=self.state.value,
            backend=self.backend,
            server=self.server,
            placement=self.placement,
            other_copy=self.other_copy.location() if self.other_copy is not None else None,
            dims=self.dims,
            metric=self.metric.value,
            index=self.index.to_json(),
            text_config=self.text_config,
            embedder=self.embedder.to_json() if self.embedder is not None else None,
            chunking=self.chunking.to_json(),
            recall=self.recall.to_json(),
            schema_version=self.schema_version,
            labels=self.labels,
            created_at=self.created_at.isoformat(),
            updated_at=self.updated_at.isoformat(),
            expires_at=_iso(self.expires_at),
            deleted_at=_iso(self.deleted_at),
            last_active_at=_iso(self.last_active_at),
            error=self.error,
        )


@dataclass(frozen=True)
class Server:
    name: str
    kind: str  # "embedded" | "external"
    state: ServerState
    address: str  # host:port, for display
    capacity: int | None
    server_version: str
    pgvector_version: str
    created_at: datetime
    admin_dsn_encrypted: str = field(repr=False)
    # Most bytes of databases to hold before placement passes it by (None: no limit).
    capacity_bytes: int | None = None

    def view(self, *, tenants: int | None = None, used_bytes: int | None = None) -> ServerView:
        """The server; with ``tenants`` and ``used_bytes``, its load too."""
        return ServerView(
            name=self.name,
            kind=self.kind,
            state=self.state.value,
            address=self.address,
            capacity=self.capacity,
            capacity_bytes=self.capacity_bytes,
            server_version=self.server_version,
            pgvector_version=self.pgvector_version,
            created_at=self.created_at.isoformat(),
            tenants=UNSET if tenants is None else tenants,
            bytes=UNSET if used_bytes is None else used_bytes,
        )


@dataclass(frozen=True)
class Operation:
    id: int
    action: str
    actor: str
    tenant_id: str | None
    outcome: OperationOutcome
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    details: dict[str, Any]
    tenant_uid: str | None = None

    def view(self) -> OperationView:
        return OperationView(
            id=self.id,
            action=self.action,
            actor=self.actor,
            tenant=self.tenant_id,
            outcome=self.outcome.value,
            started_at=self.started_at.isoformat(),
            ended_at=_iso(self.ended_at),
            error=self.error,
            details=self.details,
        )


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_uid: str
    tenant_id: str
    name: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    secret_hash: str = field(repr=False)

    def view(self) -> ApiKeyView:
        return ApiKeyView(
            id=self.id,
            tenant=self.tenant_id,
            name=self.name,
            created_by=self.created_by,
            created_at=self.created_at.isoformat(),
            revoked_at=_iso(self.revoked_at),
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
