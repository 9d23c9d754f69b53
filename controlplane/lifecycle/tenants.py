"""Creating and deleting tenants: the lifecycle's first and last transitions
(``model.records.TRANSITIONS`` draws them all), over the backends.

Every transition happens under the tenant's lock and is recorded as an operation. The
catalog row (with placement and the encrypted DSN) is written before any resource is
made, so a process that dies at any point leaves a row that ``reconcile`` can finish.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from controlplane.backends.access import give_own_schema, grant_tenant_access
from controlplane.backends.base import Backend, Checkpoint
from controlplane.backends.markers import owner_role
from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    Conflict,
    InvalidRequest,
    ProvisioningError,
    TenantExists,
    TenantNotFound,
    TenantvecError,
)
from controlplane.failpoints import failpoint
from controlplane.lifecycle._retry import with_retries
from controlplane.lifecycle.change import set_state
from controlplane.lifecycle.placement import choose_server
from controlplane.model.embedder import embedder_json, parse_embedder
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import with_erasure, with_limits
from controlplane.model.records import (
    OperationOutcome,
    Tenant,
    TenantState,
    validate_tenant_id,
)
from controlplane.model.request import TenantRequest
from controlplane.model.views import TenantDetail
from controlplane.pgconnect import connect
from tenantvec_schema.runner import MigrationReport, migrate

__all__ = [
    "TenantRequest",
    "apply_schema",
    "checkpoint_for",
    "create_tenant",
    "delete_tenant",
    "delete_tenant_by_uid",
    "describe_tenant",
    "finish_delete",
    "finish_provisioning",
    "list_tenants",
    "make_resources",
    "tenant_conninfo",
]

logger = logging.getLogger(__name__)


# Brings a freshly provisioned tenant database to its schema (and its data): the usual
# one is apply_schema; a restore loads a backup instead (lifecycle/restore.py).
SchemaStep = Callable[[PlaneContext, Tenant, ConnInfo], Awaitable[MigrationReport]]


async def create_tenant(
    plane: PlaneContext,
    request: TenantRequest,
    *,
    actor: str,
    action: str = "create",
    schema_step: SchemaStep | None = None,
    restoring: bool = False,
    details: dict[str, Any] | None = None,
) -> Tenant:
    """Provision a tenant database and apply its schema; return it ``ready``.

    A tenant left ``failed`` by an earlier attempt is cleaned up and created afresh.
    ``schema_step`` replaces applying the schema (run once, not retried: it need not be
    idempotent). A ``restoring`` tenant (its schema step loads a backup) is
    ``restoring`` until it is ready, not ``provisioning``: reconcile rolls it back
    instead of finishing it. ``details`` go into its operation row.
    """
    catalog = plane.catalog
    backend = plane.backend(request.backend)
    async with catalog.tenant_lock(request.id):
        existing = await catalog.find_tenant(request.id)
        if existing is not None:
            if existing.state is not TenantState.FAILED:
                raise TenantExists(request.id, existing.state)
            logger.info("tenant %s: clearing a failed earlier attempt", request.id)
            await finish_delete(plane, existing, actor=actor, action="delete-failed")
        request = request.resolve(parse_embedder(plane.settings.embedding.default))
        assert request.dims is not None  # resolved
        embedder = request.resolved_embedder
        if embedder is not None:
            plane.embedders.for_spec(embedder)  # refuses a provider that is not configured
        if request.server is not None and not backend.uses_servers:
            raise InvalidRequest(
                f"the {backend.kind} backend does not place tenants on registered servers: "
                "drop --server" + (" (use --region)" if backend.kind == "neon" else "")
            )
        if request.region is not None and not backend.regional:
            raise InvalidRequest(
                f"the {backend.kind} backend does not place tenants in regions: drop --region "
                "(regions apply to the neon backend)"
            )
        if request.resources and not backend.sized:
            raise InvalidRequest(
                f"the {backend.kind} backend does not give a tenant a server of its own: drop "
                "the resource settings (they size instance and docker tenants)"
            )
        limits = RoleLimits.resolve(request.tier or plane.settings.default_tier, request.limits)
        server = await choose_server(plane, request.server) if backend.uses_servers else None
        plan = await backend.plan(request, server)
        tenant = await catalog.add_tenant(
            id=request.id,
            state=(TenantState.RESTORING if restoring else TenantState.PROVISIONING).value,
            backend=backend.kind,
            server=plan.server,
            placement=with_limits(plan.placement.to_json(), limits),
            dsn_encrypted=plane.box.encrypt(plan.conninfo.dsn) if plan.conninfo else None,
            service_dsn_encrypted=plane.box.encrypt(plan.service_conninfo.dsn)
            if plan.service_conninfo
            else None,
            dims=request.dims,
            metric=request.metric.value,
            index_kind=request.schema.index.kind.value,
            index_params=request.schema.index.params(),
            text_config=request.text_config,
            labels=request.labels,
            embedder=embedder_json(embedder),
            chunking=request.chunking.to_json(),
            recall=request.recall.to_json(),
            expires_at=utcnow() + request.ttl if request.ttl else None,
        )
        logger.info("tenant %s: provisioning on %s", tenant.id, plan.server or backend.kind)
        failpoint(plane.settings, "create.after_catalog")
        return await finish_provisioning(
            plane, tenant, actor=actor, action=action, schema_step=schema_step, details=details
        )


async def finish_provisioning(
    plane: PlaneContext,
    tenant: Tenant,
    *,
    actor: str,
    action: str,
    schema_step: SchemaStep | None = None,
    details: dict[str, Any] | None = None,
) -> Tenant:
    """Run (or resume) every provisioning step of a tenant in ``provisioning`` (or
    ``restoring``, with the schema step that loads its backup).

    The caller holds the tenant's lock. Steps are idempotent and retried while errors
    are transient; a permanent error leaves the tenant ``failed`` with its message.
    """
    catalog = plane.catalog
    backend = plane.backend(tenant.backend)
    seconds = backend.retry_seconds
    operation = await catalog.begin_operation(action, actor, tenant=tenant, details=details)
    try:
        checkpoint = checkpoint_for(plane, tenant, resuming=action != "create")
        owner = await make_resources(backend, checkpoint)
        # Migrations run as the service role, which owns what they make.
        conninfo = checkpoint.service_conninfo or owner
        failpoint(plane.settings, "create.after_resources")
        if schema_step is None:
            report = await with_retries(
                lambda: apply_schema(plane, checkpoint.tenant, conninfo), seconds=seconds
            )
        else:
            report = await schema_step(plane, checkpoint.tenant, conninfo)
        failpoint(plane.settings, "create.after_schema")
    except Exception as exc:
        await _fail(plane, tenant, operation, exc)
        raise
    ready = await set_state(
        plane,
        tenant,
        TenantState.READY,
        schema_version=report.to_version,
        error=None,
        placement=checkpoint.tenant.placement,
    )
    await catalog.end_operation(
        operation, OperationOutcome.SUCCEEDED, details={"schema_version": report.to_version}
    )
    logger.info("tenant %s: ready (schema version %d)", tenant.id, report.to_version)
    return ready


async def make_resources(backend: Backend, checkpoint: Checkpoint) -> ConnInfo:
    """Have ``backend`` make (or finish making) the database and roles of
    ``checkpoint``'s tenant, retrying while errors are transient; its owner DSN."""

    async def create() -> None:
        try:
            await backend.create(checkpoint.tenant, checkpoint)
        except Exception:
            checkpoint.resuming = True  # the retry must look for what this attempt made
            raise

    await with_retries(create, seconds=backend.retry_seconds)
    if checkpoint.conninfo is None:
        raise ProvisioningError(f"the {backend.kind} backend made no connection string")
    return checkpoint.conninfo


def checkpoint_for(plane: PlaneContext, tenant: Tenant, *, resuming: bool) -> Checkpoint:
    """A checkpoint that writes a backend's progress on ``tenant`` through to the catalog."""

    async def save(
        placement: dict[str, Any], conninfo: ConnInfo | None, service: ConnInfo | None
    ) -> Tenant:
        changes: dict[str, Any] = {"placement": placement}
        if conninfo is not None:
            changes["dsn_encrypted"] = plane.box.encrypt(conninfo.dsn)
        if service is not None:
            changes["service_dsn_encrypted"] = plane.box.encrypt(service.dsn)
        return await plane.catalog.update_tenant(tenant.uid, **changes)

    return Checkpoint(
        tenant,
        plane.tenant_conninfo(tenant) if tenant.dsn_encrypted else None,
        save,
        resuming=resuming,
        catalog_id=plane.catalog.catalog_id,
        service_conninfo=plane.service_conninfo(tenant) if tenant.service_dsn_encrypted else None,
    )


async def delete_tenant(plane: PlaneContext, tenant_id: str, *, actor: str) -> Tenant:
    """Drop the tenant's database and role; keep its catalog row as ``deleted``."""
    validate_tenant_id(tenant_id)
    async with plane.catalog.tenant_lock(tenant_id):
        tenant = await plane.catalog.get_tenant(tenant_id)
        return await finish_delete(plane, tenant, actor=actor, action="delete")


async def delete_tenant_by_uid(plane: PlaneContext, uid: str, *, actor: str) -> Tenant:
    """Delete the live tenant incarnation ``uid`` -- also one whose id an older tenantvec
    let through and today's validation refuses (``tenantctl doctor`` lists them)."""
    found = await plane.catalog.find_tenant_by_uid(uid)
    if found is None or found.state is TenantState.DELETED:
        raise TenantNotFound(f"uid {uid}")
    async with plane.catalog.tenant_lock(found.id):
        tenant = await plane.catalog.find_tenant_by_uid(uid)
        if tenant is None or tenant.state is TenantState.DELETED:
            raise TenantNotFound(f"uid {uid}")
        return await finish_delete(plane, tenant, actor=actor, action="delete")


async def finish_delete(plane: PlaneContext, tenant: Tenant, *, actor: str, action: str) -> Tenant:
    """Mark ``deleting``, remove every resource, mark ``deleted``. Caller holds the lock."""
    catalog = plane.catalog
    backend = plane.backend(tenant.backend)
    if tenant.state is not TenantState.DELETING:
        tenant = await set_state(plane, tenant, TenantState.DELETING)
    # Routers in this process close the tenant's pool now; others notice within their
    # route TTL (and DROP DATABASE ... FORCE ends their sessions meanwhile).
    await plane.tenant_changed(tenant.id)
    operation = await catalog.begin_operation(action, actor, tenant=tenant)
    try:
        failpoint(plane.settings, "delete.after_catalog")
        erasure = await _erase(backend, tenant)
        if tenant.other_copy is not None:  # a move's second copy goes too
            other = plane.backend(tenant.other_copy.backend)
            erasure = erasure.and_then(await _erase(other, tenant.in_copy(tenant.other_copy)))
        failpoint(plane.settings, "delete.after_resources")
    except Exception as exc:
        await _fail(plane, tenant, operation, exc)
        raise
    deleted = await set_state(
        plane,
        tenant,
        TenantState.DELETED,
        deleted_at=utcnow(),
        dsn_encrypted=None,  # the credentials are gone with the role
        error=None,
        # What became of the data, for whoever answers for its erasure.
        placement=with_erasure(tenant.placement, erasure),
        other_copy=None,
    )
    await catalog.end_operation(operation, OperationOutcome.SUCCEEDED)
    await plane.tenant_changed(tenant.id)
    logger.info("tenant %s: deleted", tenant.id)
    return deleted


async def _erase(backend: Backend, tenant: Tenant) -> Erasure:
    return await with_retries(lambda: backend.delete(tenant), seconds=backend.retry_seconds)


async def apply_schema(plane: PlaneContext, tenant: Tenant, conninfo: ConnInfo) -> MigrationReport:
    """Migrate the tenant database to the latest schema, as the service role, and give
    the tenant's role its rights on what the migrations made."""
    where = f"tenant {tenant.id!r}"
    async with connect(
        conninfo, where=where, timeout=plane.settings.connect_timeout, autocommit=False
    ) as conn:
        report = await migrate(conn, tenant.schema)
        if tenant.where.service_role:
            await grant_tenant_access(conn, owner_role(tenant))
        else:
            # One role for the tenant and the control plane (Neon): its own objects go
            # in schema app all the same, first on its own path.
            await give_own_schema(conn)
        await conn.commit()
        return report


async def list_tenants(
    plane: PlaneContext,
    *,
    states: list[TenantState] | None = None,
    labels: dict[str, str] | None = None,
    include_deleted: bool = False,
) -> list[Tenant]:
    return await plane.catalog.list_tenants(
        states=states, labels=labels or None, include_deleted=include_deleted
    )


async def tenant_conninfo(plane: PlaneContext, tenant_id: str) -> ConnInfo:
    """The tenant role's connection string (password included) for a usable tenant."""
    validate_tenant_id(tenant_id)
    tenant = await plane.catalog.get_tenant(tenant_id)
    if not tenant.state.usable:
        raise Conflict(f"tenant {tenant_id!r} is {tenant.state}; it has no usable DSN")
    return plane.tenant_conninfo(tenant)


async def describe_tenant(plane: PlaneContext, tenant_id: str) -> TenantDetail:
    """The catalog's record, live facts from the backend (when reachable) and the
    tenant's latest operations: ``tenants show``, ``GET /v1/tenants/{id}``."""
    validate_tenant_id(tenant_id)
    tenant = await plane.catalog.get_tenant(tenant_id)
    live: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    if tenant.state.usable:
        try:
            live = await plane.backend(tenant.backend).describe(tenant)
        except TenantvecError as exc:
            live = {"error": str(exc)}
    operations = await plane.catalog.list_operations(tenant_id=tenant_id, limit=10)
    return TenantDetail(
        **msgspec.structs.asdict(tenant.view()),
        live=live,
        operations=[op.view() for op in operations],
    )


async def _fail(plane: PlaneContext, tenant: Tenant, operation: int, exc: Exception) -> None:
    message = str(exc) if isinstance(exc, TenantvecError) else f"internal error: {exc!r}"
    # Refused input (a crafted backup file) is the caller's to hear about, not a fault.
    level = logging.INFO if isinstance(exc, InvalidRequest) else logging.WARNING
    logger.log(level, "tenant %s: %s failed: %s", tenant.id, tenant.state, message)
    await set_state(plane, tenant, TenantState.FAILED, error=message)
    await plane.catalog.end_operation(operation, OperationOutcome.FAILED, error=message)
